import { describe, expect, it } from 'vitest';
import type { PointDef } from '../../src/config/profile-types.js';
import { rawToWords } from '../../src/modbus/codec-words.js';
import { checksPlausibility, implausibleWhy, orderHint, ordersInRange, outOfRange } from '../../src/modbus/plausibility.js';

const pt = (extra: Partial<PointDef>): PointDef => ({ id: 'p', table: 'holding', address: 0, type: 'float32', ...extra }) as PointDef;
const profile = { default_order: 'ABCD' as const };

describe('plausibility', () => {
  it('a value outside valid_range, or a denormal float, is implausible; the edges and 0 are not', () => {
    const soc = pt({ valid_range: [0, 100] });
    expect([0, 100, 62.5].map((v) => outOfRange(soc, v))).toEqual([false, false, false]);
    expect([-0.1, 100.1, 2.3844494668951087e-41, -1e-40].map((v) => outOfRange(soc, v))).toEqual([true, true, true, true]);
    expect(outOfRange(pt({}), 2.38e-41)).toBe(true); // a float without a range: still denormal
    expect(outOfRange(pt({ type: 'uint16' }), 1e9)).toBe(false); // no range, not a float
    expect(outOfRange(soc, 'text')).toBe(false);
    expect(checksPlausibility(pt({ type: 'uint16' }))).toBe(false);
    expect(checksPlausibility(pt({ type: 'uint16', valid_range: [0, 1] }))).toBe(true);
    expect(implausibleWhy(soc, 101)).toBe('101 outside valid_range [0, 100]');
    expect(implausibleWhy(soc, 2.38e-41)).toBe('2.38e-41 is a denormal float (never a measurement)');
  });

  it('names the other word orders that decode into the range', () => {
    const words = rawToWords('float32', 62, 'CDAB');
    expect(ordersInRange(profile, pt({ valid_range: [0, 100] }), words, 0)).toEqual(['CDAB']);
    // A scaled int32 of 49.98 Hz sent DCBA, declared ABCD.
    const hz = pt({ type: 'int32', scale: 0.01, valid_range: [45, 65] });
    expect(ordersInRange(profile, hz, rawToWords('int32', 4998, 'DCBA'), 0)).toEqual(['DCBA']);
    expect(ordersInRange(profile, pt({ type: 'uint16', valid_range: [0, 1] }), Uint16Array.of(7), 0)).toEqual([]);
    expect(orderHint(['CDAB'], true)).toBe('did you mean CDAB?');
    expect(orderHint(['CDAB', 'DCBA'], true)).toBe('did you mean CDAB or DCBA?');
    expect(orderHint([], true)).toMatch(/^no other word order is in range either/);
  });
});
