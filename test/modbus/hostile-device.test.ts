// A hostile Modbus/TCP device, fully under the test's control: each misbehaviour below runs on its
// own raw server where unit 1 misbehaves and units 2 and 3, behind the same connection, answer
// correctly. Every server, and a well-behaved control server with the same three units, is polled
// by one PollerSet in the same run. For each misbehaviour: no wrong value ever reaches the snapshot
// (what the gauges export), the error lands on unit 1 and nowhere else, units 2 and 3 keep at
// least 90 % of the control's good cycles, and the process never crashes (test/setup/no-unhandled.ts).
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import type { DeviceConfig } from '../../src/config/site-types.js';
import { TransactionIds } from '../../src/modbus/framing-mbap.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import type { ModbusErrorType } from '../../src/modbus/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import {
  answerFromMap, exceptionFrame, mapValue, mbap, registersFrame, startRawServer, waitFor, type RawRequest, type RawServer,
} from './endpoint-helpers.js';
import { flatten, testMeter, testSite, type Point } from './poller-fixtures.js';

const HOSTILE = [7777, 0xdead];
/**
 * Seeds the transaction ids, so the run is deterministic: with random keys a device guessing a
 * nearby transaction id is right about once in 65,535 tries (the protocol has 16 bits), which
 * would make this suite fail once in thousands of runs. The first test checks the property the
 * scenarios rely on for this seed: no id within +1..+4 of one of the five ids before it.
 */
const TID_SEED = (): number => 0.1;
// Generous timing: a busy CI machine must not make healthy units time out. A unit that times out
// twice is backed off for longer than the run, so its neighbours' rate is measured without it.
const INTERVAL_MS = 500;
const TIMEOUT_MS = 400;

interface Ctx { lastTid: number | undefined; n: number; timers: Set<ReturnType<typeof setTimeout>>; dribbling: number }
type Victim = (r: RawRequest, sock: net.Socket, ctx: Ctx) => void;

interface Scenario {
  name: string;
  /** How the device answers a request for unit 1. */
  victim: Victim;
  /** 'ok': unit 1 reads right values with no error; else the error types unit 1 must show (at least one). */
  expect: 'ok' | ModbusErrorType[];
  strays?: boolean;
  malformed?: boolean;
  /**
   * Where bytes that are no frame are charged (ems.modbus.errors{error_type="garbage"}): to unit 1
   * (they came while its request was in flight), to the endpoint only (no request in flight), or to
   * whichever request is in flight when they land (unit 1's next, a neighbour's, or none), or to
   * unit 1 first and then whoever (a dribble that outlasts unit 1's timeout). Unset: no garbage anywhere.
   */
  garbage?: 'victim' | 'endpoint' | 'whoever' | 'victim_then_whoever';
}

const good = (r: RawRequest): Buffer => registersFrame(r, Array.from({ length: r.count }, (_, i) => mapValue(r.unitId, r.address + i)));
const hostile = (r: RawRequest, over: Partial<RawRequest> = {}): Buffer => registersFrame({ ...r, ...over }, Array.from({ length: r.count }, (_, i) => HOSTILE[i % 2] ?? 0));
/** A register answer with its MBAP length field overwritten. */
const withLength = (frame: Buffer, length: number): Buffer => { const f = Buffer.from(frame); f.writeUInt16BE(length, 4); return f; };
const later = (ctx: Ctx, ms: number, fn: () => void): void => {
  const t = setTimeout(() => { ctx.timers.delete(t); fn(); }, ms);
  ctx.timers.add(t);
};
const write = (sock: net.Socket, ...frames: Buffer[]): void => { if (!sock.destroyed) sock.write(Buffer.concat(frames)); };
const GARBAGE = Buffer.from([0xff, 0x00, 0x13, 0x37, 0x42, 0x99, 0x01]);
/**
 * Sends `frame` in pieces cut at `cuts`, each `everyMs` after the previous one was written. A new
 * dribble stops the one before (the device moves on): pieces of two answers never interleave,
 * which no client could detect on Modbus TCP (it has no checksum).
 */
