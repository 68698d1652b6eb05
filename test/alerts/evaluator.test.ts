// The local alert evaluator against a real MeterProvider (the SDK's own aggregation), a manual
// clock, and a pino logger whose lines are counted.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { AlertConfig, SiteInfo } from '../../src/config/site-types.js';
import { AlertEvaluator, AlertMetricReader } from '../../src/alerts/evaluator.js';
import { ALERTS } from '../../src/alerts/definitions.js';
import { IngestActivity } from '../../src/alerts/metric-window.js';
import { METRICS, METRIC_UNITS } from '../../src/telemetry/semconv.js';
import { gatewayViews } from '../../src/telemetry/views.js';
import { ManualClock } from '../runtime/manual-clock.js';

const alertsConfig: AlertConfig = {
  evaluate_interval_ms: 1e9,   // evaluations are driven by the test
  stale_meter_data_age_ms: 900_000, drop_ratio: 0.001, dr_ack_rate_min: 0.9, frequency_deviation_hz: 0.5, ingestion_latency_p99_ms: 5000,
};
const MIN = 60_000;

function setup(site: Partial<SiteInfo> = {}, config: Partial<AlertConfig> = {}) {
  const clock = new ManualClock();
  const lines: Array<{ msg: string; alert?: string; region?: string }> = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string }); cb(); } });
  const reader = new AlertMetricReader();
  const provider = new MeterProvider({ views: gatewayViews(2000), readers: [reader] });
  const meter = provider.getMeter('test');
  let frequency: number | undefined;
  meter.createObservableGauge(METRICS.gridFrequency, { unit: METRIC_UNITS.gridFrequency })
    .addCallback((r) => { if (frequency !== undefined) r.observe(frequency); });
  const ev = new AlertEvaluator({
    config: { ...alertsConfig, ...config }, site: { id: 's', region: 'north', nominal_frequency_hz: 50, ...site }, reader, meter, clock,
    logger: pino({ level: 'info' }, sink),
  });
  return {
    clock, ev, lines, meter,
    ingested: meter.createCounter(METRICS.meterReadingsIngested),
    dropped: meter.createCounter(METRICS.meterReadingsDropped),
    latency: meter.createHistogram(METRICS.meterIngestionLatency, { unit: 'ms' }),
    dataAge: meter.createHistogram(METRICS.meterDataAge, { unit: 's' }),
    dr: meter.createCounter(METRICS.drControllerCommands),
    sessionLost: meter.createCounter(METRICS.mqttSessionLost, { unit: METRIC_UNITS.mqttSessionLost }),
    setFrequency: (hz: number | undefined) => { frequency = hz; },
    state: (alert: string, region = '') => ev.states().find((s) => s.alert === alert && s.region === region),
    firingGauge: async (): Promise<Record<string, number>> => {
      const { resourceMetrics } = await reader.collect();
      const m = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === METRICS.alertFiring);
      const out: Record<string, number> = {};
      for (const p of m?.dataPoints ?? []) out[String(p.attributes['alert'])] = p.value as number;
      return out;
    },
    stop: async () => { await ev.stop(); await provider.shutdown(); },
  };
}

