// Grid state with a manual clock: staleness, units, nominal frequency, signs, and the exported gauges and span.
import { afterEach, describe, expect, it } from 'vitest';
import { MeterProvider, MetricReader, type GaugeMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { GridConfig, SiteInfo } from '../../src/config/site-types.js';
import { join } from 'node:path';
import { DEFAULT_DEVICES_DIR } from '../../src/config/load.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DeviceConfig } from '../../src/config/site-types.js';
import { GridState } from '../../src/grid/grid-state.js';
import { DeviceSnapshot } from '../../src/modbus/snapshot.js';
import type { GridSample, GridSampleSource } from '../../src/grid/sources.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS, SPANS, SPAN_ATTRS } from '../../src/telemetry/semconv.js';
import { gatewayTemporality } from '../../src/telemetry/views.js';
import { ManualClock } from '../runtime/manual-clock.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { mqttConfig, TestTelemetry } from '../meters/harness.js';

class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

class FakeSource implements GridSampleSource {
  samples: GridSample[] = [];
  gridSamples(): GridSample[] { return this.samples; }
}

const config: GridConfig = { update_interval_ms: 5000, stale_after_ms: 10_000, frequency_source: 'grid-meter' };

function setup(site: Partial<SiteInfo> = {}, cfg: GridConfig = config) {
  const clock = new ManualClock();
  const source = new FakeSource();
  const reader = new PullReader({ aggregationTemporalitySelector: gatewayTemporality });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const grid = new GridState({
    config: cfg, site: { id: 's', region: 'r', nominal_frequency_hz: 50, ...site }, sources: [source],
    meter: meterProvider.getMeter('test'), tracer: tracerProvider.getTracer('test'), clock, logger: silentLogger(),
  });
  const sample = (source: string, point: string, role: GridSample['role'], value: number, unit: string, ageMs = 0): GridSample =>
    ({ source, point, role, value, unit, observedAtMs: clock.now() - ageMs });
  const gauges = async (): Promise<Record<string, number>> => {
    const { resourceMetrics } = await reader.collect();
    const out: Record<string, number> = {};
    for (const m of resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)) {
      const p = (m as GaugeMetricData).dataPoints.find((d) => Object.keys(d.attributes).length === 0);
      if (p) out[m.descriptor.name] = p.value;
    }
    return out;
  };
  return { clock, source, grid, spans, sample, gauges, shutdown: async () => { await grid.stop(); await meterProvider.shutdown(); await tracerProvider.shutdown(); } };
}

