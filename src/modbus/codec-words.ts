// Register words <-> raw values, with the four word/byte orders. No scaling, no sentinels:
// src/modbus/codec.ts builds the point-level codec on top of this.
//
// Orders are named by where bytes A (most significant) .. D land on the wire (profile-types.ts):
// ABCD big-endian, CDAB word-swapped, BADC byte-swapped within words, DCBA little-endian. For
// 64-bit values the pattern extends over four words (CDAB = words reversed). For one-register
// types only the byte half of the order matters: BADC and DCBA swap the two bytes of the word.

import type { PointType, WordOrder } from '../config/profile-types.js';

export const WORD_ORDERS: readonly WordOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

/** The numeric types whose width is fixed (strings, bools and bits are handled by the codec). */
export type NumericType = Extract<PointType, 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64'>;

export const NUMERIC_TYPES: readonly NumericType[] = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'];

export function isNumericType(type: PointType): type is NumericType {
  // A switch, not a Set lookup: this runs for every decoded value.
  switch (type) {
    case 'int16': case 'uint16': case 'int32': case 'uint32':
    case 'int64': case 'uint64': case 'float32': case 'float64': return true;
    default: return false;
  }
}

export function numericWidth(type: NumericType): 1 | 2 | 4 {
  switch (type) {
    case 'int16': case 'uint16': return 1;
    case 'int32': case 'uint32': case 'float32': return 2;
    case 'int64': case 'uint64': case 'float64': return 4;
  }
}

const swapsWords = (order: WordOrder): boolean => order === 'CDAB' || order === 'DCBA';
const swapsBytes = (order: WordOrder): boolean => order === 'BADC' || order === 'DCBA';

/**
 * Big-endian bytes (A first) of `width` registers starting at `offset`, undoing `order`.
 * The caller has checked the bounds.
 */
function wordsToBytes(words: ArrayLike<number>, offset: number, width: number, order: WordOrder): Uint8Array {
  const out = new Uint8Array(width * 2);
  const wswap = swapsWords(order);
  const bswap = swapsBytes(order);
  for (let i = 0; i < width; i++) {
    const w = (words[offset + (wswap ? width - 1 - i : i)] ?? 0) & 0xffff;
    const hi = w >>> 8;
    const lo = w & 0xff;
    out[i * 2] = bswap ? lo : hi;
    out[i * 2 + 1] = bswap ? hi : lo;
  }
  return out;
}

/** Registers carrying big-endian `bytes` (A first) in `order`: the inverse of wordsToBytes. */
function bytesToWords(bytes: Uint8Array, order: WordOrder): Uint16Array {
  const width = bytes.length >> 1;
  const out = new Uint16Array(width);
  const wswap = swapsWords(order);
  const bswap = swapsBytes(order);
  for (let i = 0; i < width; i++) {
    const hi = bytes[i * 2] ?? 0;
    const lo = bytes[i * 2 + 1] ?? 0;
    out[wswap ? width - 1 - i : i] = bswap ? (lo << 8) | hi : (hi << 8) | lo;
  }
  return out;
}

const INT_RANGES: Record<'int16' | 'uint16' | 'int32' | 'uint32', [number, number]> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};
const INT64_RANGES: Record<'int64' | 'uint64', [bigint, bigint]> = {
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
};

/** Largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Whether an integral raw value fits the type. Floats: whether it is finite and (float32) within
 * range; NaN is representable (it is the float sentinel) and passes.
 */
export function rawFits(type: NumericType, raw: number | bigint): boolean {
  switch (type) {
    case 'int16': case 'uint16': case 'int32': case 'uint32': {
      const [lo, hi] = INT_RANGES[type];
      const n = Number(raw);
      return Number.isInteger(n) && n >= lo && n <= hi;
    }
    case 'int64': case 'uint64': {
      if (typeof raw === 'number' && !Number.isInteger(raw)) return false;
      const b = BigInt(raw);
      const [lo, hi] = INT64_RANGES[type];
      return b >= lo && b <= hi;
    }
    case 'float32': {
      const n = Number(raw);
      return Number.isNaN(n) || Math.abs(n) <= FLOAT32_MAX || !Number.isFinite(n);
    }
    case 'float64': return true;
  }
}

/** Big-endian bytes of a raw value; the caller has checked rawFits. */
function rawToBytes(type: NumericType, raw: number | bigint): Uint8Array {
  const bytes = new Uint8Array(numericWidth(type) * 2);
  const dv = new DataView(bytes.buffer);
  switch (type) {
    case 'int16': dv.setInt16(0, Number(raw)); break;
    case 'uint16': dv.setUint16(0, Number(raw)); break;
    case 'int32': dv.setInt32(0, Number(raw)); break;
    case 'uint32': dv.setUint32(0, Number(raw)); break;
    case 'int64': dv.setBigInt64(0, BigInt(raw)); break;
    case 'uint64': dv.setBigUint64(0, BigInt(raw)); break;
    case 'float32': dv.setFloat32(0, Number(raw)); break;
    case 'float64': dv.setFloat64(0, Number(raw)); break;
  }
  return bytes;
}

