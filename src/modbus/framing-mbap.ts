// Modbus TCP framing (MBAP header: transaction id, protocol id 0, length, unit id).
//
// An answer is the frame that carries the transaction id, unit id and function code of the request
// in flight, and started after that request was sent. Everything else is a stray (a well-formed
// frame: late, duplicated, unsolicited, another unit's) or garbage (no frame at all). The stream
// is resynchronised by looking for the expected answer's header, not by reconnecting: the bytes
// before it are counted and skipped, so leftovers of one unit's broken frame never fail the next
// unit's request, and the neighbours on the connection keep their connection.
//
// Transaction ids are a keyed permutation of a counter: no id comes back within 65,535 requests
// (a late reply to a timed-out request is never taken for a newer one, node-modbus-serial#264), and
// the next id cannot be guessed from the last one (a device that sends "the next transaction id"
// unasked right after a good reply does not produce the next unit's answer).

import { randomBytes } from 'node:crypto';
import { StreamReceiver, type Expect, type Framing, type RequestPdu, type RxEvent } from './framing.js';

const MBAP_HEADER = 7;          // tid(2) protocol(2) length(2) unit(1)
/** Largest PDU (253) plus the unit byte: a length field above this is garbage, not a frame. */
const MAX_MBAP_LENGTH = 254;

/**
 * A fixed byte permutation (Fisher-Yates driven by a constant-seeded xorshift): the Feistel rounds'
 * non-linear part. The secret is the per-endpoint round keys, not this table.
 */
const SBOX = (() => {
  const box = Uint8Array.from({ length: 256 }, (_, i) => i);
  let x = 0x9e3779b9;
  for (let i = 255; i > 0; i--) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    const t = box[i] ?? 0;
    box[i] = box[j] ?? 0;
    box[j] = t;
  }
  return box;
})();

const ROUNDS = 6;

/** 16-bit transaction ids: a keyed Feistel permutation of a counter (0 skipped). */
export class TransactionIds {
  private counter = 0;
  private readonly keys: Uint8Array;

  /** `random`: a seeded source for tests (deterministic ids); default a cryptographic key. */
  constructor(random?: () => number) {
    this.keys = random === undefined
      ? Uint8Array.from(randomBytes(ROUNDS))
      : Uint8Array.from({ length: ROUNDS }, () => Math.floor(random() * 256) & 0xff);
  }

  next(): number {
    for (;;) {
      this.counter = (this.counter + 1) & 0xffff;
      let l = this.counter >>> 8;
      let r = this.counter & 0xff;
      for (let i = 0; i < ROUNDS; i++) {
        const t = l ^ (SBOX[r ^ (this.keys[i] ?? 0)] ?? 0);
        l = r;
        r = t;
      }
      const tid = (l << 8) | r;
      if (tid !== 0) return tid;
    }
  }
}

export function mbapFraming(ids = new TransactionIds()): Framing {
  return {
    receiver: new MbapReceiver(),
    quietMs: 0,
    flushBeforeSend: false,
    frame(req: RequestPdu): Buffer {
      const buf = Buffer.allocUnsafe(MBAP_HEADER + req.pdu.length);
      buf.writeUInt16BE(0, 0);
      buf.writeUInt16BE(0, 2);
      buf.writeUInt16BE(req.pdu.length + 1, 4);
      buf[6] = req.unitId;
      req.pdu.copy(buf, MBAP_HEADER);
      return buf;
    },
    stamp(frame: Buffer): number {
      const tid = ids.next();
      frame.writeUInt16BE(tid, 0);
      return tid;
    },
    wireMs: () => 0,
    checkUnit: () => undefined,
  };
}

const enum Sig { No, Partial, Match }

/**
 * Cuts MBAP frames out of a TCP byte stream (frames split across chunks, several in one chunk)
 * and tells the expected answer from strays and garbage. Memory is bounded: garbage is dropped
 * as it is scanned, and a frame is at most 260 bytes.
 */
