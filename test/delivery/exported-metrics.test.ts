// Delivery accounting as a collector sees it: the gateway (the real composition root) ingests
// meter readings from mosquitto into a small drop_oldest spool while its influx sink is refused,
// then the sink comes back. The OTLP export, decoded by test/helpers/otlp-receiver.ts from the
// protobuf bytes, carries ems.delivery.{delivered,pending,oldest_pending_age_seconds,latency_ms,
// failures,rejected,evicted}, ems.spool.{bytes,readings} and
// ems.meter.readings_dropped{error_type="spool_evicted"}; on those exported values, per sink:
//     ingested = delivered + rejected + pending + evicted
// (rejected is 0 here: the ingested = delivered + pending + evicted). A second test shows
// ems.meter.ingestion_latency_ms with a spool is arrival to the durable commit: a store whose
// commits take 300 ms puts every reading above 250 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import { LmdbSpoolStore, type SpoolStore } from '../../src/delivery/spool-store.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { FleetGenerator } from '../../simulators/meter-fleet/generator.js';
import { LineProtocolReceiver } from '../helpers/line-protocol-receiver.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { OtlpReceiver, type ReceivedMetric } from '../helpers/otlp-receiver.js';
import { mqttConfig, TestTelemetry } from '../meters/harness.js';
import { waitFor } from './fixture.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const MESSAGES = 200;
const PER_MESSAGE = 100;

function fleetMessages(n: number, seed: number): Array<{ topic: string; payload: string }> {
  const start = Date.now() - 60_000;
  let tick = 0;
  const gen = new FleetGenerator({
    meters: 10_000, regions: ['north', 'south'], seed, batchSize: PER_MESSAGE, faults: {}, topicPrefix: 'meters',
    regionInPayload: true, now: () => start + Math.floor(tick++ / 50),
  });
  const out: Array<{ topic: string; payload: string }> = [];
  while (out.length < n) out.push(...gen.next());
  return out.slice(0, n);
}