/** Registers of a raw numeric value in `order`. */
export function rawToWords(type: NumericType, raw: number | bigint, order: WordOrder): Uint16Array {
  return bytesToWords(rawToBytes(type, raw), order);
}

// Scratch space for float and 64-bit reassembly. Module-level on purpose: it is used only
// synchronously inside wordsToRaw (no re-entrancy), and saves two allocations per decoded value
// on the poll path (1,000 devices x 60 points per second).
const SCRATCH = new DataView(new ArrayBuffer(8));

const swap16 = (w: number): number => ((w & 0xff) << 8) | ((w >>> 8) & 0xff);

/** The raw numeric value in `words` at `offset`, read in `order`. The caller has checked the bounds. */
export function wordsToRaw(type: NumericType, words: ArrayLike<number>, offset: number, order: WordOrder): number | bigint {
  const bswap = swapsBytes(order);
  const width = numericWidth(type);
  if (width === 1) {
    const w = bswap ? swap16(words[offset] ?? 0) : (words[offset] ?? 0) & 0xffff;
    return type === 'int16' ? (w << 16) >> 16 : w;
  }
  const wswap = swapsWords(order);
  if (width === 2) {
    let hi = (words[offset + (wswap ? 1 : 0)] ?? 0) & 0xffff;
    let lo = (words[offset + (wswap ? 0 : 1)] ?? 0) & 0xffff;
    if (bswap) { hi = swap16(hi); lo = swap16(lo); }
    if (type === 'uint32') return hi * 0x10000 + lo;
    if (type === 'int32') return ((hi << 16) | lo) | 0;
    SCRATCH.setUint16(0, hi);
    SCRATCH.setUint16(2, lo);
    return SCRATCH.getFloat32(0);
  }
  for (let i = 0; i < 4; i++) {
    const w = (words[offset + (wswap ? 3 - i : i)] ?? 0) & 0xffff;
    SCRATCH.setUint16(i * 2, bswap ? swap16(w) : w);
  }
  return type === 'int64' ? SCRATCH.getBigInt64(0) : type === 'uint64' ? SCRATCH.getBigUint64(0) : SCRATCH.getFloat64(0);
}

/** Reads one raw numeric value at `offset`; the caller has checked the bounds. */
type RawReader = (words: ArrayLike<number>, offset: number) => number | bigint;

/**
 * wordsToRaw with type and order resolved once: what a compiled point decoder (codec.ts
 * pointDecoder) calls per value. Same results as wordsToRaw(type, words, offset, order).
 */
export function rawReader(type: NumericType, order: WordOrder): RawReader {
  const bswap = swapsBytes(order);
  const wswap = swapsWords(order);
  switch (type) {
    case 'uint16':
      return bswap ? (w, o) => swap16(w[o] ?? 0) : (w, o) => (w[o] ?? 0) & 0xffff;
    case 'int16':
      return bswap ? (w, o) => (swap16(w[o] ?? 0) << 16) >> 16 : (w, o) => ((w[o] ?? 0) << 16) >> 16;
    case 'uint32': case 'int32': {
      const h = wswap ? 1 : 0;
      const l = wswap ? 0 : 1;
      const word = bswap ? (w: ArrayLike<number>, i: number): number => swap16(w[i] ?? 0) : (w: ArrayLike<number>, i: number): number => (w[i] ?? 0) & 0xffff;
      return type === 'uint32'
        ? (w, o) => word(w, o + h) * 0x10000 + word(w, o + l)
        : (w, o) => ((word(w, o + h) << 16) | word(w, o + l)) | 0;
    }
    default:
      return (w, o) => wordsToRaw(type, w, o, order);
  }
}

/** String registers: two ASCII bytes each, high byte first unless the order swaps bytes. */
export function stringToWords(text: string, length: number, order: WordOrder): Uint16Array {
  const bytes = new Uint8Array(length * 2); // NUL padded
  const src = Buffer.from(text, 'latin1');
  bytes.set(src.subarray(0, bytes.length));
  // Word order never reverses a string: only the byte swap within registers applies.
  return bytesToWords(bytes, swapsBytes(order) ? 'BADC' : 'ABCD');
}

export function wordsToString(words: ArrayLike<number>, offset: number, length: number, order: WordOrder): string {
  const bytes = wordsToBytes(words, offset, length, swapsBytes(order) ? 'BADC' : 'ABCD');
  // Leading NUL/space padding is dropped, the text ends at the first NUL (C strings), and
  // trailing space padding is dropped; inner spaces stay.
  return Buffer.from(bytes).toString('latin1').replace(/^[\0 ]+/, '').replace(/\0[\s\S]*$/, '').replace(/ +$/, '');
}
