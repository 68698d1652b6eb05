// node dist/bench/ingest-cpu.js [--root=<a dist directory>] [--messages=N] [--batch=N] [--rounds=N]
//
// The meter path's CPU per reading without the broker: MeterIngest's message handler fed the same
// payloads bench:ingest publishes (FleetGenerator, messages of --batch readings, a third each of
// epoch ms, epoch s and RFC 3339 timestamps), through validation, dedupe, the hand-off pipeline, the
// power table, metrics and batch/sampled reading spans, as the gateway process of bench:ingest runs
// them. --root picks the build to measure (default this one), so two builds can be compared in one
// run, alternating processes on a shared machine (an A/B). Prints one JSON line: us per reading
// (process CPU over the timed rounds, after a warm-up round).
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { IPublishPacket } from 'mqtt';
import type { MqttConfig } from '../src/config/site-types.js';
import type { ReadingSink, ValidReading } from '../src/meters/types.js';
import { FleetGenerator } from '../simulators/meter-fleet/generator.js';

function arg(name: string, dflt: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit === undefined ? NaN : Number(hit.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}
const root = process.argv.find((a) => a.startsWith('--root='))?.slice(7) ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const MESSAGES = arg('messages', 3000);
const BATCH = arg('batch', 100);
const ROUNDS = arg('rounds', 3);
const REGIONS = ['north', 'south', 'east', 'west'];

class NullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> { /* nothing */ }
  protected override async onForceFlush(): Promise<void> { /* nothing */ }
}
class NullSpanExporter implements SpanExporter {
  export(_spans: ReadableSpan[], cb: (r: ExportResult) => void): void { cb({ code: ExportResultCode.SUCCESS }); }
  async shutdown(): Promise<void> { /* nothing */ }
}
class CountingSink implements ReadingSink {
  readonly copiesReadings = true; // it keeps nothing (as the delivery spool and the power table)
  count = 0;
  write(batch: readonly ValidReading[]): Promise<void> { this.count += batch.length; return Promise.resolve(); }
}

type Handler = (packet: IPublishPacket, token: undefined, next: () => void) => void;

async function main(): Promise<void> {
  const { MeterIngest } = await import(pathToFileURL(path.join(root, 'src/meters/ingest.js')).href) as typeof import('../src/meters/ingest.js');
  const { systemClock } = await import(pathToFileURL(path.join(root, 'src/runtime/clock.js')).href) as typeof import('../src/runtime/clock.js');
  const { silentLogger } = await import(pathToFileURL(path.join(root, 'src/runtime/logger.js')).href) as typeof import('../src/runtime/logger.js');
  const cfg: MqttConfig = {
    url: 'mqtt://127.0.0.1:1', client_id: 'ingest-cpu', protocol_version: 5, session_expiry_ms: 600_000, keepalive_ms: 30_000, reconnect_min_ms: 100, reconnect_max_ms: 2000,
    meters: {
      topics: ['batched/#'], qos: 1, region_topic_level: 1, regions: REGIONS, batch_max_size: 500, batch_max_wait_ms: 50,
      max_payload_bytes: 1 << 20, future_skew_ms: 300_000, dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: 1_000_000,
      reading_span_ratio: 0.01,
    },
  };
  // Payloads: each round's readings are new (later timestamps), so none is a duplicate.
  const start = Date.now() - 3_600_000;
  let tick = 0;
  const gen = new FleetGenerator({
    meters: 10_000, regions: REGIONS, seed: 11, batchSize: BATCH, faults: {}, topicPrefix: 'batched',
    regionInPayload: true, now: () => start + Math.floor(tick++ / 50),
  });
  const rounds: IPublishPacket[][] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const msgs: IPublishPacket[] = [];
    while (msgs.length < MESSAGES) {
      for (const m of gen.next()) {
        if (msgs.length < MESSAGES) msgs.push({ cmd: 'publish', topic: m.topic, payload: Buffer.from(m.payload), qos: 1, dup: false, retain: false } as IPublishPacket);
      }
    }
    rounds.push(msgs);
  }
  const meterProvider = new MeterProvider({ readers: [new NullReader()] });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new NullSpanExporter())] });
  const sink = new CountingSink();
  const ingest = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: meterProvider.getMeter('b'), tracer: tracerProvider.getTracer('b'), sink });
  // The message handler without a connection: running, no probe topic, no acknowledgement tokens.
  const inner = ingest as unknown as { running: boolean; onMessage: Handler };
  inner.running = true;
  const onMessage: Handler = inner.onMessage.bind(ingest);
  const feed = async (msgs: IPublishPacket[]): Promise<void> => {
    for (const p of msgs) await new Promise<void>((resolve) => { onMessage(p, undefined, resolve); });
    await new Promise((r) => setTimeout(r, 60)); // the last batch seals after batch_max_wait_ms at most
  };
  await feed(rounds[0] as IPublishPacket[]);
  const before = sink.count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 1; r <= ROUNDS; r++) await feed(rounds[r] as IPublishPacket[]);
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  const readings = sink.count - before;
  const status = ingest.status();
  if (readings !== ROUNDS * MESSAGES * BATCH) throw new Error(`handed off ${readings}, expected ${ROUNDS * MESSAGES * BATCH} (dropped ${status.readings_dropped}: ${JSON.stringify(status.drops_by_reason)})`);
  process.stdout.write(`${JSON.stringify({ root, readings, us_per_reading: Number(((cpu.user + cpu.system) / readings).toFixed(3)), wall_ms: Math.round(ms) })}\n`);
  await ingest.abort();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`ingest-cpu failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
