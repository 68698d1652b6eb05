// The influx sink's HTTP side against a local line-protocol receiver (test/helpers/line-protocol-
// receiver.ts) that records what a real InfluxDB would be sent: `api: v2` with a token (InfluxDB
// 1.x from Debian has no v2 API; sinks.test.ts sends v2 to VictoriaMetrics), TLS with a test CA and
// credentials read from files, an upstream that answers 413 to large bodies (split, nothing
// dropped), the catch-up rate limit (a backlog drains at max_rate, not faster), and the retry
// schedule (exponential backoff with full jitter: spaced by the drawn delays, never hammering).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SiteConfig } from '../../src/config/site-types.js';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import { lineFor } from '../../src/delivery/sinks/influx.js';
import { sinkBalance } from '../../src/delivery/totals.js';
import type { ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { LineProtocolReceiver } from '../helpers/line-protocol-receiver.js';
import { makeTestPki, type TestPki } from '../mqtt/test-ca.js';
import { hasPeer } from '../peers.js';
import { deliverySite, seededReadings, waitFor } from './fixture.js';

/** The documented mapping (docs/delivery.md), written out here independently of the sink's code. */
const line = (r: ValidReading): string =>
  `meter_reading,meter_id=${r.meter_id},region=${r.region},site=site-d kwh=${r.kwh},voltage=${r.voltage},current=${r.current},power_factor=${r.power_factor},power_w=${r.power_w} ${r.timestamp_ms}`;

describe.skipIf(!hasPeer('openssl'))('influx sink over HTTP(S): v2 token, TLS and credentials from files, 413, rate limit, backoff', () => {
  let pki: TestPki;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    pki = makeTestPki();
    writeFileSync(join(pki.dir, 'influx.token'), 'tok-7f3a\n');
    writeFileSync(join(pki.dir, 'influx.password'), 's3cret pass\n');
  }, 60_000);
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => pki?.cleanup());

  async function receiver(tls = false): Promise<LineProtocolReceiver> {
    const r = await LineProtocolReceiver.start(tls ? { certFile: pki.serverCert, keyFile: pki.serverKey } : undefined);
    cleanups.push(() => r.stop());
    return r;
  }

  async function service(sinkYaml: string, random?: () => number): Promise<{ s: DeliveryService; site: SiteConfig }> {
    const { site, cleanup } = await deliverySite(sinkYaml);
    const meterProvider = new MeterProvider();
    const s = new DeliveryService({
      config: site.delivery!, site, env: {}, meter: meterProvider.getMeter('test'), clock: systemClock, logger: silentLogger(),
      ...(random ? { random } : {}),
    });
    await s.start();
    cleanups.push(async () => { await s.stop(); await meterProvider.shutdown(); cleanup(); });
    return { s, site };
  }

  const drained = (s: DeliveryService, ms = 30_000): Promise<void> =>
    waitFor(() => (s.status()?.sinks ?? []).every((x) => x.pending === 0), ms, () => JSON.stringify(s.status()?.sinks));

  function balanced(s: DeliveryService): void {
    for (const x of s.status()?.sinks ?? []) expect(sinkBalance(s.spoolForTests!.sinkTotals(x.name)!, x.pending), x.name).toBe(0);
  }

  it('api v2 over TLS: /api/v2/write with org, bucket and ms precision, Authorization: Token from token_file, the exact lines', async () => {
    const rx = await receiver(true);
    const { s } = await service(`influx: { url: "${rx.url}", api: v2, org: ems-org, bucket: readings, token_file: ${join(pki.dir, 'influx.token')}, tls: { ca_file: ${pki.caFile} }, batch_max_wait: 20ms, max_rate: 0 }`);
    const readings = seededReadings(1200, 3);
    await s.write(readings.slice(0, 600));
    await s.write(readings.slice(600));
    await drained(s);
    expect(new Set(rx.writes.map((w) => w.url))).toEqual(new Set(['/api/v2/write?org=ems-org&bucket=readings&precision=ms']));
    expect(new Set(rx.writes.map((w) => `${w.method} ${w.headers['authorization']} ${w.headers['content-type']}`)))
      .toEqual(new Set(['POST Token tok-7f3a text/plain; charset=utf-8']));
    expect(rx.accepted()).toEqual(readings.map(line));
    expect(s.status()?.sinks[0]).toMatchObject({ delivered_total: 1200, rejected_total: 0, pending: 0 });
    balanced(s);
  });

  it('api v1 over TLS with basic auth from password_file; a server whose CA is not trusted is a tls failure, retried, nothing lost', async () => {
    const rx = await receiver(true);
    const { s } = await service(`influx: { url: "${rx.url}", database: ems, username: gw, password_file: ${join(pki.dir, 'influx.password')}, tls: { ca_file: ${pki.caFile} }, batch_max_wait: 20ms, max_rate: 0 }`);
    const readings = seededReadings(300, 4);
    await s.write(readings);
    await drained(s);
    expect(new Set(rx.writes.map((w) => `${w.url} ${w.headers['authorization']}`)))
      .toEqual(new Set([`/write?db=ems&precision=ms Basic ${Buffer.from('gw:s3cret pass').toString('base64')}`]));
    expect(rx.accepted()).toEqual(readings.map(line));

    const { s: wrong } = await service(`influx: { url: "${rx.url}", database: ems, tls: { ca_file: ${pki.wrongCaFile} }, retry_min: 50ms, retry_max: 200ms, batch_max_wait: 20ms, max_rate: 0 }`);
    const before = rx.writes.length;
    await wrong.write(readings.slice(0, 10));
    await waitFor(() => (wrong.status()?.sinks[0]?.consecutive_failures ?? 0) >= 2, 10_000, 'two TLS failures');
    const st = wrong.status()?.sinks[0];
    expect(st?.state).toBe('retrying');
    expect(st?.last_error).toMatch(/^tls: /);
    expect(st).toMatchObject({ pending: 10, delivered_total: 0 });
    expect(rx.writes.length).toBe(before); // the handshake failed: nothing reached the server
  });

  it('HTTP 413: the batch is split until each part fits; every reading delivered, none rejected', async () => {
    const rx = await receiver();
    rx.respond = (lines) => (lines.length > 100 ? 413 : 204);
    const { s } = await service(`influx: { url: "${rx.url}", database: ems, batch_max_size: 1000, batch_max_wait: 20ms, max_rate: 0 }`);
    const readings = seededReadings(1000, 5);
    await s.write(readings);
    await drained(s);
    expect(rx.writes.filter((w) => w.status === 413).length).toBeGreaterThan(0);
    expect(rx.writes.filter((w) => w.status === 204).every((w) => w.lines.length <= 100)).toBe(true);
    expect(rx.accepted()).toEqual(readings.map(line));
    const t = s.spoolForTests!.sinkTotals('influx');
    expect(t).toMatchObject({ delivered: 1000, rejected: {}, evicted: 0 });
    balanced(s);
  });

  it('catch-up rate limit: a 3,000-reading backlog drains at max_rate 1,000/s (one second of burst), not in one rush', async () => {
    const rx = await receiver();
    let up = false;
    rx.respond = () => (up ? 204 : 503);
    const { s } = await service(`influx: { url: "${rx.url}", database: ems, batch_max_size: 250, batch_max_wait: 10ms, max_rate: 1000, retry_min: 100ms, retry_max: 200ms }`);
    const readings = seededReadings(3000, 6);
    await s.write(readings);
    await waitFor(() => rx.writes.length >= 2, 10_000, 'the upstream refused twice');
    up = true;
    await drained(s, 60_000);
    const ok = rx.writes.filter((w) => w.status === 204);
    expect(ok.flatMap((w) => w.lines)).toEqual(readings.map(line));
    // Token bucket: by the time of each accepted request, at most 1 s of burst + 1,000/s since the
    // first one (+ the request itself) can have gone out. A loaded machine only makes it slower.
    const t0 = ok[0]!.atMs;
    let sent = 0;
    for (const w of ok) {
      sent += w.lines.length;
      expect(sent, `${sent} readings by ${Math.round(w.atMs - t0)} ms`).toBeLessThanOrEqual(1000 + (w.atMs - t0) + 250);
    }
    // 3,000 readings at 1,000/s with 1,000 of burst: at least ~2 s from the first accepted request to the last.
    expect(ok[ok.length - 1]!.atMs - t0).toBeGreaterThanOrEqual(1500);
    balanced(s);
  }, 90_000);

  it('retries are spaced by exponential backoff with full jitter (the drawn delays), never hammering; the batch is delivered after', async () => {
    const rx = await receiver();
    let up = false;
    rx.respond = () => (up ? 204 : 503);
    // The jitter draws, in order: each retry waits max(retry_min/2, draw x min(retry_max, retry_min x 2^attempt)).
    const draws = [0.9, 0.2, 0.95, 0.6, 0.1, 0.99, 0.5];
    let i = 0;
    const random = (): number => draws[i++ % draws.length] as number;
    const { s } = await service(`influx: { url: "${rx.url}", database: ems, batch_max_wait: 10ms, max_rate: 0, retry_min: 200ms, retry_max: 1600ms }`, random);
    await s.write(seededReadings(50, 8));
    await waitFor(() => rx.writes.length >= draws.length + 1, 30_000, `${draws.length + 1} attempts`);
    up = true;
    await drained(s);
    const failed = rx.writes.filter((w) => w.status === 503).slice(0, draws.length + 1);
    const expected = draws.map((d, attempt) => Math.max(100, Math.floor(d * Math.min(1600, 200 * 2 ** attempt))));
    expect(expected).toEqual([180, 100, 760, 960, 160, 1584, 800]);
    const gaps = failed.slice(1).map((w, k) => w.atMs - failed[k]!.atMs);
    gaps.forEach((g, k) => {
      // Never earlier than the drawn delay (a timer may fire up to ~1 ms early); later only by the machine's load.
      expect(g, `gap ${k}`).toBeGreaterThanOrEqual(expected[k]! - 2);
      expect(g, `gap ${k}`).toBeLessThan(expected[k]! + 1500);
    });
    // Jitter: the delays follow the draws, not a fixed doubling (the 5th is shorter than the 4th).
    expect(gaps[4]!).toBeLessThan(gaps[3]!);
    expect(s.status()?.sinks[0]).toMatchObject({ delivered_total: 50, pending: 0 });
  }, 60_000);
});

