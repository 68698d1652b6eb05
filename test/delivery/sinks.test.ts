// The three sinks against real stores started here on free loopback ports: PostgreSQL, InfluxDB
// 1.x and VictoriaMetrics (both through the influx sink's line protocol) and an OTLP receiver that
// decodes the log records with the official protos. Each receives the exact values of a seeded
// fleet run and is queried back; a poison reading is found by bisection and dropped alone; a
// PostgreSQL restart mid-stream loses and duplicates nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sinkBalance } from '../../src/delivery/totals.js';
import type { DeliveryService } from '../../src/delivery/delivery-service.js';
import { PostgresSink } from '../../src/delivery/sinks/postgres.js';
import type { ValidReading } from '../../src/meters/types.js';
import { startInfluxdb, startPostgres, startVictoriaMetrics, type InfluxPeer, type PostgresPeer, type VictoriaPeer } from '../../bench/lib/store-peers.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { hasPeer } from '../peers.js';
import { deliverySite, newDelivery, seededReadings, waitFor } from './fixture.js';

const havePeers = hasPeer('postgres') && hasPeer('influxd') && hasPeer('victoria-metrics');

async function drained(service: DeliveryService, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => (service.status()?.sinks ?? []).every((s) => s.pending === 0), timeoutMs, () => JSON.stringify(service.status()?.sinks));
}

function expectBalanced(service: DeliveryService): void {
  const spool = service.spoolForTests;
  for (const s of service.status()?.sinks ?? []) {
    const t = spool?.sinkTotals(s.name);
    expect(t, s.name).toBeDefined();
    expect(sinkBalance(t!, s.pending), `${s.name}: ingested = delivered + rejected + pending + evicted`).toBe(0);
  }
}

