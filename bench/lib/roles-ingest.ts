// The two subscribers of bench:ingest, each in its own process so CPU and RSS are its own:
//   gateway: MeterIngest (validation, dedupe, power table, metrics, spans) draining a backlog, and a
//            long-lived MeterIngest for the churn phase, answering RSS and table samples;
//   count:   the count-only mqtt.js subscriber (immediate PUBACKs, parses nothing): the reference.
// The parent (bench/ingest.ts) sends commands and reads one reply per command.
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { MqttConfig } from '../../src/config/site-types.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { onParent, sleep, toParent, type Msg } from './child.js';

export const PHASE_TIMEOUT_MS = 120_000;

export interface Drain { readings: number; seconds: number; cpuUs: number; rssMb: number }

class NullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> { /* collected by nobody: the SDK still aggregates */ }
  protected override async onForceFlush(): Promise<void> { /* nothing */ }
}
class NullSpanExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], cb: (r: ExportResult) => void): void { this.spans += spans.length; cb({ code: ExportResultCode.SUCCESS }); }
  async shutdown(): Promise<void> { /* nothing */ }
}

export function sessionOptions(clientId: string): mqtt.IClientOptions {
  return { clientId, protocolVersion: 5, clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 600 } };
}

/** Counts what is handed off (the gateway writes its own power table besides, as with any sink). */
class CountingSink implements ReadingSink {
  readonly copiesReadings = true; // it keeps nothing (as the delivery spool and the power table)
  count = 0;
  target = Infinity;
  onTarget: (() => void) | undefined;
  write(batch: readonly ValidReading[]): Promise<void> {
    this.count += batch.length;
    if (this.count >= this.target) this.onTarget?.();
    return Promise.resolve();
  }
}

interface Gateway { ingest: MeterIngest; sink: CountingSink; reader: NullReader; shutdown: () => Promise<void> }

function newGateway(cfg: MqttConfig): Gateway {
  const reader = new NullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new NullSpanExporter())] });
  const sink = new CountingSink();
  const ingest = new MeterIngest({
    mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: meterProvider.getMeter('bench'), tracer: tracerProvider.getTracer('bench'), sink,
  });
  return { ingest, sink, reader, shutdown: async () => { await ingest.stop(); await meterProvider.shutdown(); await tracerProvider.shutdown(); } };
}

async function subscribed(ingest: MeterIngest): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ingest.status().subscribed && Date.now() < deadline) await sleep(20);
  if (!ingest.status().subscribed) throw new Error('gateway did not subscribe');
}

/** ems.meter.state_evictions as the gateway's metric reader sees it. */
async function stateEvictions(reader: NullReader): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) if (m.descriptor.name === METRICS.meterStateEvictions) return m.dataPoints.reduce((n, d) => n + (d.value as number), 0);
  }
  return 0;
}

/** RssAnon / RssFile from /proc (Linux): heap and C allocations vs mapped files and code. */
function rssDetail(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8').split('\n').filter((l) => /^Rss(Anon|File):/.test(l)).join(', ').replace(/\s+/g, ' ');
  } catch {
    return '';
  }
}

const rssMb = (): number => process.memoryUsage().rss / 2 ** 20;

/** Creates the gateway's persistent session, so a backlog published next is queued for it. */
async function prepareGateway(cfg: MqttConfig): Promise<Msg> {
  const gw = newGateway(cfg);
  await gw.ingest.start();
  await subscribed(gw.ingest);
  await gw.shutdown();
  return { type: 'prepared' };
}

/**
 * Times one drain: `start` begins it and calls `done` once everything arrived (or `fail`); bounded by
 * PHASE_TIMEOUT_MS (`progress` names how far it got). The process's CPU time and its RSS, sampled
 * every 100 ms, over the drain.
 */
async function timedDrain(start: (done: () => void, fail: (e: unknown) => void) => void, progress: () => string): Promise<Omit<Drain, 'readings'>> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let peak = rssMb();
  const rssTimer = setInterval(() => { peak = Math.max(peak, rssMb()); }, 100);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(progress())), PHASE_TIMEOUT_MS);
      start(() => { clearTimeout(timer); resolve(); }, reject);
    });
  } finally {
    clearInterval(rssTimer);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { seconds, cpuUs: cpu.user + cpu.system, rssMb: peak };
}

/** Drains `readings` from the gateway's session: a fresh MeterIngest, timed, with its CPU and peak RSS. */
async function drainGateway(cfg: MqttConfig, readings: number): Promise<Msg> {
  const gw = newGateway(cfg);
  const timed = await timedDrain((done, fail) => {
    gw.sink.target = readings;
    gw.sink.onTarget = done;
    gw.ingest.start().catch(fail);
  }, () => `gateway drain timed out at ${gw.sink.count}/${readings}`);
  const rss = Math.max(timed.rssMb, rssMb());
  const status = gw.ingest.status();
  await gw.shutdown();
  const drain: Drain = { ...timed, readings: gw.sink.count, rssMb: rss };
  return { type: 'drained', ...drain, dropped: status.readings_dropped, drops: status.drops_by_reason };
}