describe('influx line protocol mapping', () => {
  it('meter readings and device samples, tags escaped, non-finite fields left out, timestamps in ms', () => {
    const cfg = { measurement: 'meter_reading', device_measurement: 'device_sample' };
    expect(lineFor({ kind: 'meter', meter_id: 'm 1,a=b', region: 'north', timestamp_ms: 1767225600000.4, kwh: 1234.5, voltage: 231.2, current: Number.NaN, power_factor: 0.97, power_w: 920.4, arrived_ms: 0 }, 'sub station', cfg))
      .toBe('meter_reading,meter_id=m\\ 1\\,a\\=b,region=north,site=sub\\ station kwh=1234.5,voltage=231.2,power_factor=0.97,power_w=920.4 1767225600000');
    expect(lineFor({ kind: 'device', device_id: 'inverter-1', zone: 'zone-a', role: 'inverter', timestamp_ms: 1767225600000, arrived_ms: 0, values: { ac_power: 15000, 'odd key': 1, bad: Number.POSITIVE_INFINITY } }, 'substation-7', cfg))
      .toBe('device_sample,device_id=inverter-1,role=inverter,site=substation-7,zone=zone-a ac_power=15000,odd\\ key=1 1767225600000');
    expect(lineFor({ kind: 'device', device_id: 'd', zone: 'z', role: '', timestamp_ms: 1, arrived_ms: 0, values: { x: Number.NaN } }, 's', cfg)).toBeUndefined();
  });
});
