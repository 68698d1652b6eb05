// What every simulator server shares, whatever carries the bytes (TCP with MBAP, TCP with raw RTU
// frames, a serial port or pseudo-terminal): the units, the faults injected per unit, the write
// log and the counters. Requests and answers are MBAP ADUs here; an RTU server converts at its edge.

import { systemClock, type Clock } from '../../src/runtime/clock.js';
import type { SimulatedDevice } from './device.js';
import { MBAP_LENGTH, exceptionFor, handleRequest, type WriteRecord } from './frame.js';

/** Faults injected into a unit's (or, with '*', every unit's) answers. */
export interface ModbusFault {
  latencyMs?: number;          // every answer delayed by this much
  drop?: boolean;              // no answer at all
  exception?: number;          // answer every request with this exception code (2, 4, 6, 11, ...)
  disconnectAfter?: number;    // close the connection after answering N requests (per connection)
  singleClient?: boolean;      // accept one client connection; further ones are closed at once
  garble?: boolean;            // right transaction id, wrong function code (0x7F) and payload
  short?: boolean;             // a frame whose PDU is cut short (byte count promises more)
  late?: { delayMs: number; count?: number }; // the next `count` (default 1) answers come after delayMs
  crc?: boolean;               // RTU: the answer's CRC is wrong (a CRC error on the line)
}

export interface WriteLog extends WriteRecord {
  unitId: number;
  at: number; // epoch ms (the server's clock)
  connection: number;
}

export interface ServerStats {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRejected: number;
  maxConnectionsOpen: number;
  requests: number;
  responses: number;
  exceptions: number;
  dropped: number;
  framingErrors: number;
  bytesIn: number;
  bytesOut: number;
  /** RTU: the shortest silence seen between an answer going out and the next request arriving (ms). */
  minSilenceMs: number;
}

/** One client connection (or the one serial line) as the responder sees it. */
export interface ResponderConn {
  id: number;
  answered: Map<number, number>; // unit -> requests answered on this connection
  /** Writes an answer ADU (converted to the wire framing); returns the bytes written, 0 when the link is gone. */
  send(adu: Buffer, fault: ModbusFault | undefined): number;
  /** Closes the connection once what was written has gone out. */
  end(): void;
}

export interface ResponderOptions {
  units: Map<number, SimulatedDevice>;
  /** A request for a unit the server does not have: exception 11 (an RTU gateway's answer), or silence. */
  unknownUnit?: 'exception' | 'drop';
  clock?: Clock;
}

const MAX_WRITE_LOG = 100_000;

export class Responder {
  readonly units: Map<number, SimulatedDevice>;
  /** Every accepted write, in order (the latest 50,000-100,000): tests assert "zero writes reached the wire" on it. */
  readonly writes: WriteLog[] = [];
  readonly stats: ServerStats = {
    connectionsOpen: 0, connectionsTotal: 0, connectionsRejected: 0, maxConnectionsOpen: 0,
    requests: 0, responses: 0, exceptions: 0, dropped: 0, framingErrors: 0, bytesIn: 0, bytesOut: 0, minSilenceMs: Infinity,
  };
  private readonly faults = new Map<number | '*', ModbusFault>();
  private readonly lateLeft = new Map<number | '*', number>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly clock: Clock;

  constructor(private readonly opts: ResponderOptions) {
    this.units = opts.units;
    this.clock = opts.clock ?? systemClock;
  }

  /** The smallest connection limit a single-client fault asks for (Infinity when none). */
  get connectionLimit(): number {
    return [...this.faults.values()].some((f) => f.singleClient === true) ? 1 : Infinity;
  }

  setFault(target: number | '*', fault: ModbusFault | undefined): void {
    this.lateLeft.delete(target);
    if (fault) this.faults.set(target, fault);
    else this.faults.delete(target);
  }

  clearFaults(): void {
    this.faults.clear();
    this.lateLeft.clear();
  }

  reboot(target: number | '*'): void {
    for (const [unit, device] of this.units) if (target === '*' || target === unit) device.reset();
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  onRequest(conn: ResponderConn, req: Buffer): void {
    this.stats.requests++;
    const unit = req[6] ?? 0;
    const { fault, key } = this.faultFor(unit);
    const device = this.units.get(unit);
    if (fault?.drop || (!device && this.opts.unknownUnit === 'drop')) {
      this.stats.dropped++;
      return;
    }
    let frame: Buffer;
    if (fault?.exception !== undefined) frame = exceptionFor(req, fault.exception);
    else if (!device) frame = exceptionFor(req, 11);
    else {
      try {
        frame = handleRequest(req, device, (w) => this.logWrite({ ...w, unitId: unit, at: this.clock.now(), connection: conn.id }));
      } catch {
        // A simulator bug must not take the server down: answer like a failing device.
        frame = exceptionFor(req, 4);
      }
    }
    if (fault?.garble) frame = garble(frame);
    else if (fault?.short) frame = shorten(frame);
    let delay = fault?.latencyMs ?? 0;
    if (fault?.late) {
      const left = this.lateLeft.get(key) ?? fault.late.count ?? 1;
      if (left > 0) {
        delay += fault.late.delayMs;
        this.lateLeft.set(key, left - 1);
      }
    }
    const n = (conn.answered.get(unit) ?? 0) + 1;
    conn.answered.set(unit, n);
    const limit = fault?.disconnectAfter;
    this.send(conn, frame, fault, delay, limit !== undefined && n >= limit ? () => conn.end() : undefined);
  }

  private faultFor(unit: number): { fault: ModbusFault | undefined; key: number | '*' } {
    const own = this.faults.get(unit);
    return own ? { fault: own, key: unit } : { fault: this.faults.get('*'), key: '*' };
  }

  private logWrite(w: WriteLog): void {
    this.writes.push(w);
    // The log is for tests and short runs; a long `simulate` session keeps the latest writes only.
    if (this.writes.length > MAX_WRITE_LOG) this.writes.splice(0, this.writes.length - MAX_WRITE_LOG / 2);
  }

  private send(conn: ResponderConn, frame: Buffer, fault: ModbusFault | undefined, delayMs: number, then?: () => void): void {
    const out = (): void => {
      const bytes = conn.send(frame, fault);
      if (bytes === 0) return;
      this.stats.responses++;
      this.stats.bytesOut += bytes;
      if (frame[7] !== undefined && (frame[7] & 0x80) !== 0) this.stats.exceptions++;
      then?.();
    };
    if (delayMs <= 0) return out();
    const t = setTimeout(() => {
      this.timers.delete(t);
      out();
    }, delayMs);
    this.timers.add(t);
  }
}

function garble(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  out[7] = 0x7f; // a function code nobody asked for
  for (let i = MBAP_LENGTH + 1; i < out.length; i++) out[i] = ((out[i] ?? 0) ^ 0xa5) & 0xff;
  return out;
}

function shorten(frame: Buffer): Buffer {
  // Keep the function code and the byte count (which still promises the full payload), drop the
  // rest, and make the MBAP length agree with what is sent so the frame itself is well delimited.
  const pdu = Math.min(2, frame.length - MBAP_LENGTH);
  const out = Buffer.from(frame.subarray(0, MBAP_LENGTH + pdu));
  out.writeUInt16BE(pdu + 1, 4);
  return out;
}
