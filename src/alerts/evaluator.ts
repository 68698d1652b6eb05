// Evaluates the alerts (the five of the design and the gateway's own) on the gateway itself,
// every `alerts.evaluate_interval_ms`, from the SDK's own aggregated metrics (a pull reader on the
// gateway's MeterProvider): edge boxes lose their uplink, and an operator on site still needs to
// see "stale meter data". Transitions (pending is silent; firing and resolved are logged once),
// `states()` for the status endpoint, and `ems.alert.firing{alert}` 0/1 so the central side sees
// what the edge decided.
import type { BatchObservableResult, Meter, ObservableGauge } from '@opentelemetry/api';
import type { AlertConfig, SiteInfo } from '../config/site-types.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { PullMetricReader } from '../telemetry/pull-reader.js';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import { gatewayTemporality } from '../telemetry/views.js';
import { ALERTS, type AlertDefinition, type AlertId } from './definitions.js';
import { IngestActivity, SnapshotHistory, increase, snapshotFrom } from './metric-window.js';

/**
 * A pull reader: register it with createTelemetry({ extraMetricReaders: [reader] }) before building
 * the evaluator (which also adds the cumulative producer the ems.meter.* metrics come from).
 */
export class AlertMetricReader extends PullMetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: gatewayTemporality });
  }
}

type AlertPhase = 'inactive' | 'pending' | 'firing';

interface AlertState {
  alert: AlertId;
  prometheus_name: string;
  /** '' for site-wide alerts; the MQTT client for per-client ones (AlertDefinition.label). */
  region: string;
  state: AlertPhase;
  value: number | null;
  threshold: number;
  unit: string;
  /** Epoch ms the current phase began. */
  since_ms: number;
}

export interface AlertOverview {
  name: AlertId;
  state: 'firing' | 'ok' | 'unknown';
  since_ms?: number;
  value: number | null;
  threshold: number;
  summary: string;
}

function formatValue(v: number | null, unit: string): string {
  if (v === null) return 'n/a';
  if (unit === 'ratio') return `${(v * 100).toFixed(2)} %`;
  return `${Number(v.toFixed(3))} ${unit}`;
}

interface AlertEvaluatorDeps {
  config: AlertConfig;
  site: SiteInfo;
  reader: AlertMetricReader;
  meter: Meter;
  clock: Clock;
  logger: Logger;
}

export class AlertEvaluator {
  readonly name = 'alert-evaluator';
  private readonly deps: AlertEvaluatorDeps;
  private readonly logger: Logger;
  private readonly history: SnapshotHistory;
  private readonly activity = new IngestActivity();
  private readonly instances = new Map<string, AlertState>();
  private startMs = 0;
  private timer: ClockTimer | undefined;
  private running = false;
  private evaluating: Promise<void> | undefined;
  private gauge: ObservableGauge | undefined;
  private readonly observe = (r: BatchObservableResult): void => this.observeFiring(r);

