// npm run bench:ingest — meter ingest throughput and memory against a real mosquitto (started here
// on a free loopback port with max_queued_messages 0). The gateway (MeterIngest) and the count-only
// mqtt.js subscriber each run in a process of their own (bench/lib/roles-ingest.ts), so the CPU and
// RSS figures are each party's alone; the gateway process runs with the deployed V8 flags.
//
// Method: the backlog is published first into persistent sessions (QoS 1) while the subscribers are
// away; then each subscriber connects and drains it. So the subscriber, not the publisher, sets the
// pace, and the count-only subscriber and the gateway drain the same backlog in the same run
// (twice each, in ABBA order, the better drain of each counting: the machine may be shared).
//   (a) single-reading messages: gateway readings/s vs count-only readings/s (single_ratio)
//   (b) messages of 100 readings: gateway readings/s with full processing (validation, dedupe,
//       power table, metrics, batch spans, sampled reading spans)
//   (c) gateway CPU per reading beyond MQTT receive: (gateway CPU - count-only CPU) / readings
//   (d) churn (a fresh gateway process): a live gateway hears 1,000 steady meters, then 1M distinct meter ids one reading
//       each, then the 1,000 steady meters again until the churned ids were forgotten (a short
//       dedupe window here, so that happens within the run): RSS before, with 1M, and after.
// Options (flags; the env variables of earlier versions still work): --single=N readings (a),
// --batched=N messages of 100 (b), --churn=N distinct ids, --steady-meters=N, --steady-s=S
// (steady phase before the churn), --window-s=S (dedupe window of the churn phase),
// --max-meters=N (mqtt.meters.max_meters of the churn phase).
// The last line of output is one JSON object.
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { MqttConfig } from '../src/config/site-types.js';
import { DEFAULT_MAX_METERS } from '../src/meters/meter-state.js';
import { sweepIntervalMs } from '../src/meters/state-bound.js';
import { FleetGenerator } from '../simulators/meter-fleet/generator.js';
import { startChild, sleep, type Child, type Msg } from './lib/child.js';
import { GATEWAY_NODE_FLAGS } from './lib/gateway-node-flags.js';
import { PHASE_TIMEOUT_MS, serveIngestRole, type Drain } from './lib/roles-ingest.js';
import { startBenchMosquitto } from './ingest-mosquitto.js';

function arg(name: string, dflt: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit === undefined ? NaN : Number(hit.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}
const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);

const SINGLE_READINGS = arg('single', Number(process.env['BENCH_SINGLE_READINGS'] ?? 100_000));
const BATCHED_MESSAGES = arg('batched', Number(process.env['BENCH_BATCHED_MESSAGES'] ?? 3_000));
const CHURN_METERS = arg('churn', 1_000_000);
const STEADY_METERS = arg('steady-meters', 1_000);
const STEADY_S = arg('steady-s', 15);
const WINDOW_S = arg('window-s', 30);
const MAX_METERS = arg('max-meters', DEFAULT_MAX_METERS);
const REGIONS = ['north', 'south', 'east', 'west'];
const log = (s: string): void => { process.stderr.write(`${s}\n`); };

interface Message { topic: string; payload: string }

