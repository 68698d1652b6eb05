// What the spool holds: meter readings and device samples, encoded compactly in binary, one
// CRC32 per record. A spool entry is one committed batch: [u8 format][u32 count] then per record
// [u32 body length][u32 crc32(body)][body]. A record whose checksum does not match (a torn or
// corrupted write) is detected, counted and skipped; it is never decoded into wrong values.
import { crc32 } from 'node:zlib';
import type { ValidReading } from '../meters/types.js';

export const ENTRY_FORMAT = 1;
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

export interface DecodedEntry {
  /** Records in sequence order; corrupt ones are missing (their sequence numbers are skipped). */
  records: Sequenced[];
  corrupt: number;
}

const HEADER = 5;
const FRAME = 8;

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) { this.buf = Buffer.allocUnsafe(size); }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf[this.pos++] = v; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.pos); this.pos += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v >>> 0, this.pos); this.pos += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.pos); this.pos += 8; }
  str(s: string): void {
    const n = Buffer.byteLength(s);
    if (n > 0xffff) throw new RangeError(`string of ${n} bytes is too long for a spool record`);
    this.u16(n);
    this.ensure(n);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
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
    const body = w.buf.subarray(start, w.pos);
    w.buf.writeUInt32LE(body.length, frame);
    w.buf.writeUInt32LE(crc32(body), frame + 4);
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
  constructor(private readonly buf: Buffer, start: number, private readonly end: number) { this.pos = start; }
  need(n: number): void { if (this.pos + n > this.end) throw new RangeError('record body ends early'); }
  u8(): number { this.need(1); return this.buf[this.pos++] ?? 0; }
  u16(): number { this.need(2); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  f64(): number { this.need(8); const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  str(): string { const n = this.u16(); this.need(n); const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n; return s; }
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
  const count = entryCount(buf);
  const out: DecodedEntry = { records: [], corrupt: 0 };
  if (count === 0) return out;
  let pos = HEADER;
  for (let i = 0; i < count; i++) {
    if (pos + FRAME > buf.length) { out.corrupt += count - i; break; }
    const len = buf.readUInt32LE(pos);
    const sum = buf.readUInt32LE(pos + 4);
    const start = pos + FRAME;
    if (start + len > buf.length) { out.corrupt += count - i; break; }
    pos = start + len;
    if (crc32(buf.subarray(start, start + len)) !== sum) { out.corrupt++; continue; }
    try {
      const r = new Reader(buf, start, start + len);
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
  if (start + len > buf.length || crc32(buf.subarray(start, start + len)) !== buf.readUInt32LE(HEADER + 4)) return undefined;
  return buf.readDoubleLE(start + 1);
}

/** The region a record counts under in ems.meter.* metrics (device samples: their zone). */
export function recordRegion(r: SpoolRecord): string {
  return r.kind === 'meter' ? r.region : r.zone;
}
