// Bounded meter state (issue 15, item 2): the dedupe state and the power table share one table of
// at most max_meters meters; the least recently heard meter is evicted first (counted when it was
// still active), silent meters are forgotten after the dedupe window by a periodic sweep, and the
// memory in use shrinks again afterwards.
import mqtt from 'mqtt';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { MeterStateTable, RECENT_TIMESTAMPS } from '../../src/meters/meter-state.js';
import { MeterPowerTable } from '../../src/meters/power-table.js';
import { MIN_COMPACT, SWEEP_BATCH, SlotTable } from '../../src/meters/slot-table.js';
import { RELEASE_AFTER, StateBound, sweepIntervalMs } from '../../src/meters/state-bound.js';
import type { ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { ManualClock } from '../runtime/manual-clock.js';
import { TestReader, TestTelemetry, mqttConfig, waitFor } from './harness.js';

function reading(id: string, region: string, ts: number, power: number): ValidReading {
  return { meter_id: id, region, timestamp_ms: ts, kwh: 1, voltage: 230, current: 1, power_factor: 1, power_w: power, arrived_at: 0 };
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('SlotTable', () => {
  it('evicts the least recently touched meter at maxSize, counting it as active only within activeMs', () => {
    const t = new SlotTable({ maxSize: 3, forgetAfterMs: 1000, activeMs: 1000 });
    for (const [i, id] of ['a', 'b', 'c'].entries()) t.add(id, i);
    t.touch(t.find('a'), 10); // order now b, c, a
    t.add('d', 20); // b goes (touched at 1: 19 ms ago, active)
    expect(t.find('b')).toBe(-1);
    expect(['a', 'c', 'd'].map((k) => t.find(k) >= 0)).toEqual([true, true, true]);
    expect([t.size, t.evictions, t.activeEvictions]).toEqual([3, 1, 1]);
    t.add('e', 5000); // c goes, touched at 2: 4998 ms ago, no longer active
    expect(t.find('c')).toBe(-1);
    expect([t.size, t.evictions, t.activeEvictions]).toEqual([3, 2, 1]);
  });

  it('its index agrees with a Map through adds, touches, evictions, sweeps and compactions', () => {
    const rand = prng(15);
    const max = 3000;
    const t = new SlotTable({ maxSize: max, forgetAfterMs: 500, activeMs: 500 });
    const ref = new Map<string, number>(); // id -> last touch, in touch order
    let now = 0;
    let compactions = 0;
    for (let step = 0; step < 60_000; step++) {
      now += 1;
      const id = `m-${Math.floor(rand() * 8000)}`;
      const s = t.find(id);
      expect(s >= 0, `${id} at step ${step}`).toBe(ref.has(id));
      // The same answer from the id's bytes (as the payload scanner looks it up), inside a larger buffer.
      const bytes = Buffer.from(`{"meter_id":"${id}"}`, 'latin1');
      expect(t.findBytes(bytes, 13, 13 + id.length), `${id} by its bytes at step ${step}`).toBe(s);
      if (s >= 0) {
        t.touch(s, now);
        ref.delete(id);
      } else {
        if (ref.size >= max) ref.delete(ref.keys().next().value as string); // the least recently touched
        t.add(id, now);
      }
      ref.set(id, now);
      if (step % 997 === 0) {
        now += Math.floor(rand() * 700);
        const before = t.slotsInUse;
        t.sweep(now);
        for (const [k, at] of ref) if (now - at > 500) ref.delete(k);
        if (t.slotsInUse < before) compactions++;
      }
      expect(t.size).toBe(ref.size);
      expect(t.slotsInUse).toBeLessThanOrEqual(max);
    }
    for (const k of ref.keys()) expect(t.keyOf(t.find(k))).toBe(k);
    // An id that is a prefix or an extension of a held one, or differs in its last byte, is not found.
    const held = [...ref.keys()][0] as string;
    for (const other of [held.slice(0, -1), `${held}0`, `${held.slice(0, -1)}x`]) {
      expect(t.findBytes(Buffer.from(other, 'latin1'), 0, other.length)).toBe(t.find(other));
    }
    // The eviction order is the reference's touch order.
    const order: string[] = [];
    for (let s = t.first(); s >= 0; s = t.after(s)) order.push(t.keyOf(s));
    expect(order).toEqual([...ref.keys()]);
    expect(compactions).toBeGreaterThan(0);
  });

  it('sweep() forgets at most `limit` meters per call, oldest first, and compacts once mostly empty', () => {
    const n = 4 * MIN_COMPACT;
    const t = new SlotTable({ maxSize: n, forgetAfterMs: 100, activeMs: 100 });
    for (let i = 0; i < n; i++) t.add(`m-${i}`, i < n - 10 ? 0 : 1000);
    expect(t.slotsInUse).toBe(n);
    expect(t.sweep(1050, 1000)).toBe(1000);
    expect(t.size).toBe(n - 1000);
    expect(t.slotsInUse).toBe(n); // not compacted while a sweep is unfinished
    expect(t.sweep(1050)).toBe(n - 1010);
    expect(t.size).toBe(10);
    expect(t.slotsInUse).toBe(10); // compacted: the live slots moved together
    for (let i = n - 10; i < n; i++) expect(t.keyOf(t.find(`m-${i}`))).toBe(`m-${i}`);
    expect(t.sweep(1100)).toBe(0); // 100 ms silent is not yet more than forgetAfterMs
    expect(t.sweep(1101)).toBe(10);
    expect(t.size).toBe(0);
  });

  it('refuses a max size that is not a positive integer', () => {
    expect(() => new SlotTable({ maxSize: 0, forgetAfterMs: 1, activeMs: 1 })).toThrow('max meters must be a positive integer, got 0');
  });
});

describe('MeterStateTable bounded by max_meters', () => {
  it('a million distinct meters through a table of 1,000: never above 1,000, every eviction counted', () => {
    // 1M-scale behaviour at a small max_meters: one reading each from 1,000,000 distinct ids.
    const s = new MeterStateTable(60_000, { maxMeters: 1000 });
    let maxSeen = 0;
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) {
      if (s.accept(`m-${i}`, 1_000_000 + i, i, i) !== undefined) refused++;
      if (s.size > maxSeen) maxSeen = s.size;
    }
    expect(refused).toBe(0);
    expect(maxSeen).toBe(1000);
    expect(s.slots.slotsInUse).toBe(1000); // the memory in use never grew past max_meters slots either
    expect(s.ringCount).toBe(0);           // one reading each: no rings of timestamps
    // Meter i was evicted when meter i + 1000 arrived, 1,000 ms after it was heard: still active.
    expect(s.slots.evictions).toBe(999_000);
    expect(s.slots.activeEvictions).toBe(999_000);
  });

  it('evictions of meters silent for longer than the dedupe window are not counted as active', () => {
    const s = new MeterStateTable(60_000, { maxMeters: 100 });
    for (let i = 0; i < 1000; i++) s.accept(`m-${i}`, 1, 1, i * 1000); // meter i heard at i s; evicted 100 s later
    expect(s.size).toBe(100);
    expect(s.slots.evictions).toBe(900);
    expect(s.slots.activeEvictions).toBe(0);
  });

  it('the cost of an eviction: a duplicate of an evicted meter is not recognised', () => {
    const s = new MeterStateTable(600_000, { maxMeters: 2 });
    expect(s.accept('a', 1000, 10, 0)).toBeUndefined();
    expect(s.accept('a', 1000, 10, 1)).toBe('duplicate');
    expect(s.accept('b', 1000, 10, 2)).toBeUndefined();
    expect(s.accept('c', 1000, 10, 3)).toBeUndefined(); // a, heard least recently, is evicted
    expect(s.slots.activeEvictions).toBe(1);
    expect(s.accept('a', 1000, 10, 4)).toBeUndefined(); // its redelivery is ingested again
    expect(s.accept('a', 500, 1, 5)).toBeUndefined();   // nor is its kwh register remembered
    expect(s.accept('c', 1000, 10, 6)).toBe('duplicate'); // c is still known
  });

  it('keeps ring contents and registers through a compaction', () => {
    const s = new MeterStateTable(10_000);
    for (let i = 0; i < 5000; i++) s.accept(`x-${i}`, 1, 1, 0); // silent later: forgotten
    for (let k = 0; k < RECENT_TIMESTAMPS + 2; k++) s.accept('keep', 1000 + k, 10 + k, 20_000 + k);
    expect(s.ringCount).toBe(1);
    expect(s.sweep(20_100)).toBe(5000);
    expect(s.size).toBe(1);
    expect(s.slots.slotsInUse).toBe(1);
    expect(s.accept('keep', 1000 + RECENT_TIMESTAMPS + 1, 99, 20_200)).toBe('duplicate');
    expect(s.accept('keep', 1001, 99, 20_200)).toBeUndefined(); // one of the 2 oldest, pushed out of the ring: accepted again
    expect(s.accept('keep', 5000, 1, 20_200)).toBe('kwh_decreasing');
    expect(s.snapshot(20_200).meters.map((m) => [m[0], m[1], m[2], m[4].length])).toEqual([['keep', 1000 + RECENT_TIMESTAMPS + 1, 10 + RECENT_TIMESTAMPS + 1, RECENT_TIMESTAMPS]]);
  });

  it('restore() at a smaller max_meters keeps the most recently heard meters', () => {
    const a = new MeterStateTable(60_000);
    for (let i = 0; i < 10; i++) a.accept(`m-${i}`, 1000, 1, 100 - i); // m-9 heard first, m-0 last
    const b = new MeterStateTable(60_000, { maxMeters: 3 });
    expect(b.restore(JSON.parse(JSON.stringify(a.snapshot(200))), 200)).toBe(10);
    expect(b.size).toBe(3);
    expect(['m-0', 'm-1', 'm-2'].map((id) => b.accept(id, 1000, 1, 201))).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(b.slots.activeEvictions).toBe(7);
  });
});

describe('MeterPowerTable bounded', () => {
  it('never holds more than maxMeters; the evicted meter leaves the load total', async () => {
    const clock = new ManualClock();
    const t = new MeterPowerTable(clock, 60_000, { maxMeters: 2 });
    const now = clock.now();
    await t.write([reading('a', 'north', now, 100), reading('b', 'north', now, 10)]);
    await t.write([reading('c', 'south', now, 1)]);
    expect(t.meterCount).toBe(2);
    expect(t.regionPower().map((r) => [r.region, r.power_w, r.meters])).toEqual([['north', 10, 1], ['south', 1, 1]]);
    expect(t.slots.activeEvictions).toBe(1);
  });

  it('shares one table with the dedupe state: a meter is stored once, evicted from both at once', async () => {
    const clock = new ManualClock();
    const slots = new SlotTable({ maxSize: 2, forgetAfterMs: 60_000, activeMs: 60_000 });
    const state = new MeterStateTable(60_000, { slots });
    const power = new MeterPowerTable(clock, 60_000, { slots });
    const now = clock.now();
    expect(state.accept('a', now, 1, now)).toBeUndefined();
    await power.write([reading('a', 'north', now, 7)]);
    expect(state.accept('b', now, 1, now)).toBeUndefined(); // known to the dedupe state, no power yet
    expect(power.regionPower()).toEqual([{ region: 'north', power_w: 7, meters: 1, newest_ms: now }]);
    expect(state.accept('c', now, 1, now)).toBeUndefined(); // a (least recently touched) goes from both
    await power.write([reading('a', 'north', now, 7), reading('c', 'north', now, 5)]); // a is not added back by the power table
    expect([state.size, power.meterCount]).toEqual([2, 2]);
    expect(power.regionPower()).toEqual([{ region: 'north', power_w: 5, meters: 1, newest_ms: now }]);
    expect(state.accept('a', now, 1, now)).toBeUndefined(); // not a duplicate any more
    expect(slots.activeEvictions).toBe(2); // a, then b (to make room for a again)
  });
});

describe('StateBound: the periodic sweep on the Clock and ems.meter.state_evictions', () => {
  it('forgets silent meters only after the forget age, at the next sweep', () => {
    const clock = new ManualClock();
    const slots = new SlotTable({ maxSize: 10_000, forgetAfterMs: 60_000, activeMs: 60_000 });
    const state = new MeterStateTable(60_000, { slots });
    const bound = new StateBound(slots, clock, new MeterProvider().getMeter('t'));
    bound.start();
    for (let i = 0; i < 100; i++) state.accept(`m-${i}`, clock.now(), 1, clock.now());
    const interval = sweepIntervalMs(60_000);
    expect(interval).toBe(15_000);
    clock.advance(60_000);
    expect(state.size).toBe(100); // silent for exactly the window: kept
    state.accept('m-0', clock.now(), 2, clock.now()); // m-0 is heard again
    clock.advance(interval);
    expect(state.size).toBe(1); // the sweep at 75 s forgot the 99 silent ones
    clock.advance(60_000);
    expect(state.size).toBe(0);
    bound.stop();
    for (let i = 0; i < 10; i++) state.accept(`n-${i}`, clock.now(), 1, clock.now());
    clock.advance(10 * 60_000);
    expect(state.size).toBe(10); // stopped: no more sweeps
  });

  it('a crowd beyond one sweep batch is forgotten in several turns, then the memory in use shrinks', () => {
    const clock = new ManualClock();
    const slots = new SlotTable({ maxSize: RELEASE_AFTER + SWEEP_BATCH, forgetAfterMs: 4000, activeMs: 4000 });
    const state = new MeterStateTable(4000, { slots });
    const bound = new StateBound(slots, clock, new MeterProvider().getMeter('t'));
    bound.start();
    const n = RELEASE_AFTER + 10;
    for (let i = 0; i < n; i++) state.accept(`m-${i}`, 1, 1, clock.now());
    clock.advance(1000);
    state.accept('steady', 2, 1, clock.now());
    expect(slots.slotsInUse).toBe(n + 1);
    clock.advance(4000); // the sweep at 5 s: first batch, then the rest in the turns that follow
    expect(state.size).toBe(1);
    expect(slots.slotsInUse).toBe(1);
    bound.stop();
  });

  it('exports the active evictions as ems.meter.state_evictions (an observable counter)', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const clock = new ManualClock();
    const slots = new SlotTable({ maxSize: 2, forgetAfterMs: 1000, activeMs: 1000 });
    const state = new MeterStateTable(1000, { slots });
    const bound = new StateBound(slots, clock, provider.getMeter('t'));
    bound.start();
    for (const id of ['a', 'b', 'c', 'd']) state.accept(id, 1, 1, clock.now()); // a and b evicted, both active
    const { resourceMetrics } = await reader.collect();
    const m = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === METRICS.meterStateEvictions);
    expect(m?.descriptor.unit).toBe('{meter}');
    expect(m?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{}, 2]]);
    bound.stop();
    await provider.shutdown();
  });
});

