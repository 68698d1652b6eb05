// What the endpoint needs from a framing (Modbus TCP's MBAP, or RTU with its CRC) and from a link
// (a TCP socket or a serial port). The endpoint owns the queue, the priorities, the timeouts, the
// unit backoff and the stray counting; a framing only knows how a request goes on the wire and how
// to cut the answer the endpoint expects out of the bytes that come back. So one profile works on
// every transport, and a hostile byte stream is handled in one place per framing.

/** A request at the PDU level: the same for every framing. */
export interface RequestPdu {
  unitId: number;
  functionCode: number;
  /** Function code and data. */
  pdu: Buffer;
  /** What the answer must echo or contain. */
  address: number;
  count: number;
  /** FC5/FC6 echo the written value. */
  echoValue?: number;
  /** PDU bytes of a normal answer, function code included (an exception answer is 2). */
  answerLength: number;
}

/** The answer the request in flight is waiting for. */
export interface Expect {
  req: Pick<RequestPdu, 'unitId' | 'functionCode' | 'answerLength'>;
  /** MBAP transaction id; 0 for framings without one (RTU). */
  tid: number;
  /** Stream offset (bytes received so far) when the request was sent: earlier bytes cannot start its answer. */
  from: number;
}

export type RxEvent =
  /** The expected answer, framing checked (MBAP header or RTU CRC); its PDU is checked by the caller. */
  | { kind: 'answer'; pdu: Buffer; bytes: number }
  /** Unmistakably the expected answer's header, but broken (MBAP length or protocol id, RTU CRC). */
  | { kind: 'bad_answer'; code: 'malformed_response' | 'crc_error'; detail: string; bytes: number }
  /** A well-formed frame that answers nothing in flight (late, duplicated, unsolicited, another unit's). */
  | { kind: 'stray'; detail: string; bytes: number }
  /**
   * Bytes that are no frame at all; `at` is the stream offset of the first (to charge them to the
   * request in flight when they arrived). `damagedAnswer`: they hold what looked like the expected
   * answer with a failed RTU CRC, which is charged as that answer's crc_error, not again as garbage.
   */
  | { kind: 'garbage'; detail: string; bytes: number; at: number; damagedAnswer?: boolean };

interface Receiver {
  push(chunk: Buffer): void;
  /** The next event from the bytes pushed so far, or undefined when more bytes are needed. */
  next(expect: Expect | undefined): RxEvent | undefined;
  /**
   * The line went quiet (RTU: 3.5 characters) with the answer still missing: what the bytes since
   * the request amount to (a CRC error), or undefined to keep waiting.
   */
  quiet(expect: Expect): RxEvent | undefined;
  /** Bytes pushed since the start (a stream offset). */
  readonly received: number;
  /** Bytes held that are not yet a whole frame. */
  readonly pending: number;
  clear(): void;
}

/**
 * The byte buffer under a receiver: bytes not yet cut into events, with their offset in the stream
 * (so bytes received before a request went out are never taken for its answer). A framing adds
 * how frames are cut (next, quiet).
 */
export abstract class StreamReceiver implements Receiver {
  protected buf: Buffer = Buffer.alloc(0);
  /** First byte not yet cut into an event. */
  protected pos = 0;
  /** Stream offset of buf[0]. */
  protected base = 0;

  /** For messages: "MBAP", "RTU". */
  protected abstract readonly frameName: string;

  abstract next(expect: Expect | undefined): RxEvent | undefined;
  abstract quiet(expect: Expect): RxEvent | undefined;

  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) {
      this.base += this.buf.length;
      this.buf = chunk;
    } else {
      this.base += this.pos;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  get received(): number {
    return this.base + this.buf.length;
  }

  get pending(): number {
    return this.buf.length - this.pos;
  }

  clear(): void {
    this.base += this.buf.length;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  /** Skips buf[from, to): bytes that are no frame of this framing. */
  protected garbage(from: number, to: number): RxEvent {
    this.pos = to;
    return { kind: 'garbage', bytes: to - from, at: this.base + from, detail: `${to - from} bytes that are no ${this.frameName} frame` };
  }
}

export interface Framing {
  readonly receiver: Receiver;
  /**
   * Silence after the last byte before the next request may go out, and before a damaged answer
   * is declared (RTU: 3.5 characters + turnaround); 0 for MBAP.
   */
  readonly quietMs: number;
  /** RTU: bytes still waiting when a request goes out are dropped (no frame of them can be an answer). */
  readonly flushBeforeSend: boolean;
  /** The wire frame of a request, built once; per-send fields are filled by stamp(). */
  frame(req: RequestPdu): Buffer;
  /** Fills the per-send fields (MBAP transaction id) and returns the id; 0 for framings without one. */
  stamp(frame: Buffer): number;
  /** Time the request and its answer take on the wire at the line's speed (RTU), added to the timeout. */
  wireMs(req: RequestPdu): number;
  /** Why this unit id cannot be addressed on this framing (RTU: 0 is broadcast), or undefined. */
  checkUnit(unitId: number): string | undefined;
}

interface LinkHandlers {
  open(): void;
  data(chunk: Buffer): void;
  /** The link is gone (or never opened); `reason` is the last error seen, if any. */
  close(reason: string | undefined): void;
}

export interface LinkConn {
  write(frame: Buffer): void;
  /** Closes the link; resolves once it is closed. */
  destroy(): Promise<void>;
}

/** Opens one connection of a link (a TCP socket, a serial port); each handler call concerns that connection. */
export type Link = (handlers: LinkHandlers) => LinkConn;
