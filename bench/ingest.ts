// npm run bench:ingest — meter ingest throughput against a real mosquitto (started here on a free
// loopback port with max_queued_messages 0).
//
// Method: the backlog is published first into persistent sessions (QoS 1) while the subscribers are
// away; then each subscriber connects and drains it. So the subscriber, not the publisher, sets the
// pace, and the count-only mqtt.js subscriber and the gateway drain the same backlog in the same run
// (twice each, in ABBA order, the better drain of each counting: the machine may be shared).
//   (a) single-reading messages: gateway readings/s vs count-only readings/s (single_ratio)
//   (b) messages of 100 readings: gateway readings/s with full processing (validation, dedupe,
//       power table, metrics, batch spans, sampled reading spans)
//   (c) gateway CPU per reading beyond MQTT receive: (gateway CPU - count-only CPU) / readings
// The last line of output is one JSON object.
import mqtt, { type MqttClient } from 'mqtt';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { MqttConfig } from '../src/config/site-types.js';
import { MeterIngest } from '../src/meters/ingest.js';
import { MeterPowerTable } from '../src/meters/power-table.js';
import type { ReadingSink, ValidReading } from '../src/meters/types.js';
import { systemClock } from '../src/runtime/clock.js';
import { silentLogger } from '../src/runtime/logger.js';
import { FleetGenerator } from '../simulators/meter-fleet/generator.js';
import { startBenchMosquitto } from './ingest-mosquitto.js';

const SINGLE_READINGS = Number(process.env['BENCH_SINGLE_READINGS'] ?? 100_000);
const BATCHED_MESSAGES = Number(process.env['BENCH_BATCHED_MESSAGES'] ?? 3_000);
const PHASE_TIMEOUT_MS = 90_000;
const log = (s: string): void => { process.stderr.write(`${s}\n`); };

class NullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> { /* collected by nobody: the SDK still aggregates */ }
  protected override async onForceFlush(): Promise<void> { /* nothing */ }
}
class NullSpanExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], cb: (r: ExportResult) => void): void { this.spans += spans.length; cb({ code: ExportResultCode.SUCCESS }); }
  async shutdown(): Promise<void> { /* nothing */ }
}

function sessionOptions(clientId: string): mqtt.IClientOptions {
  return { clientId, protocolVersion: 5, clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 600 } };
}

async function publishAll(url: string, messages: Array<{ topic: string; payload: string }>): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-pub-${process.pid}`, reconnectPeriod: 0 });
  let inflight = 0;
  let wake: (() => void) | undefined;
  for (const m of messages) {
    while (inflight >= 2000) await new Promise<void>((r) => { wake = r; });
    inflight++;
    c.publish(m.topic, m.payload, { qos: 1 }, () => { inflight--; const w = wake; wake = undefined; w?.(); });
  }
  while (inflight > 0) await new Promise<void>((r) => { wake = r; setTimeout(r, 20); });
  await c.endAsync();
}

interface Drain { readings: number; seconds: number; cpuUs: number; rssMb: number }

/** Count-only subscriber: mqtt.js with its own immediate PUBACKs, counting readings (parsing nothing). */
async function drainCountOnly(url: string, clientId: string, expectedMessages: number, readingsPerMessage: number): Promise<Drain> {
  let got = 0;
  let client: MqttClient | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`count-only drain timed out at ${got}/${expectedMessages}`)), PHASE_TIMEOUT_MS);
    client = mqtt.connect(url, sessionOptions(clientId));
    client.on('message', () => { if (++got === expectedMessages) { clearTimeout(timer); resolve(); } });
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client?.endAsync();
  return { readings: got * readingsPerMessage, seconds, cpuUs: cpu.user + cpu.system, rssMb: process.memoryUsage().rss / 2 ** 20 };
}

class CountingSink implements ReadingSink {
  count = 0;
  target = Infinity;
  onTarget: (() => void) | undefined;
  constructor(private readonly inner: MeterPowerTable) {}
  async write(batch: readonly ValidReading[]): Promise<void> {
    await this.inner.write(batch);
    this.count += batch.length;
    if (this.count >= this.target) this.onTarget?.();
  }
}

function gatewayConfig(url: string, topic: string): MqttConfig {
  return {
    url, client_id: 'bench-gw', protocol_version: 5, session_expiry_ms: 600_000, keepalive_ms: 30_000, reconnect_min_ms: 100, reconnect_max_ms: 2000,
    meters: {
      topics: [topic], qos: 1, region_topic_level: 1, regions: ['north', 'south', 'east', 'west'], batch_max_size: 500, batch_max_wait_ms: 50,
      max_payload_bytes: 1 << 20, future_skew_ms: 300_000, dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: 1_000_000, reading_span_ratio: 0.01,
    },
  };
}

function newGateway(cfg: MqttConfig, sink: ReadingSink): { ingest: MeterIngest; shutdown: () => Promise<void>; spans: NullSpanExporter } {
  const meterProvider = new MeterProvider({ readers: [new NullReader()] });
  const spans = new NullSpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  const ingest = new MeterIngest({
    mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: meterProvider.getMeter('bench'), tracer: tracerProvider.getTracer('bench'), sink,
  });
  return { ingest, spans, shutdown: async () => { await ingest.stop(); await meterProvider.shutdown(); await tracerProvider.shutdown(); } };
}

async function drainGateway(cfg: MqttConfig, readings: number): Promise<Drain> {
  const sink = new CountingSink(new MeterPowerTable(systemClock, 300_000));
  const gw = newGateway(cfg, sink);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let peakRss = 0;
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 100);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway drain timed out at ${sink.count}/${readings}`)), PHASE_TIMEOUT_MS);
      sink.target = readings;
      sink.onTarget = () => { clearTimeout(timer); resolve(); };
      gw.ingest.start().catch(reject);
    });
  } finally {
    clearInterval(rssTimer);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const status = gw.ingest.status();
  if (status.readings_dropped > 0) log(`warning: gateway dropped ${status.readings_dropped}: ${JSON.stringify(status.drops_by_reason)}`);
  await gw.shutdown();
  return { readings: sink.count, seconds, cpuUs: cpu.user + cpu.system, rssMb: peakRss / 2 ** 20 };
}

