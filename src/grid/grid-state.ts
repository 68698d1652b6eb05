// The site's grid state: every `grid.update_interval_ms` it reads the latest samples of the
// pollers and the meter fleet (GridSampleSource), computes the totals (grid-math.ts), keeps the
// result for the ems.grid.* gauges and the status endpoint, and emits one ems.grid.state_update span.
// The gauges are observable and read the last computed state, so a metric collection never does I/O.
import type { Attributes, BatchObservableResult, Meter, Observable, ObservableGauge, Tracer } from '@opentelemetry/api';
import type { GridConfig, SiteInfo } from '../config/site-types.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { METRICS, METRIC_ATTRS, METRIC_UNITS, SPANS, SPAN_ATTRS } from '../telemetry/semconv.js';
import { computeGrid, sampleKey, type Exclusion } from './grid-math.js';
import type { GridRole, GridSample, GridSampleSource } from './sources.js';

export interface GridSnapshot {
  /** Epoch ms of the computation. */
  at_ms: number;
  nominal_frequency_hz: 50 | 60;
  generation_mw: number | null;
  load_mw: number | null;
  imbalance_mw: number | null;
  imbalance_pct: number | null;
  frequency_hz: number | null;
  frequency_deviation_hz: number | null;
  frequency_source: string | null;
  sources_contributing: number;
  sources_excluded: number;
  excluded: Exclusion[];
}

interface GridStateDeps {
  config: GridConfig;
  site: SiteInfo;
  sources: GridSampleSource[];
  meter: Meter;
  tracer: Tracer;
  clock: Clock;
  logger: Logger;
}

export class GridState {
  readonly name = 'grid-state';
  private readonly deps: GridStateDeps;
  private readonly logger: Logger;
  private readonly sources: GridSampleSource[];
  /** Every `source/point` seen, with its role (grid-math: a missing one still counts for its kind). */
  private readonly known = new Map<string, GridRole>();
  private latest: GridSnapshot | undefined;
  private timer: ClockTimer | undefined;
  private running = false;
  private failingSources = new Set<number>();
  private gauges: { frequency: ObservableGauge; generation: ObservableGauge; load: ObservableGauge; sources: ObservableGauge } | undefined;
  private readonly observe = (r: BatchObservableResult): void => this.observeGauges(r);