/** Publishes `count` messages made on the fly, at most 2,000 unacknowledged at a time. */
async function publishAll(url: string, count: number, make: (i: number) => Message): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-pub-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
  let inflight = 0;
  let wake: (() => void) | undefined;
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (let i = 0; i < count; i++) {
    while (inflight >= 2000) {
      if (Date.now() > deadline) throw new Error(`publishing stalled at ${i}/${count}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
    }
    inflight++;
    const m = make(i);
    c.publish(m.topic, m.payload, { qos: 1 }, () => { inflight--; const w = wake; wake = undefined; w?.(); });
  }
  while (inflight > 0 && Date.now() < deadline) await new Promise<void>((r) => { wake = r; setTimeout(r, 20); });
  await c.endAsync();
}

function gatewayConfig(url: string, topic: string, clientId: string, over: Partial<NonNullable<MqttConfig['meters']>> = {}): MqttConfig {
  return {
    url, client_id: clientId, protocol_version: 5, session_expiry_ms: 600_000, keepalive_ms: 30_000, reconnect_min_ms: 100, reconnect_max_ms: 2000,
    meters: {
      topics: [topic], qos: 1, region_topic_level: 1, regions: REGIONS, batch_max_size: 500, batch_max_wait_ms: 50,
      max_payload_bytes: 1 << 20, future_skew_ms: 300_000, dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: DEFAULT_MAX_METERS,
      reading_span_ratio: 0.01, ...over,
    },
  };
}

function generate(batchSize: number, messages: number, prefix: string): Message[] {
  const start = Date.now() - 120_000;
  let tick = 0;
  const gen = new FleetGenerator({
    meters: 10_000, regions: REGIONS, seed: 11, batchSize, faults: {}, topicPrefix: prefix,
    regionInPayload: true, now: () => start + Math.floor(tick++ / 50), // strictly valid, never in the future
  });
  const out: Message[] = [];
  while (out.length < messages) out.push(...gen.next());
  return out.slice(0, messages);
}

/** Sends a command and waits for its reply (or the child's error). */
async function ask(c: Child, msg: Msg, reply: string, timeoutMs = PHASE_TIMEOUT_MS + 10_000): Promise<Msg> {
  const answer = c.next([reply, 'error'], timeoutMs);
  c.send(msg);
  const m = await answer;
  if (m.type === 'error') throw new Error(String(m['message']));
  return m;
}

const asDrain = (m: Msg): Drain => ({ readings: m['readings'] as number, seconds: m['seconds'] as number, cpuUs: m['cpuUs'] as number, rssMb: m['rssMb'] as number });

/**
 * One backlog, published once into four persistent sessions, drained in the order count-only,
 * gateway, gateway, count-only (ABBA: neither side always runs first on a shared machine); the
 * better drain of each side counts.
 */
async function phase(url: string, gw: Child, count: Child, name: string, batchSize: number, messages: number): Promise<{ count: Drain; gw: Drain }> {
  const topic = `${name}/#`;
  const cfgs = [1, 2].map((i) => gatewayConfig(url, topic, `bench-gw-${name}-${i}`));
  const countIds = [1, 2].map((i) => `bench-count-${name}-${i}`);
  for (let i = 0; i < 2; i++) {
    await ask(count, { type: 'prepare', params: { url, clientId: countIds[i], topic } }, 'prepared');
    await ask(gw, { type: 'prepare', params: { cfg: cfgs[i] } }, 'prepared');
  }
  const msgs = generate(batchSize, messages, name);
  const total = msgs.length;
  log(`${name}: publishing ${total} messages x ${batchSize} readings (a backlog for each of 4 subscribers)`);
  await publishAll(url, total, (i) => msgs[i] as Message);
  msgs.length = 0;
  const show = (who: string, d: Drain): void => {
    log(`${name}: ${who.padEnd(10)} ${Math.round(d.readings / d.seconds)} readings/s, cpu ${(d.cpuUs / d.readings).toFixed(2)} us/reading, rss ${d.rssMb.toFixed(0)} MB`);
  };
  const drainCount = async (id: string): Promise<Drain> => asDrain(await ask(count, { type: 'drain', params: { url, clientId: id, messages: total, readingsPerMessage: batchSize } }, 'drained'));
  const drainGw = async (cfg: MqttConfig): Promise<Drain> => {
    const r = await ask(gw, { type: 'drain', params: { cfg, readings: total * batchSize } }, 'drained');
    if ((r['dropped'] as number) > 0) log(`warning: gateway dropped ${String(r['dropped'])}: ${JSON.stringify(r['drops'])}`);
    return asDrain(r);
  };
  const c1 = await drainCount(countIds[0] as string);
  show('count-only', c1);
  const g1 = await drainGw(cfgs[0] as MqttConfig);
  show('gateway', g1);
  const g2 = await drainGw(cfgs[1] as MqttConfig);
  show('gateway', g2);
  const c2 = await drainCount(countIds[1] as string);
  show('count-only', c2);
  const best = (a: Drain, b: Drain): Drain => (a.readings / a.seconds >= b.readings / b.seconds ? a : b);
  const g = best(g1, g2);
  return { count: best(c1, c2), gw: { ...g, rssMb: Math.max(g1.rssMb, g2.rssMb) } };
}

function reading(id: string, region: string, ts: number, kwh: number): string {
  return `{"meter_id":"${id}","timestamp":${ts},"kwh":${kwh},"voltage":230.1,"current":4.2,"power_factor":0.97,"region":"${region}"}`;
}

/** Batches of 100 readings: steady meters (one reading each per round) or churned ids. */
function batchOf(prefix: string, first: number, n: number, ts: number, kwh: number): Message {
  const parts: string[] = [];
  for (let i = first; i < first + n; i++) parts.push(reading(`${prefix}-${String(i).padStart(7, '0')}`, REGIONS[i % REGIONS.length] as string, ts, kwh));
  return { topic: `churn/${REGIONS[first % REGIONS.length] as string}/batch`, payload: `[${parts.join(',')}]` };
}

interface ChurnResult { pre: Msg; churn: Msg; after: Msg; steadySeconds: number }

/** (d) A live gateway: steady meters, a churn of distinct ids, steady meters again until the churned ids are forgotten. */
async function churn(url: string, gw: Child): Promise<ChurnResult> {
  const windowMs = WINDOW_S * 1000;
  // forget after max(window, stale + skew) = the window
  const cfg = gatewayConfig(url, 'churn/#', 'bench-gw-churn', {
    dedupe_window_ms: windowMs, meter_stale_after_ms: windowMs / 2, future_skew_ms: windowMs / 2, max_meters: MAX_METERS,
  });
  await ask(gw, { type: 'live-start', params: { cfg } }, 'live-ready');
  let sent = 0;
  let round = 0;
  const steady = async (seconds: number): Promise<void> => {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const t0 = Date.now();
      round++;
      const per = 100;
      const batches = Math.ceil(STEADY_METERS / per);
      await publishAll(url, batches, (b) => batchOf('steady', b * per, Math.min(per, STEADY_METERS - b * per), t0, 1000 + round));
      sent += STEADY_METERS;
      await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    }
    await ask(gw, { type: 'reach', params: { readings: sent, timeoutMs: PHASE_TIMEOUT_MS } }, 'reached');
  };
  log(`churn: ${STEADY_METERS} steady meters for ${STEADY_S} s (dedupe window ${WINDOW_S} s, max_meters ${MAX_METERS})`);
  await steady(STEADY_S);
  const pre = await ask(gw, { type: 'sample', params: {} }, 'sample');
  log(`churn: before: rss ${(pre['rss_mb'] as number).toFixed(0)} MB, ${String(pre['meters'])} meters; heap ${(pre['heap_mb'] as number).toFixed(0)}/${(pre['heap_total_mb'] as number).toFixed(0)} external ${(pre['external_mb'] as number).toFixed(0)} MB (${String(pre['rss_detail'])})`);
  log(`churn: ${CHURN_METERS} distinct meter ids, one reading each`);
  const ts = Date.now();
  await publishAll(url, Math.ceil(CHURN_METERS / 100), (b) => batchOf('churn', b * 100, Math.min(100, CHURN_METERS - b * 100), ts, 1));
  sent += CHURN_METERS;
  await ask(gw, { type: 'reach', params: { readings: sent, timeoutMs: PHASE_TIMEOUT_MS } }, 'reached');
  const during = await ask(gw, { type: 'sample', params: {} }, 'sample');
  log(`churn: with the churned ids: peak rss ${(during['peak_rss_mb'] as number).toFixed(0)} MB, ${String(during['meters'])} meters, ${String(during['evictions'])} active evictions; now rss ${(during['rss_mb'] as number).toFixed(0)} heap ${(during['heap_mb'] as number).toFixed(0)}/${(during['heap_total_mb'] as number).toFixed(0)} external ${(during['external_mb'] as number).toFixed(0)} MB`);
  // The churned ids are forgotten within a window plus a sweep interval of their reading; then a
  // few more seconds for the collection that follows.
  const steadySeconds = WINDOW_S + (2 * sweepIntervalMs(windowMs)) / 1000 + 5;
  log(`churn: ${STEADY_METERS} steady meters again for ${steadySeconds} s`);
  await steady(steadySeconds);
  const after = await ask(gw, { type: 'sample', params: {} }, 'sample');
  log(`churn: after: rss ${(after['rss_mb'] as number).toFixed(0)} MB, ${String(after['meters'])} meters; heap ${(after['heap_mb'] as number).toFixed(0)}/${(after['heap_total_mb'] as number).toFixed(0)} external ${(after['external_mb'] as number).toFixed(0)} MB (${String(after['rss_detail'])})`);
  await ask(gw, { type: 'live-stop', params: {} }, 'live-stopped');
  return { pre, churn: during, after, steadySeconds };
}

async function main(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const broker = await startBenchMosquitto();
  const gw = startChild(script, 'gateway', [...GATEWAY_NODE_FLAGS]);
  const count = startChild(script, 'count');
  try {
    const single = await phase(broker.url, gw, count, 'single', 1, SINGLE_READINGS);
    const batched = await phase(broker.url, gw, count, 'batched', 100, BATCHED_MESSAGES);
    await gw.stop();
    // The churn phase gets a gateway process of its own: its RSS figures start from a fresh process.
    const churnGw = startChild(script, 'gateway', [...GATEWAY_NODE_FLAGS]);
    let ch: ChurnResult;
    try {
      ch = await churn(broker.url, churnGw);
    } finally {
      await churnGw.stop();
    }
    const rate = (d: Drain): number => d.readings / d.seconds;
    const extraCpu = (p: { count: Drain; gw: Drain }): number => Math.max(0, (p.gw.cpuUs - p.count.cpuUs) / p.gw.readings);
    const r2 = (x: number): number => Math.round(x * 100) / 100;
    const preRss = ch.pre['rss_mb'] as number;
    const steadyAfter = ch.after['rss_mb'] as number;
    const figures = {
      single_ratio: Number((rate(single.gw) / rate(single.count)).toFixed(3)),
      single_readings_per_s: Math.round(rate(single.gw)),
      single_count_only_readings_per_s: Math.round(rate(single.count)),
      cpu_us_per_reading_single: r2(extraCpu(single)),
      batched_readings_per_s: Math.round(rate(batched.gw)),
      batched_count_only_readings_per_s: Math.round(rate(batched.count)),
      cpu_us_per_reading: r2(extraCpu(batched)),
      gateway_rss_mb: Math.round(Math.max(single.gw.rssMb, batched.gw.rssMb)),
      count_only_rss_mb: Math.round(Math.max(single.count.rssMb, batched.count.rssMb)),
      single_readings: single.gw.readings,
      batched_readings: batched.gw.readings,
      churn_meters: CHURN_METERS,
      max_meters: MAX_METERS,
      steady_meters: STEADY_METERS,
      steady_rss_mb_before_churn: Math.round(preRss),
      churn_rss_mb: Math.round(ch.churn['peak_rss_mb'] as number),
      churn_meters_tracked: ch.churn['meters'],
      churn_state_evictions: ch.churn['evictions'],
      steady_rss_mb_after_churn: Math.round(steadyAfter),
      meters_tracked_after_churn: ch.after['meters'],
      churn_dropped: ch.after['dropped'],
      gateway_node_flags: GATEWAY_NODE_FLAGS.join(' '),
    };
    const goals = {
      single_ratio: { goal: '>= 0.9', met: figures.single_ratio >= 0.9 },
      cpu_us_per_reading_single: { goal: '<= 3', met: figures.cpu_us_per_reading_single <= 3 },
      batched_readings_per_s: { goal: '>= 500000', met: figures.batched_readings_per_s >= 500_000 },
      cpu_us_per_reading: { goal: '<= 1.5', met: figures.cpu_us_per_reading <= 1.5 },
      gateway_rss_mb: { goal: '<= 150', met: figures.gateway_rss_mb <= 150 },
      churn_rss_mb: { goal: '<= 250', met: figures.churn_rss_mb <= 250 },
      steady_rss_mb_after_churn: { goal: 'within 20 % of steady_rss_mb_before_churn', met: Math.abs(steadyAfter - preRss) <= 0.2 * preRss },
    };
    process.stdout.write(`${JSON.stringify({ ...figures, goals })}\n`);
  } finally {
    await Promise.all([gw.stop(), count.stop()]);
    await broker.stop();
  }
}

if (role !== undefined) {
  serveIngestRole(role);
} else {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`bench:ingest failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
