// A fast path for the payloads meters send nearly always: one flat JSON object, or an array of
// them, in printable ASCII (no escapes), whose values are strings, numbers, true, false or null. It
// reads the fields validation looks at straight from the payload bytes into reused records, so a
// reading costs no JSON.parse object, no key strings and (for an RFC 3339 timestamp in its plain
// form, rfc3339.ts) no timestamp string. Anything else (a byte >= 0x7f, an escape, a nested value,
// an empty array, an element that is not an object, any syntax error) makes scan() return false and
// the caller takes the whole payload through JSON.parse as before: this file only ever speeds up
// payloads JSON.parse would have read to the same field values, never decides about the others.
import { exactDecimal, POW10 } from './decimal.js';
import { rfc3339Ms } from './rfc3339.js';

/** Bits of ScannedReading.numbers: the field's value is the number in its `...N` field. */
const NUM_KWH = 1;
const NUM_VOLTAGE = 2;
const NUM_CURRENT = 4;
const NUM_PF = 8;
export const NUM_TIMESTAMP = 16;
/** The four measured values are numbers. */
export const NUM_VALUES = NUM_KWH | NUM_VOLTAGE | NUM_CURRENT | NUM_PF;

/**
 * Where the ids of the meters already known are looked up by their bytes (the ingest's slot
 * table): a known meter's id read from a payload is its stored string again, and its slot comes
 * along as a hint for the dedupe state (checked there).
 */
export interface MeterIdIndex {
  /** The slot of the id b[s..e) (ASCII), or -1. */
  findBytes(b: Uint8Array, s: number, e: number): number;
  keyOf(slot: number): string;
}

/**
 * The fields of one scanned reading, as JSON.parse would have them (undefined = absent). Numbers
 * of kwh, voltage, current, power_factor and timestamp are kept unboxed in the `...N` fields (the
 * record is reused: no heap number per value), flagged in `numbers`.
 */
export class ScannedReading {
  meter_id: unknown = undefined;
  /** The meter's slot in the MeterIdIndex scan() was given when meter_id is a string it holds, else -1. */
  slot = -1;
  region: unknown = undefined;
  /** The timestamp when it is neither a number nor a plain RFC 3339 string. */
  timestamp: unknown = undefined;
  /** The epoch ms of a plain-form RFC 3339 timestamp string at b[tsStart..tsEnd), else NaN. */
  tsMs = NaN;
  tsStart = 0;
  tsEnd = 0;
  kwh: unknown = undefined;
  voltage: unknown = undefined;
  current: unknown = undefined;
  power_factor: unknown = undefined;
  power_w: unknown = undefined;
  power: unknown = undefined;
  numbers = 0;
  kwhN = 0;
  voltageN = 0;
  currentN = 0;
  pfN = 0;
  tsN = 0;

  reset(): void {
    this.meter_id = this.region = this.timestamp = undefined;
    this.kwh = this.voltage = this.current = this.power_factor = this.power_w = this.power = undefined;
    this.tsMs = NaN;
    this.numbers = 0;
    this.slot = -1;
  }

  /** The reading as the plain object JSON.parse made of it (its known fields): for the slow path's diagnosis. */
  materialize(b: Buffer): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const n = this.numbers;
    const ts = (n & NUM_TIMESTAMP) !== 0 ? this.tsN : Number.isNaN(this.tsMs) ? this.timestamp : b.toString('latin1', this.tsStart, this.tsEnd);
    const fields: Array<[string, unknown]> = [
      ['meter_id', this.meter_id], ['region', this.region], ['timestamp', ts],
      ['kwh', (n & NUM_KWH) !== 0 ? this.kwhN : this.kwh], ['voltage', (n & NUM_VOLTAGE) !== 0 ? this.voltageN : this.voltage],
      ['current', (n & NUM_CURRENT) !== 0 ? this.currentN : this.current], ['power_factor', (n & NUM_PF) !== 0 ? this.pfN : this.power_factor],
      ['power_w', this.power_w], ['power', this.power],
    ];
    for (const [k, v] of fields) if (v !== undefined) o[k] = v;
    return o;
  }
}

