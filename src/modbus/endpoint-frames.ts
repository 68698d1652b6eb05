// The PDU level of the endpoint client, the same on every framing (framing-mbap.ts, framing-rtu.ts):
// argument checks, request encoding, and strict response checks.
// Nothing here throws on device input: every check returns a value (node-red-contrib-modbus#480:
// a short frame must never escape as a RangeError).

import type { RegisterTable } from '../config/profile-types.js';
import type { RequestPdu } from './framing.js';
import type { ModbusErrorType, ReadRequest, WriteRequest } from './types.js';

const MAX_READ_REGISTERS = 125;
const MAX_READ_BITS = 2000;
const MAX_WRITE_REGISTERS = 123;
const MAX_WRITE_BITS = 1968;

function readFunctionCode(table: RegisterTable): number {
  switch (table) {
    case 'coil': return 1;
    case 'discrete': return 2;
    case 'holding': return 3;
    case 'input': return 4;
  }
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

export function encodeRead(req: ReadRequest): RequestPdu {
  const fc = readFunctionCode(req.table);
  const bits = fc === 1 || fc === 2;
  const pdu = Buffer.allocUnsafe(5);
  pdu[0] = fc;
  pdu.writeUInt16BE(req.address, 1);
  pdu.writeUInt16BE(req.count, 3);
  const answerLength = 2 + (bits ? Math.ceil(req.count / 8) : req.count * 2);
  return { unitId: req.unitId, functionCode: fc, pdu, address: req.address, count: req.count, answerLength };
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

/** Every write is answered by a 5-byte echo (function code, address, value or count). */
const WRITE_ANSWER = 5;

export function encodeWrite(req: WriteRequest): RequestPdu {
  const a = req.address;
  const u = req.unitId;
  if (req.table === 'holding') {
    const v = req.values;
    if (v.length === 1) {
      const w = v[0] ?? 0;
      return { unitId: u, functionCode: 6, pdu: Buffer.from([6, a >> 8, a & 0xff, w >> 8, w & 0xff]), address: a, count: 1, echoValue: w, answerLength: WRITE_ANSWER };
    }
    const pdu = Buffer.allocUnsafe(6 + v.length * 2);
    pdu[0] = 16;
    pdu.writeUInt16BE(a, 1);
    pdu.writeUInt16BE(v.length, 3);
    pdu[5] = v.length * 2;
    for (let i = 0; i < v.length; i++) pdu.writeUInt16BE(v[i] ?? 0, 6 + i * 2);
    return { unitId: u, functionCode: 16, pdu, address: a, count: v.length, answerLength: WRITE_ANSWER };
  }
  const bits = req.values;
  if (bits.length === 1) {
    const w = bits[0] === true ? 0xff00 : 0x0000;
    return { unitId: u, functionCode: 5, pdu: Buffer.from([5, a >> 8, a & 0xff, w >> 8, w & 0xff]), address: a, count: 1, echoValue: w, answerLength: WRITE_ANSWER };
  }
  const byteCount = Math.ceil(bits.length / 8);
  const pdu = Buffer.alloc(6 + byteCount);
  pdu[0] = 15;
  pdu.writeUInt16BE(a, 1);
  pdu.writeUInt16BE(bits.length, 3);
  pdu[5] = byteCount;
  for (let i = 0; i < bits.length; i++) if (bits[i] === true) pdu[6 + (i >> 3)] = (pdu[6 + (i >> 3)] ?? 0) | (1 << (i & 7));
  return { unitId: u, functionCode: 15, pdu, address: a, count: bits.length, answerLength: WRITE_ANSWER };
}

/** Exception code -> error_type (docs/modbus.md has the table and what the endpoint does with each). */
function classifyException(code: number): ModbusErrorType {
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

type ResponseCheck<T> = { ok: true; value: T } | { ok: false; code: ModbusErrorType; exceptionCode?: number; detail: string };

function exceptionOrWrongFc<T>(req: RequestPdu, pdu: Buffer): ResponseCheck<T> | undefined {
  const fc = pdu[0] ?? 0;
  if (fc === (req.functionCode | 0x80)) {
    if (pdu.length !== 2) return { ok: false, code: 'malformed_response', detail: `exception frame of ${pdu.length} bytes` };
    const ex = pdu[1] ?? 0;
    return { ok: false, code: classifyException(ex), exceptionCode: ex, detail: `exception ${ex}` };
  }
  if (fc !== req.functionCode) return { ok: false, code: 'malformed_response', detail: `function code ${fc}, expected ${req.functionCode}` };
  return undefined;
}

export function parseReadResponse(req: RequestPdu, pdu: Buffer): ResponseCheck<Uint16Array | Uint8Array> {
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

export function parseWriteResponse(req: RequestPdu, pdu: Buffer): ResponseCheck<void> {
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
