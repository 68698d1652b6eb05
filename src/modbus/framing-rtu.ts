// Modbus RTU framing: unit id, PDU, CRC-16 (polynomial 0xA001, low byte first), frames delimited by
// 3.5 character times of silence. Used on a serial line (transport rtu) and through a serial device
// server that passes raw RTU frames over TCP (rtu_over_tcp).
//
// There is no transaction id on a serial line, so an answer is the CRC-valid frame with the unit id,
// function code (or its exception) and length of the request in flight, received after that request
// went out. The line discipline does the rest: bytes still waiting when a request goes out are
// dropped and counted; a request goes out only after the line has been quiet for 3.5 characters
// (plus the configured turnaround), so a late answer to a timed-out request is over before the next
// request starts; a frame with the expected header and length whose CRC is wrong is a crc_error
// once the line goes quiet without a good answer (noise that only looks like our header is skipped).

import type { SerialSettings } from '../config/site-types.js';
import { StreamReceiver, type Expect, type Framing, type RequestPdu, type RxEvent } from './framing.js';

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ (CRC_TABLE[(crc ^ (buf[i] ?? 0)) & 0xff] ?? 0);
  return crc;
}

/** Whether buf[start, end) ends with the CRC of what precedes it (low byte first). */
export function crcOk(buf: Uint8Array, start: number, end: number): boolean {
  const crc = crc16(buf, start, end - 2);
  return buf[end - 2] === (crc & 0xff) && buf[end - 1] === crc >> 8;
}

interface LineTiming {
  /** One character on the wire: start bit, 8 data bits, parity bit if any, stop bits. */
  charMs: number;
  /** Inter-frame silence: 3.5 characters, or the Modbus spec's fixed 1.75 ms above 19,200 baud. */
  silenceMs: number;
}

export function lineTiming(s: Pick<SerialSettings, 'baud' | 'parity' | 'stop_bits' | 'data_bits'>): LineTiming {
  const bits = 1 + s.data_bits + (s.parity === 'none' ? 0 : 1) + s.stop_bits;
  const charMs = (bits * 1000) / s.baud;
  return { charMs, silenceMs: s.baud > 19_200 ? 1.75 : 3.5 * charMs };
}

/** Bytes on the wire of a request and of its (normal) answer: unit id + PDU + CRC each. */
export function rtuBytes(pduLength: number, answerLength: number): { request: number; answer: number } {
  return { request: pduLength + 3, answer: answerLength + 3 };
}

export function rtuFraming(serial: SerialSettings): Framing {
  const t = lineTiming(serial);
  return {
    receiver: new RtuReceiver(),
    quietMs: t.silenceMs + serial.turnaround_ms,
    flushBeforeSend: true,
    frame(req: RequestPdu): Buffer {
      const buf = Buffer.allocUnsafe(req.pdu.length + 3);
      buf[0] = req.unitId;
      req.pdu.copy(buf, 1);
      const crc = crc16(buf, 0, buf.length - 2);
      buf[buf.length - 2] = crc & 0xff;
      buf[buf.length - 1] = crc >> 8;
      return buf;
    },
    stamp: () => 0,
    wireMs(req: RequestPdu): number {
      const n = rtuBytes(req.pdu.length, req.answerLength);
      return (n.request + n.answer) * t.charMs;
    },
    checkUnit(unitId: number): string | undefined {
      if (unitId === 0) return 'unit id 0 is broadcast on a serial line: no device answers it (use 1..247)';
      if (unitId > 247) return `unit id ${unitId} is reserved on a serial line (use 1..247)`;
      return undefined;
    },
  };
}

/** Length of a well-formed answer frame of any request starting at p, or 0 when none can start there. */
function anyAnswerLength(b: Buffer, p: number): number {
  const fc = b[p + 1] ?? 0;
  if (fc & 0x80) return 5;
  if (fc >= 1 && fc <= 4) return b.length > p + 2 ? 5 + (b[p + 2] ?? 0) : 0;
  if (fc === 5 || fc === 6 || fc === 15 || fc === 16) return 8;
  return 0;
}

class RtuReceiver extends StreamReceiver {
  protected readonly frameName = 'RTU';
  /** A frame with the expected header and length but a wrong CRC was seen since the request went out. */
  private badCrc = false;

  override clear(): void {
    super.clear();
    this.badCrc = false;
  }

  next(ex: Expect | undefined): RxEvent | undefined {
    const b = this.buf;
    const start = this.pos;
    let p = start;
    while (p < b.length) {
      if (ex !== undefined && this.base + p >= ex.from && b[p] === ex.req.unitId) {
        if (p + 1 >= b.length) break;
        const fc = b[p + 1];
        if (fc === ex.req.functionCode || fc === (ex.req.functionCode | 0x80)) {
          const len = (fc === ex.req.functionCode ? ex.req.answerLength : 2) + 3;
          if (p + len > b.length) {
            // Wait for the rest, unless a whole answer already follows (this was noise looking like a header).
            const q = this.wholeAnswerAfter(p, ex);
            if (q < 0) break;
            return this.junk(start, q);
          }
          if (crcOk(b, p, p + len)) {
            if (p > start) return this.junk(start, p);
            this.pos = p + len;
            return { kind: 'answer', pdu: b.subarray(p + 1, p + len - 2), bytes: len };
          }
          // Maybe noise that looks like our header, maybe our answer damaged on the line: keep
          // scanning; if the line goes quiet without a good answer, it was a CRC error.
          this.badCrc = true;
        }
      }
      const len = anyAnswerLength(b, p);
      if (len > 0 && p + len <= b.length && crcOk(b, p, p + len)) {
        if (p > start) return this.junk(start, p);
        this.pos = p + len;
        return { kind: 'stray', bytes: len, detail: `unit ${b[p] ?? 0}, function code ${b[p + 1] ?? 0}` };
      }
      p++;
    }
    if (p > start) return this.junk(start, p);
    return undefined;
  }

  /** Garbage, marked when it holds a damaged copy of the expected answer (counted as its CRC error). */
  private junk(from: number, to: number): RxEvent {
    const ev = this.garbage(from, to);
    if (this.badCrc && ev.kind === 'garbage') ev.damagedAnswer = true;
    return ev;
  }

  quiet(ex: Expect): RxEvent | undefined {
    if (!this.badCrc) return undefined;
    const n = this.pending;
    this.clear();
    return { kind: 'bad_answer', code: 'crc_error', bytes: n, detail: `the answer of unit ${ex.req.unitId} failed its CRC check` };
  }

  private wholeAnswerAfter(p: number, ex: Expect): number {
    const b = this.buf;
    for (let q = p + 1; q + 5 <= b.length; q++) {
      if (b[q] !== ex.req.unitId) continue;
      const fc = b[q + 1];
      if (fc !== ex.req.functionCode && fc !== (ex.req.functionCode | 0x80)) continue;
      const len = (fc === ex.req.functionCode ? ex.req.answerLength : 2) + 3;
      if (q + len <= b.length && crcOk(b, q, q + len)) return q;
    }
    return -1;
  }
}
