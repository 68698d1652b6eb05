// The dedupe journal: for each batch a durable sink commits, the (meter_id, timestamp, kwh,
// arrival) of its readings, committed in the same transaction (the spool keeps the last
// JOURNAL_BATCHES). After a crash (kill -9: the dedupe state file is not written) the broker
// redelivers every message whose PUBACK it did not get, committed ones among them; replaying the
// journal into the dedupe state first makes those redeliveries `duplicate`s instead of readings
// ingested (and counted) twice. Compact binary, one buffer per batch: per reading a u16 id length,
// the UTF-8 id, then timestamp, kwh and arrival (epoch ms) as f64.
import type { ValidReading } from './types.js';

const FIXED = 2 + 8 * 3;

/** Encodes a batch's readings; `wallOffsetMs` turns their monotonic arrival into epoch ms. */
export function encodeJournal(readings: readonly ValidReading[], wallOffsetMs: number): Buffer {
  let size = 0;
  for (const r of readings) size += FIXED + Buffer.byteLength(r.meter_id, 'utf8');
  const buf = Buffer.allocUnsafe(size);
  let p = 0;
  for (const r of readings) {
    const n = buf.write(r.meter_id, p + 2, 'utf8');
    buf.writeUInt16LE(n, p);
    p += 2 + n;
    buf.writeDoubleLE(r.timestamp_ms, p);
    buf.writeDoubleLE(r.kwh, p + 8);
    buf.writeDoubleLE(r.arrived_at + wallOffsetMs, p + 16);
    p += 24;
  }
  return buf;
}

/** Calls `visit` for each reading of one entry, in order; a truncated tail is ignored. Returns how many. */
export function decodeJournal(entry: Uint8Array, visit: (meterId: string, timestampMs: number, kwh: number, arrivedWallMs: number) => void): number {
  const buf = Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
  let p = 0;
  let n = 0;
  while (p + 2 <= buf.length) {
    const len = buf.readUInt16LE(p);
    if (p + 2 + len + 24 > buf.length) break;
    const id = buf.toString('utf8', p + 2, p + 2 + len);
    p += 2 + len;
    visit(id, buf.readDoubleLE(p), buf.readDoubleLE(p + 8), buf.readDoubleLE(p + 16));
    p += 24;
    n++;
  }
  return n;
}