class MbapReceiver extends StreamReceiver {
  protected readonly frameName = 'MBAP';

  quiet(): RxEvent | undefined {
    return undefined; // TCP has no inter-frame silence: a missing answer is a timeout
  }

  next(ex: Expect | undefined): RxEvent | undefined {
    const b = this.buf;
    const start = this.pos;
    let p = start;
    while (p < b.length) {
      if (ex !== undefined && this.base + p >= ex.from) {
        const s = this.sigAt(p, ex);
        if (s === Sig.Match) {
          if (p > start) return this.garbage(start, p);
          return this.answer(p, ex);
        }
        if (s === Sig.Partial) break;
      }
      const avail = b.length - p;
      if (avail < 6) {
        // A header prefix (protocol bytes 0 so far) may still become a frame: wait for it.
        if ((avail < 3 || b[p + 2] === 0) && (avail < 4 || b[p + 3] === 0)) break;
        p++;
        continue;
      }
      const length = b.readUInt16BE(p + 4);
      if (b.readUInt16BE(p + 2) !== 0 || length < 2 || length > MAX_MBAP_LENGTH) {
        p++;
        continue;
      }
      if (p > start) return this.garbage(start, p);
      const end = p + 6 + length;
      // A plausible header must not swallow the expected answer behind it (garbage that looks like a header).
      if (ex !== undefined) {
        const q = this.findSig(p + 1, Math.min(end, b.length), ex);
        if (q >= 0) return this.garbage(p, q);
      }
      if (end > b.length) return undefined;
      this.pos = end;
      return { kind: 'stray', bytes: end - p, detail: `transaction id ${b.readUInt16BE(p)}, unit ${b[p + 6] ?? 0}, function code ${b[p + 7] ?? 0}` };
    }
    if (p > start) return this.garbage(start, p);
    return undefined;
  }

  /** Whether the expected answer's header (tid, unit, function code) starts at p. */
  private sigAt(p: number, ex: Expect): Sig {
    const b = this.buf;
    const n = b.length - p;
    if (b[p] !== ex.tid >> 8) return Sig.No;
    if (n > 1 && b[p + 1] !== (ex.tid & 0xff)) return Sig.No;
    if (n > 6 && b[p + 6] !== ex.req.unitId) return Sig.No;
    if (n > 7 && b[p + 7] !== ex.req.functionCode && b[p + 7] !== (ex.req.functionCode | 0x80)) return Sig.No;
    return n >= 8 ? Sig.Match : Sig.Partial;
  }

  private findSig(from: number, to: number, ex: Expect): number {
    for (let q = from; q < to; q++) {
      if (this.base + q >= ex.from && this.sigAt(q, ex) !== Sig.No) return q;
    }
    return -1;
  }

  private answer(p: number, ex: Expect): RxEvent | undefined {
    const b = this.buf;
    const exception = b[p + 7] !== ex.req.functionCode;
    const protocol = b.readUInt16BE(p + 2);
    const length = b.readUInt16BE(p + 4);
    const want = (exception ? 2 : ex.req.answerLength) + 1;
    if (protocol !== 0 || length !== want) {
      // The header is ours but its framing cannot be trusted: fail the request now, skip the header;
      // what follows is counted as garbage.
      this.pos = p + MBAP_HEADER + 1;
      const what = protocol !== 0 ? `protocol id ${protocol}` : `MBAP length ${length}`;
      return { kind: 'bad_answer', code: 'malformed_response', bytes: MBAP_HEADER + 1, detail: `${what} in the answer header, expected ${protocol !== 0 ? 0 : want}` };
    }
    const end = p + 6 + length;
    if (end > b.length) return undefined;
    this.pos = end;
    return { kind: 'answer', pdu: b.subarray(p + MBAP_HEADER, end), bytes: end - p };
  }
}
