// Table-driven codec tests: exact register words for every type x order, sentinels, NaN/Inf,
// 64-bit beyond 2^53, strings with padding, scale/offset/scale factors both ways.
import { describe, expect, it } from 'vitest';
import type { DeviceProfile, PointDef, PointType, WordOrder } from '../../src/config/profile-types.js';
import {
  CodecError, activeFlags, decodeAllOrders, decodePoint, encodePoint, encodeRaw, enumLabel, pointDecoder, type NumericType,
} from '../../src/modbus/codec.js';
import { NUMERIC_TYPES, rawReader, wordsToRaw } from '../../src/modbus/codec-words.js';

const profile: Pick<DeviceProfile, 'default_order'> = { default_order: 'ABCD' };
const pt = (type: PointType, extra: Partial<PointDef> = {}): PointDef => ({ id: `p_${type}`, table: 'holding', address: 0, type, ...extra });
const w = (...xs: number[]): Uint16Array => Uint16Array.from(xs);

// [type, value, raw, words by order]: every word written out, not derived.
type Row = [NumericType, number, number | bigint, Record<WordOrder, number[]>];
const TABLE: Row[] = [
  ['int16', -100, -100, { ABCD: [0xff9c], CDAB: [0xff9c], BADC: [0x9cff], DCBA: [0x9cff] }],
  ['int16', 4660, 4660, { ABCD: [0x1234], CDAB: [0x1234], BADC: [0x3412], DCBA: [0x3412] }],
  ['uint16', 65534, 65534, { ABCD: [0xfffe], CDAB: [0xfffe], BADC: [0xfeff], DCBA: [0xfeff] }],
  ['int32', 305419896, 305419896, { ABCD: [0x1234, 0x5678], CDAB: [0x5678, 0x1234], BADC: [0x3412, 0x7856], DCBA: [0x7856, 0x3412] }],
  ['int32', -2, -2, { ABCD: [0xffff, 0xfffe], CDAB: [0xfffe, 0xffff], BADC: [0xffff, 0xfeff], DCBA: [0xfeff, 0xffff] }],
  ['uint32', 4000000000, 4000000000, { ABCD: [0xee6b, 0x2800], CDAB: [0x2800, 0xee6b], BADC: [0x6bee, 0x0028], DCBA: [0x0028, 0x6bee] }],
  ['float32', 12.5, 12.5, { ABCD: [0x4148, 0x0000], CDAB: [0x0000, 0x4148], BADC: [0x4841, 0x0000], DCBA: [0x0000, 0x4841] }],
  ['float32', -1.5, -1.5, { ABCD: [0xbfc0, 0x0000], CDAB: [0x0000, 0xbfc0], BADC: [0xc0bf, 0x0000], DCBA: [0x0000, 0xc0bf] }],
  ['int64', -2, -2n, {
    ABCD: [0xffff, 0xffff, 0xffff, 0xfffe], CDAB: [0xfffe, 0xffff, 0xffff, 0xffff],
    BADC: [0xffff, 0xffff, 0xffff, 0xfeff], DCBA: [0xfeff, 0xffff, 0xffff, 0xffff],
  }],
  // Beyond 2^53: raw is the exact bigint, value the nearest double.
  ['int64', 72623859790382850, 0x0102030405060708n, {
    ABCD: [0x0102, 0x0304, 0x0506, 0x0708], CDAB: [0x0708, 0x0506, 0x0304, 0x0102],
    BADC: [0x0201, 0x0403, 0x0605, 0x0807], DCBA: [0x0807, 0x0605, 0x0403, 0x0201],
  }],
  ['uint64', 9223372036854775808, 0x8000000000000001n, {
    ABCD: [0x8000, 0, 0, 1], CDAB: [1, 0, 0, 0x8000], BADC: [0x0080, 0, 0, 0x0100], DCBA: [0x0100, 0, 0, 0x0080],
  }],
  ['float64', -0.1, -0.1, {
    ABCD: [0xbfb9, 0x9999, 0x9999, 0x999a], CDAB: [0x999a, 0x9999, 0x9999, 0xbfb9],
    BADC: [0xb9bf, 0x9999, 0x9999, 0x9a99], DCBA: [0x9a99, 0x9999, 0x9999, 0xb9bf],
  }],
  ['float64', 1, 1, { ABCD: [0x3ff0, 0, 0, 0], CDAB: [0, 0, 0, 0x3ff0], BADC: [0xf03f, 0, 0, 0], DCBA: [0, 0, 0, 0xf03f] }],
];