function dribble(ctx: Ctx, sock: net.Socket, frame: Buffer, everyMs: number, cuts = Array.from({ length: frame.length }, (_, i) => i + 1)): void {
  const id = ++ctx.dribbling;
  const step = (k: number, from: number): void => {
    if (ctx.dribbling !== id || k >= cuts.length) return;
    const to = cuts[k] ?? frame.length;
    write(sock, frame.subarray(from, to));
    next(() => step(k + 1, to));
  };
  // 0: each piece in its own turn of the event loop (and TCP segment), without a timer's latency.
  const next = (fn: () => void): void => { if (everyMs > 0) later(ctx, everyMs, fn); else setImmediate(fn); };
  next(() => step(0, 0));
}

const EXCEPTIONS: Array<[number, ModbusErrorType]> = [
  [1, 'exception_illegal_function'], [2, 'exception_illegal_address'], [3, 'exception_illegal_value'], [4, 'exception_device_failure'],
  [5, 'exception_busy'], [6, 'exception_busy'], [10, 'exception_gateway_path'], [11, 'exception_gateway_target'], [42, 'exception_other'],
];

const SCENARIOS: Scenario[] = [
  { name: 'answer tagged with another unit id', victim: (r, s) => write(s, hostile(r, { unitId: 2 })), expect: ['timeout'], strays: true },
  { name: 'answer tagged with unit id 0', victim: (r, s) => write(s, hostile(r, { unitId: 0 })), expect: ['timeout'], strays: true },
  { name: "another unit's answer first, then the right one", victim: (r, s) => write(s, hostile(r, { unitId: 3 }), good(r)), expect: 'ok', strays: true },
  { name: 'answer with another function code', victim: (r, s) => write(s, hostile(r, { fc: 4 })), expect: ['timeout'], strays: true },
  { name: 'exception tagged with another unit id', victim: (r, s) => write(s, exceptionFrame({ ...r, unitId: 3 }, 4)), expect: ['timeout'], strays: true },
  { name: 'exception of another function code', victim: (r, s) => write(s, exceptionFrame({ ...r, fc: 4 }, 2)), expect: ['timeout'], strays: true },
  { name: 'unsolicited frame with the next transaction id, same segment as a good answer', victim: (r, s) => write(s, good(r), hostile({ ...r, tid: (r.tid + 1) & 0xffff, unitId: 2 })), expect: 'ok', strays: true },
  { name: 'unsolicited frame with the next transaction id, right after a good answer', victim: (r, s, c) => { write(s, good(r)); later(c, 0, () => write(s, hostile({ ...r, tid: (r.tid + 1) & 0xffff, unitId: 2 }), hostile({ ...r, tid: (r.tid + 1) & 0xffff, unitId: 3 }))); }, expect: 'ok', strays: true },
  { name: 'unsolicited frames with nearby transaction ids between requests', victim: (r, s, c) => { write(s, good(r)); for (let k = 1; k <= 4; k++) later(c, 5 * k, () => write(s, hostile({ ...r, tid: (r.tid + k) & 0xffff, unitId: 1 + (k % 3) }))); }, expect: 'ok', strays: true },
  { name: 'garbage before the answer, same segment', victim: (r, s) => write(s, GARBAGE, good(r)), expect: 'ok', malformed: true, garbage: 'victim' },
  { name: 'garbage after the answer, same segment', victim: (r, s) => write(s, good(r), GARBAGE), expect: 'ok', malformed: true, garbage: 'victim' },
  { name: 'garbage between a good answer and its duplicate', victim: (r, s) => write(s, good(r), GARBAGE, good(r)), expect: 'ok', malformed: true, strays: true, garbage: 'victim' },
  { name: 'garbage after the answer, in its own segment (lands during the next request)', victim: (r, s, c) => { write(s, good(r)); later(c, 1, () => write(s, GARBAGE)); }, expect: 'ok', malformed: true, garbage: 'whoever' },
  { name: 'garbage instead of an answer', victim: (r, s) => write(s, GARBAGE), expect: ['timeout'], malformed: true, garbage: 'victim' },
  { name: '64 KiB of noise instead of an answer', victim: (r, s, c) => { c.n += 1; const junk = Buffer.alloc(65_536); for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + c.n * 7) & 0xff; write(s, junk); }, expect: ['timeout'], malformed: true, garbage: 'victim' },
  { name: 'answer split into three segments', victim: (r, s, c) => dribble(c, s, good(r), 5, [3, 9, 13]), expect: 'ok' },
  { name: 'answer in four segments, cut inside the header (within the timeout)', victim: (r, s, c) => dribble(c, s, good(r), 0, [2, 5, 9, 13]), expect: 'ok' },
  { name: 'slowloris: answer dribbled one byte every 40 ms (past the timeout)', victim: (r, s, c) => dribble(c, s, hostile(r), 40), expect: ['timeout'] , garbage: 'victim_then_whoever' },
  { name: 'half an answer, then silence', victim: (r, s) => write(s, good(r).subarray(0, 6)), expect: ['timeout'], malformed: true, garbage: 'victim' },
  { name: 'stale answer to the previous transaction id and the right one, concatenated', victim: (r, s, c) => { write(s, ...(c.lastTid === undefined ? [] : [hostile({ ...r, tid: c.lastTid })]), good(r)); c.lastTid = r.tid; }, expect: 'ok', strays: true },
  { name: 'answers only to the previous transaction id', victim: (r, s, c) => { if (c.lastTid !== undefined) write(s, hostile({ ...r, tid: c.lastTid })); c.lastTid = r.tid; }, expect: ['timeout'], strays: true },
  { name: 'late answer (after the timeout)', victim: (r, s, c) => later(c, TIMEOUT_MS + 60, () => write(s, hostile(r))), expect: ['timeout'], strays: true },
  { name: 'duplicated answer, same segment', victim: (r, s) => write(s, good(r), good(r)), expect: 'ok', strays: true },
  { name: 'duplicated answer, 10 ms later (lands during the next request)', victim: (r, s, c) => { write(s, good(r)); later(c, 10, () => write(s, hostile(r))); }, expect: 'ok', strays: true },
  { name: 'MBAP length too short', victim: (r, s) => write(s, withLength(good(r), 4)), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'MBAP length too long', victim: (r, s) => write(s, withLength(good(r), 40)), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'MBAP length zero', victim: (r, s) => write(s, withLength(good(r), 0)), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'MBAP length above 260', victim: (r, s) => write(s, withLength(good(r), 300)), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'MBAP length 0xFFFF', victim: (r, s) => write(s, withLength(good(r), 0xffff)), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'protocol id not 0', victim: (r, s) => { const f = good(r); f.writeUInt16BE(1, 2); write(s, f); }, expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'answer for another register count (length and byte count agree)', victim: (r, s) => write(s, registersFrame(r, [7777, 0xdead, 1])), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'byte count too small', victim: (r, s) => write(s, mbap(r.tid, r.unitId, [3, 2, 0x1e, 0x61, 0xde, 0xad])), expect: ['malformed_response'] },
  { name: 'byte count too large', victim: (r, s) => write(s, mbap(r.tid, r.unitId, [3, 8, 0x1e, 0x61, 0xde, 0xad])), expect: ['malformed_response'] },
  { name: 'exception frame with an extra byte', victim: (r, s) => write(s, mbap(r.tid, r.unitId, [0x83, 2, 0])), expect: ['malformed_response'], malformed: true , garbage: 'victim' },
  { name: 'no answer at all (a dead unit)', victim: () => undefined, expect: ['timeout'] },
  ...EXCEPTIONS.map(([code, type]): Scenario => ({ name: `exception ${code}`, victim: (r, s) => write(s, exceptionFrame(r, code)), expect: [type] })),
];