describe('AlertEvaluator', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => { await stop?.(); stop = undefined; });

  it('ingestion drops: pending, firing after 5 min, resolved when drops stop; logged once each', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    for (let minute = 0; minute <= 6; minute++) {
      t.ingested.add(1000, { region: 'north' });
      t.dropped.add(2, { region: 'north', error_type: 'invalid_payload' });
      t.ingested.add(1001, { region: 'south' });
      t.dropped.add(1, { region: 'south', error_type: 'duplicate' });
      await t.ev.evaluate();
      expect(t.state('ingestion_drops', 'north')?.state).toBe(minute < 5 ? 'pending' : 'firing');
      expect(t.state('ingestion_drops', 'south')?.state).toBe('inactive');   // 1/1002 < 0.1 %
      t.clock.advance(MIN);
    }
    expect(t.state('ingestion_drops', 'north')?.value).toBeCloseTo(2 / 1002, 6);
    expect((await t.firingGauge())['ingestion_drops']).toBe(1);
    expect((await t.firingGauge())['slow_ingestion']).toBe(0);
    // Drops stop: once the 5-minute window no longer holds any, the alert resolves.
    for (let minute = 0; minute <= 6; minute++) {
      t.ingested.add(1000, { region: 'north' });
      await t.ev.evaluate();
      t.clock.advance(MIN);
    }
    expect(t.state('ingestion_drops', 'north')?.state).toBe('inactive');
    const transitions = t.lines.filter((l) => l.alert === 'ingestion_drops');
    expect(transitions.map((l) => l.msg)).toEqual(['alert firing', 'alert resolved']);
  });

  it('slow ingestion: P99 above 5000 ms fires, exactly at 5000 ms does not (5000 is a bucket edge)', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    for (let minute = 0; minute <= 5; minute++) {
      for (let i = 0; i < 98; i++) t.latency.record(100, { region: 'north' });
      for (let i = 0; i < 2; i++) t.latency.record(7000, { region: 'north' });
      for (let i = 0; i < 99; i++) t.latency.record(4000, { region: 'south' });   // bucket (2500, 5000]
      t.latency.record(7000, { region: 'south' });
      await t.ev.evaluate();
      t.clock.advance(MIN);
    }
    expect(t.state('slow_ingestion', 'north')).toMatchObject({ state: 'firing', value: 7500 });
    expect(t.state('slow_ingestion', 'south')).toMatchObject({ state: 'inactive', value: 5000 });
  });

  it('stale meter data: P99 data age above 900 s; a window without readings has nothing to judge', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    for (let minute = 0; minute <= 5; minute++) {
      for (let i = 0; i < 97; i++) t.dataAge.record(2, { region: 'north' });
      for (let i = 0; i < 3; i++) t.dataAge.record(1200, { region: 'north' });
      await t.ev.evaluate();
      expect(t.state('stale_meter_data', 'north')?.state).toBe(minute < 5 ? 'pending' : 'firing');
      t.clock.advance(MIN);
    }
    expect(t.state('stale_meter_data', 'north')?.value).toBeGreaterThan(900);
    t.clock.advance(5 * MIN);
    await t.ev.evaluate();
    expect(t.state('stale_meter_data', 'north')).toMatchObject({ state: 'inactive', value: null });
  });

  it('stale meter data: a region that goes silent fires after the threshold (+ for); a fresh neighbour does not', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    const fresh = (region: string): void => {
      t.ingested.add(100, { region });
      for (let i = 0; i < 100; i++) t.dataAge.record(2, { region });
    };
    // Minutes 0..2 both regions report; then north's head-end goes down, south keeps reporting.
    for (let minute = 0; minute <= 2; minute++) { fresh('north'); fresh('south'); await t.ev.evaluate(); t.clock.advance(MIN); }
    // north last moved at minute 2. Minutes 3..17: silent for at most 15 min -> not stale yet.
    for (let minute = 3; minute <= 17; minute++) {
      fresh('south');
      await t.ev.evaluate();
      expect(t.state('stale_meter_data', 'north')?.state, `minute ${minute}`).toBe('inactive');
      t.clock.advance(MIN);
    }
    // The 5-minute histogram window emptied long ago: the old behaviour had nothing to judge here.
    expect(t.state('stale_meter_data', 'north')?.value).toBeNull();
    // Minute 18: silent for 16 min > 15 min -> pending; firing once that held for 5 min.
    for (let minute = 18; minute <= 23; minute++) {
      fresh('south');
      await t.ev.evaluate();
      expect(t.state('stale_meter_data', 'north')?.state, `minute ${minute}`).toBe(minute < 23 ? 'pending' : 'firing');
      expect(t.state('stale_meter_data', 'north')?.value).toBe((minute - 2) * 60);
      expect(t.state('stale_meter_data', 'south')).toMatchObject({ state: 'inactive', value: 4.96 });   // P99 inside (1, 5] s
      t.clock.advance(MIN);
    }
    expect((await t.firingGauge())['stale_meter_data']).toBe(1);
    expect(t.ev.overview().find((o) => o.name === 'stale_meter_data')).toMatchObject({ state: 'firing', value: 21 * 60 });   // at the last evaluation
    // north's meters come back with fresh data: resolved at once.
    fresh('north'); fresh('south');
    await t.ev.evaluate();
    expect(t.state('stale_meter_data', 'north')).toMatchObject({ state: 'inactive', value: 4.96 });
    const transitions = t.lines.filter((l) => l.alert === 'stale_meter_data');
    expect(transitions.map((l) => [l.msg, l.region])).toEqual([['alert firing', 'north'], ['alert resolved', 'north']]);
  });

  it('stale meter data by silence uses the configured age; dropped-only readings are not fresh data', async () => {
    const t = setup({}, { stale_meter_data_age_ms: 30 * MIN }); stop = t.stop;
    await t.ev.start();
    t.ingested.add(10, { region: 'north' });
    await t.ev.evaluate();
    for (let minute = 1; minute <= 36; minute++) {
      t.clock.advance(MIN);
      t.dropped.add(5, { region: 'north', error_type: 'invalid_payload' });   // messages arrive, none ingested
      await t.ev.evaluate();
      const expected = minute <= 30 ? 'inactive' : minute < 36 ? 'pending' : 'firing';
      // No instance at all until there is something to judge: not firing either way.
      expect(t.state('stale_meter_data', 'north')?.state ?? 'inactive', `minute ${minute}`).toBe(expected);
    }
    expect(t.state('stale_meter_data', 'north')).toMatchObject({ value: 36 * 60, threshold: 1800 });
  });

  it('stale meter data: a gateway restart alone never reads as silence', async () => {
    // Before the restart north reported; the restarted process has not heard from it yet (its
    // counter does not exist) and south reports from scratch: nothing to judge, nothing fires.
    const before = setup();
    await before.ev.start();
    before.ingested.add(100, { region: 'north' });
    await before.ev.evaluate();
    await before.stop();
    const t = setup(); stop = t.stop;
    await t.ev.start();
    for (let minute = 0; minute <= 40; minute++) {
      t.ingested.add(100, { region: 'south' });
      for (let i = 0; i < 10; i++) t.dataAge.record(3, { region: 'south' });
      await t.ev.evaluate();
      t.clock.advance(MIN);
    }
    expect(t.state('stale_meter_data', 'north')).toBeUndefined();
    expect(t.state('stale_meter_data', 'south')).toMatchObject({ state: 'inactive', value: 4.96 });
    expect(t.lines.filter((l) => l.alert === 'stale_meter_data')).toEqual([]);
  });

  it('DR ack rate below 90 % fires at once; dry runs do not count', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    t.dr.add(9, { outcome: 'acknowledged', zone: 'z1' });
    t.dr.add(1, { outcome: 'unreachable', zone: 'z1' });
    t.dr.add(50, { outcome: 'dry_run', zone: 'z1' });
    await t.ev.evaluate();
    expect(t.state('dr_not_acknowledged')).toMatchObject({ state: 'inactive', value: 0.9 });
    t.clock.advance(MIN);
    t.dr.add(2, { outcome: 'not_acknowledged', zone: 'z1' });
    await t.ev.evaluate();
    expect(t.state('dr_not_acknowledged')).toMatchObject({ state: 'firing' });
    expect(t.state('dr_not_acknowledged')?.value).toBeCloseTo(9 / 12, 6);
    const overview = t.ev.overview();
    expect(overview.map((o) => o.name)).toEqual(ALERTS.map((a) => a.id));
    expect(overview.find((o) => o.name === 'dr_not_acknowledged')).toMatchObject({ state: 'firing', summary: 'EmsDemandResponseNotAcknowledged: 75.00 % (threshold 90.00 %)' });
    expect(overview.find((o) => o.name === 'slow_ingestion')?.state).toBe('unknown');
    // 15 minutes without commands: nothing left in the window to judge -> resolved.
    t.clock.advance(16 * MIN);
    await t.ev.evaluate();
    expect(t.state('dr_not_acknowledged')).toMatchObject({ state: 'inactive', value: null });
  });

  it('broker session lost: fires at once for the client that lost it, for 15 min; logged once each way', async () => {
    const t = setup(); stop = t.stop;
    await t.ev.start();
    // The MQTT clients export their counters at 0 from the start.
    t.sessionLost.add(0, { client: 'meters' });
    t.sessionLost.add(0, { client: 'dr' });
    await t.ev.evaluate();
    expect(t.state('broker_session_lost', 'meters')).toMatchObject({ state: 'inactive', value: 0 });
    expect(t.ev.overview().find((o) => o.name === 'broker_session_lost')?.state).toBe('ok');
    t.clock.advance(MIN);
    t.sessionLost.add(1, { client: 'meters' });
    await t.ev.evaluate();
    expect(t.state('broker_session_lost', 'meters')).toMatchObject({ state: 'firing', value: 1 });
    expect(t.state('broker_session_lost', 'dr')).toMatchObject({ state: 'inactive', value: 0 });
    expect(t.ev.overview().find((o) => o.name === 'broker_session_lost')).toMatchObject({
      state: 'firing', summary: 'EmsBrokerSessionLost (meters client): 1 sessions (threshold 0 sessions)',
    });
    expect((await t.firingGauge())['broker_session_lost']).toBe(1);
    for (let minute = 0; minute < 14; minute++) {
      t.clock.advance(MIN);
      await t.ev.evaluate();
      expect(t.state('broker_session_lost', 'meters')?.state, `minute ${minute + 2}`).toBe('firing');
    }
    t.clock.advance(2 * MIN);
    await t.ev.evaluate();
    expect(t.state('broker_session_lost', 'meters')).toMatchObject({ state: 'inactive', value: 0 });
    const logged = t.lines.filter((l) => l.alert === 'broker_session_lost').map((l) => [l.msg, (l as { client?: string }).client]);
    expect(logged).toEqual([['alert firing', 'meters'], ['alert resolved', 'meters']]);
  });

  it('delivery backlog: a sink whose oldest pending reading is older than the threshold fires after 5 min; a keeping-up sink does not', async () => {
    const t = setup({}, { delivery_backlog_age_ms: 3_600_000 }); stop = t.stop;
    const ages: Record<string, number> = { postgres: 3000, otlp_logs: 1 };
    t.meter.createObservableGauge(METRICS.deliveryOldestAge, { unit: METRIC_UNITS.deliveryOldestAge })
      .addCallback((r) => { for (const [sink, age] of Object.entries(ages)) r.observe(age, { sink }); });
    await t.ev.start();
    const seen: string[] = [];
    for (let minute = 0; minute <= 20; minute++) {
      ages['postgres'] = 3000 + minute * 60;
      await t.ev.evaluate();
      seen.push(t.state('delivery_backlog', 'postgres')?.state ?? 'none');
      expect(t.state('delivery_backlog', 'otlp_logs')?.state).toBe('inactive');
      t.clock.advance(MIN);
    }
    // Above 3600 s from minute 11; firing 5 minutes later.
    expect(seen.indexOf('pending')).toBe(11);
    expect(seen.indexOf('firing')).toBe(16);
    expect(t.ev.overview().find((o) => o.name === 'delivery_backlog')).toMatchObject({ state: 'firing', summary: 'EmsDeliveryBacklog in postgres: 4200 s (threshold 3600 s)' });
    ages['postgres'] = 0;
    await t.ev.evaluate();
    expect(t.state('delivery_backlog', 'postgres')?.state).toBe('inactive');
    expect(t.lines.filter((l) => l.alert === 'delivery_backlog').map((l) => l.msg)).toEqual(['alert firing', 'alert resolved']);
  });

  it.each([[50, 49.3, 'firing'], [50, 50.4, 'inactive'], [60, 59.4, 'firing'], [60, 60.2, 'inactive']] as const)(
    'frequency excursion: nominal %i Hz, measured %f Hz -> %s after 30 s', async (nominal, hz, expected) => {
      const t = setup({ nominal_frequency_hz: nominal }); stop = t.stop;
      await t.ev.start();
      t.setFrequency(hz);
      await t.ev.evaluate();
      t.clock.advance(30_000);
      await t.ev.evaluate();
      expect(t.state('frequency_excursion')?.state).toBe(expected);
      expect(t.state('frequency_excursion')?.value).toBeCloseTo(Math.abs(hz - nominal), 9);
      // The gauge stops being observed (grid data stale): nothing to judge, so not firing.
      t.setFrequency(undefined);
      await t.ev.evaluate();
      expect(t.state('frequency_excursion')).toMatchObject({ state: 'inactive', value: null });
    });

  it('runs on its own timer and stops cleanly', async () => {
    const t = setup(); stop = t.stop;
    const { systemClock } = await import('../../src/runtime/clock.js');
    const reader = new AlertMetricReader();
    const provider = new MeterProvider({ readers: [reader] });
    const ev = new AlertEvaluator({ config: { ...alertsConfig, evaluate_interval_ms: 20 }, site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, reader, meter: provider.getMeter('t'), clock: systemClock, logger: pino({ level: 'silent' }) });
    provider.getMeter('t').createCounter(METRICS.drControllerCommands).add(1, { outcome: 'unreachable' });
    await ev.start();
    const deadline = Date.now() + 5000;
    while (ev.states().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await ev.stop();
    await provider.shutdown();
    expect(ev.states().find((s) => s.alert === 'dr_not_acknowledged')?.state).toBe('firing');
  });
});

describe('IngestActivity', () => {
  it('tracks when each region last moved: first sighting and any change (a reset too) count; zero counts are not "seen"', () => {
    const a = new IngestActivity();
    a.observe(new Map([['north', 5], ['south', 0]]), 1000);
    a.observe(new Map([['north', 5], ['south', 0]]), 61_000);
    expect([...a.silentFor(91_000)]).toEqual([['north', 90_000]]);
    a.observe(new Map([['north', 2]]), 100_000);   // went down: a reset, i.e. readings since
    expect(a.silentFor(100_000).get('north')).toBe(0);
  });
});
