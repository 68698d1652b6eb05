// The spool on a real LMDB store in a temp folder: commits, positions, deletion once every sink
// confirmed, the per-sink invariant, both full policies, corrupt records, and reopening.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeterRecord } from '../../src/delivery/records.js';
import { Spool, type SpoolOptions } from '../../src/delivery/spool.js';
import { LmdbSpoolStore, type SpoolStore } from '../../src/delivery/spool-store.js';
import { sinkBalance } from '../../src/delivery/totals.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { ManualClock } from '../runtime/manual-clock.js';

// ManualClock's wall clock starts here; readings arrive "now" (the age bound is one day).
const T0 = new ManualClock().now();
const dirs: string[] = [];
const spools: Spool[] = [];
afterEach(async () => {
  for (const s of spools.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ems-spool-'));
  dirs.push(d);
  return d;
}

export function meterRecords(n: number, start = 0, clockMs = T0): MeterRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'meter' as const, meter_id: `m-${start + i}`, region: i % 2 ? 'north' : 'south', timestamp_ms: clockMs + start + i,
    kwh: 1000 + i / 8, voltage: 230.5, current: 4.25, power_factor: 0.97, power_w: 950.5, arrived_ms: clockMs,
  }));
}

function openSpool(dir: string, clock: ManualClock, o: Partial<SpoolOptions> = {}, store?: SpoolStore): Spool {
  const s = Spool.open(store ?? new LmdbSpoolStore(dir), { maxBytes: 1 << 30, maxAgeMs: 86_400_000, policy: 'backpressure', sinks: ['a', 'b'], clock, logger: silentLogger(), ...o });
  spools.push(s);
  return s;
}