const point = (id: string, address: number): PointDef => ({ id, table: 'holding', address, type: 'uint16', metric: `ems.test.${id}`, unit: '1', role: 'other' });
const PROFILE: DeviceProfile = {
  profile: 'hostile-test', vendor: 'test', model: 'test', kind: 'other', address_base: 0, default_order: 'ABCD',
  quirks: { max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: TIMEOUT_MS, max_connections: 1 },
  points: [point('a', 0), point('b', 1)], controls: [], source: 'hostile-test.yaml',
};

interface Tally { good: number[]; lastReadAt: number; wrong: string[] }
const servers: RawServer[] = [];
const contexts: Ctx[] = [];
const tallies = new Map<string, Tally>();
let metrics: Point[] = [];
let controlGood = 0;
/** Good cycles are compared inside one window: after a warm-up, ending before the last interval (phases differ per endpoint). */
let window: [number, number] = [0, 0];
const goodIn = (id: string): number => (tallies.get(id)?.good ?? []).filter((t) => t >= window[0] && t <= window[1]).length;
const slug = (i: number): string => `s${i}`;

beforeAll(async () => {
  const devices: DeviceConfig[] = [];
  const add = async (prefix: string, victim: Victim | undefined): Promise<void> => {
    const ctx: Ctx = { lastTid: undefined, n: 0, timers: new Set(), dribbling: 0 };
    contexts.push(ctx);
    const server = await startRawServer((r, sock, srv) => {
      if (victim !== undefined && r.unitId === 1) victim(r, sock, ctx);
      else answerFromMap(r, sock, srv);
    });
    servers.push(server);
    for (const unit of [1, 2, 3]) {
      const id = `${prefix}-u${unit}`;
      devices.push({ id, profile: PROFILE.profile, host: '127.0.0.1', port: server.port, unit_id: unit, zone: 'z', poll_interval_ms: INTERVAL_MS, labels: {}, enabled: true });
      tallies.set(id, { good: [], lastReadAt: 0, wrong: [] });
    }
  };
  await add('control', undefined);
  for (const [i, s] of SCENARIOS.entries()) await add(slug(i), s.victim);
  const unitOf = new Map(devices.map((d) => [d.id, d.unit_id]));

  const { provider, reader } = testMeter();
  const set: PollerSet = new PollerSet(testSite(devices, PROFILE), {
    clock: systemClock, logger: silentLogger(), meter: provider.getMeter('hostile'), endpointDefaults: { random: TID_SEED, unitBackoff: { baseMs: 60_000, maxMs: 60_000 } },
    onCycle: (id) => {
      const t = tallies.get(id);
      const unit = unitOf.get(id) ?? 0;
      if (t === undefined) return;
      const values = set.snapshot.values(id);
      for (const [pid, v] of values) {
        const want = mapValue(unit, pid === 'a' ? 0 : 1);
        if (v.value !== want) t.wrong.push(`${pid}=${String(v.value)} (want ${want})`);
      }
      const a = values.get('a');
      if (values.size === 2 && a !== undefined && a.readAtMs > t.lastReadAt) {
        t.good.push(performance.now());
        t.lastReadAt = a.readAtMs;
      }
    },
  });
  try {
    const t0 = performance.now();
    set.start();
    const controls = ['control-u1', 'control-u2', 'control-u3'];
    await waitFor(() => controls.every((c) => (tallies.get(c)?.good.length ?? 0) >= 24), 40_000);
    window = [t0 + 4 * INTERVAL_MS, performance.now() - INTERVAL_MS];
    metrics = flatten((await reader.collect()).resourceMetrics);
    controlGood = Math.min(...controls.map(goodIn));
  } finally {
    await set.stop();
    await provider.shutdown();
  }
}, 60_000);

