import { describe, expect, it } from 'vitest';
import type { DeviceProfile, DeviceQuirks, PointDef } from '../../src/config/profile-types.js';
import { decodeRead } from '../../src/modbus/codec-read.js';
import { encodePoint, encodeRaw } from '../../src/modbus/codec.js';
import { PlanError, describePlan, planIdentityReads, planPoints, planReads } from '../../src/modbus/read-plan.js';

const QUIRKS: DeviceQuirks = {
  max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0,
  one_request_per_point: false, timeout_ms: 1000, max_connections: 1,
};
function prof(points: PointDef[], quirks: Partial<DeviceQuirks> = {}, extra: Partial<DeviceProfile> = {}): DeviceProfile {
  return {
    profile: 'test-dev', vendor: 'v', model: 'm', kind: 'other', address_base: 0, default_order: 'ABCD',
    quirks: { ...QUIRKS, ...quirks }, points, controls: [], source: 'test-dev.yaml', ...extra,
  };
}
const p = (id: string, address: number, extra: Partial<PointDef> = {}): PointDef => ({ id, table: 'holding', address, type: 'uint16', ...extra });
const shape = (profile: DeviceProfile): string[] => planReads(profile).requests.map((r) => `${r.table}:${r.address}+${r.count}:${r.points.map((x) => x.id).join(',')}`);

describe('planReads', () => {
  it('merges contiguous points into one read, splits at gaps larger than max_gap_registers', () => {
    const pts = [p('a', 0), p('b', 1, { type: 'float32' }), p('c', 3), p('d', 6), p('e', 7)];
    expect(shape(prof(pts))).toEqual(['holding:0+4:a,b,c', 'holding:6+2:d,e']);
    expect(shape(prof(pts, { max_gap_registers: 2 }))).toEqual(['holding:0+8:a,b,c,d,e']);
    expect(shape(prof(pts, { max_gap_registers: 1 }))).toEqual(['holding:0+4:a,b,c', 'holding:6+2:d,e']);
  });

  it('never exceeds max_registers_per_request (and never 125)', () => {
    const pts = Array.from({ length: 300 }, (_, i) => p(`r${String(i).padStart(3, '0')}`, i));
    const plan = planReads(prof(pts));
    expect(plan.requests.map((r) => r.count)).toEqual([125, 125, 50]);
    expect(planReads(prof(pts, { max_registers_per_request: 40 })).requests.every((r) => r.count <= 40)).toBe(true);
    expect(planReads(prof(pts, { max_registers_per_request: 40 })).requests).toHaveLength(8);
    expect(planReads(prof(pts, { max_registers_per_request: 1000 })).requests.every((r) => r.count <= 125)).toBe(true);
    // Every point is planned exactly once.
    expect(plan.requests.flatMap((r) => r.points).length).toBe(300);
  });

  it('does not split a multi-register value across two reads', () => {
    const pts = [p('a', 0, { type: 'float64' }), p('b', 4, { type: 'float64' }), p('c', 8, { type: 'float64' })];
    expect(shape(prof(pts, { max_registers_per_request: 10 }))).toEqual(['holding:0+8:a,b', 'holding:8+4:c']);
  });

  it('keeps a value with its scale factor in one read, even across a gap or the read limit', () => {
    const pts = [
      p('a', 0), p('w', 10, { type: 'int16', scale_factor: 'w_sf' }), p('x', 11), p('w_sf', 20, { type: 'int16', role: 'scale_factor' }),
    ];
    // Gap 0 would otherwise cut between x and w_sf: the scale factor pulls the gap into the read.
    expect(shape(prof(pts))).toEqual(['holding:0+1:a', 'holding:10+11:w,x,w_sf']);
    // With a limit of 12 the cluster fits; the split point moves instead.
    expect(shape(prof(pts, { max_registers_per_request: 12, max_gap_registers: 100 }))).toEqual(['holding:0+1:a', 'holding:10+11:w,x,w_sf']);
  });

  it('adds an unselected scale factor point to the read of its value', () => {
    const pts = [p('w', 0, { type: 'int16', scale_factor: 'w_sf' }), p('w_sf', 1, { type: 'int16', role: 'scale_factor' })];
    const plan = planPoints(prof(pts), [pts[0] as PointDef]);
    expect(plan.requests.map((r) => r.points.map((x) => x.id))).toEqual([['w', 'w_sf']]);
  });

  it('throws PlanError naming the point when value and scale factor cannot share a read', () => {
    const far = prof([p('w', 0, { scale_factor: 'w_sf' }), p('w_sf', 200, { type: 'int16' })]);
    expect(() => planReads(far)).toThrow(PlanError);
    expect(() => planReads(far)).toThrow(/point "w".*scale factor "w_sf"/);
    const other = prof([p('w', 0, { scale_factor: 'w_sf' }), p('w_sf', 1, { table: 'input' })]);
    expect(() => planReads(other)).toThrow(expect.objectContaining({ code: 'scale_factor_other_table', point: 'w' }));
    const unknown = prof([p('w', 0, { scale_factor: 'nope' })]);
    expect(() => planReads(unknown)).toThrow(expect.objectContaining({ code: 'scale_factor_unknown' }));
    const wide = prof([p('s', 0, { type: 'string', length: 130 })]);
    expect(() => planReads(wide)).toThrow(expect.objectContaining({ code: 'point_too_wide', point: 's' }));
  });

  it('one_request_per_point: one read per value, each with its scale factor', () => {
    const pts = [p('a', 0), p('w', 1, { type: 'int16', scale_factor: 'sf' }), p('v', 2, { scale_factor: 'sf' }), p('sf', 3, { type: 'int16', role: 'scale_factor' })];
    expect(shape(prof(pts, { one_request_per_point: true }))).toEqual(['holding:0+1:a', 'holding:1+3:w,sf', 'holding:2+2:v,sf']);
  });

  it('plans per table in a fixed order, coils up to 2000 bits, address_base applied', () => {
    const pts = [
      p('i1', 30001, { table: 'input' }), p('h1', 40001), p('h2', 40002, { type: 'int32' }),
      ...Array.from({ length: 2100 }, (_, i) => p(`c${i}`, i + 1, { table: 'coil', type: 'bool' })),
      p('d1', 5, { table: 'discrete', type: 'bool' }),
    ];
    const plan = planReads(prof(pts, {}, { address_base: 1 }));
    expect(plan.requests.map((r) => `${r.table}:${r.address}+${r.count}`)).toEqual([
      'holding:40000+3', 'input:30000+1', 'coil:0+2000', 'coil:2000+100', 'discrete:4+1',
    ]);
  });

  it('is deterministic regardless of point order; identity points are planned separately', () => {
    const pts = [p('b', 1), p('id', 10, { type: 'string', length: 2, role: 'identity' }), p('a', 0)];
    const reversed = [...pts].reverse();
    expect(shape(prof(pts))).toEqual(shape(prof(reversed)));
    expect(shape(prof(pts))).toEqual(['holding:0+2:a,b']);
    expect(planIdentityReads(prof(pts)).requests.map((r) => r.points.map((x) => x.id))).toEqual([['id']]);
    expect(describePlan(planReads(prof(pts)))).toEqual(['holding 0+2 (2 points: a, b)']);
  });
});

