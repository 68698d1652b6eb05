// Per-meter state (dedupe window, kwh monotonic) and the power table (latest reading, staleness).
import { describe, expect, it } from 'vitest';
import { MeterStateTable, RECENT_TIMESTAMPS } from '../../src/meters/meter-state.js';
import { MeterPowerTable } from '../../src/meters/power-table.js';
import type { ValidReading } from '../../src/meters/types.js';
import type { Clock } from '../../src/runtime/clock.js';

describe('MeterStateTable', () => {
  it('flags a repeated (meter_id, timestamp) as duplicate, accepts out-of-order older readings', () => {
    const s = new MeterStateTable(60_000);
    expect(s.accept('a', 1000, 10, 0)).toBeUndefined();
    expect(s.accept('a', 1000, 10, 1)).toBe('duplicate');
    expect(s.accept('b', 1000, 10, 1)).toBeUndefined(); // other meter, same timestamp
    expect(s.accept('a', 2000, 11, 2)).toBeUndefined();
    expect(s.accept('a', 1500, 5, 3)).toBeUndefined(); // older: accepted, kwh not compared
    expect(s.accept('a', 1500, 5, 4)).toBe('duplicate');
  });

  it('kwh lower than the latest reading with a newer timestamp is kwh_decreasing and not remembered', () => {
    const s = new MeterStateTable(60_000);
    expect(s.accept('a', 1000, 10, 0)).toBeUndefined();
    expect(s.accept('a', 2000, 9.5, 1)).toBe('kwh_decreasing');
    expect(s.accept('a', 2000, 10.5, 2)).toBeUndefined(); // the same timestamp with a good kwh is not a duplicate
  });

  it('remembers the last RECENT_TIMESTAMPS timestamps, and forgets them after the window', () => {
    const s = new MeterStateTable(60_000);
    for (let i = 0; i <= RECENT_TIMESTAMPS; i++) s.accept('a', 1000 + i, 10 + i, i);
    expect(s.accept('a', 1000, 10, 100)).toBeUndefined(); // pushed out of the ring
    expect(s.accept('a', 1000 + RECENT_TIMESTAMPS, 99, 200)).toBe('duplicate');
    expect(s.accept('a', 1000 + RECENT_TIMESTAMPS, 99, 200 + 60_001)).toBeUndefined(); // window passed
    expect(s.sweep(1_000_000)).toBe(1);
    expect(s.size).toBe(0);
  });

  it('a slot hint (the payload scanner\'s) is used only while that slot holds the same meter', () => {
    const s = new MeterStateTable(60_000, { maxMeters: 2 });
    expect(s.accept('a', 1000, 10, 0)).toBeUndefined();
    const slotA = s.acceptedSlot;
    expect(s.accept('b', 1000, 10, 1)).toBeUndefined();
    const slotB = s.acceptedSlot;
    expect(s.accept('a', 1000, 10, 2, slotA)).toBe('duplicate'); // the right hint
    expect(s.accept('a', 1000, 10, 3, slotB)).toBe('duplicate'); // a wrong one: a is looked up
    expect(s.acceptedSlot).toBe(slotA);
    expect(s.accept('b', 900, 10, 4, 99)).toBeUndefined(); // beyond the table: looked up (an older reading, accepted)
    // A duplicate does not count as heard: a was last heard at 0, b at 4. c evicts a and takes its slot.
    expect(s.accept('c', 1000, 10, 5)).toBeUndefined();
    expect(s.acceptedSlot).toBe(slotA);
    // A stale hint for the evicted a points at c's slot: a is new again (not a duplicate of c's
    // reading) and evicts b; c's state is untouched.
    expect(s.accept('a', 1000, 10, 6, slotA)).toBeUndefined();
    expect(s.acceptedSlot).toBe(slotB);
    expect(s.accept('c', 1000, 10, 7, slotA)).toBe('duplicate');
  });

  it('agrees with a plain model of the rules over a long random run (out of order, repeats, decreasing kwh, windows, a restore)', () => {
    let seed = 7;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const windowMs = 1000;
    interface Model { latestTs: number; latestKwh: number; recent: number[]; at: number }
    const model = new Map<string, Model>();
    const expectVerdict = (id: string, ts: number, kwh: number, now: number): string | undefined => {
      const m = model.get(id);
      if (m === undefined) { model.set(id, { latestTs: ts, latestKwh: kwh, recent: [ts], at: now }); return undefined; }
      if (now - m.at > windowMs) m.recent = [];
      if (m.recent.includes(ts)) return 'duplicate';
      if (ts > m.latestTs) {
        if (kwh < m.latestKwh) return 'kwh_decreasing';
        m.latestTs = ts;
        m.latestKwh = kwh;
      }
      m.recent = [...m.recent, ts].slice(-RECENT_TIMESTAMPS);
      m.at = now;
      return undefined;
    };
    let s = new MeterStateTable(windowMs);
    let now = 0;
    const verdicts = new Map<string, number>();
    for (let step = 0; step < 40_000; step++) {
      now += rnd() < 0.002 ? 1500 : Math.floor(rnd() * 3);
      const id = `m-${Math.floor(rnd() * 20)}`;
      const ts = Math.floor(rnd() * 60) + Math.floor(step / 200) * 10; // repeats and readings out of order
      const kwh = Math.floor(rnd() * 40) + step / 100;
      const want = expectVerdict(id, ts, kwh, now);
      expect(s.accept(id, ts, kwh, now), `step ${step}: ${id} ts ${ts}`).toBe(want);
      verdicts.set(String(want), (verdicts.get(String(want)) ?? 0) + 1);
      if (step === 20_000) {
        const restored = new MeterStateTable(windowMs);
        restored.restore(JSON.parse(JSON.stringify(s.snapshot(now))), now);
        s = restored;
        // what the snapshot leaves out: meters silent for longer than the window
        for (const [k, m] of model) if (now - m.at > windowMs) model.delete(k);
      }
    }
    // Not vacuous: every verdict occurs often.
    for (const v of ['undefined', 'duplicate', 'kwh_decreasing']) expect(verdicts.get(v) ?? 0, v).toBeGreaterThan(1000);
  });
});