const enum Key { Other, MeterId, Region, Timestamp, Kwh, Voltage, Current, PowerFactor, PowerW, Power }

/** Each known key's bytes, by Key. */
const KEY_BYTES: Uint8Array[] = [];
for (const [name, k] of [
  ['meter_id', Key.MeterId], ['region', Key.Region], ['timestamp', Key.Timestamp], ['kwh', Key.Kwh], ['voltage', Key.Voltage],
  ['current', Key.Current], ['power_factor', Key.PowerFactor], ['power_w', Key.PowerW], ['power', Key.Power],
] as const) KEY_BYTES[k] = Buffer.from(name, 'latin1');
/** Meter id strings remembered (direct-mapped by a hash of the bytes): a meter heard again costs no new string. */
const ID_CACHE = 16_384;
/** The longest meter id validation accepts (validate.ts): longer ones are never cached. */
const MAX_CACHED_ID = 128;

// An integer below 2^53 (exact as a double) divided by an exact power of ten (POW10, to 1e22) is
// correctly rounded, as JSON.parse's is (Clinger's fast path).
/**
 * Digits are taken into a double while it stays exact: below 2^53 every step m * 10 + d is exact,
 * and once the true value reaches 2^53 the computed one does too (rounding is monotonic), so
 * `m < EXACT_LIMIT` after the last digit says m is the exact integer of the digits. (Up to 15
 * digits always are; 16 or 17 often are not: 0.9500000000000001, what a float sum prints, goes to
 * exactDecimal.)
 */
const EXACT_LIMIT = 2 ** 53;

/** Texts of numbers off the fast path remembered with their values (direct-mapped), and the longest one kept. */
const NUMBER_CACHE = 256;
const MAX_CACHED_NUMBER = 32;
/** Region name strings remembered (direct-mapped by a hash of the bytes), and the longest one kept. */
const REGION_CACHE = 64;
const MAX_CACHED_REGION = 64;