  constructor(deps: AlertEvaluatorDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'alerts' });
    this.history = new SnapshotHistory(Math.max(...ALERTS.map((a) => a.windowMs)));
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.startMs = this.deps.clock.now();
    this.gauge = this.deps.meter.createObservableGauge(METRICS.alertFiring, {
      unit: METRIC_UNITS.alertFiring, description: 'Alerts evaluated on the gateway: 1 firing, 0 not',
    });
    this.deps.meter.addBatchObservableCallback(this.observe, [this.gauge]);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.evaluating;
    if (this.gauge) this.deps.meter.removeBatchObservableCallback(this.observe, [this.gauge]);
    this.gauge = undefined;
  }

  /** Every alert instance seen (one per region for per-region alerts), for the status endpoint. */
  states(): AlertState[] {
    return [...this.instances.values()].map((s) => ({ ...s }));
  }

  /**
   * Always every alert, worst instance of each (firing first, then pending, then any with a
   * value): the status endpoint's `alerts` section (AlertStatus in src/status/status-model.ts).
   * `unknown` = nothing to judge yet (no data in the window).
   */
  overview(): AlertOverview[] {
    const rank = (s: AlertState): number => (s.state === 'firing' ? 3 : s.state === 'pending' ? 2 : s.value !== null ? 1 : 0);
    return ALERTS.map((def) => {
      const worst = [...this.instances.values()].filter((s) => s.alert === def.id).sort((a, b) => rank(b) - rank(a))[0];
      const threshold = def.threshold(this.deps.config);
      if (!worst || rank(worst) === 0) return { name: def.id, state: 'unknown', value: null, threshold, summary: `${def.prometheusName}: no data in the window` };
      const where = worst.region === '' ? '' : def.label === 'client' ? ` (${worst.region} client)` : ` in ${worst.region}`;
      return {
        name: def.id, state: worst.state === 'firing' ? 'firing' : 'ok', since_ms: worst.since_ms, value: worst.value, threshold,
        summary: `${def.prometheusName}${where}: ${formatValue(worst.value, def.unit)} (threshold ${formatValue(threshold, def.unit)})${worst.state === 'pending' ? ', pending' : ''}`,
      };
    });
  }

  status(): AlertOverview[] {
    return this.overview();
  }

  /** One evaluation now (the timer calls this; tests call it directly). Never rejects. */
  async evaluate(): Promise<void> {
    const now = this.deps.clock.now();
    try {
      const { resourceMetrics, errors } = await this.deps.reader.collect();
      if (errors.length > 0) this.logger.debug({ errors: errors.map(String) }, 'metric collection reported errors');
      const snap = snapshotFrom(resourceMetrics, now);
      this.activity.observe(snap.ingested, now);
      const ctx = { config: this.deps.config, silentForMs: this.activity.silentFor(now) };
      for (const def of ALERTS) {
        const window = increase(snap, this.history.baseline(now - def.windowMs, this.startMs));
        this.apply(def, def.values(window, this.deps.site, ctx), now);
      }
      this.history.push(snap);
    } catch (err) {
      this.logger.error({ err }, 'alert evaluation failed');
    }
  }

  private apply(def: AlertDefinition, values: Map<string, number | null>, now: number): void {
    const threshold = def.threshold(this.deps.config);
    // An instance with no data this round keeps nothing to judge: it resolves (value null).
    for (const s of this.instances.values()) if (s.alert === def.id && !values.has(s.region)) values.set(s.region, null);
    const labelKey = def.label ?? 'region';
    for (const [region, value] of values) {
      const key = `${def.id}/${region}`;
      const prev = this.instances.get(key);
      const breached = value !== null && def.breached(value, threshold);
      const base: AlertState = prev ?? {
        alert: def.id, prometheus_name: def.prometheusName, region, state: 'inactive', value, threshold, unit: def.unit, since_ms: now,
      };
      const next: AlertState = { ...base, value, threshold };
      if (!breached) {
        if (base.state === 'firing') {
          this.logger.info({ alert: def.id, [labelKey]: region, value, threshold, unit: def.unit, fired_for_ms: now - base.since_ms }, 'alert resolved');
        }
        if (base.state !== 'inactive') { next.state = 'inactive'; next.since_ms = now; }
      } else if (base.state === 'inactive') {
        next.state = def.forMs === 0 ? 'firing' : 'pending';
        next.since_ms = now;
      } else if (base.state === 'pending' && now - base.since_ms >= def.forMs) {
        next.state = 'firing';
        next.since_ms = now;
      }
      if (next.state === 'firing' && base.state !== 'firing') {
        this.logger.warn({ alert: def.id, prometheus_name: def.prometheusName, [labelKey]: region, value, threshold, unit: def.unit }, 'alert firing');
      }
      this.instances.set(key, next);
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.evaluating = this.evaluate().finally(() => {
        this.evaluating = undefined;
        this.schedule();
      });
    }, this.deps.config.evaluate_interval_ms);
  }

  private observeFiring(r: BatchObservableResult): void {
    if (!this.gauge) return;
    for (const def of ALERTS) {
      const firing = [...this.instances.values()].some((s) => s.alert === def.id && s.state === 'firing');
      r.observe(this.gauge, firing ? 1 : 0, { [METRIC_ATTRS.alert]: def.id });
    }
  }
}