  constructor(deps: GridStateDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'grid-state' });
    this.sources = [...deps.sources];
  }

  /** For parts built after the grid state (the composition root may add the meter fleet late). */
  addSource(source: GridSampleSource): void {
    this.sources.push(source);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { meter } = this.deps;
    this.gauges = {
      frequency: meter.createObservableGauge(METRICS.gridFrequency, { unit: METRIC_UNITS.gridFrequency, description: 'Grid frequency from the configured source' }),
      generation: meter.createObservableGauge(METRICS.gridTotalGeneration, { unit: METRIC_UNITS.gridTotalGeneration, description: 'Total generation (fresh generation points and battery discharge)' }),
      load: meter.createObservableGauge(METRICS.gridTotalLoad, { unit: METRIC_UNITS.gridTotalLoad, description: 'Total load (meters, load points and battery charge)' }),
      sources: meter.createObservableGauge(METRICS.gridSourcesContributing, { unit: METRIC_UNITS.gridSourcesContributing, description: 'Grid state inputs by kind: contributing or excluded' }),
    };
    meter.addBatchObservableCallback(this.observe, Object.values(this.gauges) as Observable[]);
    this.running = true;
    this.update();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.gauges) this.deps.meter.removeBatchObservableCallback(this.observe, Object.values(this.gauges) as Observable[]);
    this.gauges = undefined;
  }

  snapshot(): GridSnapshot | undefined {
    return this.latest;
  }

  status(): GridSnapshot | undefined {
    return this.latest;
  }

  /** Computes the state now (the timer calls this; tests call it directly). */
  update(): GridSnapshot {
    const { clock, config, site, tracer } = this.deps;
    const samples = this.collect();
    const c = computeGrid({
      samples, nowMs: clock.now(), staleAfterMs: config.stale_after_ms, nominalHz: site.nominal_frequency_hz,
      ...(config.frequency_source !== undefined ? { frequencySource: config.frequency_source } : {}),
      known: this.known,
      expectedRoles: this.expectedRoles(),
    });
    for (const s of samples) this.known.set(sampleKey(s), s.role);
    const snap: GridSnapshot = {
      at_ms: clock.now(),
      nominal_frequency_hz: site.nominal_frequency_hz,
      generation_mw: c.generationMw, load_mw: c.loadMw, imbalance_mw: c.imbalanceMw, imbalance_pct: c.imbalancePct,
      frequency_hz: c.frequencyHz, frequency_deviation_hz: c.frequencyDeviationHz, frequency_source: c.frequencySource,
      sources_contributing: c.contributing, sources_excluded: c.excluded.length, excluded: c.excluded,
    };
    this.latest = snap;

    const attributes: Attributes = {
      [SPAN_ATTRS.gridSourcesContributing]: snap.sources_contributing,
      [SPAN_ATTRS.gridSourcesExcluded]: snap.sources_excluded,
    };
    // Unknown values are left off the span rather than written as 0 (absent is better than wrong).
    const put = (key: string, v: number | null): void => { if (v !== null) attributes[key] = v; };
    put(SPAN_ATTRS.gridGenerationMw, snap.generation_mw);
    put(SPAN_ATTRS.gridLoadMw, snap.load_mw);
    put(SPAN_ATTRS.gridImbalanceMw, snap.imbalance_mw);
    put(SPAN_ATTRS.gridImbalancePct, snap.imbalance_pct);
    put(SPAN_ATTRS.gridFrequencyHz, snap.frequency_hz);
    put(SPAN_ATTRS.gridFrequencyDeviationHz, snap.frequency_deviation_hz);
    tracer.startSpan(SPANS.gridStateUpdate, { attributes }).end();
    return snap;
  }

  private expectedRoles(): Set<string> {
    const roles = new Set<string>();
    for (const src of this.sources) {
      try {
        for (const r of src.gridRoles?.() ?? []) roles.add(r);
      } catch { /* a broken source is logged by collect() */ }
    }
    return roles;
  }

  private collect(): GridSample[] {
    const out: GridSample[] = [];
    this.sources.forEach((src, i) => {
      try {
        out.push(...src.gridSamples());
        if (this.failingSources.delete(i)) this.logger.info({ source_index: i }, 'grid source readable again');
      } catch (err) {
        // A broken source is excluded, like a stale one; logged once per failure episode.
        if (!this.failingSources.has(i)) this.logger.warn({ err, source_index: i }, 'grid source failed; its samples are excluded');
        this.failingSources.add(i);
      }
    });
    return out;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimeout(() => {
      try {
        this.update();
      } catch (err) {
        this.logger.error({ err }, 'grid state update failed');
      }
      this.schedule();
    }, this.deps.config.update_interval_ms);
  }

  private observeGauges(r: BatchObservableResult): void {
    const s = this.latest;
    const g = this.gauges;
    if (!s || !g) return;
    // A state older than three intervals means the updates stopped: report nothing rather than old values.
    if (this.deps.clock.now() - s.at_ms > 3 * this.deps.config.update_interval_ms) return;
    if (s.frequency_hz !== null) r.observe(g.frequency, s.frequency_hz);
    if (s.generation_mw !== null) r.observe(g.generation, s.generation_mw);
    if (s.load_mw !== null) r.observe(g.load, s.load_mw);
    r.observe(g.sources, s.sources_contributing, { [METRIC_ATTRS.kind]: 'contributing' });
    r.observe(g.sources, s.sources_excluded, { [METRIC_ATTRS.kind]: 'excluded' });
  }
}