describe('spool', () => {
  it('commits batches, reads them per sink in order, deletes an entry once both sinks confirmed it', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const s = openSpool(dir, clock);
    await s.append(meterRecords(100, 0));
    await s.append(meterRecords(50, 100));
    const a = s.read('a', 120);
    expect(a.records.map((r) => r.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i));
    expect(a.records[7]?.record).toEqual(meterRecords(100, 0)[7]);
    expect(await s.confirm('a', 0, a.next)).toBe(120);
    expect(s.state().entries).toBe(2); // b has confirmed nothing
    const b = s.read('b', 1000);
    expect(b.next).toBe(150);
    await s.confirm('b', 0, b.next);
    expect(s.state().entries).toBe(1); // [100,150) still waits for a
    expect(s.pending('a')).toBe(30);
    for (const name of ['a', 'b']) expect(sinkBalance(s.sinkTotals(name)!, s.pending(name))).toBe(0);
  });

  it('holds the backlog on disk: its in-memory index costs under 56 bytes per committed entry', async () => {
    // One entry per commit, and a commit per message when messages arrive apart: with one reading
    // per message, 82 bytes an entry (an object per entry) was as much as the reading on disk
    // (docs/delivery.md, "Memory during an outage"); in columns of numbers it is about 40.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = (): number => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.external; };
    const s = openSpool(tempDir(), new ManualClock());
    const one = meterRecords(1);
    await s.append(one);
    const before = heap();
    const n = 100_000;
    // 2,000 appends issued in one turn commit in one transaction: 50 commits of 2,000 entries.
    for (let i = 0; i < n; i += 2000) await Promise.all(Array.from({ length: 2000 }, () => s.append(one)));
    const perEntry = (heap() - before) / n;
    expect(s.state().entries).toBe(n + 1);
    expect(s.pending('a')).toBe(n + 1);
    expect(perEntry, `${perEntry.toFixed(1)} bytes per entry`).toBeLessThan(56);
    // And it is released once every sink is past the entries.
    for (const sink of ['a', 'b']) await s.confirm(sink, 0, s.headSeq);
    expect(s.state().entries).toBe(0);
    expect((heap() - before) / n).toBeLessThan(10);
  }, 60_000);

  it('keeps positions, totals and the backlog across a reopen', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const s = openSpool(dir, clock);
    await s.append(meterRecords(10), { ingested: new Map([['north', 5], ['south', 5]]), dropped: new Map([['north', new Map([['duplicate', 2]])]]) });
    await s.confirm('a', 0, 4);
    await s.close();
    spools.length = 0;
    const again = openSpool(dir, clock);
    expect(again.position('a')).toBe(4);
    expect(again.position('b')).toBe(0);
    expect(again.read('a', 100).records.map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    const t = again.totalsSnapshot();
    expect(t.ingested).toEqual({ north: 5, south: 5 });
    expect(t.dropped).toEqual({ north: { duplicate: 2 } });
    expect(t.sinks['a']).toMatchObject({ ingested: 10, delivered: 4 });
  });

  it('backpressure: append waits while full and completes once a sink frees room', async () => {
    const clock = new ManualClock();
    const s = openSpool(tempDir(), clock, { maxBytes: 20_000, sinks: ['a'] });
    let appended = 0;
    while (!s.state().full && appended < 10_000) {
      const p = s.append(meterRecords(50, appended));
      const settled = await Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))]);
      if (!settled) {
        expect(s.state().full).toBe(true);
        const r = s.read('a', 100_000);
        await s.confirm('a', 0, r.next);
        await p;
        appended += 50;
        break;
      }
      appended += 50;
    }
    expect(s.state().full).toBe(false);
    expect(s.pending('a')).toBe(50);
    expect(sinkBalance(s.sinkTotals('a')!, s.pending('a'))).toBe(0);
  });

  it('drop_oldest: evicts the oldest entries, counts each evicted reading per sink and per region', async () => {
    const clock = new ManualClock();
    const evicted = new Map<string, number>();
    const s = openSpool(tempDir(), clock, {
      maxBytes: 30_000, policy: 'drop_oldest',
      onEvicted: (byRegion) => { for (const [r, n] of byRegion) evicted.set(r, (evicted.get(r) ?? 0) + n); },
    });
    for (let i = 0; i < 40; i++) await s.append(meterRecords(50, i * 50));
    const total = [...evicted.values()].reduce((x, y) => x + y, 0);
    expect(total).toBeGreaterThan(0);
    expect(s.state().bytes).toBeLessThanOrEqual(30_000);
    for (const name of ['a', 'b']) {
      const t = s.sinkTotals(name)!;
      expect(t.ingested).toBe(2000);
      expect(t.evicted).toBe(total);
      expect(sinkBalance(t, s.pending(name))).toBe(0);
    }
    expect(s.totalsSnapshot().dropped['north']?.['spool_evicted']).toBe(evicted.get('north'));
  });

  it('a full disk (ENOSPC) is a full spool: the commit waits and retries, nothing is lost, logged once per state change', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const inner = new LmdbSpoolStore(dir);
    let failing = true;
    // ENOSPC cannot be made on a shared CI disk: the real store, with its entry writes refused
    // the way LMDB refuses them when the file cannot grow.
    const store: SpoolStore = Object.assign(Object.create(inner) as SpoolStore, {
      putEntry: (key: number, value: Uint8Array) => (failing
        ? Promise.reject(Object.assign(new Error('MDB_MAP_FULL: No space left on device'), { code: 'ENOSPC' }))
        : inner.putEntry(key, value)),
    });
    const lines: string[] = [];
    const logger = { ...silentLogger(), warn: (_o: unknown, m: string) => { lines.push(`warn ${m}`); }, error: (_o: unknown, m: string) => { lines.push(`error ${m}`); }, info: (_o: unknown, m: string) => { lines.push(`info ${m}`); } } as unknown as ReturnType<typeof silentLogger>;
    const s = openSpool(dir, clock, { sinks: ['a'], logger }, store);
    let done = false;
    const p = s.append(meterRecords(10)).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    expect(s.state().disk_full).toBe(true);
    for (let i = 0; i < 3; i++) { clock.advance(1000); await new Promise((r) => setTimeout(r, 30)); }
    expect(done).toBe(false); // still full: retried, still waiting, not acknowledged
    failing = false;
    clock.advance(1000);
    await p;
    expect(s.state().disk_full).toBe(false);
    expect(s.read('a', 100).records).toHaveLength(10);
    expect(lines.filter((l) => l.includes('disk full'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('disk has room again'))).toHaveLength(1);
  });

  it('max_age under drop_oldest: entries older than the bound are evicted at the next append, each reading counted once per sink', async () => {
    const clock = new ManualClock();
    const evicted = new Map<string, number>();
    const bySinkSeen = new Map<string, number>();
    const s = openSpool(tempDir(), clock, {
      maxAgeMs: 60_000, policy: 'drop_oldest',
      onEvicted: (byRegion, bySink) => {
        for (const [r, n] of byRegion) evicted.set(r, (evicted.get(r) ?? 0) + n);
        for (const [k, n] of bySink) bySinkSeen.set(k, (bySinkSeen.get(k) ?? 0) + n);
      },
    });
    for (let i = 0; i < 3; i++) await s.append(meterRecords(10, i * 10, clock.now()));
    await s.confirm('a', 0, 5); // sink a had 5 of them already: only its 25 others are evicted from it
    clock.advance(30_000);
    await s.append(meterRecords(10, 30, clock.now()));
    expect(evicted.size).toBe(0); // 30 s old: within the bound
    clock.advance(31_000); // the first three entries are now 61 s old, the fourth 31 s
    await s.append(meterRecords(10, 40, clock.now()));
    expect(Object.fromEntries(evicted)).toEqual({ north: 15, south: 15 });
    expect(Object.fromEntries(bySinkSeen)).toEqual({ a: 25, b: 30 });
    expect(s.state()).toMatchObject({ readings: 20, entries: 2, full: false });
    expect(s.sinkTotals('a')).toMatchObject({ ingested: 50, delivered: 5, evicted: 25 });
    expect(s.sinkTotals('b')).toMatchObject({ ingested: 50, delivered: 0, evicted: 30 });
    for (const name of ['a', 'b']) expect(sinkBalance(s.sinkTotals(name)!, s.pending(name))).toBe(0);
    expect(s.totalsSnapshot().dropped).toEqual({ north: { spool_evicted: 15 }, south: { spool_evicted: 15 } });
  });

  it('max_age under backpressure: an entry older than the bound stops acknowledging until every sink has confirmed it', async () => {
    const clock = new ManualClock();
    const s = openSpool(tempDir(), clock, { maxAgeMs: 60_000 });
    await s.append(meterRecords(10, 0, clock.now()));
    clock.advance(61_000);
    let done = false;
    const p = s.append(meterRecords(10, 10, clock.now())).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 50));
    expect([done, s.state().full]).toEqual([false, true]);
    await s.confirm('a', 0, 10); // one sink has it: the entry stays (sink b still needs it)
    clock.advance(1000); // the spool looks again every second
    await new Promise((r) => setTimeout(r, 50));
    expect([done, s.state().full, s.state().entries]).toEqual([false, true, 1]);
    await s.confirm('b', 0, 10); // every sink is past it: deleted, the waiting batch commits
    await p;
    expect([done, s.state().full, s.state().readings]).toEqual([true, false, 10]);
    expect(s.totalsSnapshot().dropped).toEqual({}); // nothing evicted under backpressure
    for (const name of ['a', 'b']) expect(sinkBalance(s.sinkTotals(name)!, s.pending(name))).toBe(0);
  });

  it('drop_oldest on a full disk: the oldest entry is evicted in a commit of its own, counted once, and the batch then commits', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const inner = new LmdbSpoolStore(dir);
    // The store's contract: writes issued in one turn commit together. A full disk refuses them
    // all (entry, meta, deletes); `refuse` counts down the transactions to refuse.
    let refuse = 0;
    let turnFailing: boolean | undefined;
    const failing = (): boolean => {
      if (turnFailing === undefined) {
        turnFailing = refuse > 0;
        if (turnFailing) refuse--;
        queueMicrotask(() => { turnFailing = undefined; });
      }
      return turnFailing;
    };
    const enospc = (): Promise<never> => Promise.reject(Object.assign(new Error('No space left on device'), { code: 'ENOSPC' }));
    const store: SpoolStore = Object.assign(Object.create(inner) as SpoolStore, {
      putEntry: (k: number, v: Uint8Array) => (failing() ? enospc() : inner.putEntry(k, v)),
      removeEntry: (k: number) => (failing() ? enospc() : inner.removeEntry(k)),
      putMeta: (k: string, v: unknown) => (failing() ? enospc() : inner.putMeta(k, v)),
      removeMeta: (k: string) => (failing() ? enospc() : inner.removeMeta(k)),
    });
    const evicted: number[] = [];
    const s = openSpool(dir, clock, { policy: 'drop_oldest', sinks: ['a'], onEvicted: (byRegion) => { evicted.push([...byRegion.values()].reduce((x, y) => x + y, 0)); } }, store);
    for (let i = 0; i < 3; i++) await s.append(meterRecords(10, i * 10));
    // Refused: the batch's commit, the first eviction's (undone, not counted), and a second later
    // the batch's retry; then the second eviction commits and the batch after it.
    refuse = 3;
    let done = false;
    const p = s.append(meterRecords(10, 30)).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 100));
    expect([done, s.state().disk_full, evicted]).toEqual([false, true, []]);
    clock.advance(1000);
    await p;
    // One entry evicted (its 10 readings counted once, after its delete committed), then the batch.
    expect(evicted).toEqual([10]);
    expect(s.state()).toMatchObject({ disk_full: false, readings: 30, entries: 3 });
    expect(s.read('a', 100).records.map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 10));
    expect(s.sinkTotals('a')).toMatchObject({ ingested: 40, delivered: 0, evicted: 10 });
    expect(sinkBalance(s.sinkTotals('a')!, s.pending('a'))).toBe(0);
    expect(s.totalsSnapshot().dropped).toEqual({ north: { spool_evicted: 5 }, south: { spool_evicted: 5 } });
  });

  it('a corrupted record at the tail is detected, counted as corrupt and skipped; its neighbours are read exactly', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const s = openSpool(dir, clock, { sinks: ['a'] });
    await s.append(meterRecords(20, 0));
    const tail = meterRecords(20, 20);
    tail[19] = { ...tail[19]!, meter_id: 'TORN-TAIL-RECORD' };
    await s.append(tail);
    await s.close();
    spools.length = 0;
    // Flip a byte inside the last record's body, as a torn write or a bad sector would.
    const file = join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('TORN-TAIL-RECORD'));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = bytes[at + 3]! ^ 0xff;
    writeFileSync(file, bytes);
    const again = openSpool(dir, clock, { sinks: ['a'] });
    const r = again.read('a', 1000);
    expect(r.corrupt).toEqual([39]);
    expect(r.records).toHaveLength(39);
    expect(r.records.every((x) => x.record.kind === 'meter' && !x.record.meter_id.includes('TORN'))).toBe(true);
    expect(r.records[38]?.record).toEqual(tail[18]);
    await again.confirm('a', 0, r.next, new Map(r.corrupt.map((q) => [q, 'spool_corrupt'])));
    expect(again.sinkTotals('a')).toMatchObject({ delivered: 39, rejected: { spool_corrupt: 1 } });
    expect(sinkBalance(again.sinkTotals('a')!, again.pending('a'))).toBe(0);
  });
});