function reading(id: string, region: string, ts: number, power: number): ValidReading {
  return { meter_id: id, region, timestamp_ms: ts, kwh: 1, voltage: 230, current: 1, power_factor: 1, power_w: power, arrived_at: 0 };
}

describe('MeterStateTable snapshot', () => {
  it('drops the remembered timestamps later than an entry\'s latest one (snapshot() never writes one) and keeps the rest of the meter', () => {
    const s = new MeterStateTable(60_000);
    expect(s.restore({ version: 1, saved_at: 0, meters: [['a', 1000, 10, 0, [900, 1000]], ['b', 1000, 10, 0, [900, 2000]]] }, 10)).toBe(2);
    expect(s.accept('a', 900, 10, 20)).toBe('duplicate');
    // b keeps 900 and its kwh register; 2000 was not remembered (it is newer than b's latest).
    expect(s.accept('b', 900, 10, 20)).toBe('duplicate');
    expect(s.accept('b', 1500, 9, 20)).toBe('kwh_decreasing');
    expect(s.accept('b', 2000, 10, 20)).toBeUndefined();
    expect(s.accept('b', 2000, 10, 30)).toBe('duplicate');
  });

  it('restores duplicates and the kwh register; skips stale and malformed entries; keeps ring order', () => {
    const a = new MeterStateTable(60_000);
    for (let i = 0; i < RECENT_TIMESTAMPS + 3; i++) a.accept('m', 1000 + i, 10 + i, 100);
    a.accept('old', 5, 1, 0);
    const snap = JSON.parse(JSON.stringify(a.snapshot(60_050))) as unknown;
    const b = new MeterStateTable(60_000);
    (snap as { meters: unknown[] }).meters.push(['bad', 'x', 1, 2, []], 42);
    expect(b.restore(snap, 60_050)).toBe(1); // 'old' was outside the window at snapshot time, 'bad' and 42 are malformed
    expect(b.accept('m', 1000 + RECENT_TIMESTAMPS + 2, 99, 60_060)).toBe('duplicate');
    expect(b.accept('m', 5000, 1, 60_060)).toBe('kwh_decreasing');
    b.accept('m', 5001, 100, 60_060); // overwrites the oldest remembered timestamp (1003), not a newer one
    expect(b.accept('m', 1003, 10, 60_070)).toBeUndefined();
    expect(b.accept('m', 1005, 10, 60_070)).toBe('duplicate'); // (accepting 1003 pushed out 1004, the next oldest)
    expect(b.restore({ version: 2 }, 0)).toBe(0);
    expect(b.restore(null, 0)).toBe(0);
  });
});

describe('MeterPowerTable', () => {
  it('sums the latest power per region; a late older reading does not replace a newer one; stale meters drop out', async () => {
    let now = 100_000;
    const clock: Clock = { now: () => now, monotonic: () => now, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t) };
    const t = new MeterPowerTable(clock, 10_000);
    await t.write([reading('a', 'north', 95_000, 100), reading('b', 'north', 99_000, 50), reading('c', 'south', 99_500, 7)]);
    await t.write([reading('a', 'north', 90_000, 999)]); // older: ignored
    expect(t.gridSamples()).toEqual([
      { source: 'meters:north', point: 'power', role: 'load', value: 150, unit: 'W', observedAtMs: 99_000 },
      { source: 'meters:south', point: 'power', role: 'load', value: 7, unit: 'W', observedAtMs: 99_500 },
    ]);
    now = 106_000; // a (95 s) is now 11 s old: stale
    expect(t.regionPower().map((r) => [r.region, r.power_w, r.meters])).toEqual([['north', 50, 1], ['south', 7, 1]]);
    now = 200_000; // everything stale: no samples at all (absent, not zero)
    expect(t.gridSamples()).toEqual([]);
    expect(t.meterCount).toBe(3); // still remembered: forgotten by the sweep, not by reading the total
    expect(t.sweep()).toBe(3); // written at 100 s, silent for more than twice the stale age
    expect(t.meterCount).toBe(0);
  });
});
