// The snapshot keeps values by slot in typed arrays (shared slot index per profile); read by point
// id it behaves as a map of the present values. The slab the arrays come from hands out zeroed,
// non-overlapping views.
import { describe, expect, it } from 'vitest';
import { DeviceSnapshot } from '../../src/modbus/snapshot.js';
import { slabFloat64, slabInt32, slabUint16, slabUint8 } from '../../src/modbus/typed-slab.js';
import { testDevice, testProfile } from './poller-fixtures.js';

describe('DeviceSnapshot', () => {
  const profile = testProfile();
  const ids = profile.points.map((p) => p.id);

  it('sets, reads, deletes and clears by point id; numbers, strings and booleans', () => {
    const snap = new DeviceSnapshot();
    snap.register(testDevice('a', 1, 1), profile);
    snap.register(testDevice('b', 1, 2), profile);
    snap.set('a', ids[0] as string, 12.5, 1000);
    snap.set('a', ids[1] as string, 'SN-1', 1001);
    snap.set('a', ids[2] as string, true, 1002);
    snap.set('a', ids[3] as string, -0, 1003);
    expect(snap.get('a', ids[0] as string)).toEqual({ value: 12.5, readAtMs: 1000 });
    expect(snap.get('a', ids[1] as string)).toEqual({ value: 'SN-1', readAtMs: 1001 });
    expect(snap.get('a', ids[2] as string)).toEqual({ value: true, readAtMs: 1002 });
    expect(Object.is(snap.get('a', ids[3] as string)?.value, -0)).toBe(true);
    expect(snap.get('b', ids[0] as string)).toBeUndefined(); // devices of one profile share the index, not the values
    expect(snap.get('a', 'no-such-point')).toBeUndefined();
    expect(snap.values('a').size).toBe(4);
    snap.set('a', ids[1] as string, 7, 1004); // a string slot becomes a number
    expect(snap.get('a', ids[1] as string)).toEqual({ value: 7, readAtMs: 1004 });
    snap.delete('a', ids[0] as string);
    snap.delete('a', ids[0] as string); // twice: still one value fewer
    snap.delete('a', 'no-such-point');
    expect(snap.get('a', ids[0] as string)).toBeUndefined();
    expect([...snap.values('a').keys()]).toEqual([ids[1], ids[2], ids[3]]); // profile order
    const seen: Array<[string, unknown, number]> = [];
    snap.forEachValue('a', (id, v, at) => seen.push([id, v, at]));
    expect(seen).toEqual([[ids[1], 7, 1004], [ids[2], true, 1002], [ids[3], -0, 1003]]);
    snap.clear('a');
    expect(snap.values('a').size).toBe(0);
    expect(snap.get('a', ids[2] as string)).toBeUndefined();
  });

  it('a point outside the profile gets a slot of its own device only', () => {
    const snap = new DeviceSnapshot();
    snap.register(testDevice('a', 1, 1), profile);
    snap.register(testDevice('b', 1, 2), profile);
    snap.set('a', 'extra', 3, 5);
    expect(snap.get('a', 'extra')).toEqual({ value: 3, readAtMs: 5 });
    expect(snap.device('b')?.slotIfKnown('extra')).toBeUndefined();
    snap.set('b', ids[0] as string, 1, 6);
    expect(snap.get('b', ids[0] as string)).toEqual({ value: 1, readAtMs: 6 });
    expect(snap.values('a').size).toBe(1);
  });

  it('an unregistered device has no values and takes none', () => {
    const snap = new DeviceSnapshot();
    snap.set('ghost', 'x', 1, 1);
    expect(snap.get('ghost', 'x')).toBeUndefined();
    expect(snap.values('ghost').size).toBe(0);
  });
});

describe('typed slab', () => {
  it('hands out zeroed views that never overlap, of the asked length', () => {
    const views = [slabFloat64(88), slabUint8(44), slabUint16(60), slabInt32(20), slabUint8(3), slabFloat64(1), slabInt32(5000)];
    expect(views.map((v) => v.length)).toEqual([88, 44, 60, 20, 3, 1, 5000]);
    for (const v of views) {
      expect(Array.from(v as ArrayLike<number>).every((x) => x === 0)).toBe(true);
      v.fill(7 as never);
    }
    // Writing every view to 7 left the others' bytes alone only if none overlaps another.
    const ranges = views.map((v) => ({ buf: v.buffer, from: v.byteOffset, to: v.byteOffset + v.byteLength }));
    for (let i = 0; i < ranges.length; i++) {
      for (let j = i + 1; j < ranges.length; j++) {
        const a = ranges[i] as (typeof ranges)[number];
        const b = ranges[j] as (typeof ranges)[number];
        expect(a.buf !== b.buf || a.to <= b.from || b.to <= a.from).toBe(true);
      }
    }
  });

  it('carves thousands of small arrays out of few buffers', () => {
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 2000; i++) buffers.add(slabFloat64(60).buffer);
    expect(buffers.size).toBeLessThanOrEqual(16); // 2000 x 480 bytes in 64 KB slabs
  });
});