describe('decodePoint / encodePoint: every type x order with exact words', () => {
  for (const [type, value, raw, byOrder] of TABLE) {
    for (const order of Object.keys(byOrder) as WordOrder[]) {
      const words = byOrder[order];
      it(`${type} ${String(raw)} ${order} = ${words.map((x) => x.toString(16)).join(' ')}`, () => {
        const point = pt(type, { order });
        // Read at an offset inside a longer read, as the poller does.
        const read = w(0xdead, ...words, 0xbeef);
        const got = decodePoint(profile, point, read, 1);
        expect(got).toEqual({ ok: true, value, raw });
        if (type.endsWith('64') && Math.abs(value) > 2 ** 53) return; // the double is not exact: see next test
        expect(Array.from(encodePoint(profile, point, value))).toEqual(words);
      });
    }
  }

  it('64-bit beyond 2^53: raw is exact, encodeRaw round-trips the bigint', () => {
    const point = pt('uint64');
    const words = encodeRaw(profile, point, (1n << 60n) + 3n);
    const got = decodePoint(profile, point, words, 0);
    expect(got.ok && got.raw).toBe((1n << 60n) + 3n);
    expect(got.ok && got.value).toBe(2 ** 60);
  });

  it('the default order comes from the profile, a point order overrides it', () => {
    const words = w(0x0000, 0x4148);
    expect(decodePoint({ default_order: 'CDAB' }, pt('float32'), words, 0)).toMatchObject({ ok: true, value: 12.5 });
    expect(decodePoint({ default_order: 'CDAB' }, pt('float32', { order: 'ABCD' }), words, 0)).toMatchObject({ ok: true, raw: Buffer.from('00004148', 'hex').readFloatBE(0) });
  });
});

