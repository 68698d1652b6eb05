// Modbus TCP framing for the endpoint client: MBAP request encoding, a stream reader that
// cuts frames out of partial and coalesced TCP chunks, and strict response checks.
// Nothing here throws on device input: every check returns a value (node-red-contrib-modbus#480:
// a short frame must never escape as a RangeError).

import type { RegisterTable } from '../config/profile-types.js';
import type { ModbusErrorType, ReadRequest, WriteRequest } from './types.js';

export const MBAP_HEADER = 7;          // tid(2) protocol(2) length(2) unit(1)
/** Largest PDU (253) plus the unit byte: a length field above this is garbage, not a frame. */
const MAX_MBAP_LENGTH = 254;
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;
export const MAX_WRITE_REGISTERS = 123;
export const MAX_WRITE_BITS = 1968;

export function readFunctionCode(table: RegisterTable): number {
  switch (table) {
    case 'coil': return 1;
    case 'discrete': return 2;
    case 'holding': return 3;
    case 'input': return 4;
  }
}

/** A request ready for the wire, minus its transaction id (written at send time). */
export interface EncodedRequest {
  unitId: number;
  functionCode: number;
  /** MBAP header + PDU; bytes 0-1 (transaction id) are filled in by the sender. */
  frame: Buffer;
  /** What the response must echo or contain. */
  address: number;
  count: number;
  /** FC5/FC6 echo the written value. */
  echoValue?: number;
}

function frameFor(unitId: number, pdu: number[] | Buffer): Buffer {
  const buf = Buffer.allocUnsafe(MBAP_HEADER + pdu.length);
  buf.writeUInt16BE(0, 0);
  buf.writeUInt16BE(0, 2);
  buf.writeUInt16BE(pdu.length + 1, 4);
  buf[6] = unitId;
  if (Buffer.isBuffer(pdu)) pdu.copy(buf, MBAP_HEADER);
  else for (let i = 0; i < pdu.length; i++) buf[MBAP_HEADER + i] = pdu[i] ?? 0;
  return buf;
}

/** Checks the caller's arguments; returns a message naming the bad value, or undefined. */
export function checkRead(req: ReadRequest): string | undefined {
  const bits = req.table === 'coil' || req.table === 'discrete';
  const max = bits ? MAX_READ_BITS : MAX_READ_REGISTERS;
  if (!Number.isInteger(req.unitId) || req.unitId < 0 || req.unitId > 255) return `unit id ${String(req.unitId)} is not 0..255`;
  if (!Number.isInteger(req.count) || req.count < 1 || req.count > max) return `count ${String(req.count)} is not 1..${max}`;
  if (!Number.isInteger(req.address) || req.address < 0 || req.address + req.count > 0x10000) {
    return `address ${String(req.address)} + count ${req.count} is outside 0..65535`;
  }
  return undefined;
}

export function encodeRead(req: ReadRequest): EncodedRequest {
  const fc = readFunctionCode(req.table);
  const frame = frameFor(req.unitId, [fc, req.address >> 8, req.address & 0xff, req.count >> 8, req.count & 0xff]);
  return { unitId: req.unitId, functionCode: fc, frame, address: req.address, count: req.count };
}

export function checkWrite(req: WriteRequest): string | undefined {
  const n = req.values.length;
  const max = req.table === 'coil' ? MAX_WRITE_BITS : MAX_WRITE_REGISTERS;
  if (!Number.isInteger(req.unitId) || req.unitId < 0 || req.unitId > 255) return `unit id ${String(req.unitId)} is not 0..255`;
  if (n < 1 || n > max) return `${n} values is not 1..${max}`;
  if (!Number.isInteger(req.address) || req.address < 0 || req.address + n > 0x10000) {
    return `address ${String(req.address)} + ${n} values is outside 0..65535`;
  }
  return undefined;
}

export function encodeWrite(req: WriteRequest): EncodedRequest {
  const a = req.address;
  if (req.table === 'holding') {
    const v = req.values;
    if (v.length === 1) {
      const w = v[0] ?? 0;
      return { unitId: req.unitId, functionCode: 6, frame: frameFor(req.unitId, [6, a >> 8, a & 0xff, w >> 8, w & 0xff]), address: a, count: 1, echoValue: w };
    }
    const pdu = Buffer.allocUnsafe(6 + v.length * 2);
    pdu[0] = 16;
    pdu.writeUInt16BE(a, 1);
    pdu.writeUInt16BE(v.length, 3);
    pdu[5] = v.length * 2;
    for (let i = 0; i < v.length; i++) pdu.writeUInt16BE(v[i] ?? 0, 6 + i * 2);
    return { unitId: req.unitId, functionCode: 16, frame: frameFor(req.unitId, pdu), address: a, count: v.length };
  }
  const bits = req.values;
  if (bits.length === 1) {
    const w = bits[0] === true ? 0xff00 : 0x0000;
    return { unitId: req.unitId, functionCode: 5, frame: frameFor(req.unitId, [5, a >> 8, a & 0xff, w >> 8, w & 0xff]), address: a, count: 1, echoValue: w };
  }
  const byteCount = Math.ceil(bits.length / 8);
  const pdu = Buffer.alloc(6 + byteCount);
  pdu[0] = 15;
  pdu.writeUInt16BE(a, 1);
  pdu.writeUInt16BE(bits.length, 3);
  pdu[5] = byteCount;
  for (let i = 0; i < bits.length; i++) if (bits[i] === true) pdu[6 + (i >> 3)] = (pdu[6 + (i >> 3)] ?? 0) | (1 << (i & 7));
  return { unitId: req.unitId, functionCode: 15, frame: frameFor(req.unitId, pdu), address: a, count: bits.length };
}