describe.skipIf(!havePeers)('delivery sinks against real stores', () => {
  let pgPeer: PostgresPeer;
  let influx: InfluxPeer;
  let vm: VictoriaPeer;
  let otlp: OtlpReceiver;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    [pgPeer, influx, vm, otlp] = await Promise.all([startPostgres({ fsync: false }), startInfluxdb(), startVictoriaMetrics(), OtlpReceiver.start()]);
    await influx.createDatabase('ems');
  }, 90_000);
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await Promise.all([pgPeer?.stop(), influx?.stop(), vm?.stop(), otlp?.stop()]);
  }, 60_000);

  async function service(sinks: string, spool = ''): Promise<DeliveryService> {
    const { site, cleanup } = await deliverySite(sinks, spool);
    const { service: s, meterProvider } = newDelivery(site);
    await s.start();
    cleanups.push(async () => { await s.stop(); await meterProvider.shutdown(); cleanup(); });
    return s;
  }

  async function feed(s: DeliveryService, readings: ValidReading[], batch = 500): Promise<void> {
    for (let i = 0; i < readings.length; i += batch) await s.write(readings.slice(i, i + batch));
  }

  it('PostgreSQL, VictoriaMetrics, InfluxDB 1.x and OTLP logs receive the exact values of a seeded fleet run', async () => {
    const readings = seededReadings(3000, 7);
    const common = 'retry_min: 50ms\n    retry_max: 500ms\n    batch_max_wait: 20ms\n    max_rate: 0';
    const a = await service([
      `postgres: { url: "${pgPeer.url}", table: fleet_readings, retry_min: 50ms, retry_max: 500ms, batch_max_wait: 20ms, max_rate: 0 }`,
      `influx: { url: "${vm.url}", database: ems, retry_min: 50ms, retry_max: 500ms, batch_max_wait: 20ms, max_rate: 0 }`,
      `otlp_logs: { endpoint: "${otlp.url}/v1/logs", retry_min: 50ms, retry_max: 500ms, batch_max_wait: 20ms, max_rate: 0, batch_max_size: 1000 }`,
    ].join('\n'));
    const b = await service(`influx:\n  url: ${influx.url}\n  database: ems\n  ${common.replace(/\n {4}/g, '\n  ')}`);
    await Promise.all([feed(a, readings), feed(b, readings)]);
    await Promise.all([drained(a), drained(b)]);
    const byKey = new Map(readings.map((r) => [`${r.meter_id}@${r.timestamp_ms}`, r]));
    expect(byKey.size).toBe(3000);

    const rows = await pgPeer.query<{ meter_id: string; t: string; region: string; site: string; kwh: number; voltage: number; current: number; power_factor: number; power_w: number }>(
      "SELECT meter_id, (extract(epoch from ts) * 1000)::bigint AS t, region, site, kwh, voltage, current, power_factor, power_w FROM fleet_readings");
    expect(rows).toHaveLength(3000);
    for (const row of rows) {
      const r = byKey.get(`${row.meter_id}@${row.t}`);
      expect(r, row.meter_id).toBeDefined();
      expect([row.region, row.site, row.kwh, row.voltage, row.current, row.power_factor, row.power_w]).toEqual([r!.region, 'site-d', r!.kwh, r!.voltage, r!.current, r!.power_factor, r!.power_w]);
    }

    const series = await vm.exportSeries('{__name__=~"meter_reading_.*"}');
    const vmValues = new Map<string, number>();
    for (const s of series) {
      s.timestamps.forEach((t, i) => vmValues.set(`${s.metric['__name__']}|${s.metric['meter_id']}@${t}`, s.values[i]!));
      expect(s.metric['site']).toBe('site-d');
    }
    expect(vmValues.size).toBe(3000 * 5);
    for (const r of readings) {
      // VictoriaMetrics keeps about 15 significant decimal digits (its storage converts floats to
      // decimal mantissa and exponent): 0.94 comes back as 0.9400000000000001.
      expect(vmValues.get(`meter_reading_kwh|${r.meter_id}@${r.timestamp_ms}`)).toBeCloseTo(r.kwh, 9);
      expect(vmValues.get(`meter_reading_power_factor|${r.meter_id}@${r.timestamp_ms}`)).toBeCloseTo(r.power_factor, 12);
    }

    const points = await influx.select('SELECT * FROM meter_reading', 'ems');
    expect(points).toHaveLength(3000);
    for (const p of points) {
      const r = byKey.get(`${String(p['meter_id'])}@${Number(p['time'])}`);
      expect(r).toBeDefined();
      expect([p['kwh'], p['voltage'], p['current'], p['power_factor'], p['region']]).toEqual([r!.kwh, r!.voltage, r!.current, r!.power_factor, r!.region]);
    }

    const logs = otlp.logs().filter((l) => l.eventName === 'ems.meter.reading');
    expect(logs).toHaveLength(3000);
    for (const l of logs) {
      const r = byKey.get(`${String(l.attributes['ems.meter_id'])}@${l.timeMs}`);
      expect(r).toBeDefined();
      expect([l.attributes['ems.region'], l.attributes['ems.kwh'], l.attributes['ems.voltage'], l.attributes['ems.current'], l.attributes['ems.power_factor']])
        .toEqual([r!.region, r!.kwh, r!.voltage, r!.current, r!.power_factor]);
      expect(l.observedMs).toBeGreaterThanOrEqual(l.timeMs);
    }
    expectBalanced(a);
    expectBalanced(b);
    expect(a.status()?.sinks.map((s) => s.delivered_total)).toEqual([3000, 3000, 3000]);
  }, 120_000);

  it('influx api v2 (token, org, bucket) to VictoriaMetrics, which takes /api/v2/write: the exact values come back', async () => {
    const readings = seededReadings(500, 21);
    const s = await service(`influx: { url: "${vm.url}", api: v2, org: ems, bucket: readings, token: "vm-ignores-it", measurement: v2_reading, batch_max_wait: 20ms, max_rate: 0 }`);
    await feed(s, readings);
    await drained(s);
    const series = await vm.exportSeries('{__name__=~"v2_reading_.*"}');
    const got = new Map<string, number>();
    for (const x of series) x.timestamps.forEach((t, i) => got.set(`${x.metric['__name__']}|${x.metric['meter_id']}@${t}`, x.values[i]!));
    expect(got.size).toBe(500 * 5);
    for (const r of readings) {
      expect(got.get(`v2_reading_kwh|${r.meter_id}@${r.timestamp_ms}`)).toBeCloseTo(r.kwh, 9);
      expect(got.get(`v2_reading_voltage|${r.meter_id}@${r.timestamp_ms}`)).toBeCloseTo(r.voltage, 9);
    }
    expect(s.status()?.sinks[0]).toMatchObject({ delivered_total: 500, rejected_total: 0 });
    expectBalanced(s);
  }, 60_000);

  it('PostgreSQL array parameters: ids with quotes, backslashes, commas, braces, spaces, NULL-like and non-ASCII, and extreme floats, come back exactly', async () => {
    const ids = ['a"b', 'c\\d', 'e,f', '{g}', 'h i', 'NULL', 'null', 'ü-é', 'tab\there', 'x'];
    const floats = [1e21, -0.5, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -0, 123456789.12345679, 42, 1e-7, 2 ** 53 + 2];
    const sink = new PostgresSink({ ...(await deliverySite(`postgres: { url: "${pgPeer.url}", table: odd_ids }`)).site.delivery!.sinks.postgres! }, 'site "q"');
    await sink.prepare();
    const t0 = Date.UTC(2026, 0, 1);
    await sink.send(ids.map((id, i) => ({
      seq: i, record: { kind: 'meter' as const, meter_id: id, region: i % 2 ? 'north' : 'sü d', timestamp_ms: t0 + i, kwh: floats[i]!, voltage: -floats[i]!, current: 0, power_factor: 1, power_w: floats[9 - i]!, arrived_ms: t0 + 1000 + i },
    })));
    await sink.close();
    const rows = await pgPeer.query<{ meter_id: string; region: string; site: string; kwh: number; voltage: number; power_w: number; t: string; a: string }>(
      "SELECT meter_id, region, site, kwh, voltage, power_w, (extract(epoch from ts) * 1000)::bigint AS t, (extract(epoch from arrived_at) * 1000)::bigint AS a FROM odd_ids ORDER BY ts");
    expect(rows.map((r) => r.meter_id)).toEqual(ids);
    expect(rows.map((r) => [r.region, r.site, Number(r.t) - t0, Number(r.a) - t0])).toEqual(ids.map((_, i) => [i % 2 ? 'north' : 'sü d', 'site "q"', i, 1000 + i]));
    expect(rows.map((r) => r.kwh)).toEqual(floats);
    expect(rows.map((r) => r.voltage)).toEqual(floats.map((f) => -f));
    expect(rows.map((r) => r.power_w)).toEqual([...floats].reverse());
  }, 60_000);

  it('a poison reading (a constraint in PostgreSQL, a 400 from the collector) is found by bisection and dropped alone', async () => {
    await pgPeer.query('CREATE TABLE strict_readings (meter_id text NOT NULL, ts timestamptz NOT NULL, region text NOT NULL, site text NOT NULL, kwh double precision, voltage double precision CHECK (voltage < 100000), current double precision, power_factor double precision, power_w double precision, arrived_at timestamptz NOT NULL, PRIMARY KEY (meter_id, ts))');
    const readings = seededReadings(1000, 9);
    readings[613] = { ...readings[613]!, voltage: 500_000 };
    otlp.rejectLogsWith = (l) => l.attributes['ems.voltage'] === 500_000;
    const s = await service([
      `postgres: { url: "${pgPeer.url}", table: strict_readings, retry_min: 50ms, batch_max_wait: 20ms, max_rate: 0 }`,
      `otlp_logs: { endpoint: "${otlp.url}/v1/logs", retry_min: 50ms, batch_max_wait: 20ms, max_rate: 0 }`,
    ].join('\n'));
    const before = otlp.logs().length;
    await feed(s, readings);
    await drained(s);
    otlp.rejectLogsWith = undefined;
    const [{ n }] = await pgPeer.query<{ n: string }>('SELECT count(*) AS n FROM strict_readings') as [{ n: string }];
    expect(Number(n)).toBe(999);
    expect(otlp.logs().length - before).toBe(999);
    const spool = s.spoolForTests!;
    expect(spool.sinkTotals('postgres')).toMatchObject({ delivered: 999, rejected: { constraint: 1 } });
    expect(spool.sinkTotals('otlp_logs')).toMatchObject({ delivered: 999, rejected: { rejected: 1 } });
    expectBalanced(s);
  }, 60_000);

  it('a PostgreSQL restart mid-stream: every reading ends in the table exactly once', async () => {
    const readings = seededReadings(6000, 13);
    const s = await service(`postgres: { url: "${pgPeer.url}", table: restart_readings, retry_min: 100ms, retry_max: 1s, batch_max_size: 500, batch_max_wait: 10ms, max_rate: 0 }`);
    await feed(s, readings.slice(0, 2000));
    await waitFor(() => (s.status()?.sinks[0]?.delivered_total ?? 0) > 0, 20_000, 'first delivery');
    const restart = pgPeer.restart(500);
    await feed(s, readings.slice(2000, 4000));
    await restart;
    await feed(s, readings.slice(4000));
    await drained(s, 60_000);
    const rows = await pgPeer.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT (meter_id, ts)) AS d FROM restart_readings');
    expect(Number(rows[0]?.n)).toBe(6000);
    expect(Number(rows[0]?.d)).toBe(6000);
    expect(s.status()?.sinks[0]?.delivered_total).toBe(6000);
    expectBalanced(s);
  }, 120_000);
});
