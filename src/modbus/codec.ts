// The point codec: registers of one read -> a point's value (decode), and a commanded value ->
// the registers to write (encode). Scale, offset and SunSpec scale factors apply both ways;
// "not implemented" sentinels never come out as numbers (field notes, "Reading registers").
//
// value = raw * scale + offset, then * 10^sf when the point has a scale_factor.
// 64-bit integers are decoded exactly as a bigint (`raw`); `value` is the nearest double, which is
// exact up to 2^53 (9.007e15: 9 PWh in Wh, far beyond any real counter) and loses low digits
// beyond. Gauges are doubles anyway; callers needing exact counts use `raw`.

import type { DeviceProfile, PointDef, WordOrder } from '../config/profile-types.js';
import { pointWidth } from '../config/profile-types.js';
import {
  WORD_ORDERS, isNumericType, rawFits, rawReader, rawToWords, stringToWords, wordsToRaw, wordsToString,
  type NumericType,
} from './codec-words.js';

export type DecodedValue =
  | { ok: true; value: number | string | boolean; raw: number | bigint | string | boolean }
  | { ok: false; reason: 'not_implemented' | 'scale_factor_not_implemented' | 'malformed' };

type CodecErrorCode =
  | 'out_of_range'          // the raw value does not fit the point's type
  | 'not_finite'            // NaN or +-Infinity commanded
  | 'unsupported_type'      // bit and string points cannot be written from a number
  | 'sentinel_value'        // the value encodes to the point's "not implemented" sentinel
  | 'scale_factor_missing'  // the point has a scale_factor and none (or the sentinel) was given
  | 'bad_scale';            // scale 0, or a scale factor outside SunSpec's -10..10

/** A value that cannot be encoded for a point; `code` is stable, the message names point and profile. */
export class CodecError extends Error {
  readonly code: CodecErrorCode;
  readonly point: string;
  constructor(code: CodecErrorCode, point: string, message: string) {
    super(message);
    this.name = 'CodecError';
    this.code = code;
    this.point = point;
  }
}

/** SunSpec's "not implemented" scale factor. */
const SF_NOT_IMPLEMENTED = -32768;

const DEFAULT_SENTINELS: Record<NumericType, number | bigint> = {
  int16: -0x8000,
  uint16: 0xffff,
  int32: -0x80000000,
  uint32: 0xffffffff,
  int64: -(1n << 63n),
  uint64: (1n << 64n) - 1n,
  float32: NaN,
  float64: NaN,
};

/** Effective word order of a point. */
export function pointOrder(profile: Pick<DeviceProfile, 'default_order'>, point: Pick<PointDef, 'order' | 'type'>): WordOrder {
  // Strings ignore the device's default order (it describes numbers); only an explicit
  // per-point order can byte-swap a string.
  if (point.type === 'string') return point.order ?? 'ABCD';
  return point.order ?? profile.default_order;
}

/** Whether a raw value is one of the point's "not implemented" sentinels. */
function isSentinel(point: Pick<PointDef, 'type' | 'sentinel'>, raw: number | bigint): boolean {
  return isNumericType(point.type) && sentinelHit(point.sentinel, point.type, raw);
}

function sentinelHit(sentinel: PointDef['sentinel'], type: NumericType, raw: number | bigint): boolean {
  const spec = sentinel ?? 'default';
  if (spec === 'none') return false;
  if (spec === 'default') {
    if (type === 'float32' || type === 'float64') return Number.isNaN(raw);
    return DEFAULT_SENTINELS[type] === raw;
  }
  return spec.values.some((v) => {
    if (Number.isNaN(v)) return typeof raw === 'number' && Number.isNaN(raw);
    if (typeof raw === 'bigint') return Number.isInteger(v) && BigInt(v) === raw;
    return v === raw;
  });
}

// Multiplying by 0.1 leaves binary noise (3 * 0.1 = 0.30000000000000004); dividing by the exact
// inverse (3 / 10 = 0.3) does not, so decimal scales divide, and a decimal offset is added in
// raw steps first ((653 - 400) / 10 = 25.3, where 653 * 0.1 - 40 = 25.299999999999997).
function decimalInverse(scale: number): number | undefined {
  const inv = 1 / scale;
  return Math.abs(scale) < 1 && Number.isInteger(inv) ? inv : undefined;
}
/** value = raw * scale + offset, as a function with its branches taken once (decoders are compiled). */
function scaler(scale: number, offset: number): (x: number) => number {
  const inv = decimalInverse(scale);
  if (inv === undefined) return (x) => x * scale + offset;
  const steps = offset * inv;
  return Number.isInteger(steps) ? (x) => (x + steps) / inv : (x) => x / inv + offset;
}
function unapplyScale(x: number, scale: number, offset: number): number {
  const inv = decimalInverse(scale);
  return inv === undefined ? (x - offset) / scale : x * inv - offset * inv;
}
function applyPow10(x: number, sf: number): number {
  if (sf === 0) return x;
  return sf < 0 ? x / 10 ** -sf : x * 10 ** sf;
}
/**
 * Scale, offset and a scale factor, compiled: a decimal scale and a negative sf divide once
 * (997 / 1000 = 0.997, not 997 / 100 / 10).
 */