/** Exception code -> error_type (docs/modbus.md has the table and what the endpoint does with each). */
export function classifyException(code: number): ModbusErrorType {
  switch (code) {
    case 1: return 'exception_illegal_function';
    case 2: return 'exception_illegal_address';
    case 3: return 'exception_illegal_value';
    case 4: return 'exception_device_failure';
    case 5: case 6: return 'exception_busy';
    case 10: return 'exception_gateway_path';
    case 11: return 'exception_gateway_target';
    default: return 'exception_other';
  }
}

export interface Frame {
  tid: number;
  unitId: number;
  /** A view into the reader's buffer: valid until the next push(). */
  pdu: Buffer;
  bytes: number;
}

/**
 * Cuts MBAP frames out of a TCP byte stream. Handles frames split across chunks and several
 * frames in one chunk. A header with a non-zero protocol id or an impossible length means the
 * stream is out of step: next() returns 'garbled' and the caller drops the connection, the only
 * safe way to find frame boundaries again.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  next(): Frame | 'garbled' | undefined {
    const avail = this.buf.length - this.pos;
    if (avail < 6) return undefined;
    const p = this.pos;
    const protocol = this.buf.readUInt16BE(p + 2);
    const length = this.buf.readUInt16BE(p + 4);
    if (protocol !== 0 || length < 2 || length > MAX_MBAP_LENGTH) return 'garbled';
    if (avail < 6 + length) return undefined;
    const frame: Frame = {
      tid: this.buf.readUInt16BE(p),
      unitId: this.buf[p + 6] ?? 0,
      pdu: this.buf.subarray(p + MBAP_HEADER, p + 6 + length),
      bytes: 6 + length,
    };
    this.pos += 6 + length;
    return frame;
  }

  /** Bytes of an incomplete frame waiting for the rest. */
  get pending(): number {
    return this.buf.length - this.pos;
  }

  clear(): void {
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }
}

export type ResponseCheck<T> = { ok: true; value: T } | { ok: false; code: ModbusErrorType; exceptionCode?: number; detail: string };

function exceptionOrWrongFc<T>(req: EncodedRequest, pdu: Buffer): ResponseCheck<T> | undefined {
  const fc = pdu[0] ?? 0;
  if (fc === (req.functionCode | 0x80)) {
    if (pdu.length !== 2) return { ok: false, code: 'malformed_response', detail: `exception frame of ${pdu.length} bytes` };
    const ex = pdu[1] ?? 0;
    return { ok: false, code: classifyException(ex), exceptionCode: ex, detail: `exception ${ex}` };
  }
  if (fc !== req.functionCode) return { ok: false, code: 'malformed_response', detail: `function code ${fc}, expected ${req.functionCode}` };
  return undefined;
}

export function parseReadResponse(req: EncodedRequest, pdu: Buffer): ResponseCheck<Uint16Array | Uint8Array> {
  const bad = exceptionOrWrongFc<Uint16Array | Uint8Array>(req, pdu);
  if (bad) return bad;
  const byteCount = pdu[1] ?? -1;
  const bits = req.functionCode === 1 || req.functionCode === 2;
  const expected = bits ? Math.ceil(req.count / 8) : req.count * 2;
  if (byteCount !== expected || pdu.length !== 2 + expected) {
    return { ok: false, code: 'malformed_response', detail: `byte count ${byteCount} in ${pdu.length}-byte PDU, expected ${expected}` };
  }
  if (bits) {
    const out = new Uint8Array(req.count);
    for (let i = 0; i < req.count; i++) out[i] = ((pdu[2 + (i >> 3)] ?? 0) >> (i & 7)) & 1;
    return { ok: true, value: out };
  }
  const out = new Uint16Array(req.count);
  for (let i = 0; i < req.count; i++) out[i] = ((pdu[2 + i * 2] ?? 0) << 8) | (pdu[3 + i * 2] ?? 0);
  return { ok: true, value: out };
}

export function parseWriteResponse(req: EncodedRequest, pdu: Buffer): ResponseCheck<void> {
  const bad = exceptionOrWrongFc<void>(req, pdu);
  if (bad) return bad;
  if (pdu.length !== 5) return { ok: false, code: 'malformed_response', detail: `write echo of ${pdu.length} bytes, expected 5` };
  const address = pdu.readUInt16BE(1);
  const second = pdu.readUInt16BE(3);
  const want = req.echoValue ?? req.count;
  if (address !== req.address || second !== want) {
    return { ok: false, code: 'malformed_response', detail: `write echo address ${address}/${second}, expected ${req.address}/${want}` };
  }
  return { ok: true, value: undefined };
}
