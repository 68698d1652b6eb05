// Modbus TCP framing (MBAP) and the PDU handlers of the simulator: FC 1, 2, 3, 4, 5, 6, 15, 16.
// Frames may arrive split over several TCP chunks or several in one chunk; both are handled.

import type { RegisterTable } from '../../src/config/profile-types.js';
import { EX_ILLEGAL_FUNCTION, EX_ILLEGAL_VALUE } from './device.js';

export const MBAP_LENGTH = 7; // transaction id (2), protocol id (2), length (2), unit id (1)
const MAX_ADU = 260;

/** Accumulates TCP chunks and yields complete ADUs (header included). */
export class FrameReader {
  private pending: Buffer | undefined;

  /**
   * Feed one chunk; `onFrame` gets each complete ADU (a view, valid during the call).
   * Returns false on a framing error (protocol id not 0, impossible length): drop the connection,
   * as real devices do, since the stream cannot be resynchronised.
   */
  push(chunk: Buffer, onFrame: (adu: Buffer) => void): boolean {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (buf.length - at >= MBAP_LENGTH) {
      const protocol = buf.readUInt16BE(at + 2);
      const length = buf.readUInt16BE(at + 4); // unit id + PDU
      if (protocol !== 0 || length < 2 || length + 6 > MAX_ADU) return false;
      const end = at + 6 + length;
      if (end > buf.length) break;
      onFrame(buf.subarray(at, end));
      at = end;
    }
    if (at < buf.length) {
      buf = buf.subarray(at);
      // Copy: the caller's chunk buffer may be reused.
      this.pending = Buffer.from(buf);
    }
    return true;
  }
}

/** An ADU answering `req` with `pduLength` bytes of PDU; the caller fills from offset 7. */
export function responseFor(req: Buffer, pduLength: number): Buffer {
  const out = Buffer.allocUnsafe(MBAP_LENGTH + pduLength);
  out[0] = req[0] ?? 0;
  out[1] = req[1] ?? 0;
  out[2] = 0;
  out[3] = 0;
  out.writeUInt16BE(pduLength + 1, 4);
  out[6] = req[6] ?? 0;
  return out;
}

export function exceptionFor(req: Buffer, code: number): Buffer {
  const out = responseFor(req, 2);
  out[7] = ((req[7] ?? 0) | 0x80) & 0xff;
  out[8] = code & 0xff;
  return out;
}

/** What the PDU handlers need from a device. */
export interface RegisterSource {
  read(table: RegisterTable, address: number, count: number): Uint16Array | Uint8Array | number;
  write(table: 'holding' | 'coil', address: number, values: ArrayLike<number>): number;
}

export interface WriteRecord {
  functionCode: number;
  table: 'holding' | 'coil';
  address: number; // wire address
  values: number[]; // registers, or 0/1 per coil
}

const READ_TABLES: Record<number, RegisterTable> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

/**
 * Answer one request ADU from `device`. Accepted writes are passed to `onWrite`.
 * Never throws on malformed input: a short PDU is exception 3.
 */
export function handleRequest(req: Buffer, device: RegisterSource, onWrite: (w: WriteRecord) => void): Buffer {
  const fc = req[7] ?? 0;
  const pduLen = req.length - MBAP_LENGTH;
  switch (fc) {
    case 1: case 2: case 3: case 4: {
      if (pduLen < 5) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const address = req.readUInt16BE(8);
      const count = req.readUInt16BE(10);
      const bits = fc <= 2;
      if (count < 1 || count > (bits ? 2000 : 125)) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const data = device.read(READ_TABLES[fc] as RegisterTable, address, count);
      if (typeof data === 'number') return exceptionFor(req, data);
      return bits ? packBits(req, data, count) : packRegisters(req, data, count);
    }
    case 5: case 6: {
      if (pduLen < 5) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const address = req.readUInt16BE(8);
      const raw = req.readUInt16BE(10);
      if (fc === 5 && raw !== 0xff00 && raw !== 0) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const table = fc === 5 ? 'coil' : 'holding';
      const values = [fc === 5 ? (raw === 0xff00 ? 1 : 0) : raw];
      const ex = device.write(table, address, values);
      if (ex !== 0) return exceptionFor(req, ex);
      onWrite({ functionCode: fc, table, address, values });
      return echo(req, 5);
    }
    case 15: case 16: {
      if (pduLen < 6) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const address = req.readUInt16BE(8);
      const count = req.readUInt16BE(10);
      const byteCount = req[12] ?? 0;
      const want = fc === 15 ? Math.ceil(count / 8) : count * 2;
      const max = fc === 15 ? 1968 : 123;
      if (count < 1 || count > max || byteCount !== want || pduLen < 6 + byteCount) return exceptionFor(req, EX_ILLEGAL_VALUE);
      const values: number[] = new Array<number>(count);
      for (let i = 0; i < count; i++) {
        values[i] = fc === 15 ? ((req[13 + (i >> 3)] ?? 0) >> (i & 7)) & 1 : req.readUInt16BE(13 + i * 2);
      }
      const table = fc === 15 ? 'coil' : 'holding';
      const ex = device.write(table, address, values);
      if (ex !== 0) return exceptionFor(req, ex);
      onWrite({ functionCode: fc, table, address, values });
      return echo(req, 5);
    }
    default:
      return exceptionFor(req, EX_ILLEGAL_FUNCTION);
  }
}

function echo(req: Buffer, pduLength: number): Buffer {
  const out = responseFor(req, pduLength);
  req.copy(out, MBAP_LENGTH, MBAP_LENGTH, MBAP_LENGTH + pduLength);
  return out;
}

function packRegisters(req: Buffer, data: Uint16Array | Uint8Array, count: number): Buffer {
  const out = responseFor(req, 2 + count * 2);
  out[7] = req[7] ?? 0;
  out[8] = count * 2;
  for (let i = 0, o = 9; i < count; i++, o += 2) {
    const v = data[i] ?? 0;
    out[o] = v >>> 8;
    out[o + 1] = v & 0xff;
  }
  return out;
}

function packBits(req: Buffer, data: Uint16Array | Uint8Array, count: number): Buffer {
  const bytes = Math.ceil(count / 8);
  const out = responseFor(req, 2 + bytes);
  out[7] = req[7] ?? 0;
  out[8] = bytes;
  out.fill(0, 9);
  for (let i = 0; i < count; i++) if (data[i]) out[9 + (i >> 3)] = (out[9 + (i >> 3)] ?? 0) | (1 << (i & 7));
  return out;
}
