// The spool on a real LMDB store in a temp folder: commits, positions, deletion once every sink
// confirmed, the per-sink invariant, both full policies, corrupt records, and reopening.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