describe('decodeRead', () => {
  it('decodes every point of a read with its scale factor from the same response', () => {
    const pts = [
      p('w', 40001, { type: 'int16', scale_factor: 'w_sf', unit: 'W' }),
      p('hz', 40002, { type: 'uint16', scale: 0.01 }),
      p('w_sf', 40003, { type: 'int16', role: 'scale_factor' }),
      p('pf', 40004, { type: 'int16', sentinel: 'default' }),
    ];
    const profile = prof(pts, {}, { address_base: 1 });
    const [read] = planReads(profile).requests;
    expect(read).toBeDefined();
    const words = Uint16Array.from([
      ...encodePoint(profile, pts[0] as PointDef, 1234.5, -1), ...encodePoint(profile, pts[1] as PointDef, 50.02),
      ...encodeRaw(profile, pts[2] as PointDef, -1), ...encodeRaw(profile, pts[3] as PointDef, -32768),
    ]);
    const got = decodeRead(profile, read!, words);
    expect(got.get('w')).toEqual({ ok: true, value: 1234.5, raw: 12345 });
    expect(got.get('hz')).toEqual({ ok: true, value: 50.02, raw: 5002 });
    expect(got.get('w_sf')).toEqual({ ok: true, value: -1, raw: -1 });
    expect(got.get('pf')).toEqual({ ok: false, reason: 'not_implemented' });
    // A short response: the uncovered points are malformed, nothing throws.
    const short = decodeRead(profile, read!, words.subarray(0, 2));
    expect(short.get('w')).toEqual({ ok: false, reason: 'scale_factor_not_implemented' });
    expect(short.get('pf')).toEqual({ ok: false, reason: 'malformed' });
  });
});
