// The gateway's side of bench:delivery, each role in its own process (CPU and RSS are its own):
//   ingest: MeterIngest draining a broker backlog, with the spool (DeliveryService) or without it
//           (the power table alone), reporting readings/s;
//   fill:   more readings written straight into the spool until the backlog reaches a size;
//   drain:  one sink forwarding the spool's backlog to a real store, reporting readings/s and RSS;
//   live:   the whole path (broker -> spool -> PostgreSQL) for the kill -9 drill.
import { readFileSync } from 'node:fs';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { MqttConfig, SiteConfig } from '../../src/config/site-types.js';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { MeterPowerTable } from '../../src/meters/power-table.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { sleep, type Msg } from './child.js';

/** Resident anonymous memory (heap, buffers): RSS without the file pages LMDB maps from the spool. */
function rssAnon(): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
  } catch {
    return process.memoryUsage().rss;
  }
}

export interface IngestParams { url: string; topic: string; clientId: string; readings: number; site?: SiteConfig }

export function mqttConfig(url: string, topic: string, clientId: string): MqttConfig {
  return {
    url, client_id: clientId, protocol_version: 5, session_expiry_ms: 600_000, keepalive_ms: 30_000, reconnect_min_ms: 100, reconnect_max_ms: 2000,
    meters: {
      topics: [topic], qos: 1, region_topic_level: 1, regions: ['north', 'south', 'east', 'west'], batch_max_size: 500, batch_max_wait_ms: 50,
      max_payload_bytes: 1 << 20, future_skew_ms: 300_000, dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: 1_000_000, reading_span_ratio: 0.01,
    },
  };
}

class CountingSink implements ReadingSink {
  count = 0;
  writes = 0;
  writeMs = 0;
  inFlight = 0;
  inFlightSum = 0;
  onCount: (() => void) | undefined;
  readonly concurrentWrites: number | undefined;
  readonly copiesReadings: boolean | undefined; // (it reads nothing of the batch but its length)
  constructor(private readonly inner: ReadingSink) { this.concurrentWrites = inner.concurrentWrites; this.copiesReadings = inner.copiesReadings; }
  async write(batch: readonly ValidReading[], dropped?: Parameters<ReadingSink['write']>[1]): Promise<void> {
    this.writes++;
    this.inFlightSum += ++this.inFlight;
    const t0 = performance.now();
    try {
      await this.inner.write(batch, dropped);
    } finally {
      this.inFlight--;
      this.writeMs += performance.now() - t0;
    }
    this.count += batch.length;
    this.onCount?.();
  }
}

function telemetry(): { meter: MeterProvider; tracer: BasicTracerProvider } {
  return { meter: new MeterProvider(), tracer: new BasicTracerProvider() };
}

function delivery(site: SiteConfig, meter: MeterProvider): DeliveryService {
  if (!site.delivery) throw new Error('bench site has no delivery section');
  return new DeliveryService({ config: site.delivery, site, env: {}, meter: meter.getMeter('bench'), clock: systemClock, logger: silentLogger() });
}

