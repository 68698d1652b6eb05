// npm run bench:delivery — reading delivery: the spool's durable commits under ingest, the drain of
// a 1M-reading backlog to each sink, and a kill -9 drill against PostgreSQL. Real peers, each
// started here on a free loopback port: mosquitto, PostgreSQL (fsync on), VictoriaMetrics (the
// influx sink's line protocol) and a plain HTTP server answering OTLP logs exports with 200.
// The gateway runs in its own process in every phase (bench/lib/roles-delivery.ts).
//   (a) batched messages (100 readings each) drained from a broker backlog by the meter ingest,
//       without the spool, then with it (durable commits): spool_commit_readings_per_s, ratio;
//   (b) the spool filled to BACKLOG readings (its sinks unreachable; the fill's own rate is
//       spool_append_only_readings_per_s: durable commits without MQTT and JSON), then drained by each sink
//       alone from a copy of it: drain_readings_per_s per sink, rss_mb_max, spool_bytes_per_reading;
//   (c) kill -9 drill: publish DRILL readings, kill -9 the gateway halfway, restart it, wait until
//       PostgreSQL holds every acknowledged reading: lost, duplicates_postgres.
// Options (env): BENCH_BACKLOG (default 1000000), BENCH_INGEST_MESSAGES (3000), BENCH_DRILL_MESSAGES (2000),
// BENCH_PHASES=ingest (phase (a) alone: its last line holds the commit rate and the ratio; for A/B runs).
// The last line of output is one JSON object.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { loadSiteFromString } from '../src/config/load.js';
import type { SiteConfig } from '../src/config/site-types.js';
import { FleetGenerator } from '../simulators/meter-fleet/generator.js';
import { startBenchMosquitto } from './ingest-mosquitto.js';
import { onParent, sleep, startChild, toParent, type Child, type Msg } from './lib/child.js';
import { GATEWAY_NODE_FLAGS } from './lib/gateway-node-flags.js';
import { startPostgres, startVictoriaMetrics } from './lib/store-peers.js';
import { modbusProfileChecks } from '../src/modbus/profile-load.js';

const BACKLOG = Number(process.env['BENCH_BACKLOG'] ?? 1_000_000);
const INGEST_MESSAGES = Number(process.env['BENCH_INGEST_MESSAGES'] ?? 3000);
const DRILL_MESSAGES = Number(process.env['BENCH_DRILL_MESSAGES'] ?? 2000);
const INGEST_ONLY = process.env['BENCH_PHASES'] === 'ingest';
const log = (s: string): void => { process.stderr.write(`${s}\n`); };
const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);

function child(): void {
  // Registered at once, so the parent's first message cannot arrive unheard; the roles load after.
  onParent('run', (m) => {
    const p = m['params'] as never;
    const work: Promise<Msg> = import('./lib/roles-delivery.js').then((r) => (role === 'ingest' ? r.runIngest(p) : role === 'fill' ? r.runFill(p) : role === 'drain' ? r.runDrain(p) : r.runLive(p)));
    work.then((res) => toParent(res), (e: unknown) => toParent({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) }));
  });
  onParent('stop', () => process.exit(0));
  // A parent that dies (Ctrl-C, a timeout) takes its gateway processes with it.
  process.on('disconnect', () => process.exit(0));
}

async function site(dir: string, sinks: string): Promise<SiteConfig> {
  const yaml = `version: 1\nsite: { id: bench, region: north, nominal_frequency_hz: 50 }\ndelivery:\n  spool: { directory: ${dir}, max_size_mb: 4096 }\n  sinks:\n${sinks}\n`;
  return (await loadSiteFromString(yaml, { profileChecks: modbusProfileChecks, file: join(dir, '..', 'bench-site.yaml'), env: {} })).site;
}

async function run(c: Child, params: unknown, timeoutMs: number, answer = 'result'): Promise<Msg> {
  c.send({ type: 'run', params });
  return Promise.race([c.next(answer, timeoutMs), c.next('error', timeoutMs).then((e) => { throw new Error(String(e['message'])); })]);
}

function generate(messages: number, prefix: string, seed: number): Array<{ topic: string; payload: string }> {
  const start = Date.now() - 120_000;
  let tick = 0;
  const gen = new FleetGenerator({
    meters: 10_000, regions: ['north', 'south', 'east', 'west'], seed, batchSize: 100, faults: {}, topicPrefix: prefix,
    regionInPayload: true, now: () => start + Math.floor(tick++ / 50),
  });
  const out: Array<{ topic: string; payload: string }> = [];
  while (out.length < messages) out.push(...gen.next());
  return out.slice(0, messages);
}