async function publish(url: string, msgs: Array<{ topic: string; payload: string }>): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `pub-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
  try {
    for (let i = 0; i < msgs.length; i += 50) await Promise.all(msgs.slice(i, i + 50).map((m) => c.publishAsync(m.topic, m.payload, { qos: 1 })));
  } finally {
    await c.endAsync();
  }
}

/** The last exported occurrence of a metric, and one of its points' values by attributes. */
function last(rx: OtlpReceiver, name: string): ReceivedMetric | undefined {
  const all = rx.metric(name);
  return all[all.length - 1];
}
function sumOf(m: ReceivedMetric | undefined, match: Record<string, string> = {}): number {
  let n = 0;
  for (const p of m?.points ?? []) if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) n += p.value ?? 0;
  return n;
}

describe('delivery accounting on the exported metrics (gateway, mosquitto, OTLP receiver)', () => {
  let broker: Mosquitto;
  let otlp: OtlpReceiver;
  let influx: LineProtocolReceiver;
  let gateway: Gateway | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ems-delivery-metrics-'));

  beforeAll(async () => {
    [broker, otlp, influx] = await Promise.all([startMosquitto(), OtlpReceiver.start(), LineProtocolReceiver.start()]);
  }, 30_000);
  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([broker?.stop(), otlp?.stop(), influx?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits for an export that starts after now, and returns the metrics of the last one. */
  async function freshExport(): Promise<(name: string) => ReceivedMetric | undefined> {
    otlp.clear();
    await otlp.waitFor((r) => r.metric(METRICS.deliveryPending).length >= 2, 15_000, 'two fresh exports');
    return (name) => last(otlp, name);
  }

  it('ingested = delivered + pending + evicted per sink, while the sink is down (evicting) and after it drained', async () => {
    let up = false;
    influx.respond = () => (up ? 204 : 503);
    const yaml = [
      'version: 1', 'site: { id: site-m, region: north, nominal_frequency_hz: 50 }',
      'mqtt:', `  url: ${broker.url}`, '  client_id: gw-metrics', '  protocol_version: 5',
      '  meters: { topics: ["meters/#"], region_topic_level: 1, regions: [north, south] }',
      'delivery:', `  spool: { directory: ${join(dir, 'spool')}, max_size_mb: 1, policy: drop_oldest }`,
      '  sinks:', `    influx: { url: "${influx.url}", database: ems, retry_min: 100ms, retry_max: 300ms, batch_max_wait: 20ms, max_rate: 0 }`,
      'telemetry:', `  otlp_endpoint: ${otlp.url}`, '  export_interval: 300ms', '  export_timeout: 2s',
      'status: { enabled: false }', '',
    ].join('\n');
    const loaded = await loadSiteFromString(yaml, { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env: {} });
    // The gateway's meter session (client id + "-meters") exists before anything is published: the
    // broker keeps every message for it whenever the gateway's own SUBSCRIBE lands.
    const session = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'gw-metrics-meters', clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 600 } });
    await session.subscribeAsync('meters/#', { qos: 1 });
    await session.endAsync();
    const gw = buildGateway(loaded, { env: {}, logger: silentLogger() });
    gateway = gw;
    await gw.start();
    await publish(broker.url, fleetMessages(MESSAGES, 5));
    const total = MESSAGES * PER_MESSAGE;

    // Phase 1: all readings ingested, none delivered, the 1 MiB spool evicting the oldest.
    await otlp.waitFor((r) => sumOf(last(r, METRICS.meterReadingsIngested)) === total, 60_000,
      () => `${total} readings ingested (exported: ${sumOf(last(otlp, METRICS.meterReadingsIngested))})`);
    let m = await freshExport();
    const ingested = sumOf(m(METRICS.meterReadingsIngested));
    const pending1 = sumOf(m(METRICS.deliveryPending), { sink: 'influx' });
    const evicted1 = sumOf(m(METRICS.deliveryEvicted), { sink: 'influx' });
    expect(ingested).toBe(total);
    expect(sumOf(m(METRICS.deliveryDelivered), { sink: 'influx' })).toBe(0);
    expect(evicted1).toBeGreaterThan(0);
    expect(pending1).toBeGreaterThan(0);
    expect(pending1 + evicted1, 'ingested = delivered + pending + evicted (sink down)').toBe(ingested);
    expect(sumOf(m(METRICS.meterReadingsDropped), { error_type: 'spool_evicted' })).toBe(evicted1);
    expect(sumOf(m(METRICS.spoolReadings))).toBe(pending1);
    expect(sumOf(m(METRICS.spoolBytes))).toBeGreaterThan(0);
    expect(sumOf(m(METRICS.spoolBytes))).toBeLessThanOrEqual(1024 * 1024);
    expect(sumOf(m(METRICS.deliveryOldestAge), { sink: 'influx' })).toBeGreaterThan(0);
    expect(sumOf(m(METRICS.deliveryFailures), { sink: 'influx', error_type: 'http_5xx' })).toBeGreaterThan(0);
    expect(sumOf(m(METRICS.deliveryRejected))).toBe(0);

    // Phase 2: the sink takes everything still held.
    up = true;
    await otlp.waitFor((r) => sumOf(last(r, METRICS.deliveryPending), { sink: 'influx' }) === 0 && last(r, METRICS.deliveryDelivered) !== undefined, 60_000, 'the backlog drained');
    m = await freshExport();
    const delivered = sumOf(m(METRICS.deliveryDelivered), { sink: 'influx' });
    const evicted2 = sumOf(m(METRICS.deliveryEvicted), { sink: 'influx' });
    expect(evicted2).toBe(evicted1);
    expect(delivered).toBe(pending1);
    expect(delivered + 0 + evicted2, 'ingested = delivered + pending + evicted (drained)').toBe(sumOf(m(METRICS.meterReadingsIngested)));
    expect(influx.accepted()).toHaveLength(delivered);
    expect([sumOf(m(METRICS.spoolReadings)), sumOf(m(METRICS.deliveryOldestAge), { sink: 'influx' })]).toEqual([0, 0]);
    // Delivery latency: one observation per delivered reading, arrival to the upstream's confirm.
    const latency = m(METRICS.deliveryLatency);
    expect(latency?.kind).toBe('histogram');
    expect(latency?.points.find((p) => p.attributes['sink'] === 'influx')?.count).toBe(delivered);
  }, 150_000);
});

describe('ems.meter.ingestion_latency_ms with a spool is arrival to the durable commit', () => {
  let broker: Mosquitto;
  const dir = mkdtempSync(join(tmpdir(), 'ems-latency-'));
  beforeAll(async () => { broker = await startMosquitto(); }, 30_000);
  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a store whose commits take 300 ms puts every reading past 250 ms', async () => {
    const t = new TestTelemetry();
    const yaml = ['version: 1', 'site: { id: site-l, region: north, nominal_frequency_hz: 50 }', 'delivery:',
      `  spool: { directory: ${join(dir, 'spool')} }`, '  sinks:', '    otlp_logs: { endpoint: "http://127.0.0.1:9/v1/logs", retry_min: 5s }', ''].join('\n');
    const { site } = await loadSiteFromString(yaml, { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env: {} });
    // The real LMDB store, its batch commits held 300 ms longer (a slow disk's fsync).
    const slowStore = (): SpoolStore => {
      const inner = new LmdbSpoolStore(join(dir, 'spool'));
      return Object.assign(Object.create(inner) as SpoolStore, {
        putEntry: async (k: number, v: Uint8Array) => { await new Promise((r) => setTimeout(r, 300)); return inner.putEntry(k, v); },
      });
    };
    const service = new DeliveryService({ config: site.delivery!, site, env: {}, meter: t.meter, producer: t.producer, clock: systemClock, logger: silentLogger(), store: slowStore });
    await service.start();
    const cfg = mqttConfig(broker.url, {}, { topics: ['meters/#'], batch_max_wait_ms: 10 });
    const ingest = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: t.meter, producer: t.producer, tracer: t.tracer, sink: service });
    try {
      await ingest.start();
      await publish(broker.url, fleetMessages(20, 9));
      await waitFor(async () => (await t.counterSum(METRICS.meterReadingsIngested)) === 20 * PER_MESSAGE, 30_000, 'readings ingested');
      const hist = await t.metric(METRICS.meterIngestionLatency);
      const points = hist?.dataPoints ?? [];
      const count = points.reduce((n, p) => n + (p.value as { count: number }).count, 0);
      const min = Math.min(...points.map((p) => (p.value as { min?: number }).min ?? 0));
      expect(count).toBe(20 * PER_MESSAGE);
      expect(min).toBeGreaterThanOrEqual(250);
      expect(service.status()?.spool.readings).toBe(20 * PER_MESSAGE);
    } finally {
      await ingest.stop();
      await service.stop();
      await t.meterProvider.shutdown();
    }
  }, 60_000);
});