describe('MeterIngest with max_meters', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('holds at most max_meters meters and counts the still-active ones it evicted', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = new MeterIngest({
      mqtt: mqttConfig(broker.url, { protocol_version: 4 }, { max_meters: 3 }), clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer,
    });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    await waitFor(() => ingest.status().subscribed, 5000, 'subscribed');
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    const ts = Date.now() - 1000;
    const r = (i: number): Record<string, unknown> => ({ meter_id: `m-${i}`, timestamp: ts, kwh: 1, voltage: 230, current: 1, power_factor: 1, region: 'north' });
    await pub.publishAsync('meters/north/x', JSON.stringify([0, 1, 2, 3, 4].map(r)), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 5, 5000, '5 ingested');
    expect(ingest.status().meters_tracked).toBe(3);
    expect(await tel.counterSum(METRICS.meterStateEvictions)).toBe(2);
    // The documented cost: m-0 was evicted, so its redelivery is not recognised as a duplicate;
    // m-4 is still known and its duplicate is dropped.
    await pub.publishAsync('meters/north/x', JSON.stringify([r(0), r(4)]), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 6 && ingest.status().readings_dropped === 1, 5000, 'one more ingested, one duplicate');
    expect(ingest.status().drops_by_reason).toMatchObject({ duplicate: 1 });
    expect(ingest.status().meters_tracked).toBe(3);
    expect(await tel.counterSum(METRICS.meterStateEvictions)).toBe(3);
  });
});