/** Drains `readings` from the broker session, handing off to the spool (site given) or the power table. */
export async function runIngest(p: IngestParams): Promise<Msg> {
  const t = telemetry();
  const service = p.site ? delivery(p.site, t.meter) : undefined;
  await service?.start();
  const sink = new CountingSink(service ?? new MeterPowerTable(systemClock, 300_000));
  const ingest = new MeterIngest({ mqtt: mqttConfig(p.url, p.topic, p.clientId), clock: systemClock, logger: silentLogger(), meter: t.meter.getMeter('bench'), tracer: t.tracer.getTracer('bench'), sink });
  let peak = 0;
  const rss = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 200);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ingest timed out at ${sink.count}/${p.readings}: ${JSON.stringify(ingest.status())}`)), Number(process.env["BENCH_PHASE_TIMEOUT_MS"] ?? 300_000));
    sink.onCount = () => { if (sink.count >= p.readings) { clearTimeout(timer); resolve(); } };
    ingest.start().catch(reject);
  });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(rss);
  await ingest.stop();
  const spool = service?.status()?.spool;
  await service?.stop();
  await t.meter.shutdown();
  await t.tracer.shutdown();
  return { type: 'result', readings: sink.count, seconds, readings_per_s: sink.count / seconds, rss_mb: peak / 2 ** 20, spool_bytes: spool?.bytes ?? 0, spool_readings: spool?.readings ?? 0, hand_offs: sink.writes, write_ms_avg: sink.writeMs / Math.max(1, sink.writes), in_flight_avg: sink.inFlightSum / Math.max(1, sink.writes) };
}

/**
 * Writes synthetic valid readings into the spool until it holds `target` readings: 500-reading
 * batches with as many in flight as the meter ingest keeps (DeliveryService.concurrentWrites), each
 * a durable commit. Its rate is the spool's own commit rate, without MQTT and JSON in front.
 */
export async function runFill(p: { site: SiteConfig; target: number }): Promise<Msg> {
  const t = telemetry();
  const service = delivery(p.site, t.meter);
  await service.start();
  const now = Date.now();
  const start = service.status()?.spool.readings ?? 0;
  let i = 0;
  const batch = (): ValidReading[] => {
    const out: ValidReading[] = [];
    for (let k = 0; k < 500; k++, i++) {
      out.push({ meter_id: `fill-${String(i % 10_000).padStart(6, '0')}`, region: 'north', timestamp_ms: now - 3_600_000 + Math.floor(i / 10_000), kwh: 1000 + i / 1000, voltage: 230 + (i % 7), current: 4 + (i % 5) / 10, power_factor: 0.95, power_w: 900 + (i % 50), arrived_at: performance.now() });
    }
    return out;
  };
  const t0 = performance.now();
  const inFlight = new Set<Promise<void>>();
  while (start + i < p.target) {
    const w = service.write(batch());
    inFlight.add(w);
    void w.finally(() => inFlight.delete(w));
    if (inFlight.size >= service.concurrentWrites) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - t0) / 1000;
  const st = service.status()?.spool;
  await service.stop();
  await t.meter.shutdown();
  return { type: 'result', readings: st?.readings ?? 0, bytes: st?.bytes ?? 0, appended: i, readings_per_s: i / seconds };
}

/** One sink drains the spool's backlog; readings/s from its first confirm to an empty backlog. */
export async function runDrain(p: { site: SiteConfig; sink: string }): Promise<Msg> {
  const t = telemetry();
  const service = delivery(p.site, t.meter);
  let peak = process.memoryUsage().rss;
  let peakAnon = rssAnon();
  const rss = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); peakAnon = Math.max(peakAnon, rssAnon()); }, 200);
  await service.start();
  const status = (): { pending: number; delivered: number } => {
    const s = service.status()?.sinks.find((x) => x.name === p.sink);
    return { pending: s?.pending ?? 0, delivered: s?.delivered_total ?? 0 };
  };
  const backlog = status().pending;
  const t0 = performance.now();
  const deadline = Date.now() + 600_000;
  while (status().pending > 0 && Date.now() < deadline) await sleep(100);
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(rss);
  const end = status();
  await service.stop();
  await t.meter.shutdown();
  return { type: 'result', sink: p.sink, backlog, delivered: end.delivered, pending: end.pending, seconds, readings_per_s: backlog / seconds, rss_mb: Math.max(peak, process.memoryUsage().rss) / 2 ** 20, rss_anon_mb: peakAnon / 2 ** 20 };
}

/** The full path for the kill -9 drill: runs until killed, or until told to stop. */
export async function runLive(p: { url: string; topic: string; clientId: string; site: SiteConfig }): Promise<Msg> {
  const t = telemetry();
  const service = delivery(p.site, t.meter);
  await service.start();
  const ingest = new MeterIngest({ mqtt: mqttConfig(p.url, p.topic, p.clientId), clock: systemClock, logger: silentLogger(), meter: t.meter.getMeter('bench'), tracer: t.tracer.getTracer('bench'), sink: service });
  await ingest.start();
  return { type: 'ready' };
}
