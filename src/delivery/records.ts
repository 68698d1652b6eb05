// What the spool holds: meter readings and device samples, encoded compactly in binary, one
// CRC-32 per record (zlib's, computed here in JavaScript). A spool entry is one committed batch: [u8 format][u32 count] then per record
// [u32 body length][u32 crc32(body)][body]. A record whose checksum does not match (a torn or
// corrupted write) is detected, counted and skipped; it is never decoded into wrong values.
import type { ValidReading } from '../meters/types.js';

const ENTRY_FORMAT = 1;
const KIND_METER = 1;
const KIND_DEVICE = 2;

/** One valid meter reading as spooled: its arrival in wall-clock epoch ms (monotonic time does not survive a restart). */
export interface MeterRecord extends Omit<ValidReading, 'arrived_at'> {
  kind: 'meter';
  /** Wall-clock epoch ms when the reading's message arrived (delivery latency, oldest pending age). */
  arrived_ms: number;
}

/** One poll of a device with `record: true`: its decoded numeric points (absent ones left out). */
export interface DeviceSampleRecord {
  kind: 'device';
  device_id: string;
  zone: string;
  role: string;
  timestamp_ms: number;
  arrived_ms: number;
  values: Record<string, number>;
}

export type SpoolRecord = MeterRecord | DeviceSampleRecord;

/** A record read back from the spool with its sequence number. */
export interface Sequenced {
  seq: number;
  record: SpoolRecord;
}

interface DecodedEntry {
  /** Records in sequence order; corrupt ones are missing (their sequence numbers are skipped). */
  records: Sequenced[];
  corrupt: number;
}

const HEADER = 5;
const FRAME = 8;

// CRC-32 (IEEE 802.3, the polynomial and values of zlib's crc32) in JavaScript, slice-by-4: a
// record body is ~70 bytes, and a native call per record (node:zlib crc32) cost more than the
// checksum itself (bench:delivery's commit path; docs/delivery.md).
const CRC_TABLES = ((): Int32Array => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n] as number;
    for (let k = 1; k < 4; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of buf[start, end), equal to zlib's crc32 of the same bytes. */
function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLES;
  let c = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= (buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24);
    c = (t[768 + (c & 0xff)] as number) ^ (t[512 + ((c >>> 8) & 0xff)] as number) ^ (t[256 + ((c >>> 16) & 0xff)] as number) ^ (t[c >>> 24] as number);
  }
  for (; i < end; i++) c = (t[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

class Writer {
  buf: Buffer;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
  }
  u8(v: number): void { this.ensure(1); this.buf[this.pos++] = v; }
  u16(v: number): void { this.ensure(2); this.view.setUint16(this.pos, v, true); this.pos += 2; }
  u32(v: number): void { this.ensure(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4; }
  f64(v: number): void { this.ensure(8); this.view.setFloat64(this.pos, v, true); this.pos += 8; }
  str(s: string): void {
    // ASCII (meter ids, regions) byte by byte: a native call per short string costs more.
    const len = s.length;
    this.ensure(2 + len);
    const buf = this.buf;
    let p = this.pos + 2;
    let ascii = true;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) { ascii = false; break; }
      buf[p++] = c;
    }
    if (!ascii) {
      const n = Buffer.byteLength(s);
      if (n > 0xffff) throw new RangeError(`string of ${n} bytes is too long for a spool record`);
      this.ensure(2 + n);
      this.view.setUint16(this.pos, n, true);
      this.buf.write(s, this.pos + 2, n, 'utf8');
      this.pos += 2 + n;
      return;
    }
    if (len > 0xffff) throw new RangeError(`string of ${len} bytes is too long for a spool record`);
    this.view.setUint16(this.pos, len, true);
    this.pos = p;
  }
}

function writeBody(w: Writer, r: SpoolRecord): void {
  if (r.kind === 'meter') {
    w.u8(KIND_METER);
    w.f64(r.arrived_ms); w.f64(r.timestamp_ms);
    w.f64(r.kwh); w.f64(r.voltage); w.f64(r.current); w.f64(r.power_factor); w.f64(r.power_w);
    w.str(r.meter_id); w.str(r.region);
    return;
  }
  w.u8(KIND_DEVICE);
  w.f64(r.arrived_ms); w.f64(r.timestamp_ms);
  w.str(r.device_id); w.str(r.zone); w.str(r.role);
  const keys = Object.keys(r.values);
  w.u16(keys.length);
  for (const k of keys) { w.str(k); w.f64(r.values[k] ?? Number.NaN); }
}