/** A slot of a direct-mapped cache of `size` (a power of two) for the bytes b[s..e) (FNV-1a, then a fold). */
function cacheSlot(b: Buffer, s: number, e: number, size: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  for (let i = s; i < e; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  return (h ^ (h >>> 15)) & (size - 1);
}

/** Whether the ASCII bytes b[s..s+n) are the string `str`. */
function sameBytes(b: Buffer, s: number, n: number, str: string): boolean {
  if (str.length !== n) return false;
  for (let j = 0; j < n; j++) if (b[s + j] !== str.charCodeAt(j)) return false;
  return true;
}

/** A syntax outside the subset (or outside JSON): scan() answers false. */
const FAIL = -1;
/** Records kept between payloads. */
const KEEP_RECORDS = 1000;
const EMPTY = Buffer.alloc(0);

export class PayloadScanner {
  /** Readings scanned by the last successful scan(). */
  count = 0;
  /** true when the payload was a single object rather than an array. */
  single = false;
  readonly readings: ScannedReading[] = [];
  private b: Buffer = EMPTY;
  private end = 0;
  /** The last region string made, reused while the next one has the same bytes. */
  private lastRegion = '';
  private readonly regions: Array<string | undefined> = new Array<string | undefined>(REGION_CACHE).fill(undefined);
  private readonly ids: Array<string | undefined> = new Array<string | undefined>(ID_CACHE).fill(undefined);
  private index: MeterIdIndex | undefined;
  /** The slot meterId() found its id in (-1: none). */
  private idSlot = -1;

  /** Scans a payload; false: not in the fast subset (use JSON.parse). `index`: known meter ids (see MeterIdIndex). */
  scan(b: Buffer, index?: MeterIdIndex): boolean {
    this.b = b;
    this.index = index;
    this.end = b.length;
    this.count = 0;
    let i = this.ws(0);
    const c = b[i];
    if (c === 0x5b) { // '['
      this.single = false;
      i = this.ws(i + 1);
      if (b[i] === 0x5d) return false; // empty array: the slow path counts it
      for (;;) {
        if (b[i] !== 0x7b) return false;
        i = this.object(i + 1, this.record());
        if (i === FAIL) return false;
        i = this.ws(i);
        const d = b[i];
        if (d === 0x2c) { i = this.ws(i + 1); continue; }
        if (d === 0x5d) { i++; break; }
        return false;
      }
    } else if (c === 0x7b) { // '{'
      this.single = true;
      i = this.object(i + 1, this.record());
      if (i === FAIL) return false;
    } else {
      return false;
    }
    return this.ws(i) === this.end;
  }

  /** Lets go of the payload, and of the records beyond a usual batch (a huge one keeps no memory). */
  release(): void {
    this.b = EMPTY;
    this.index = undefined;
    this.end = 0;
    if (this.readings.length > KEEP_RECORDS) this.readings.length = KEEP_RECORDS;
    // The kept records quote nothing of this payload once it is done (a huge value would stay alive).
    for (let k = 0; k < this.count; k++) this.readings[k]?.reset();
  }

  private record(): ScannedReading {
    let r = this.readings[this.count];
    if (r === undefined) {
      r = new ScannedReading();
      this.readings.push(r);
    }
    r.reset();
    this.count++;
    return r;
  }

  private ws(i: number): number {
    const b = this.b;
    if ((b[i] as number) > 0x20) return i;
    while (i < this.end) {
      const c = b[i];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    return i;
  }

  /** The end of a plain string starting after its opening quote at `i` (the closing quote's index), or FAIL. */
  private stringEnd(i: number): number {
    const b = this.b;
    for (; i < this.end; i++) {
      const c = b[i] as number;
      if (c === 0x22) return i;
      // control (invalid JSON), escape, DEL, non-ASCII: a scanned string is printable ASCII only
      if (c < 0x20 || c === 0x5c || c >= 0x7f) return FAIL;
    }
    return FAIL;
  }

  /** An object's members from just after `{`; returns the index after `}`, or FAIL. */
  private object(i: number, r: ScannedReading): number {
    const b = this.b;
    i = this.ws(i);
    if (b[i] === 0x7d) return i + 1;
    for (;;) {
      if (b[i] !== 0x22) return FAIL;
      const ks = i + 1;
      // A known key is recognised in one pass: its bytes, then the closing quote.
      const key = this.knownKey(ks);
      let ke: number;
      if (key !== Key.Other) {
        ke = ks + (KEY_BYTES[key] as Uint8Array).length;
      } else {
        ke = this.stringEnd(ks);
        if (ke === FAIL) return FAIL;
      }
      i = this.ws(ke + 1);
      if (b[i] !== 0x3a) return FAIL;
      i = this.ws(i + 1);
      i = this.value(i, key, r);
      if (i === FAIL) return FAIL;
      i = this.ws(i);
      const c = b[i];
      if (c === 0x2c) { i = this.ws(i + 1); continue; }
      if (c === 0x7d) return i + 1;
      return FAIL;
    }
  }

  /**
   * The known key whose bytes and closing quote start at `s`, else Key.Other. A string is exactly
   * that key when its bytes are the key's (plain letters and `_`: no escape, no quote among them)
   * followed by the closing quote.
   */
  private knownKey(s: number): Key {
    switch (this.b[s]) {
      case 0x6d: return this.isKey(s, Key.MeterId); // m
      case 0x74: return this.isKey(s, Key.Timestamp); // t
      case 0x6b: return this.isKey(s, Key.Kwh); // k
      case 0x76: return this.isKey(s, Key.Voltage); // v
      case 0x63: return this.isKey(s, Key.Current); // c
      case 0x72: return this.isKey(s, Key.Region); // r
      case 0x70: { // p
        const k = this.isKey(s, Key.PowerFactor);
        if (k !== Key.Other) return k;
        const w = this.isKey(s, Key.PowerW);
        return w !== Key.Other ? w : this.isKey(s, Key.Power);
      }
      default: return Key.Other;
    }
  }

  private isKey(s: number, k: Key): Key {
    const b = this.b;
    const kb = KEY_BYTES[k] as Uint8Array;
    const n = kb.length;
    if (b[s + n] !== 0x22) return Key.Other;
    for (let j = 1; j < n; j++) if (b[s + j] !== kb[j]) return Key.Other;
    return k;
  }

  /**
   * A meter id: the known meter's own string when the index holds it (its slot in `idSlot`), else
   * the same string as last time this id was seen, when the cache still has it.
   */
  private meterId(s: number, e: number): string {
    const b = this.b;
    const n = e - s;
    const index = this.index;
    if (index !== undefined && n <= MAX_CACHED_ID) {
      const slot = index.findBytes(b, s, e);
      this.idSlot = slot;
      if (slot >= 0) return index.keyOf(slot);
    } else {
      this.idSlot = -1;
    }
    const slot = cacheSlot(b, s, e, ID_CACHE);
    const cached = this.ids[slot];
    if (cached !== undefined && sameBytes(b, s, n, cached)) return cached;
    const str = b.toString('latin1', s, e);
    // Only ids that can be valid are kept: an oversized one is refused anyway and must not stay alive.
    if (n <= MAX_CACHED_ID) this.ids[slot] = str;
    return str;
  }

  /** One value at `i` into the field `key` of `r`; returns the index after it, or FAIL. */
  private value(i: number, key: Key, r: ScannedReading): number {
    const b = this.b;
    const c = b[i] as number;
    let v: unknown;
    let next: number;
    if (c === 0x22) {
      const e = this.stringEnd(i + 1);
      if (e === FAIL) return FAIL;
      next = e + 1;
      if (key === Key.Timestamp) {
        const ms = rfc3339Ms(b, i + 1, e);
        if (!Number.isNaN(ms)) {
          r.timestamp = undefined;
          r.numbers &= ~NUM_TIMESTAMP;
          r.tsMs = ms;
          r.tsStart = i + 1;
          r.tsEnd = e;
          return next;
        }
      }
      if (key === Key.Other) return next;
      if (key === Key.MeterId) {
        r.meter_id = this.meterId(i + 1, e);
        r.slot = this.idSlot;
        return next;
      }
      v = key === Key.Region ? this.region(i + 1, e) : b.toString('latin1', i + 1, e);
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      next = this.number(i);
      if (next === FAIL) return FAIL;
      const num = this.num;
      switch (key) {
        case Key.Kwh: r.kwh = undefined; r.kwhN = num; r.numbers |= NUM_KWH; return next;
        case Key.Voltage: r.voltage = undefined; r.voltageN = num; r.numbers |= NUM_VOLTAGE; return next;
        case Key.Current: r.current = undefined; r.currentN = num; r.numbers |= NUM_CURRENT; return next;
        case Key.PowerFactor: r.power_factor = undefined; r.pfN = num; r.numbers |= NUM_PF; return next;
        case Key.Timestamp: r.timestamp = undefined; r.tsMs = NaN; r.tsN = num; r.numbers |= NUM_TIMESTAMP; return next;
        case Key.Other: return next;
        default: v = num;
      }
    } else if (c === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
      v = true;
      next = i + 4;
    } else if (c === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) {
      v = false;
      next = i + 5;
    } else if (c === 0x6e && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) {
      v = null;
      next = i + 4;
    } else {
      return FAIL; // a nested object or array, or not JSON
    }
    switch (key) {
      case Key.MeterId: r.meter_id = v; r.slot = -1; break;
      case Key.Region: r.region = v; break;
      case Key.Timestamp: r.timestamp = v; r.tsMs = NaN; r.numbers &= ~NUM_TIMESTAMP; break;
      case Key.Kwh: r.kwh = v; r.numbers &= ~NUM_KWH; break;
      case Key.Voltage: r.voltage = v; r.numbers &= ~NUM_VOLTAGE; break;
      case Key.Current: r.current = v; r.numbers &= ~NUM_CURRENT; break;
      case Key.PowerFactor: r.power_factor = v; r.numbers &= ~NUM_PF; break;
      case Key.PowerW: r.power_w = v; break;
      case Key.Power: r.power = v; break;
      case Key.Other: break;
    }
    return next;
  }

  /**
   * A region name: the previous one's string again when the bytes are the same (a batch is mostly
   * one region), else the one remembered for these bytes (single-reading messages alternate
   * between a site's few regions).
   */
  private region(s: number, e: number): string {
    const b = this.b;
    const prev = this.lastRegion;
    const n = e - s;
    if (sameBytes(b, s, n, prev)) return prev;
    const slot = cacheSlot(b, s, e, REGION_CACHE);
    const cached = this.regions[slot];
    if (cached !== undefined && sameBytes(b, s, n, cached)) {
      this.lastRegion = cached;
      return cached;
    }
    const str = b.toString('latin1', s, e);
    this.lastRegion = str;
    // Only names that can be valid regions (validate.ts: at most 64 characters) are remembered.
    if (n <= MAX_CACHED_REGION) this.regions[slot] = str;
    return str;
  }

  private num = 0;
  private readonly numTexts: Array<string | undefined> = new Array<string | undefined>(NUMBER_CACHE).fill(undefined);
  private readonly numValues = new Float64Array(NUMBER_CACHE);

  /**
   * A number outside the fast paths (an exponent, more than 19 significant digits, a near-tie), by
   * `Number()` of its text: the same correctly rounded value JSON.parse gives. Remembered by its
   * bytes: a publisher's numbers of this kind repeat (1e-3 for every reading), and each would cost
   * a string.
   */
  private otherNumber(s: number, e: number): number {
    const b = this.b;
    const n = e - s;
    if (n > MAX_CACHED_NUMBER) return Number(b.toString('latin1', s, e));
    const slot = cacheSlot(b, s, e, NUMBER_CACHE);
    const text = this.numTexts[slot];
    if (text !== undefined && sameBytes(b, s, n, text)) return this.numValues[slot] as number;
    const fresh = b.toString('latin1', s, e);
    const v = Number(fresh);
    this.numTexts[slot] = fresh;
    this.numValues[slot] = v;
    return v;
  }

  /** A JSON number at `i` into `this.num`; returns the index after it, or FAIL (not JSON). */
  private number(i: number): number {
    const b = this.b;
    const start = i;
    let neg = false;
    if (b[i] === 0x2d) { neg = true; i++; }
    let m = 0;
    let c = b[i] as number;
    if (c === 0x30) {
      i++;
      c = b[i] as number;
      if (c >= 0x30 && c <= 0x39) return FAIL; // a leading zero
    } else if (c >= 0x31 && c <= 0x39) {
      do { m = m * 10 + (c - 48); i++; c = b[i] as number; } while (c >= 0x30 && c <= 0x39);
    } else {
      return FAIL;
    }
    let frac = 0;
    if (c === 0x2e) {
      i++;
      c = b[i] as number;
      if (!(c >= 0x30 && c <= 0x39)) return FAIL;
      do { m = m * 10 + (c - 48); frac++; i++; c = b[i] as number; } while (c >= 0x30 && c <= 0x39);
    }
    let exp = false;
    if (c === 0x65 || c === 0x45) {
      exp = true;
      i++;
      c = b[i] as number;
      if (c === 0x2b || c === 0x2d) { i++; c = b[i] as number; }
      if (!(c >= 0x30 && c <= 0x39)) return FAIL;
      do { i++; c = b[i] as number; } while (c >= 0x30 && c <= 0x39);
    }
    if (exp || m >= EXACT_LIMIT || frac >= POW10.length) {
      // Past the exact digits: up to 19 of them are read exactly without a string (decimal.ts).
      const v = exp ? NaN : exactDecimal(b, neg ? start + 1 : start, i, frac);
      this.num = Number.isNaN(v) ? this.otherNumber(start, i) : neg ? -v : v;
    } else {
      const v = frac === 0 ? m : m / (POW10[frac] as number);
      this.num = neg ? -v : v;
    }
    return i;
  }
}