describe('sentinels: "not implemented" is never a number', () => {
  const cases: [NumericType, number[]][] = [
    ['int16', [0x8000]],
    ['uint16', [0xffff]],
    ['int32', [0x8000, 0x0000]],
    ['uint32', [0xffff, 0xffff]],
    ['int64', [0x8000, 0, 0, 0]],
    ['uint64', [0xffff, 0xffff, 0xffff, 0xffff]],
    ['float32', [0x7fc0, 0x0000]],
    ['float64', [0x7ff8, 0, 0, 0]],
  ];
  for (const [type, words] of cases) {
    it(`${type} default sentinel`, () => {
      expect(decodePoint(profile, pt(type), w(...words), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    });
  }
  it("sentinel 'none' reports 0xFFFF as a number, but a NaN float is never a number", () => {
    expect(decodePoint(profile, pt('uint16', { sentinel: 'none' }), w(0xffff), 0)).toMatchObject({ ok: true, value: 65535 });
    expect(decodePoint(profile, pt('float32', { sentinel: 'none' }), w(0x7fc0, 0), 0)).toEqual({ ok: false, reason: 'not_implemented' });
  });
  it('custom sentinel values (raw, pre-scale), including 64-bit', () => {
    const p = pt('int16', { sentinel: { values: [-1, 0x7fff] }, scale: 0.1 });
    expect(decodePoint(profile, p, w(0xffff), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    expect(decodePoint(profile, p, w(0x7fff), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    expect(decodePoint(profile, p, w(0x8000), 0)).toMatchObject({ ok: true, value: -3276.8 });
    expect(decodePoint(profile, pt('uint64', { sentinel: { values: [0] } }), w(0, 0, 0, 0), 0)).toMatchObject({ ok: false });
  });
  it('infinities are malformed, not readings', () => {
    expect(decodePoint(profile, pt('float32'), w(0x7f80, 0), 0)).toEqual({ ok: false, reason: 'malformed' });
    expect(decodePoint(profile, pt('float32'), w(0xff80, 0), 0)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('encode refuses to write a sentinel or a non-finite value', () => {
    expect(() => encodePoint(profile, pt('int16'), -32768)).toThrow(expect.objectContaining({ code: 'sentinel_value' }));
    expect(() => encodePoint(profile, pt('float32'), NaN)).toThrow(expect.objectContaining({ code: 'not_finite' }));
    expect(() => encodePoint(profile, pt('float32'), Infinity)).toThrow(CodecError);
  });
});

describe('scale, offset and SunSpec scale factors, both ways', () => {
  it('value = raw * scale + offset', () => {
    const p = pt('int16', { scale: 0.1, offset: -40 });
    expect(decodePoint(profile, p, w(653), 0)).toEqual({ ok: true, value: 25.3, raw: 653 });
    expect(Array.from(encodePoint(profile, p, 25.3))).toEqual([653]);
  });
  it('decimal scales have no binary noise', () => {
    expect(decodePoint(profile, pt('uint16', { scale: 0.1 }), w(3), 0)).toMatchObject({ value: 0.3 });
    expect(decodePoint(profile, pt('uint16', { scale: 0.01 }), w(23012), 0)).toMatchObject({ value: 230.12 });
    // A decimal scale with a negative scale factor divides once (SunSpec PF 997 with PF_SF -1, scale 0.01: 0.997, not 0.9970000000000001).
    expect(decodePoint(profile, pt('int16', { scale: 0.01, scale_factor: 'pf_sf' }), w(997), 0, -1)).toMatchObject({ value: 0.997 });
    expect(decodePoint(profile, pt('int16', { scale: 0.01, scale_factor: 'pf_sf' }), w(0x10000 - 985), 0, -1)).toMatchObject({ value: -0.985 });
    expect(decodePoint(profile, pt('uint16', { scale: 0.1, offset: -40, scale_factor: 'sf' }), w(653), 0, -1)).toMatchObject({ value: 2.53 });
  });
  it('scale factor 10^sf applies after scale, and inversely on writes', () => {
    const p = pt('uint16', { scale_factor: 'w_sf' });
    expect(decodePoint(profile, p, w(1234), 0, -2)).toEqual({ ok: true, value: 12.34, raw: 1234 });
    expect(decodePoint(profile, p, w(1234), 0, 2)).toEqual({ ok: true, value: 123400, raw: 1234 });
    expect(Array.from(encodePoint(profile, p, 12.34, -2))).toEqual([1234]);
    expect(Array.from(encodePoint(profile, p, 123400, 2))).toEqual([1234]);
    // A percentage limit with sf -1 (SunSpec WMaxLimPct_SF): 55.5 % -> 555.
    expect(Array.from(encodePoint(profile, pt('uint16', { scale_factor: 'pct_sf' }), 55.5, -1))).toEqual([555]);
  });
  it('a missing or unimplemented scale factor yields no value and refuses to write', () => {
    const p = pt('int16', { scale_factor: 'w_sf' });
    expect(decodePoint(profile, p, w(10), 0)).toEqual({ ok: false, reason: 'scale_factor_not_implemented' });
    expect(decodePoint(profile, p, w(10), 0, -32768)).toEqual({ ok: false, reason: 'scale_factor_not_implemented' });
    expect(decodePoint(profile, p, w(10), 0, 42)).toEqual({ ok: false, reason: 'malformed' });
    expect(() => encodePoint(profile, p, 10)).toThrow(expect.objectContaining({ code: 'scale_factor_missing', point: 'p_int16' }));
  });
  it('rounding: nearest raw value, ties away from zero', () => {
    const p = pt('int16', { scale: 0.1 });
    expect(Array.from(encodePoint(profile, p, 0.25))).toEqual([3]);
    expect(Array.from(encodePoint(profile, p, -0.25))).toEqual([0xfffd]);
    expect(Array.from(encodePoint(profile, p, 0.24))).toEqual([2]);
  });
  it('out of range raw values throw CodecError out_of_range naming the point', () => {
    expect(() => encodePoint(profile, pt('uint16'), -1)).toThrow(expect.objectContaining({ code: 'out_of_range', point: 'p_uint16' }));
    expect(() => encodePoint(profile, pt('int16', { scale: 0.1 }), 3276.8)).toThrow(/outside int16/);
    expect(() => encodePoint(profile, pt('uint32'), 2 ** 32)).toThrow(CodecError);
    expect(() => encodePoint(profile, pt('float32'), 1e39)).toThrow(expect.objectContaining({ code: 'out_of_range' }));
    expect(() => encodePoint(profile, pt('string', { length: 2 }), 1)).toThrow(expect.objectContaining({ code: 'unsupported_type' }));
  });
  it('round trips encode(decode(x)) for every type and order', () => {
    const orders: WordOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
    const values: Record<NumericType, number[]> = {
      int16: [-32767, -1, 0, 1, 32767], uint16: [0, 1, 65534], int32: [-2147483647, -5, 0, 2147483647],
      uint32: [0, 4294967294], int64: [-(2 ** 53), -1, 0, 2 ** 53], uint64: [0, 2 ** 53],
      float32: [-3.25, 0, 1e-10, 3.0e38], float64: [-1e300, Math.PI, 5e-324],
    };
    let n = 0;
    for (const order of orders) {
      for (const [type, xs] of Object.entries(values) as [NumericType, number[]][]) {
        for (const x of xs) {
          const p = pt(type, { order });
          const got = decodePoint(profile, p, encodePoint(profile, p, x), 0);
          expect(got.ok && got.value, `${type} ${order} ${x}`).toBe(type === 'float32' ? Math.fround(x) : x);
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(100);
  });
});

describe('strings, bools, bits, coils', () => {
  it('strings trim NUL and space padding; ASCII high byte first', () => {
    const p = pt('string', { length: 4 });
    expect(decodePoint(profile, p, w(0x5375, 0x6e53, 0x0000, 0x0000), 0)).toEqual({ ok: true, value: 'SunS', raw: 'SunS' });
    expect(decodePoint(profile, p, w(0x2020, 0x4142, 0x2043, 0x2020), 0)).toMatchObject({ value: 'AB C' });
    expect(decodePoint(profile, p, w(0x4142, 0x0043, 0x4400, 0), 0)).toMatchObject({ value: 'AB' });
    expect(Array.from(encodeRaw(profile, p, 'SunS'))).toEqual([0x5375, 0x6e53, 0, 0]);
  });
  it('an all-NUL string is not implemented; BADC swaps bytes in each register', () => {
    expect(decodePoint(profile, pt('string', { length: 2 }), w(0, 0), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    expect(decodePoint(profile, pt('string', { length: 2, order: 'BADC' }), w(0x7553, 0x536e), 0)).toMatchObject({ value: 'SunS' });
    // The device default order describes numbers, not strings.
    expect(decodePoint({ default_order: 'DCBA' }, pt('string', { length: 2 }), w(0x5375, 0x6e53), 0)).toMatchObject({ value: 'SunS' });
  });
  it('bool registers, bits of a register, coil bits', () => {
    expect(decodePoint(profile, pt('bool'), w(2), 0)).toEqual({ ok: true, value: true, raw: 2 });
    expect(decodePoint(profile, pt('bit', { bit: 3 }), w(0b1000), 0)).toEqual({ ok: true, value: true, raw: 8 });
    expect(decodePoint(profile, pt('bit', { bit: 2 }), w(0b1000), 0)).toMatchObject({ value: false });
    const coil: PointDef = { id: 'c', table: 'coil', address: 0, type: 'bool' };
    expect(decodePoint(profile, coil, Uint8Array.of(0, 1), 1)).toEqual({ ok: true, value: true, raw: true });
    expect(Array.from(encodePoint(profile, coil, 1))).toEqual([1]);
    expect(() => encodePoint(profile, pt('bit', { bit: 1 }), 1)).toThrow(expect.objectContaining({ code: 'unsupported_type' }));
  });
  it('enum and bit labels are labels; the value stays numeric', () => {
    const p = pt('uint16', { enum: { '4': 'MPPT', '7': 'FAULT' }, bits: { '0': 'ground_fault', '3': 'over_temp' } });
    const got = decodePoint(profile, p, w(4), 0);
    expect(got).toEqual({ ok: true, value: 4, raw: 4 });
    expect(enumLabel(p, 4)).toBe('MPPT');
    expect(enumLabel(p, 5)).toBeUndefined();
    expect(activeFlags(p, 0b1001)).toEqual(['ground_fault', 'over_temp']);
  });
  it('a short read is malformed, never a throw', () => {
    expect(decodePoint(profile, pt('float32'), w(0x4148), 0)).toEqual({ ok: false, reason: 'malformed' });
    expect(decodePoint(profile, pt('int16'), w(), 0)).toEqual({ ok: false, reason: 'malformed' });
    expect(decodePoint(profile, pt('int16'), w(1), -1)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('decodeAllOrders', () => {
  it('shows one register pair decoded all four ways', () => {
    const f = (hex: string): number => Buffer.from(hex, 'hex').readFloatBE(0);
    expect(decodeAllOrders(w(0x4148, 0x0000), 'float32')).toEqual({ ABCD: 12.5, CDAB: f('00004148'), BADC: 197632, DCBA: f('00004841') });
    expect(decodeAllOrders(w(0xfffe), 'int16')).toEqual({ ABCD: -2, CDAB: -2, BADC: -257, DCBA: -257 });
  });
  it('refuses too few registers', () => {
    expect(() => decodeAllOrders(w(1), 'int32')).toThrow(CodecError);
  });
});

describe('codec properties (seeded random)', () => {
  // mulberry32: reproducible without a dependency.
  const rng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const TYPES: PointType[] = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string', 'bool', 'bit'];
  const ORDERS: WordOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

  it('decodePoint never throws on any words, offset, type, order or scale factor', () => {
    const r = rng(1);
    for (let i = 0; i < 20_000; i++) {
      const type = TYPES[Math.floor(r() * TYPES.length)] ?? 'int16';
      const words = Uint16Array.from({ length: Math.floor(r() * 6) }, () => Math.floor(r() * 65536));
      const point = pt(type, {
        order: ORDERS[Math.floor(r() * 4)], length: 1 + Math.floor(r() * 3), bit: Math.floor(r() * 16),
        scale: r() < 0.5 ? undefined : r() * 10 - 5, offset: r() < 0.5 ? undefined : r() * 100,
        scale_factor: r() < 0.3 ? 'sf' : undefined,
      });
      const sf = r() < 0.2 ? -32768 : Math.floor(r() * 30) - 15;
      const got = decodePoint(profile, point, words, Math.floor(r() * 4) - 1, sf);
      if (got.ok && typeof got.value === 'number') expect(Number.isFinite(got.value)).toBe(true);
    }
  });

  it('encode then decode returns the value within half a step, for random values, scales and orders', () => {
    const r = rng(2);
    let checked = 0;
    for (let i = 0; i < 5_000; i++) {
      const type = (['int16', 'uint16', 'int32', 'uint32'] as const)[Math.floor(r() * 4)] ?? 'int16';
      const scale = [1, 0.1, 0.01, 0.5, 2][Math.floor(r() * 5)] ?? 1;
      const sf = Math.floor(r() * 5) - 3;
      const point = pt(type, { order: ORDERS[Math.floor(r() * 4)], scale, scale_factor: 'sf' });
      const step = scale * 10 ** sf;
      const value = (r() * 60000 - (type.startsWith('u') ? 0 : 30000)) * step;
      let words: Uint16Array;
      try {
        words = encodePoint(profile, point, value, sf);
      } catch (e) {
        expect(e).toBeInstanceOf(CodecError);
        continue;
      }
      const got = decodePoint(profile, point, words, 0, sf);
      expect(got.ok).toBe(true);
      if (got.ok) expect(Math.abs((got.value as number) - value)).toBeLessThanOrEqual(step / 2 + Math.abs(value) * 1e-12);
      checked++;
    }
    expect(checked).toBeGreaterThan(4000);
  });

  it('rawReader (type and order resolved once) reads what wordsToRaw reads, every type x order', () => {
    const r = rng(3);
    for (const type of NUMERIC_TYPES) {
      for (const order of ORDERS) {
        const read = rawReader(type, order);
        for (let i = 0; i < 500; i++) {
          // Edge words (0, 0x7fff, 0x8000, 0xffff) half the time, random the rest.
          const words = Uint16Array.from({ length: 6 }, () => (r() < 0.5 ? [0, 0x7fff, 0x8000, 0xffff][Math.floor(r() * 4)] ?? 0 : Math.floor(r() * 65536)));
          const offset = Math.floor(r() * 3);
          expect(read(words, offset), `${type} ${order} ${Array.from(words).join(',')} @${offset}`).toEqual(wordsToRaw(type, words, offset, order));
        }
      }
    }
  });

  it('a compiled decoder reused across reads keeps no state: each result is what a fresh decodePoint gives', () => {
    const r = rng(4);
    for (let i = 0; i < 300; i++) {
      const type = TYPES[Math.floor(r() * TYPES.length)] ?? 'int16';
      const point = pt(type, {
        order: ORDERS[Math.floor(r() * 4)], length: 1 + Math.floor(r() * 3), bit: Math.floor(r() * 16),
        scale: r() < 0.5 ? undefined : [0.1, 0.01, 2, 0.5][Math.floor(r() * 4)], offset: r() < 0.5 ? undefined : [-40, 2.5, 100][Math.floor(r() * 3)],
        scale_factor: r() < 0.3 ? 'sf' : undefined, sentinel: r() < 0.2 ? 'none' : r() < 0.2 ? { values: [0, 1] } : undefined,
      });
      const decode = pointDecoder(profile, point);
      for (let j = 0; j < 20; j++) {
        const words = Uint16Array.from({ length: 5 }, () => (r() < 0.3 ? 0xffff : Math.floor(r() * 65536)));
        const offset = Math.floor(r() * 3);
        const sf = r() < 0.2 ? -32768 : Math.floor(r() * 8) - 4;
        expect(decode(words, offset, sf)).toEqual(decodePoint(profile, point, words, offset, sf));
      }
    }
  });
});

describe('decodePoint of a frozen point (a writable control: its decoder is compiled once)', () => {
  it('decodes exactly as an unfrozen copy, for each profile default order and scale factor', () => {
    const base = pt('int32', { scale: 0.1, sentinel: { values: [-1] } });
    const frozen = Object.freeze({ ...base, sentinel: Object.freeze({ values: Object.freeze([-1]) }) }) as PointDef;
    const words = w(0x1234, 0x5678);
    for (let round = 0; round < 2; round++) {
      for (const order of ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const) {
        // The same frozen point under another default order must not reuse the other order's decoder.
        expect(decodePoint({ default_order: order }, frozen, words, 0)).toEqual(decodePoint({ default_order: order }, { ...base }, words, 0));
      }
    }
    expect(decodePoint(profile, frozen, w(0xffff, 0xffff), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    const sf = Object.freeze(pt('int16', { scale_factor: 'W_SF' }));
    expect(decodePoint(profile, sf, w(250), 0, -1)).toEqual({ ok: true, value: 25, raw: 250 });
    expect(decodePoint(profile, sf, w(250), 0, 2)).toEqual({ ok: true, value: 25000, raw: 250 });
    expect(decodePoint(profile, sf, w(250), 0)).toEqual({ ok: false, reason: 'scale_factor_not_implemented' });
  });

  it('a frozen point whose sentinel values are not frozen is compiled each time (they could change)', () => {
    const list = [7];
    const point = Object.freeze(pt('int16', { sentinel: Object.freeze({ values: list }) }));
    expect(decodePoint(profile, point, w(7), 0)).toEqual({ ok: false, reason: 'not_implemented' });
    list[0] = 8;
    expect(decodePoint(profile, point, w(7), 0)).toEqual({ ok: true, value: 7, raw: 7 });
  });
});