/** Creates the persistent sessions (count-only and gateway) so the backlog is queued for both. */
async function prepareSessions(url: string, countOnlyId: string, cfg: MqttConfig, topic: string): Promise<void> {
  const c = await mqtt.connectAsync(url, sessionOptions(countOnlyId));
  await c.subscribeAsync(topic, { qos: 1 });
  await c.endAsync();
  const gw = newGateway(cfg, new MeterPowerTable(systemClock, 300_000));
  await gw.ingest.start();
  const deadline = Date.now() + 10_000;
  while (!gw.ingest.status().subscribed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (!gw.ingest.status().subscribed) throw new Error('gateway did not subscribe');
  await gw.shutdown();
}

function generate(batchSize: number, messages: number, prefix: string): Array<{ topic: string; payload: string }> {
  const start = Date.now() - 120_000;
  let tick = 0;
  const gen = new FleetGenerator({
    meters: 10_000, regions: ['north', 'south', 'east', 'west'], seed: 11, batchSize, faults: {}, topicPrefix: prefix,
    regionInPayload: true, now: () => start + Math.floor(tick++ / 50), // strictly valid, never in the future
  });
  const out: Array<{ topic: string; payload: string }> = [];
  while (out.length < messages) out.push(...gen.next());
  return out;
}

/**
 * One backlog, published once into four persistent sessions, drained in the order count-only,
 * gateway, gateway, count-only (ABBA: neither side always runs first on a shared machine); the
 * better drain of each side counts.
 */
async function phase(url: string, name: string, batchSize: number, messages: number): Promise<{ count: Drain; gw: Drain }> {
  const topic = `${name}/#`;
  const cfgs = [1, 2].map((i) => ({ ...gatewayConfig(url, topic), client_id: `bench-gw-${name}-${i}` }));
  const countIds = [1, 2].map((i) => `bench-count-${name}-${i}`);
  for (let i = 0; i < 2; i++) await prepareSessions(url, countIds[i] as string, cfgs[i] as MqttConfig, topic);
  let msgs = generate(batchSize, messages, name);
  const total = msgs.length;
  log(`${name}: publishing ${total} messages x ${batchSize} readings (a backlog for each of 4 subscribers)`);
  await publishAll(url, msgs);
  msgs = []; // the backlog lives in the broker now; keep it out of the subscribers' RSS
  const show = (who: string, d: Drain): void => {
    log(`${name}: ${who.padEnd(10)} ${Math.round(d.readings / d.seconds)} readings/s, cpu ${(d.cpuUs / d.readings).toFixed(2)} us/reading, rss ${d.rssMb.toFixed(0)} MB`);
  };
  const c1 = await drainCountOnly(url, countIds[0] as string, total, batchSize);
  show('count-only', c1);
  const g1 = await drainGateway(cfgs[0] as MqttConfig, total * batchSize);
  show('gateway', g1);
  const g2 = await drainGateway(cfgs[1] as MqttConfig, total * batchSize);
  show('gateway', g2);
  const c2 = await drainCountOnly(url, countIds[1] as string, total, batchSize);
  show('count-only', c2);
  const best = (a: Drain, b: Drain): Drain => (a.readings / a.seconds >= b.readings / b.seconds ? a : b);
  const gw = best(g1, g2);
  return { count: best(c1, c2), gw: { ...gw, rssMb: Math.max(g1.rssMb, g2.rssMb) } };
}

async function main(): Promise<void> {
  const broker = await startBenchMosquitto();
  try {
    const single = await phase(broker.url, 'single', 1, SINGLE_READINGS);
    const batched = await phase(broker.url, 'batched', 100, BATCHED_MESSAGES);
    const rate = (d: Drain): number => d.readings / d.seconds;
    const extraCpu = (p: { count: Drain; gw: Drain }): number => Math.max(0, (p.gw.cpuUs - p.count.cpuUs) / p.gw.readings);
    const result = {
      single_ratio: Number((rate(single.gw) / rate(single.count)).toFixed(3)),
      single_readings_per_s: Math.round(rate(single.gw)),
      single_count_only_readings_per_s: Math.round(rate(single.count)),
      batched_readings_per_s: Math.round(rate(batched.gw)),
      batched_count_only_readings_per_s: Math.round(rate(batched.count)),
      cpu_us_per_reading: Number(extraCpu(batched).toFixed(2)),
      cpu_us_per_reading_single: Number(extraCpu(single).toFixed(2)),
      rss_mb: Math.round(Math.max(single.gw.rssMb, batched.gw.rssMb)),
      single_readings: single.gw.readings,
      batched_readings: batched.gw.readings,
      goals: { single_ratio: 0.9, batched_readings_per_s: 150_000, cpu_us_per_reading: 5 },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await broker.stop();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench:ingest failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
