// Modbus RTU framing for the simulators: requests cut out of a byte stream (a serial port, a
// pseudo-terminal, or raw RTU over TCP) by their function code and CRC, converted to the MBAP ADUs
// the responder works with, and answers converted back (unit id, PDU, CRC).

import { crc16, crcOk } from '../../src/modbus/framing-rtu.js';
import { MBAP_LENGTH } from './frame.js';

/** Longest RTU frame: unit id + 253-byte PDU + CRC. */
const MAX_RTU = 256;

/** Length of the request frame starting at `p` from its function code, or 0 when it cannot tell yet. */
function requestLength(b: Buffer, p: number): number {
  const fc = b[p + 1];
  if (fc === undefined) return 0;
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) return b.length > p + 6 ? 9 + (b[p + 6] ?? 0) : 0;
  return -1; // a function code the simulator does not implement: found by its CRC below
}

/**
 * Accumulates bytes and yields each CRC-valid request frame (as an MBAP ADU with transaction id 0).
 * Bytes that frame nothing are dropped one at a time (a real slave resynchronises on the next
 * silence) and counted by the caller through the return value.
 */
export class RtuRequestReader {
  private buf: Buffer = Buffer.alloc(0);

  /** Feeds a chunk; returns the number of bytes dropped as unframeable. */
  push(chunk: Buffer, onRequest: (adu: Buffer) => void): number {
    let b = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let dropped = 0;
    let p = 0;
    while (b.length - p >= 4) {
      const len = this.frameAt(b, p);
      if (len > 0) {
        onRequest(rtuToAdu(b.subarray(p, p + len)));
        p += len;
        continue;
      }
      // Not a whole request here (yet): skip to a whole one further on, else wait for more bytes.
      let q = p + 1;
      while (q + 4 <= b.length && this.frameAt(b, q) <= 0) q++;
      if (q + 4 > b.length && b.length - p < MAX_RTU && len === 0) break;
      dropped += Math.min(q, b.length) - p;
      p = Math.min(q, b.length);
    }
    b = b.subarray(p);
    // Copy: the caller's chunk buffer may be reused.
    this.buf = b.length === 0 ? Buffer.alloc(0) : Buffer.from(b);
    return dropped;
  }

  /** Length of the whole, CRC-valid request at p; 0 when it may still become one, -1 when it cannot. */
  private frameAt(b: Buffer, p: number): number {
    let len = requestLength(b, p);
    if (len < 0) len = this.byCrc(b, p);
    if (len === 0 || p + len > b.length) return 0;
    return crcOk(b, p, p + len) ? len : -1;
  }

  private byCrc(b: Buffer, p: number): number {
    for (let len = 4; p + len <= b.length && len <= MAX_RTU; len++) if (crcOk(b, p, p + len)) return len;
    return 0;
  }
}

/** An RTU frame (unit, PDU, CRC) as an MBAP ADU with transaction id 0. */
export function rtuToAdu(frame: Buffer): Buffer {
  const pdu = frame.subarray(1, frame.length - 2);
  const adu = Buffer.allocUnsafe(MBAP_LENGTH + pdu.length);
  adu.writeUInt32BE(0, 0);
  adu.writeUInt16BE(pdu.length + 1, 4);
  adu[6] = frame[0] ?? 0;
  pdu.copy(adu, MBAP_LENGTH);
  return adu;
}

/** An MBAP answer ADU as an RTU frame; `badCrc` flips the CRC (the `crc` fault). */
export function aduToRtu(adu: Buffer, badCrc = false): Buffer {
  const pdu = adu.subarray(MBAP_LENGTH);
  const out = Buffer.allocUnsafe(pdu.length + 3);
  out[0] = adu[6] ?? 0;
  pdu.copy(out, 1);
  const crc = crc16(out, 0, out.length - 2) ^ (badCrc ? 0xffff : 0);
  out[out.length - 2] = crc & 0xff;
  out[out.length - 1] = crc >> 8;
  return out;
}