afterAll(async () => {
  for (const c of contexts) for (const t of c.timers) clearTimeout(t);
  await Promise.all(servers.map((s) => s.close()));
});

function errorsOf(id: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of metrics) {
    if (p.name === 'ems.modbus.errors' && p.attrs['device_id'] === id && p.value > 0) out.set(String(p.attrs['error_type']), p.value);
  }
  return out;
}

/**
 * The errors that remain once what a busy machine alone can cause is set aside: on a loaded CI box
 * a healthy unit may miss a timeout now and then, the control included. Any other error type, or
 * more than one timeout, is the hostile device's doing and stays in. `garbage` is set aside only
 * when the scenario lets it land on whoever is in flight (checked on its own below).
 */
function onlyLoadTimeouts(errors: Map<string, number>, ignoreGarbage = false): Record<string, number> {
  const out = Object.fromEntries(errors);
  if ((out['timeout'] ?? 0) <= 1) delete out['timeout'];
  if (ignoreGarbage) delete out['garbage'];
  return out;
}

function endpointCount(name: string, port: number): number {
  return metrics.find((p) => p.name === name && p.attrs['endpoint'] === `127.0.0.1:${port}`)?.value ?? 0;
}

describe(`hostile Modbus/TCP device: ${SCENARIOS.length} misbehaviours, polled beside a well-behaved control`, () => {
  it('the seeded transaction ids never put a guessable id (last + 1..4) among the next five', () => {
    const ids = new TransactionIds(TID_SEED);
    const seq = Array.from({ length: 3000 }, () => ids.next());
    const near = seq.filter((t, i) => seq.slice(Math.max(0, i - 5), i).some((prev) => ((t - prev + 0x10000) % 0x10000) >= 1 && ((t - prev + 0x10000) % 0x10000) <= 4));
    expect(near).toEqual([]);
    expect(new Set(seq).size).toBe(seq.length);
  });

  it('the control polled normally (the yardstick of the neighbours)', () => {
    expect(controlGood).toBeGreaterThanOrEqual(16);
    for (const u of [1, 2, 3]) {
      expect(onlyLoadTimeouts(errorsOf(`control-u${u}`)), `errors of control unit ${u}`).toEqual({});
      expect(tallies.get(`control-u${u}`)?.wrong).toEqual([]);
    }
  });

  it.each(SCENARIOS.map((s, i) => [s.name, i] as const))('%s', (_name, i) => {
    const s = SCENARIOS[i] as Scenario;
    const prefix = slug(i);
    const port = servers[i + 1]?.port ?? 0;
    for (const u of [1, 2, 3]) expect(tallies.get(`${prefix}-u${u}`)?.wrong, `no wrong value on unit ${u}`).toEqual([]);
    const whoever = s.garbage === 'whoever' || s.garbage === 'victim_then_whoever';
    // The neighbours: no error at all (no garbage either: it was never sent while their request
    // was in flight, except where it lands on whoever is), and at least 90 % of the control's good cycles.
    for (const u of [2, 3]) {
      expect(onlyLoadTimeouts(errorsOf(`${prefix}-u${u}`), whoever), `errors of neighbour unit ${u}`).toEqual({});
      expect(goodIn(`${prefix}-u${u}`), `good cycles of unit ${u} vs control ${controlGood}`).toBeGreaterThanOrEqual(0.9 * controlGood);
    }
    const victim = errorsOf(`${prefix}-u1`);
    const garbage = victim.get('garbage') ?? 0;
    if (s.garbage === 'victim' || s.garbage === 'victim_then_whoever') expect(garbage, 'garbage charged to unit 1').toBeGreaterThan(0);
    if (s.garbage === undefined || s.garbage === 'endpoint') expect(garbage, 'no garbage charged to unit 1').toBe(0);
    if (s.expect === 'ok') {
      // Garbage around its answer is counted on unit 1, and its answers are still taken.
      expect(onlyLoadTimeouts(victim, whoever), 'errors of unit 1').toEqual(s.garbage === 'victim' ? { garbage } : {});
      expect(goodIn(`${prefix}-u1`), 'good cycles of unit 1').toBeGreaterThanOrEqual(0.9 * controlGood);
    } else {
      const allowed = new Set<string>([...s.expect, 'unit_backed_off', ...(s.garbage !== undefined && s.garbage !== 'endpoint' ? ['garbage'] : [])]);
      expect(Object.keys(onlyLoadTimeouts(victim)).filter((k) => !allowed.has(k)), 'unexpected error types on unit 1').toEqual([]);
      expect(s.expect.some((k) => (victim.get(k) ?? 0) > 0), `unit 1 shows ${s.expect.join(' or ')}`).toBe(true);
    }
    if (s.strays) expect(endpointCount('ems.modbus.stray_responses', port), 'strays counted').toBeGreaterThan(0);
    if (s.malformed) expect(endpointCount('ems.modbus.malformed_frames', port), 'malformed frames counted').toBeGreaterThan(0);
    // Resynchronised in the stream: nobody was reconnected.
    expect(servers[i + 1]?.accepted).toBe(1);
  });
});