function pow10Scaler(scale: number, offset: number): (x: number, sf: number) => number {
  const plain = scaler(scale, offset);
  const inv = decimalInverse(scale);
  if (inv === undefined || !Number.isInteger(offset * inv)) return (x, sf) => applyPow10(plain(x), sf);
  const steps = offset * inv;
  return (x, sf) => (sf < 0 ? (x + steps) / (inv * 10 ** -sf) : applyPow10(plain(x), sf));
}

function validScaleFactor(sf: number | undefined): 'ok' | 'missing' | 'bad' {
  if (sf === undefined || Number.isNaN(sf) || sf === SF_NOT_IMPLEMENTED) return 'missing';
  return Number.isInteger(sf) && sf >= -10 && sf <= 10 ? 'ok' : 'bad';
}

/**
 * A point's decoder: (registers or bits of one read, index of the point's first register, the
 * decoded value of its scale_factor register) -> its value. Never throws: a short read is
 * `malformed`.
 */
export type PointDecoder = (words: Uint16Array | Uint8Array, offset: number, scaleFactor?: number) => DecodedValue;

// Failures carry no data: one shared (frozen) result each, nothing allocated per failed decode.
const MALFORMED: DecodedValue = Object.freeze({ ok: false, reason: 'malformed' });
const NOT_IMPLEMENTED: DecodedValue = Object.freeze({ ok: false, reason: 'not_implemented' });
const SF_MISSING: DecodedValue = Object.freeze({ ok: false, reason: 'scale_factor_not_implemented' });

/**
 * Compile a point's decoder: width, word order, type, sentinels, scale and offset are resolved
 * here, once, so a poller that compiles one per point at plan time pays none of it per value.
 * decodePoint is this decoder made and called once: the two cannot disagree.
 */
export function pointDecoder(profile: Pick<DeviceProfile, 'default_order'>, point: PointDef): PointDecoder {
  const width = pointWidth(point);
  const order = pointOrder(profile, point);
  const short = (words: Uint16Array | Uint8Array, offset: number): boolean =>
    !Number.isInteger(offset) || offset < 0 || offset + width > words.length;

  if (point.table === 'coil' || point.table === 'discrete') {
    return (words, offset) => {
      if (short(words, offset)) return MALFORMED;
      const bit = (words[offset] ?? 0) !== 0;
      return { ok: true, value: bit, raw: bit };
    };
  }
  switch (point.type) {
    case 'bool': {
      const read = rawReader('uint16', order);
      return (words, offset) => {
        if (short(words, offset)) return MALFORMED;
        const raw = read(words, offset) as number;
        return { ok: true, value: raw !== 0, raw };
      };
    }
    case 'bit': {
      const read = rawReader('uint16', order);
      const bit = point.bit ?? 0;
      return (words, offset) => {
        if (short(words, offset)) return MALFORMED;
        const raw = read(words, offset) as number;
        return { ok: true, value: ((raw >>> bit) & 1) === 1, raw };
      };
    }
    case 'string': {
      // SunSpec: an unimplemented string is all NUL.
      const nulIsMissing = (point.sentinel ?? 'default') === 'default';
      return (words, offset) => {
        if (short(words, offset)) return MALFORMED;
        const text = wordsToString(words, offset, width, order);
        if (text === '' && nulIsMissing) return NOT_IMPLEMENTED;
        return { ok: true, value: text, raw: text };
      };
    }
    default:
      return numericDecoder(point, point.type, order, short);
  }
}

function numericDecoder(
  point: PointDef, type: NumericType, order: WordOrder, short: (words: Uint16Array | Uint8Array, offset: number) => boolean,
): PointDecoder {
  const read = rawReader(type, order);
  const sentinel = sentinelTest(point.sentinel, type);
  const hasSf = point.scale_factor !== undefined;
  const scaled = scaler(point.scale ?? 1, point.offset ?? 0);
  const scaledPow10 = pow10Scaler(point.scale ?? 1, point.offset ?? 0);
  return (words, offset, sf) => {
    if (short(words, offset)) return MALFORMED;
    const raw = read(words, offset);
    if (sentinel(raw)) return NOT_IMPLEMENTED;
    const n = typeof raw === 'number' ? raw : Number(raw);
    // NaN is "no number" whatever the sentinel spec says; an infinity is not a reading either.
    if (Number.isNaN(n)) return NOT_IMPLEMENTED;
    if (!Number.isFinite(n)) return MALFORMED;
    if (!hasSf) return { ok: true, value: scaled(n), raw };
    const check = validScaleFactor(sf);
    if (check === 'missing') return SF_MISSING;
    if (check === 'bad') return MALFORMED;
    return { ok: true, value: scaledPow10(n, sf as number), raw };
  };
}

