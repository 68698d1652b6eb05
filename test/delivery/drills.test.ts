// The delivery drills, end to end with real peers started here (mosquitto, PostgreSQL): meters
// publish QoS 1 batches, the gateway spools them and forwards them to PostgreSQL.
//   - PostgreSQL down for 60 s at 2,000 readings/s: nothing lost, the backlog drains, the
//     gateway's anonymous memory stays flat (the backlog is on disk, not in the heap).
//   - kill -9 of the gateway process (`ems-gateway run`) under load, restart: every acknowledged
//     reading ends in PostgreSQL exactly once.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { MeterFleet } from '../../simulators/meter-fleet/fleet.js';
import { startPostgres, type PostgresPeer } from '../../bench/lib/store-peers.js';
import { runFleetProcess } from '../helpers/fleet-process.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry } from '../meters/harness.js';
import { hasPeer } from '../peers.js';
import { startCli } from '../runtime/cli-process.js';
import { deliverySite, newDelivery, waitFor } from './fixture.js';
import { sinkBalance } from '../../src/delivery/totals.js';

const havePeers = hasPeer('postgres') && hasPeer('mosquitto');

/** Resident anonymous memory (heap, buffers): without the spool file pages LMDB maps. */
function rssAnonMb(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** V8's full collection, without starting node with --expose-gc (the flag can be set at run time). */
function fullGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function rowCounts(pgPeer: PostgresPeer, table: string): Promise<{ n: number; d: number }> {
  const rows = await pgPeer.query<{ n: string; d: string }>(`SELECT count(*) AS n, count(DISTINCT (meter_id, ts)) AS d FROM ${table}`).catch(() => [{ n: '0', d: '0' }]);
  return { n: Number(rows[0]?.n ?? 0), d: Number(rows[0]?.d ?? 0) };
}

/** The status URL the last "gateway running" line in `stdout` names. */
function statusUrl(stdout: string): string {
  const url = /"status_url":"([^"]+)"/.exec(stdout.split('gateway running').slice(-2).join(''))?.[1];
  if (url === undefined) throw new Error(`no status_url in the gateway's output: ${stdout.slice(-2000)}`);
  return url;
}