async function publishAll(url: string, messages: Array<{ topic: string; payload: string }>): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-pub-${process.pid}-${Math.random()}`, reconnectPeriod: 0 });
  let inflight = 0;
  let wake: (() => void) | undefined;
  for (const m of messages) {
    while (inflight >= 1000) await new Promise<void>((r) => { wake = r; });
    inflight++;
    c.publish(m.topic, m.payload, { qos: 1 }, () => { inflight--; const w = wake; wake = undefined; w?.(); });
  }
  while (inflight > 0) await new Promise<void>((r) => { wake = r; setTimeout(r, 20); });
  await c.endAsync();
}

/** The gateway's meter session (MeterIngest appends `-meters` to the client id) subscribed ahead of its backlog. */
async function subscribeSession(url: string, clientId: string, topic: string): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId: `${clientId}-meters`, protocolVersion: 5, clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 600 } });
  await c.subscribeAsync(topic, { qos: 1 });
  await c.endAsync();
}

/** Answers every OTLP logs export with 200 and counts the bytes: the collector is not what is measured. */
async function otlpNull(): Promise<{ url: string; stop: () => Promise<void> }> {
  const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); }); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

async function main(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const work = mkdtempSync(join(tmpdir(), 'ems-bench-delivery-'));
  const spawnRole = (r: string): Child => startChild(script, r, [...GATEWAY_NODE_FLAGS]);
  const [broker, pgPeer, vm, otlp] = await Promise.all([startBenchMosquitto(), startPostgres(), startVictoriaMetrics(), otlpNull()]);
  const dead = 'http://127.0.0.1:9/v1/logs'; // discard port: nothing listens, the sink retries
  try {
    // (a) ingest without and with the spool, the same backlog for both sessions.
    const topic = 'ingest/#';
    await subscribeSession(broker.url, 'bench-gw-plain', topic);
    await subscribeSession(broker.url, 'bench-gw-spool', topic);
    log(`(a) publishing ${INGEST_MESSAGES} messages x 100 readings`);
    await publishAll(broker.url, generate(INGEST_MESSAGES, 'ingest', 11));
    const readings = INGEST_MESSAGES * 100;
    const spoolDir = join(work, 'spool');
    const spoolSite = await site(spoolDir, `    otlp_logs: { endpoint: "${dead}", retry_min: 5s, retry_max: 60s }`);
    let c = spawnRole('ingest');
    const plain = await run(c, { url: broker.url, topic, clientId: 'bench-gw-plain', readings }, 300_000);
    await c.stop();
    log(`(a) without the spool: ${Math.round(plain['readings_per_s'] as number)} readings/s`);
    c = spawnRole('ingest');
    const spooled = await run(c, { url: broker.url, topic, clientId: 'bench-gw-spool', readings, site: spoolSite }, 300_000);
    await c.stop();
    log(`(a) with the spool:    ${Math.round(spooled['readings_per_s'] as number)} readings/s (durable commits), ${spooled['spool_readings']} readings in ${spooled['spool_bytes']} bytes, ${spooled['hand_offs']} hand-offs (${Math.round(readings / (spooled['hand_offs'] as number))} readings each, ${(spooled['in_flight_avg'] as number).toFixed(1)} in flight, ${(spooled['write_ms_avg'] as number).toFixed(1)} ms each to the durable commit)`);
    if (INGEST_ONLY) {
      process.stdout.write(`${JSON.stringify({
        spool_commit_readings_per_s: Math.round(spooled['readings_per_s'] as number),
        ingest_without_spool_readings_per_s: Math.round(plain['readings_per_s'] as number),
        ingest_ratio_with_spool: Number(((spooled['readings_per_s'] as number) / (plain['readings_per_s'] as number)).toFixed(3)),
        hand_offs: spooled['hand_offs'], in_flight_avg: spooled['in_flight_avg'], write_ms_avg: spooled['write_ms_avg'],
      })}\n`);
      return;
    }

    // (b) a backlog of BACKLOG readings, drained by each sink alone from a copy.
    c = spawnRole('fill');
    const fill = await run(c, { site: spoolSite, target: BACKLOG }, 900_000);
    await c.stop();
    const backlog = fill['readings'] as number;
    const bytesPerReading = (fill['bytes'] as number) / backlog;
    log(`(b) backlog: ${backlog} readings, ${(fill['bytes'] as number / 2 ** 20).toFixed(1)} MiB, ${bytesPerReading.toFixed(1)} bytes per reading; appended straight to the spool at ${Math.round(fill['readings_per_s'] as number)} readings/s (500 per batch, as many in flight as the ingest keeps, durable)`);
    // The sinks' production defaults (max_rate 100,000/s included), as a site file would have them.
    const sinks: Record<string, string> = {
      postgres: `    postgres: { url: "${pgPeer.url}", batch_max_size: 5000 }`,
      influx: `    influx: { url: "${vm.url}", database: ems, batch_max_size: 5000 }`,
      otlp_logs: `    otlp_logs: { endpoint: "${otlp.url}/v1/logs", batch_max_size: 5000 }`,
    };
    const drain: Record<string, number> = {};
    let rssMax = 0;
    let rssAnonMax = 0;
    for (const [name, yaml] of Object.entries(sinks)) {
      const copy = join(work, `drain-${name}`);
      cpSync(spoolDir, copy, { recursive: true });
      // The copy's only sink is `name`; it starts at the oldest reading the spool holds.
      c = spawnRole('drain');
      const d = await run(c, { site: await site(copy, yaml), sink: name }, 900_000);
      await c.stop();
      rmSync(copy, { recursive: true, force: true });
      drain[name] = Math.round(d['readings_per_s'] as number);
      rssMax = Math.max(rssMax, d['rss_mb'] as number);
      rssAnonMax = Math.max(rssAnonMax, d['rss_anon_mb'] as number);
      log(`(b) drain ${name}: ${d['backlog']} readings in ${(d['seconds'] as number).toFixed(1)} s = ${drain[name]} readings/s, rss max ${(d['rss_mb'] as number).toFixed(0)} MB (anonymous ${(d['rss_anon_mb'] as number).toFixed(0)} MB; the rest is the spool file mapped by LMDB), pending after ${d['pending']}`);
    }

    // (c) kill -9 under load, restart, every acknowledged reading in PostgreSQL exactly once.
    const drillTopic = 'drill/#';
    const drillSite = await site(join(work, 'drill-spool'), `    postgres: { url: "${pgPeer.url}", table: drill_readings, retry_min: 200ms, retry_max: 2s, max_rate: 0 }`);
    await subscribeSession(broker.url, 'bench-gw-drill', drillTopic);
    const drill = generate(DRILL_MESSAGES, 'drill', 23);
    const expected = new Set<string>();
    for (const m of drill) for (const r of JSON.parse(m.payload) as Array<{ meter_id: string; timestamp: number }>) expected.add(`${r.meter_id}@${r.timestamp}`);
    let live = spawnRole('live');
    await run(live, { url: broker.url, topic: drillTopic, clientId: 'bench-gw-drill', site: drillSite }, 60_000, 'ready');
    const half = Math.floor(drill.length / 2);
    await publishAll(broker.url, drill.slice(0, half));
    await sleep(300);
    live.proc.kill('SIGKILL');
    await live.stop();
    log('(c) gateway killed (SIGKILL) mid-stream; restarting');
    const rest = publishAll(broker.url, drill.slice(half));
    live = spawnRole('live');
    await run(live, { url: broker.url, topic: drillTopic, clientId: 'bench-gw-drill', site: drillSite }, 60_000, 'ready');
    await rest;
    const deadline = Date.now() + 300_000;
    let rows = { n: 0, d: 0 };
    while (Date.now() < deadline) {
      const got = await pgPeer.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT (meter_id, ts)) AS d FROM drill_readings').catch(() => [{ n: '0', d: '0' }]);
      rows = { n: Number(got[0]?.n ?? 0), d: Number(got[0]?.d ?? 0) };
      if (rows.d >= expected.size) break;
      await sleep(500);
    }
    await live.stop();
    const lost = expected.size - rows.d;
    log(`(c) drill: ${expected.size} acknowledged readings, ${rows.d} distinct in PostgreSQL, ${rows.n - rows.d} duplicate rows`);

    const result = {
      spool_commit_readings_per_s: Math.round(spooled['readings_per_s'] as number),
      spool_append_only_readings_per_s: Math.round(fill['readings_per_s'] as number),
      ingest_without_spool_readings_per_s: Math.round(plain['readings_per_s'] as number),
      ingest_ratio_with_spool: Number(((spooled['readings_per_s'] as number) / (plain['readings_per_s'] as number)).toFixed(3)),
      drain_readings_per_s: drain,
      backlog_readings: backlog,
      rss_mb_max: Math.round(rssMax),
      rss_anon_mb_max: Math.round(rssAnonMax),
      spool_bytes_per_reading: Number(bytesPerReading.toFixed(1)),
      lost,
      duplicates_postgres: rows.n - rows.d,
      drill_readings: expected.size,
      goals: { spool_commit_readings_per_s: 150_000, ingest_ratio_with_spool: 0.9, drain_readings_per_s: { postgres: 50_000, influx: 50_000 }, rss_mb_max: 150, lost: 0 },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.all([broker.stop(), pgPeer.stop(), vm.stop(), otlp.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

if (role !== undefined) {
  child();
} else {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`bench:delivery failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