/** sentinelHit with the spec resolved once. */
function sentinelTest(sentinel: PointDef['sentinel'], type: NumericType): (raw: number | bigint) => boolean {
  const spec = sentinel ?? 'default';
  if (spec === 'none') return () => false;
  if (spec === 'default') {
    if (type === 'float32' || type === 'float64') return (raw) => Number.isNaN(raw);
    const s = DEFAULT_SENTINELS[type];
    return (raw) => raw === s;
  }
  return (raw) => sentinelHit(spec, type, raw);
}

/**
 * The compiled decoders of frozen points: a writable control's definition and its read-back point
 * are deep-frozen when their profile is loaded, so what their decoder was compiled from cannot
 * change (the profile's default_order is checked on each use). Demand response encodes, decodes
 * back and reads back such points per controller: compiling once saves the closures each time.
 */
const frozenDecoders = new WeakMap<PointDef, { defaultOrder: WordOrder; decode: PointDecoder }>();

function isFrozenPoint(point: PointDef): boolean {
  // The decoder reads the point's own fields and its sentinel values: all must be frozen.
  const sentinel = point.sentinel;
  return Object.isFrozen(point) && (typeof sentinel !== 'object' || (Object.isFrozen(sentinel) && Object.isFrozen(sentinel.values)));
}

/**
 * Decode one point from the registers (or bits, for coil/discrete) of one read.
 * `offset` is the index of the point's first register within `words`; `scaleFactor` is the
 * decoded value of the point's scale_factor register (ignored when the point has none).
 * Never throws: a short read is `malformed`. For repeated decodes of a point, compile its
 * decoder once (pointDecoder); a frozen point's is compiled once here.
 */
export function decodePoint(
  profile: Pick<DeviceProfile, 'default_order'>,
  point: PointDef,
  words: Uint16Array | Uint8Array,
  offset: number,
  scaleFactor?: number,
): DecodedValue {
  if (!isFrozenPoint(point)) return pointDecoder(profile, point)(words, offset, scaleFactor);
  let compiled = frozenDecoders.get(point);
  if (compiled === undefined || compiled.defaultOrder !== profile.default_order) {
    compiled = { defaultOrder: profile.default_order, decode: pointDecoder(profile, point) };
    frozenDecoders.set(point, compiled);
  }
  return compiled.decode(words, offset, scaleFactor);
}

/** A decoded value as a number (booleans as 0/1); undefined for sentinels, malformed reads, strings and infinities. */
export function numericValue(d: DecodedValue): number | undefined {
  if (!d.ok) return undefined;
  if (typeof d.value === 'boolean') return d.value ? 1 : 0;
  return typeof d.value === 'number' && Number.isFinite(d.value) ? d.value : undefined;
}

/**
 * Encode a commanded value (scaled units) into the registers to write: the inverse of decode.
 * Integers round to the nearest raw value, ties away from zero. Throws CodecError when the
 * value cannot be represented; never writes a sentinel. Coil points encode to one word 0/1.
 */
export function encodePoint(
  profile: Pick<DeviceProfile, 'default_order'>,
  point: PointDef,
  value: number,
  scaleFactor?: number,
): Uint16Array {
  if (!Number.isFinite(value)) throw new CodecError('not_finite', point.id, `${pointWhere(point)}: cannot write ${String(value)}`);
  if (point.table === 'coil' || point.table === 'discrete' || point.type === 'bool') return Uint16Array.of(value !== 0 ? 1 : 0);
  if (!isNumericType(point.type)) {
    throw new CodecError('unsupported_type', point.id, `${pointWhere(point)}: type ${point.type} cannot be written from a number`);
  }
  const scale = point.scale ?? 1;
  if (scale === 0) throw new CodecError('bad_scale', point.id, `${pointWhere(point)}: scale 0 cannot be inverted`);
  let x = value;
  if (point.scale_factor !== undefined) {
    const check = validScaleFactor(scaleFactor);
    if (check === 'missing') {
      throw new CodecError('scale_factor_missing', point.id, `${pointWhere(point)}: scale factor ${JSON.stringify(point.scale_factor)} not available (${String(scaleFactor)})`);
    }
    if (check === 'bad') throw new CodecError('bad_scale', point.id, `${pointWhere(point)}: scale factor ${String(scaleFactor)} outside -10..10`);
    x = applyPow10(x, -(scaleFactor as number));
  }
  x = unapplyScale(x, scale, point.offset ?? 0);
  const type = point.type;
  const raw: number | bigint = type === 'float32' || type === 'float64' ? x : roundHalfAway(type, x);
  if (!rawFits(type, raw) || (type === 'float32' && !Number.isFinite(Math.fround(Number(raw))))) {
    throw new CodecError('out_of_range', point.id, `${pointWhere(point)}: ${value} is raw ${String(raw)}, outside ${type}`);
  }
  if (isSentinel(point, raw)) {
    throw new CodecError('sentinel_value', point.id, `${pointWhere(point)}: ${value} encodes to the "not implemented" value ${String(raw)}`);
  }
  return rawToWords(type, raw, pointOrder(profile, point));
}

