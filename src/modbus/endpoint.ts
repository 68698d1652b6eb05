// One Modbus endpoint: a TCP connection per host:port, or one serial line, shared by every unit id
// behind it. It owns the queue (writes and read-backs first), one request in flight, the timeouts,
// the per-unit backoff, reconnects and the stray counting; the transport under it (transport.ts) is
// a link (TCP socket or serial port) and a framing (MBAP or RTU) that cuts the expected answer out
// of the bytes that come back. So every transport gets the same isolation of a dead unit, and one
// profile works on all of them.
//
// Why our own client on node:net instead of wrapping modbus-serial 8.0.25's TcpPort:
// - TcpPort numbers transactions modulo 256 (MAX_TRANSACTIONS) and ModbusRTU matches a reply by
//   looking that number up in `_transactions`, so after a device freezes its backlog of stale
//   replies is matched to newer requests (node-modbus-serial#264; field notes measured 100
//   "expected address X got Y" errors, and a stale reply to the same unit+address passes silently).
// - TcpPort strips the MBAP header and re-adds an RTU CRC to every frame, so the transaction id
//   we would need to match on is only available through a side field (`_transactionIdRead`).
// - A garbled length field makes TcpPort wait forever for bytes that never come; a short PDU
//   reaches readUInt16BE in index.js (the RangeError class of node-red-contrib-modbus#480).
// - Its reconnect/timeout handling is per-client, with no priority queue and no per-unit state.
// For RTU: docs/modbus.md ("Why not modbus-serial's RTU client", test/modbus/rtu-client-choice.test.ts).
// Everything that leaves this module is a ModbusError with a stable `code`.