describe.skipIf(!havePeers)('delivery drills (mosquitto -> spool -> PostgreSQL)', () => {
  let pgPeer: PostgresPeer;
  let broker: Mosquitto;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    [pgPeer, broker] = await Promise.all([startPostgres({ fsync: false }), startMosquitto()]);
  }, 60_000);
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await Promise.all([pgPeer?.stop(), broker?.stop()]);
  }, 60_000);

  it('PostgreSQL down for 60 s at 2,000 readings/s: 0 lost, the backlog drains, memory stays flat', async () => {
    const { site, cleanup } = await deliverySite(`postgres: { url: "${pgPeer.url}", table: outage_readings, retry_min: 200ms, retry_max: 2s, max_rate: 0 }`);
    const { service, meterProvider } = newDelivery(site);
    await service.start();
    const tel = new TestTelemetry();
    const ingest = new MeterIngest({ mqtt: mqttConfig(broker.url), clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink: service });
    let stopped = false;
    const stopAll = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await ingest.stop(); await service.stop(); await meterProvider.shutdown(); await tel.shutdown(); cleanup();
    };
    cleanups.push(stopAll);
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 10_000, 'subscribed');
    // Prepare the table while PostgreSQL is up, then take it down.
    await waitFor(() => service.status()?.sinks[0]?.state === 'idle', 20_000, 'sink ready');
    await pgPeer.stopServer();
    const samples: number[] = [];
    // Each second: the live heap and buffers after a full GC, against the backlog at that moment.
    // (The test's in-memory span exporter is emptied first: it is the test's, not the gateway's.)
    const gc = fullGc();
    const heap: Array<{ backlog: number; mb: number }> = [];
    const sampler = setInterval(() => {
      samples.push(rssAnonMb());
      tel.spans.reset();
      gc();
      const mu = process.memoryUsage();
      heap.push({ backlog: service.status()?.sinks[0]?.pending ?? 0, mb: (mu.heapUsed + mu.external) / 2 ** 20 });
    }, 1000);
    cleanups.push(() => clearInterval(sampler));
    // 20 messages/s of 100 readings = 2,000 readings/s for 60 s, from a process of its own: the
    // heap measured here is the gateway's, not the publisher's (test/helpers/fleet-process.ts).
    const fleet = runFleetProcess(['--url', broker.url, '--protocol', '5', '--meters', '2000', '--seed', '31', '--batch', '100', '--messages', '1200', '--rate', '20', '--duration-ms', '90000'], 120_000);
    cleanups.push(() => fleet.kill());
    const report = await fleet.report;
    clearInterval(sampler);
    expect(report.publish_errors).toBe(0);
    await waitFor(() => ingest.status().readings_ingested >= report.expected.ingested, 30_000, 'every reading spooled');
    const during = service.status()?.sinks[0];
    expect(during?.state).not.toBe('idle');
    expect(during?.consecutive_failures).toBeGreaterThan(0);
    expect(during?.pending).toBe(report.expected.ingested);
    expect(during?.oldest_pending_age_s).toBeGreaterThan(50);
    await pgPeer.startServer();
    await waitFor(() => service.status()?.sinks[0]?.pending === 0, 120_000, () => JSON.stringify(service.status()?.sinks));
    const rows = await rowCounts(pgPeer, 'outage_readings');
    expect(rows).toEqual({ n: report.expected.ingested, d: report.expected.ingested });
    const t = service.spoolForTests?.sinkTotals('postgres');
    expect(t?.delivered).toBe(report.expected.ingested);
    expect(sinkBalance(t!, 0)).toBe(0);
    // The backlog of 120,000 readings was on disk: the live heap and buffers after a full GC did not
    // grow with it. Held in memory, a reading costs at least ~130 bytes of heap (an object of nine
    // fields, its meter id string, an array slot), about 1.3 MB per 10,000 readings; encoded in
    // Buffers, 82 bytes (0.8 MB per 10,000, counted in `external`). What does grow with the backlog
    // is the spool's in-memory index, ~41 bytes per committed entry (here one 100-reading message
    // each: 0.004 MB per 10,000), and, less and less, compiled code. From the first seconds with
    // 10,000 readings pending to the last (the median of five samples at each end: buffers in
    // transit move one sample by up to 0.5 MB), the growth must stay below 0.2 MB per 10,000.
    // Measured on a loaded 2-core machine (load 7-9): 0.051-0.093 MB per 10,000 (docs/delivery.md,
    // "Memory during an outage"). While the fleet published from this process it was 0.08-0.46
    // (0.38 with this estimator; the check fails then): mqtt-packet keeps, per distinct packet
    // length below 16 KiB it encodes, a 1-3 byte slice of Node's shared 8 KiB Buffer pool, and the
    // fleet's 1,200 messages have ~700 lengths. 2.2 MB per 10,000 when the test also kept a copy of
    // each reading in an array.
    const ends = (xs: typeof heap): { backlog: number; mb: number } => {
      const mbs = xs.map((h) => h.mb).sort((a, b) => a - b);
      return { backlog: xs.reduce((a, h) => a + h.backlog, 0) / Math.max(1, xs.length), mb: mbs[mbs.length >> 1] ?? 0 };
    };
    const from = heap.findIndex((h) => h.backlog >= 10_000);
    expect(from).toBeGreaterThanOrEqual(0);
    const first = ends(heap.slice(from, from + 5));
    const lastSample = ends(heap.slice(-5));
    const grownReadings = lastSample.backlog - first.backlog;
    expect(grownReadings).toBeGreaterThan(80_000);
    const mbPer10k = (lastSample.mb - first.mb) / (grownReadings / 10_000);
    expect(mbPer10k, `heap + buffers after GC grew ${mbPer10k.toFixed(3)} MB per 10,000 readings of backlog (${JSON.stringify([first, lastSample])})`).toBeLessThan(0.2);
    // And the resident anonymous memory stayed flat too (the first seconds include start-up).
    const half = Math.floor(samples.length / 2);
    const firstMax = Math.max(...samples.slice(2, half));
    const secondMax = Math.max(...samples.slice(half));
    expect(samples.length).toBeGreaterThan(40);
    expect(secondMax - firstMax).toBeLessThan(40);
    await stopAll();
  }, 240_000);

  it('kill -9 of the gateway under load, restart: every acknowledged reading in PostgreSQL exactly once', async () => {
    // A broker of its own, so nothing the outage drill left queued on the shared one is in play.
    const own = await startMosquitto();
    cleanups.push(() => own.stop());
    const broker = own;
    const { dir, cleanup } = await deliverySite(`postgres: { url: "${pgPeer.url}" }`);
    cleanups.push(cleanup);
    const siteFile = join(dir, 'kill-site.yaml');
    writeFileSync(siteFile, [
      'version: 1', 'site: { id: kill-drill, region: north, nominal_frequency_hz: 50 }',
      `mqtt: { url: "${broker.url}", client_id: kill-drill-gw, meters: { topics: ["drill/#"], region_topic_level: 1, regions: [north, south] } }`,
      'delivery:', `  spool: { directory: ${join(dir, 'kill-spool')} }`,
      `  sinks: { postgres: { url: "${pgPeer.url}", table: kill_readings, retry_min: 100ms, retry_max: 1s, max_rate: 0 } }`,
      'telemetry: { enabled: false }', 'status: { enabled: true, port: 0 }', '',
    ].join('\n'));
    const run = (): ReturnType<typeof startCli> => startCli(['run', '--config', siteFile], { LOG_LEVEL: 'info' });
    let gw = run();
    cleanups.push(() => gw.kill('SIGKILL'));
    await gw.waitFor(/gateway running/, 30_000);
    // "gateway running" comes before the broker confirmed the subscription. The gateway's first
    // session does not exist until then: what the fleet published before it went to nobody (a
    // loaded machine made this drill a few messages short that way).
    await gw.waitFor(/"msg":"subscribed"/, 30_000);
    let killed = false;
    const fleet = new MeterFleet({
      url: broker.url, clientId: 'kill-fleet', protocolVersion: 5, meters: 1000, seed: 41, batchSize: 50, messages: 1200, rate: 200, topicPrefix: 'drill', regions: ['north', 'south'],
      onProgress: async (sent) => {
        if (sent === 500 && !killed) {
          killed = true;
          gw.kill('SIGKILL');
          await gw.exited();
          gw = run();
        }
      },
    });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    expect(killed).toBe(true);
    expect(report.publish_errors).toBe(0);
    await gw.waitFor(/gateway running/, 30_000);
    let last = { n: 0, d: 0 };
    let status = '';
    const url = statusUrl(gw.stdout());
    await waitFor(async () => {
      last = await rowCounts(pgPeer, 'kill_readings');
      status = await fetch(`${url}status`).then((r) => r.text()).catch(() => '');
      return last.d >= report.expected.ingested;
    }, 120_000, () => `every reading in PostgreSQL (${last.d} of ${report.expected.ingested}); status: ${status.replace(/\s+/g, " ").slice(0, 4000)}`);
    const rows = await rowCounts(pgPeer, 'kill_readings');
    expect(rows).toEqual({ n: report.expected.ingested, d: report.expected.ingested });
    gw.kill('SIGTERM');
    expect(await gw.exited()).toBe(0);
  }, 240_000);
});