/** The prefix of encodePoint's messages, made only for an error (encodePoint runs per value written). */
function pointWhere(point: PointDef): string {
  return `point ${JSON.stringify(point.id)}`;
}

function roundHalfAway(type: NumericType, x: number): number | bigint {
  const r = Math.sign(x) * Math.round(Math.abs(x));
  // Beyond 2^53 a double is already an integer; BigInt keeps it exact for the 64-bit encoders.
  return (type === 'int64' || type === 'uint64') && Number.isFinite(r) ? BigInt(r) : r;
}

/**
 * Registers of a raw (unscaled) value: what the simulator serves, sentinels included.
 * Strings are padded with NUL to the point's length; booleans are 0/1.
 */
export function encodeRaw(
  profile: Pick<DeviceProfile, 'default_order'>, point: PointDef, raw: number | bigint | string | boolean,
): Uint16Array {
  const order = pointOrder(profile, point);
  if (point.type === 'string') return stringToWords(String(raw), pointWidth(point), order);
  if (typeof raw === 'boolean') return Uint16Array.of(raw ? 1 : 0);
  if (point.table === 'coil' || point.table === 'discrete' || point.type === 'bool') return Uint16Array.of(Number(raw) !== 0 ? 1 : 0);
  if (point.type === 'bit') return Uint16Array.of(Number(raw) & 0xffff);
  if (typeof raw === 'string') throw new CodecError('unsupported_type', point.id, `point ${JSON.stringify(point.id)}: ${point.type} from a string`);
  if (!rawFits(point.type, raw)) throw new CodecError('out_of_range', point.id, `point ${JSON.stringify(point.id)}: raw ${String(raw)} outside ${point.type}`);
  return rawToWords(point.type, raw, order);
}

/**
 * The troubleshooting aid of the field notes: one set of registers decoded in all four orders.
 * 64-bit integers come out as the nearest double. Throws CodecError when `words` is too short.
 */
export function decodeAllOrders(words: Uint16Array, type: NumericType): Record<WordOrder, number> {
  const need = type.endsWith('64') ? 4 : type.endsWith('32') ? 2 : 1;
  if (words.length < need) throw new CodecError('out_of_range', type, `${type} needs ${need} registers, got ${words.length}`);
  const out = {} as Record<WordOrder, number>;
  for (const order of WORD_ORDERS) out[order] = Number(wordsToRaw(type, words, 0, order));
  return out;
}

/**
 * A point decoded as if its registers came in each of the four orders (its scale, offset, scale
 * factor and sentinels applied): what the status detail and `probe` show for multi-register points,
 * and how a wrong order is recognised ("did you mean CDAB?").
 */
export function decodePointAllOrders(
  profile: Pick<DeviceProfile, 'default_order'>, point: PointDef, words: Uint16Array | Uint8Array, offset: number, scaleFactor?: number,
): Record<WordOrder, DecodedValue> {
  const out = {} as Record<WordOrder, DecodedValue>;
  for (const order of WORD_ORDERS) out[order] = decodePoint(profile, { ...point, order }, words, offset, scaleFactor);
  return out;
}

/** The enum label of a status value (raw integer), if the profile names one. */
export function enumLabel(point: Pick<PointDef, 'enum'>, raw: number | bigint): string | undefined {
  return point.enum?.[String(raw)];
}

/** Names of the flags set in a bit-field value, lowest bit first. */
export function activeFlags(point: Pick<PointDef, 'bits'>, raw: number | bigint): string[] {
  if (!point.bits || (typeof raw === 'number' && !Number.isInteger(raw))) return [];
  const big = BigInt(raw);
  return Object.entries(point.bits)
    .map(([bit, name]) => [Number(bit), name] as const)
    .filter(([bit]) => Number.isInteger(bit) && bit >= 0 && ((big >> BigInt(bit)) & 1n) === 1n)
    .sort((a, b) => a[0] - b[0])
    .map(([, name]) => name);
}

export type { NumericType };
export { WORD_ORDERS } from './codec-words.js';