/** One spool entry holding `records` in order. */
export function encodeEntry(records: readonly SpoolRecord[]): Buffer {
  const w = new Writer(HEADER + records.length * 96);
  w.u8(ENTRY_FORMAT);
  w.u32(records.length);
  for (const r of records) {
    w.ensure(FRAME);
    const frame = w.pos;
    w.pos += FRAME;
    const start = w.pos;
    writeBody(w, r);
    w.view.setUint32(frame, w.pos - start, true);
    w.view.setUint32(frame + 4, crc32(w.buf, start, w.pos), true);
  }
  return w.buf.subarray(0, w.pos);
}

/** The number of records an entry says it holds (0 when even the header is unreadable). */
export function entryCount(buf: Uint8Array): number {
  if (buf.length < HEADER || buf[0] !== ENTRY_FORMAT) return 0;
  return Buffer.from(buf.buffer, buf.byteOffset, buf.length).readUInt32LE(1);
}

class Reader {
  pos: number;
  constructor(private readonly buf: Buffer, private readonly view: DataView, start: number, private readonly end: number) { this.pos = start; }
  need(n: number): void { if (this.pos + n > this.end) throw new RangeError('record body ends early'); }
  u8(): number { this.need(1); return this.buf[this.pos++] ?? 0; }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  f64(): number { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  str(): string {
    const n = this.u16();
    this.need(n);
    const buf = this.buf;
    const end = this.pos + n;
    // Short ASCII strings without a native call; anything else through the UTF-8 decoder.
    if (n <= 32) {
      let ascii = true;
      for (let i = this.pos; i < end; i++) if ((buf[i] as number) > 0x7f) { ascii = false; break; }
      if (ascii) {
        let s = '';
        for (let i = this.pos; i < end; i++) s += String.fromCharCode(buf[i] as number);
        this.pos = end;
        return s;
      }
    }
    const s = buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }
}

function readBody(r: Reader): SpoolRecord {
  const kind = r.u8();
  const arrived_ms = r.f64();
  const timestamp_ms = r.f64();
  if (kind === KIND_METER) {
    const kwh = r.f64(), voltage = r.f64(), current = r.f64(), power_factor = r.f64(), power_w = r.f64();
    return { kind: 'meter', meter_id: r.str(), region: r.str(), timestamp_ms, kwh, voltage, current, power_factor, power_w, arrived_ms };
  }
  if (kind === KIND_DEVICE) {
    const device_id = r.str(), zone = r.str(), role = r.str();
    const n = r.u16();
    const values: Record<string, number> = {};
    for (let i = 0; i < n; i++) { const k = r.str(); values[k] = r.f64(); }
    return { kind: 'device', device_id, zone, role, timestamp_ms, arrived_ms, values };
  }
  throw new RangeError(`unknown record kind ${kind}`);
}

/**
 * Decodes the entry whose first record has sequence number `firstSeq`. Records whose checksum
 * fails are skipped and counted; when a frame's length itself is unreadable, the rest of the
 * entry is counted as corrupt (nothing after it can be framed safely).
 */
export function decodeEntry(raw: Uint8Array, firstSeq: number): DecodedEntry {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const count = entryCount(buf);
  const out: DecodedEntry = { records: [], corrupt: 0 };
  if (count === 0) return out;
  let pos = HEADER;
  for (let i = 0; i < count; i++) {
    if (pos + FRAME > buf.length) { out.corrupt += count - i; break; }
    const len = view.getUint32(pos, true);
    const sum = view.getUint32(pos + 4, true);
    const start = pos + FRAME;
    if (start + len > buf.length) { out.corrupt += count - i; break; }
    pos = start + len;
    if (crc32(buf, start, start + len) !== sum) { out.corrupt++; continue; }
    try {
      const r = new Reader(buf, view, start, start + len);
      out.records.push({ seq: firstSeq + i, record: readBody(r) });
    } catch {
      out.corrupt++; // a checksum that matches a malformed body: counted, never half-decoded
    }
  }
  return out;
}

/** Wall-clock arrival of an entry's first record without decoding the rest (undefined when unreadable). */
export function firstArrivedMs(raw: Uint8Array): number | undefined {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  if (entryCount(buf) === 0 || buf.length < HEADER + FRAME + 9) return undefined;
  const len = buf.readUInt32LE(HEADER);
  const start = HEADER + FRAME;
  if (start + len > buf.length || crc32(buf, start, start + len) !== buf.readUInt32LE(HEADER + 4)) return undefined;
  return buf.readDoubleLE(start + 1);
}

/** The region a record counts under in ems.meter.* metrics (device samples: their zone). */
export function recordRegion(r: SpoolRecord): string {
  return r.kind === 'meter' ? r.region : r.zone;
}