import type { RegisterTable } from '../config/profile-types.js';
import type { ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { rateLimitedLogger, type RateLimitedLogger } from '../runtime/rate-limit.js';
import { checkRead, checkWrite, encodeRead, encodeWrite, parseReadResponse, parseWriteResponse } from './endpoint-frames.js';
import { Connection } from './endpoint-connection.js';
import type { EndpointDeps, EndpointOptions, EndpointStats, UnitSettings } from './endpoint-types.js';
import type { Expect, Framing, RequestPdu, RxEvent } from './framing.js';
import { makeTransport, targetKey } from './transport.js';
import {
  ModbusError, type ModbusEndpointClient, type ModbusErrorType, type ReadRequest, type ReadResult,
  type RequestOptions,
} from './types.js';
import { UnitBackoff, type UnitHealth } from './unit-backoff.js';
import { CheckedWrite } from './write-controls.js';

export type { EndpointDeps, EndpointObserver, EndpointOptions, EndpointStats, EndpointTuning, RequestEvent, UnitSettings } from './endpoint-types.js';

/**
 * A read compiled once by the endpoint that will send it (prepareRead): its arguments checked, its
 * PDU and wire frame built (the RTU frame with its CRC, the MBAP frame with a transaction id
 * stamped at each send). A poller prepares its planned reads when it compiles its plan, so a poll
 * allocates no request, PDU or frame. Immutable; anywhere else it is a plain ReadRequest.
 */
class PreparedRead implements ReadRequest {
  readonly unitId: number;
  readonly table: RegisterTable;
  readonly address: number;
  readonly count: number;
  /** Why the read cannot be sent (checkRead, the framing's unit check); rejected at every read. */
  readonly invalid: string | undefined;
  readonly pdu: RequestPdu | undefined;
  /** The frame; `busy` while a request uses it (queued, or sent and not yet answered). */
  readonly wire: PreparedWire;

  constructor(readonly owner: ModbusEndpoint, req: ReadRequest, framing: Framing) {
    this.unitId = req.unitId;
    this.table = req.table;
    this.address = req.address;
    this.count = req.count;
    this.invalid = checkRead(req) ?? framing.checkUnit(req.unitId);
    this.pdu = this.invalid === undefined ? encodeRead(req) : undefined;
    this.wire = { frame: this.pdu === undefined ? Buffer.alloc(0) : framing.frame(this.pdu), busy: false };
    Object.freeze(this);
  }
}

interface PreparedWire {
  frame: Buffer;
  busy: boolean;
}

/** A request in the queue or on the wire; it is also what its answer must match (Expect, filled at send). */
interface Pending extends Expect {
  req: RequestPdu;
  /** The wire frame (built once; per-send fields stamped at send). */
  frame: Buffer;
  /** The prepared read whose frame this request borrowed (released at finish), if any. */
  wire: PreparedWire | undefined;
  write: boolean;
  table: RegisterTable;
  deviceId: string | undefined;
  high: boolean;
  timeoutMs: number;
  sentAt: number;
  /** Monotonic ms at which it times out (set at send). */
  deadline: number;
  resolve: (v: ReadResult | undefined) => void;
  reject: (e: ModbusError) => void;
}

export class ModbusEndpoint implements ModbusEndpointClient {
  readonly key: string;
  private readonly link: Connection;
  private readonly framing: Framing;
  private readonly high: Pending[] = [];
  private readonly normal: Pending[] = [];
  private inFlight: Pending | undefined;
  /** Monotonic ms before which no request goes out (request gap, RTU inter-frame silence). */
  private notBefore = 0;
  private sendTimer: ClockTimer | undefined;
  private quietTimer: ClockTimer | undefined;
  /** The timeout timer (armDeadline) and the deadline it is armed for. */
  private deadlineTimer: ClockTimer | undefined;
  private deadlineAt = 0;
  private consecutiveTimeouts = 0;
  private readonly listeners = new Set<() => void>();
  private readonly unitSettings = new Map<number, UnitSettings>();
  private readonly backoff: UnitBackoff;
  private readonly log: Logger;
  private readonly limited: RateLimitedLogger;
  private counters = { strays: 0, malformed: 0 };
  /** The last requests' receive windows (stream offsets [from, to)): whose request was in flight when a byte arrived. */
  private readonly windows: Array<{ from: number; to: number; unitId: number; deviceId: string | undefined }> = [];

  constructor(private readonly opts: EndpointOptions, private readonly deps: EndpointDeps) {
    this.key = targetKey(opts);
    this.log = deps.logger.child({ component: 'modbus', endpoint: this.key });
    const t = makeTransport(opts, opts.random);
    this.framing = t.framing;
    this.link = new Connection(t.link, opts, { clock: deps.clock, log: this.log }, {
      ready: () => this.onReady(),
      data: (chunk) => this.onData(chunk),
      lost: (code, detail) => this.onLost(code, detail),
    });
    this.backoff = new UnitBackoff({ random: opts.random, ...opts.unitBackoff });
    this.limited = rateLimitedLogger(this.log, deps.clock, { intervalMs: 60_000 });
  }

  get connected(): boolean {
    return this.link.ready;
  }

  /** Per-unit timeout and request gap (from the device's profile quirks). */
  configureUnit(unitId: number, settings: UnitSettings): void {
    this.unitSettings.set(unitId, { ...this.unitSettings.get(unitId), ...settings });
  }

  /** Raise the pause after connect to at least `ms` (devices sharing an endpoint: the slowest wins). */
  requireConnectDelay(ms: number): void {
    this.opts.connectDelayMs = Math.max(this.opts.connectDelayMs ?? 0, ms);
  }

  unitHealth(unitId: number): UnitHealth | undefined {
    return this.backoff.health(unitId);
  }

  stats(): EndpointStats {
    return {
      connected: this.connected, connects: this.link.connects, disconnects: this.link.disconnects, ...this.counters,
      queued: this.high.length + this.normal.length, reconnectAttempt: this.link.attempt,
    };
  }

  onConnect(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Compile a read that will be repeated (a poller's planned read): pass the result to read(). */
  prepareRead(req: ReadRequest): ReadRequest {
    return new PreparedRead(this, req, this.framing);
  }

  read(req: ReadRequest, opts: RequestOptions = {}): Promise<ReadResult> {
    if (req instanceof PreparedRead && req.owner === this) {
      if (req.pdu === undefined) return Promise.reject(this.error('invalid_request', `read ${req.invalid ?? ''}`, req.unitId, opts.deviceId));
      return this.enqueue(req.pdu, false, req.table, opts, req.wire) as Promise<ReadResult>;
    }
    const bad = checkRead(req) ?? this.framing.checkUnit(req.unitId);
    if (bad !== undefined) return Promise.reject(this.error('invalid_request', `read ${bad}`, req.unitId, opts.deviceId));
    return this.enqueue(encodeRead(req), false, req.table, opts) as Promise<ReadResult>;
  }

  async write(unitId: number, value: CheckedWrite, opts: RequestOptions = {}): Promise<void> {
    // A look-alike object (a copy, a cast) is refused at run time too, not only by the type checker.
    if (!CheckedWrite.isGenuine(value)) throw this.error('invalid_request', 'write: not a checked value of a writable control', unitId, opts.deviceId);
    const req = value.request(unitId);
    const bad = checkWrite(req) ?? this.framing.checkUnit(req.unitId);
    if (bad !== undefined) throw this.error('invalid_request', `write ${bad}`, req.unitId, opts.deviceId);
    await this.enqueue(encodeWrite(req), true, req.table, opts);
  }

  async close(): Promise<void> {
    if (this.link.state === 'closed') return;
    const closing = this.link.close();
    this.clearTimers();
    this.failAll('closed', 'endpoint closed');
    await closing;
  }

  // ---------------------------------------------------------------- queue

  private enqueue(req: RequestPdu, write: boolean, table: RegisterTable, opts: RequestOptions, wire?: PreparedWire): Promise<ReadResult | undefined> {
    return new Promise((resolve, reject) => {
      const high = opts.priority === 'high';
      const timeoutMs = opts.timeoutMs ?? this.unitSettings.get(req.unitId)?.timeoutMs ?? this.opts.defaultTimeoutMs ?? 1000;
      // A prepared frame is stamped in place at send, so two requests never share one: the same
      // prepared read queued twice at once (rare: a one-shot cycle beside the poll loop) gets a copy.
      const borrow = wire !== undefined && !wire.busy;
      if (borrow) wire.busy = true;
      const frame = borrow ? wire.frame : wire !== undefined ? Buffer.from(wire.frame) : this.framing.frame(req);
      const p: Pending = {
        req, frame, wire: borrow ? wire : undefined, write, table, deviceId: opts.deviceId, high, timeoutMs,
        tid: 0, from: 0, sentAt: 0, deadline: 0, resolve, reject,
      };
      const state = this.link.state;
      if (state === 'closed') return this.refuse(p, 'closed', 'endpoint closed');
      // Fail fast while waiting to reconnect: queued polls would only pile up behind a dead line.
      if (state === 'waiting') return this.refuse(p, 'disconnected', `not connected (reconnect attempt ${this.link.attempt})`);
      // Writes and read-backs may probe a backed-off unit; polls may not.
      if (!high && this.backoff.isBackedOff(req.unitId, this.deps.clock.monotonic())) {
        return this.refuse(p, 'unit_backed_off', `unit backed off for ${Math.round(this.backoff.remainingMs(req.unitId, this.deps.clock.monotonic()))} ms`);
      }
      (high ? this.high : this.normal).push(p);
      this.kick();
    });
  }

  private kick(): void {
    this.link.start();
    while (this.link.ready && this.inFlight === undefined && this.sendTimer === undefined) {
      if (this.high.length === 0 && this.normal.length === 0) {
        // Idle: no timeout to watch (and no timer to keep a process alive).
        if (this.deadlineTimer !== undefined) this.deps.clock.clearTimeout(this.deadlineTimer);
        this.deadlineTimer = undefined;
        return;
      }
      if (this.notBefore !== 0) {
        const wait = this.notBefore - this.deps.clock.monotonic();
        if (wait > 0) {
          // Rounded up: a timer on a 1 ms grain may fire up to 1 ms early; the pause is at least what the line needs.
          this.sendTimer = this.deps.clock.setTimeout(() => {
            this.sendTimer = undefined;
            this.kick();
          }, Math.ceil(wait));
          return;
        }
        this.notBefore = 0;
      }
      const p = (this.high.shift() ?? this.normal.shift()) as Pending;
      if (!p.high && this.backoff.isBackedOff(p.req.unitId, this.deps.clock.monotonic())) {
        this.refuse(p, 'unit_backed_off', 'unit backed off');
        continue;
      }
      this.send(p);
    }
  }

  private send(p: Pending): void {
    const rx = this.framing.receiver;
    if (this.framing.flushBeforeSend && rx.pending > 0) {
      // Bytes received before the request went out can never be its answer.
      this.noteMalformed(`${rx.pending} bytes left on the line before a request`, rx.received - rx.pending);
      rx.clear();
    }
    p.tid = this.framing.stamp(p.frame);
    p.from = rx.received;
    p.sentAt = this.deps.clock.monotonic();
    this.inFlight = p;
    p.deadline = p.sentAt + p.timeoutMs + this.framing.wireMs(p.req);
    this.armDeadline(p.deadline);
    this.link.write(p.frame);
  }

  /**
   * One timer per endpoint for the timeouts, not one per request: armed for the deadline of the
   * request in flight, and left running when its answer comes (the next request's deadline is
   * later), so a poll sets and clears no timer (1,000 of each a second at 1,000 devices,
   * bench:modbus). When it fires for an earlier request's deadline, it is armed again for the
   * request now in flight; it is cleared when the queue runs empty and when the endpoint closes.
   */
  private armDeadline(at: number): void {
    if (this.deadlineTimer !== undefined) {
      if (this.deadlineAt <= at) return;
      this.deps.clock.clearTimeout(this.deadlineTimer);
    }
    this.deadlineAt = at;
    this.deadlineTimer = this.deps.clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      const p = this.inFlight;
      if (p === undefined) return;
      // Armed for this request's own deadline: it has come (as a timer of its own would have fired).
      if (this.deadlineAt >= p.deadline || this.deps.clock.monotonic() >= p.deadline) this.onTimeout(p);
      else this.armDeadline(p.deadline);
    }, Math.max(0, at - this.deps.clock.monotonic()));
  }

  private onTimeout(p: Pending): void {
    if (this.inFlight !== p) return;
    const rx = this.framing.receiver;
    if (rx.pending > 0) {
      // Half a frame and then silence: those bytes can never be completed correctly (charged while p is still in flight).
      this.noteMalformed(`partial frame of ${rx.pending} bytes discarded at timeout`, rx.received - rx.pending);
      rx.clear();
    }
    this.inFlight = undefined;
    this.consecutiveTimeouts += 1;
    const backedOffMs = this.backoff.failed(p.req.unitId, this.deps.clock.monotonic());
    if (backedOffMs > 0) this.log.debug({ unit_id: p.req.unitId, device: p.deviceId, backoff_ms: backedOffMs }, 'unit backed off after timeouts');
    // Drop a dead line before finishing, so nothing more is sent into it.
    if (this.consecutiveTimeouts >= (this.opts.timeoutsBeforeReconnect ?? 3) && this.link.ready) {
      this.log.warn({ timeouts: this.consecutiveTimeouts }, 'no answer from any unit: reconnecting');
      this.link.drop('no answer from any unit');
    }
    this.finish(p, undefined, this.error('timeout', `no response within ${p.timeoutMs} ms`, p.req.unitId, p.deviceId, p), 0);
    this.kick();
  }

  // ---------------------------------------------------------------- receiving

  private onData(chunk: Buffer): void {
    const rx = this.framing.receiver;
    rx.push(chunk);
    for (;;) {
      const p = this.inFlight;
      const ev = rx.next(p);
      if (ev === undefined) break;
      this.onEvent(ev, p);
    }
    if (this.framing.quietMs > 0) {
      // RTU: nothing goes out until the line has been quiet; a damaged answer is declared once it is.
      this.notBefore = Math.max(this.notBefore, this.deps.clock.monotonic() + this.framing.quietMs);
      if (this.inFlight !== undefined) this.armQuiet();
    }
    // Only now, with the whole chunk read: none of its bytes can be taken for the next request's answer.
    this.kick();
  }

  private onEvent(ev: RxEvent, p: Pending | undefined): void {
    switch (ev.kind) {
      case 'answer': {
        if (p === undefined) return;
        this.inFlight = undefined;
        this.lineAlive();
        const r = p.write ? parseWriteResponse(p.req, ev.pdu) : parseReadResponse(p.req, ev.pdu);
        if (r.ok) this.finish(p, r.value ?? undefined, undefined, ev.bytes);
        else this.finish(p, undefined, this.error(r.code, r.detail, p.req.unitId, p.deviceId, p, r.exceptionCode), ev.bytes);
        return;
      }
      case 'bad_answer':
        if (p === undefined) return;
        this.inFlight = undefined;
        this.lineAlive();
        if (ev.code === 'malformed_response') this.noteMalformed(ev.detail);
        this.finish(p, undefined, this.error(ev.code, ev.detail, p.req.unitId, p.deviceId, p), ev.bytes);
        return;
      case 'stray':
        this.counters.strays += 1;
        this.deps.observer?.stray(this.key, ev.bytes);
        this.limited.warn('stray', { detail: ev.detail, bytes: ev.bytes },
          'stray response discarded: it answers no request in flight (late, duplicated, unsolicited, or tagged with another unit id or function code)');
        return;
      case 'garbage':
        // Charged to the unit whose request is in flight (counted, the request goes on: its own
        // answer may still follow intact); with none in flight, to the endpoint only. A request
        // whose answer drowned in them times out, on its own unit. The bytes of an RTU answer that
        // failed its CRC are that answer's crc_error (charged once the line is quiet), not garbage too.
        this.noteMalformed(ev.detail, ev.damagedAnswer === true ? undefined : ev.at);
        this.limited.warn('garbage', { detail: ev.detail }, 'bytes that are no frame discarded');
        return;
    }
  }

  /** RTU: once the line has been quiet, bytes since the request may amount to a CRC error. */
  private armQuiet(): void {
    if (this.quietTimer !== undefined) this.deps.clock.clearTimeout(this.quietTimer);
    this.quietTimer = this.deps.clock.setTimeout(() => {
      this.quietTimer = undefined;
      const p = this.inFlight;
      const ev = p === undefined ? undefined : this.framing.receiver.quiet(p);
      if (ev !== undefined) this.onEvent(ev, p);
      this.kick();
    }, Math.ceil(this.framing.quietMs));
  }

  /** Something answered: the line works (reconnect and timeout streaks end). */
  private lineAlive(): void {
    this.link.answered();
    this.consecutiveTimeouts = 0;
  }

  private finish(p: Pending, value: ReadResult | undefined, err: ModbusError | undefined, bytesIn: number): void {
    this.closeWindow(p);
    if (p.wire !== undefined) {
      // Unanswered (timeout, connection lost), the frame may still sit in the socket's write queue:
      // the prepared read takes a copy, so the next stamp cannot change bytes not yet sent.
      if (bytesIn === 0) p.wire.frame = Buffer.from(p.frame);
      p.wire.busy = false;
      p.wire = undefined;
    }
    const now = this.deps.clock.monotonic();
    const unit = p.req.unitId;
    if (err === undefined || err.code.startsWith('exception_')) {
      // The unit answered (even an exception proves the path), unless the gateway says otherwise.
      if (err?.code === 'exception_gateway_path' || err?.code === 'exception_gateway_target') {
        const ms = this.backoff.failed(unit, now, true);
        this.log.debug({ unit_id: unit, device: p.deviceId, backoff_ms: ms }, 'gateway cannot reach unit: backed off');
      } else {
        this.backoff.succeeded(unit);
      }
    }
    this.deps.observer?.requestDone({
      endpoint: this.key, deviceId: p.deviceId, unitId: unit, table: p.table, write: p.write, sent: true,
      durationMs: now - p.sentAt, bytesOut: p.frame.length, bytesIn, error: err?.code,
    });
    const gap = this.unitSettings.get(unit)?.requestGapMs ?? 0;
    if (gap > 0) this.notBefore = Math.max(this.notBefore, now + gap);
    if (err === undefined) p.resolve(value);
    else p.reject(err);
  }

  private refuse(p: Pending, code: ModbusErrorType, detail: string): void {
    if (p.wire !== undefined) {
      p.wire.busy = false; // never sent
      p.wire = undefined;
    }
    this.deps.observer?.requestDone({
      endpoint: this.key, deviceId: p.deviceId, unitId: p.req.unitId, table: p.table, write: p.write, sent: false,
      durationMs: 0, bytesOut: 0, bytesIn: 0, error: code,
    });
    p.reject(this.error(code, detail, p.req.unitId, p.deviceId, p));
  }

  private failAll(code: ModbusErrorType, detail: string): void {
    const p = this.inFlight;
    this.inFlight = undefined;
    if (p !== undefined) this.finish(p, undefined, this.error(code, detail, p.req.unitId, p.deviceId, p), 0);
    for (const q of this.high.splice(0).concat(this.normal.splice(0))) this.refuse(q, code, detail);
  }

  /**
   * Unframeable bytes, the first at stream offset `at`: always counted on the endpoint, and charged
   * to the unit whose request was in flight when that byte arrived (the tail of a broken frame
   * scanned during the next request is still its sender's); none in flight then: the endpoint's only.
   */
  private noteMalformed(detail: string, at?: number): void {
    this.counters.malformed += 1;
    this.deps.observer?.malformed(this.key, detail);
    if (at === undefined) return;
    const p = this.inFlight;
    const w = p !== undefined && at >= p.from ? { unitId: p.req.unitId, deviceId: p.deviceId } : this.windows.find((x) => at >= x.from && at < x.to);
    if (w !== undefined) this.deps.observer?.garbage?.({ endpoint: this.key, deviceId: w.deviceId, unitId: w.unitId });
  }

  /** Closes `p`'s receive window at the bytes received so far (a chunk that carried its answer is its). */
  private closeWindow(p: Pending): void {
    this.windows.push({ from: p.from, to: this.framing.receiver.received, unitId: p.req.unitId, deviceId: p.deviceId });
    if (this.windows.length > 4) this.windows.shift();
  }

  private error(code: ModbusErrorType, detail: string, unitId: number, deviceId: string | undefined, p?: Pending, exceptionCode?: number): ModbusError {
    const what = p === undefined ? '' : ` ${p.write ? 'write' : 'read'} ${p.table} ${p.req.address}+${p.req.count}`;
    const who = deviceId === undefined ? `unit ${unitId}` : `${deviceId} (unit ${unitId})`;
    return new ModbusError(code, `${who} at ${this.key}${what}: ${detail}`, { device: deviceId, exceptionCode });
  }

  // ---------------------------------------------------------------- connection

  private onReady(): void {
    this.consecutiveTimeouts = 0;
    for (const l of this.listeners) {
      try {
        const r: unknown = l();
        if (r instanceof Promise) r.catch((e: unknown) => this.log.error({ err: String(e) }, 'onConnect listener failed'));
      } catch (e) {
        this.log.error({ err: String(e) }, 'onConnect listener failed');
      }
    }
    this.kick();
  }

  private onLost(code: ModbusErrorType, detail: string): void {
    this.clearTimers();
    this.framing.receiver.clear();
    this.failAll(code, detail);
  }

  private clearTimers(): void {
    for (const t of [this.sendTimer, this.quietTimer, this.deadlineTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.sendTimer = this.quietTimer = this.deadlineTimer = undefined;
  }
}