/** The churn phase's gateway: one MeterIngest for the whole phase, sampled on request. */
class LiveGateway {
  private gw: Gateway | undefined;
  private peak = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  async start(cfg: MqttConfig): Promise<Msg> {
    this.gw = newGateway(cfg);
    await this.gw.ingest.start();
    await subscribed(this.gw.ingest);
    this.peak = rssMb();
    this.timer = setInterval(() => { this.peak = Math.max(this.peak, rssMb()); }, 100);
    return { type: 'live-ready' };
  }

  /** RSS now and its peak since the last sample, readings handed off, meters remembered, evictions. */
  async sample(): Promise<Msg> {
    const gw = this.live();
    const evictions = await stateEvictions(gw.reader);
    const now = rssMb();
    const peak = Math.max(this.peak, now);
    this.peak = now;
    const s = gw.ingest.status();
    const mem = process.memoryUsage();
    return {
      rss_detail: rssDetail(),
      heap_mb: mem.heapUsed / 2 ** 20, heap_total_mb: mem.heapTotal / 2 ** 20, external_mb: mem.external / 2 ** 20,
      type: 'sample', rss_mb: now, peak_rss_mb: peak, readings: gw.sink.count, meters: s.meters_tracked, dropped: s.readings_dropped,
      evictions,
    };
  }

  /** Waits until `readings` were handed off in all (bounded). */
  async reach(readings: number, timeoutMs: number): Promise<Msg> {
    const gw = this.live();
    const deadline = Date.now() + timeoutMs;
    while (gw.sink.count < readings && Date.now() < deadline) await sleep(20);
    if (gw.sink.count < readings) throw new Error(`live gateway reached ${gw.sink.count}/${readings} readings in ${timeoutMs} ms`);
    return { type: 'reached', readings: gw.sink.count };
  }

  async stop(): Promise<Msg> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.gw?.shutdown();
    this.gw = undefined;
    return { type: 'live-stopped' };
  }

  private live(): Gateway {
    if (this.gw === undefined) throw new Error('live gateway not started');
    return this.gw;
  }
}

/** Count-only subscriber: mqtt.js with its own immediate PUBACKs, counting messages (parsing nothing). */
async function drainCountOnly(url: string, clientId: string, expectedMessages: number, readingsPerMessage: number): Promise<Msg> {
  let got = 0;
  let client: MqttClient | undefined;
  const timed = await timedDrain((done) => {
    client = mqtt.connect(url, sessionOptions(clientId));
    client.on('message', () => { if (++got === expectedMessages) done(); });
  }, () => `count-only drain timed out at ${got}/${expectedMessages}`);
  await client?.endAsync();
  const drain: Drain = { ...timed, readings: got * readingsPerMessage };
  return { type: 'drained', ...drain };
}

async function prepareCountOnly(url: string, clientId: string, topic: string): Promise<Msg> {
  const c = await mqtt.connectAsync(url, sessionOptions(clientId));
  await c.subscribeAsync(topic, { qos: 1 });
  await c.endAsync();
  return { type: 'prepared' };
}

/** In a child: answers the parent's commands one at a time (each reply or an `error`). */
export function serveIngestRole(role: string): void {
  const live = new LiveGateway();
  const handle = async (m: Msg): Promise<Msg> => {
    const p = m['params'] as Record<string, unknown>;
    const cfg = p['cfg'] as MqttConfig;
    if (role === 'gateway') {
      if (m.type === 'prepare') return prepareGateway(cfg);
      if (m.type === 'drain') return drainGateway(cfg, p['readings'] as number);
      if (m.type === 'live-start') return live.start(cfg);
      if (m.type === 'sample') return live.sample();
      if (m.type === 'reach') return live.reach(p['readings'] as number, p['timeoutMs'] as number);
      if (m.type === 'live-stop') return live.stop();
    } else if (role === 'count') {
      if (m.type === 'prepare') return prepareCountOnly(p['url'] as string, p['clientId'] as string, p['topic'] as string);
      if (m.type === 'drain') return drainCountOnly(p['url'] as string, p['clientId'] as string, p['messages'] as number, p['readingsPerMessage'] as number);
    }
    throw new Error(`${role}: unknown command ${m.type}`);
  };
  let queue = Promise.resolve();
  process.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null || (m as Msg).type === 'stop') return;
    queue = queue.then(() => handle(m as Msg)).then(toParent, (e: unknown) => {
      toParent({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    });
  });
  onParent('stop', () => { void live.stop().finally(() => process.exit(0)); });
}