describe('GridState', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => { await stop?.(); stop = undefined; });

  it('converts W, kW and MW explicitly and sums generation and load', async () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [
      t.sample('pv-1', 'ac_power', 'generation', 1_500_000, 'W'),
      t.sample('pv-2', 'ac_power', 'generation', 500, 'kW'),
      t.sample('meters:north', 'power', 'load', 1.25, 'MW'),
      t.sample('feeder-1', 'load_power', 'load', 750_000, 'W'),
      t.sample('grid-meter', 'import', 'grid_import', 3, 'MW'),
    ];
    const s = t.grid.update();
    expect(s.generation_mw).toBeCloseTo(2.0, 9);
    expect(s.load_mw).toBeCloseTo(2.0, 9);
    expect(s.imbalance_mw).toBeCloseTo(0, 9);
    expect(s.sources_contributing).toBe(4);
  });

  it('battery discharge is generation, charge is load; imbalance is generation minus load', () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('pv', 'p', 'generation', 3, 'MW'), t.sample('load', 'p', 'load', 1, 'MW'), t.sample('bms', 'p', 'battery_power', 1000, 'kW')];
    let s = t.grid.update();
    expect([s.generation_mw, s.load_mw, s.imbalance_mw, s.imbalance_pct]).toEqual([4, 1, 3, 300]);
    t.source.samples = [t.sample('pv', 'p', 'generation', 1, 'MW'), t.sample('load', 'p', 'load', 2, 'MW'), t.sample('bms', 'p', 'battery_power', -2000, 'kW')];
    s = t.grid.update();
    expect([s.generation_mw, s.load_mw, s.imbalance_mw, s.imbalance_pct]).toEqual([1, 4, -3, -75]);
  });

  it('excludes stale and missing sources and counts them', () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 2, 'MW'), t.sample('pv-2', 'p', 'generation', 1, 'MW', 10_001), t.sample('pv-3', 'p', 'generation', 5, 'MW')];
    let s = t.grid.update();
    expect(s.generation_mw).toBe(7);
    expect(s.excluded).toEqual([{ source: 'pv-2', point: 'p', reason: 'stale' }]);
    // pv-3 disappears (its poller marked it absent): counted as missing, not carried over.
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 2, 'MW'), t.sample('pv-2', 'p', 'generation', 1, 'MW', 20_000)];
    s = t.grid.update();
    expect(s.generation_mw).toBe(2);
    expect(s.sources_contributing).toBe(1);
    expect(s.excluded.map((e) => `${e.source}:${e.reason}`).sort()).toEqual(['pv-2:stale', 'pv-3:missing']);
  });

  it('a value becomes stale as the clock moves, and a total with no fresh source is absent, not 0', async () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 2, 'MW'), t.sample('grid-meter', 'f', 'frequency', 50.02, 'Hz')];
    await t.grid.start();
    expect(await t.gauges()).toMatchObject({ [METRICS.gridTotalGeneration]: 2, [METRICS.gridFrequency]: 50.02 });
    t.clock.advance(10_000);   // two updates later the samples are exactly 10 s old: still fresh
    expect(t.grid.snapshot()?.generation_mw).toBe(2);
    t.clock.advance(5_000);    // 15 s old: stale
    const s = t.grid.snapshot();
    expect(s?.generation_mw).toBeNull();
    expect(s?.frequency_hz).toBeNull();
    expect(s?.sources_excluded).toBe(2);
    const g = await t.gauges();
    expect(g[METRICS.gridTotalGeneration]).toBeUndefined();
    expect(g[METRICS.gridFrequency]).toBeUndefined();
    expect(g[METRICS.gridTotalLoad]).toBe(0);  // the site has no load source at all: 0 is the truth
  });

  it('generation is absent, not 0, before the only generator was read and while it is down', async () => {
    const t = setup(); stop = t.shutdown;
    const profile = await loadProfile(join(DEFAULT_DEVICES_DIR, 'sunspec-inverter-3ph.yaml'));
    const snapshot = new DeviceSnapshot();
    snapshot.register({ id: 'pv-1' } as DeviceConfig, profile);
    t.grid.addSource(snapshot);
    await t.grid.start();                       // nothing read yet
    expect(t.grid.snapshot()?.generation_mw).toBeNull();
    expect((await t.gauges())[METRICS.gridTotalGeneration]).toBeUndefined();
    snapshot.set('pv-1', 'ac_power', 2_000_000, t.clock.now());
    expect(t.grid.update().generation_mw).toBe(2);
    expect((await t.gauges())[METRICS.gridTotalGeneration]).toBe(2);
    snapshot.clear('pv-1');                     // the device went down
    expect(t.grid.update().generation_mw).toBeNull();
    expect((await t.gauges())[METRICS.gridTotalGeneration]).toBeUndefined();
  });

  it('load is absent, not 0, before the meter fleet has a fresh reading (no false full-generation imbalance)', async () => {
    const t = setup(); stop = t.shutdown;
    const tel = new TestTelemetry();
    // Never started: no reading yet, as in the first seconds after start or a broker outage from the start.
    const ingest = new MeterIngest({
      mqtt: mqttConfig('mqtt://127.0.0.1:1'), clock: t.clock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
    });
    t.grid.addSource(ingest);
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 5, 'MW')];
    await t.grid.start();
    const s = t.grid.snapshot();
    expect([s?.generation_mw, s?.load_mw, s?.imbalance_mw, s?.imbalance_pct]).toEqual([5, null, null, null]);
    const g = await t.gauges();
    expect(g[METRICS.gridTotalGeneration]).toBe(5);
    expect(g[METRICS.gridTotalLoad]).toBeUndefined();
    await tel.shutdown();
  });

  it('load is absent, not 0, once every meter region seen before has gone (all stale, e.g. a broker outage)', () => {
    const t = setup(); stop = t.shutdown;   // a source that declares no roles: the kind is learnt from what was seen
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 5, 'MW'), t.sample('meters:north', 'power', 'load', 2_000_000, 'W')];
    expect(t.grid.update()).toMatchObject({ generation_mw: 5, load_mw: 2, imbalance_mw: 3 });
    t.source.samples = [t.sample('pv-1', 'p', 'generation', 5, 'MW')];   // the power table drops stale regions
    const s = t.grid.update();
    expect(s.excluded).toEqual([{ source: 'meters:north', point: 'power', reason: 'missing' }]);
    expect([s.generation_mw, s.load_mw, s.imbalance_mw, s.imbalance_pct]).toEqual([5, null, null, null]);
  });

  it.each([50, 60] as const)('deviation is measured from the %i Hz nominal', (nominal) => {
    const t = setup({ nominal_frequency_hz: nominal }); stop = t.shutdown;
    t.source.samples = [t.sample('grid-meter', 'f', 'frequency', nominal - 0.6, 'Hz')];
    const s = t.grid.update();
    expect(s.frequency_hz).toBe(nominal - 0.6);
    expect(s.frequency_deviation_hz).toBeCloseTo(-0.6, 9);
  });

  it('prefers the configured frequency source, falls back to the freshest one', () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('inv-1', 'f', 'frequency', 50.2, 'Hz'), t.sample('grid-meter', 'f', 'frequency', 49990, 'mHz', 2000)];
    expect(t.grid.update()).toMatchObject({ frequency_hz: 49.99, frequency_source: 'grid-meter' });
    t.source.samples = [t.sample('inv-1', 'f', 'frequency', 50.2, 'Hz', 3000), t.sample('inv-2', 'f', 'frequency', 50.1, 'Hz', 1000), t.sample('grid-meter', 'f', 'frequency', 49.9, 'Hz', 60_000)];
    expect(t.grid.update()).toMatchObject({ frequency_hz: 50.1, frequency_source: 'inv-2' });
  });

  it('rejects a unit it cannot convert instead of guessing', () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('pv', 'p', 'generation', 5, 'kVA'), t.sample('pv2', 'p', 'generation', Number.NaN, 'kW')];
    const s = t.grid.update();
    expect(s.generation_mw).toBeNull();
    expect(s.excluded.map((e) => e.reason).sort()).toEqual(['bad_unit', 'not_finite']);
  });

  it('emits one ems.grid.state_update span per update with the seed attributes', async () => {
    const t = setup(); stop = t.shutdown;
    t.source.samples = [t.sample('pv', 'p', 'generation', 2, 'MW'), t.sample('m', 'p', 'load', 1, 'MW'), t.sample('grid-meter', 'f', 'frequency', 60.1, 'Hz')];
    await t.grid.start();
    t.clock.advance(10_000);
    const spans = t.spans.getFinishedSpans();
    expect(spans).toHaveLength(3);
    expect(spans.every((s) => s.name === SPANS.gridStateUpdate)).toBe(true);
    expect(spans[0]?.attributes).toMatchObject({
      [SPAN_ATTRS.gridGenerationMw]: 2, [SPAN_ATTRS.gridLoadMw]: 1, [SPAN_ATTRS.gridImbalanceMw]: 1, [SPAN_ATTRS.gridImbalancePct]: 100,
      [SPAN_ATTRS.gridFrequencyHz]: 60.1, [SPAN_ATTRS.gridSourcesContributing]: 3, [SPAN_ATTRS.gridSourcesExcluded]: 0,
    });
    expect(spans[0]?.attributes[SPAN_ATTRS.gridFrequencyDeviationHz]).toBeCloseTo(10.1, 6); // nominal 50 from setup()
  });

  it('a throwing source is excluded without stopping the updates', () => {
    const t = setup(); stop = t.shutdown;
    t.grid.addSource({ gridSamples: () => { throw new Error('boom'); } });
    t.source.samples = [t.sample('pv', 'p', 'generation', 2, 'MW')];
    expect(t.grid.update().generation_mw).toBe(2);
  });
});
