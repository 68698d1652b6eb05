// One Modbus TCP connection per host:port, shared by every unit id behind it.
//
// Why our own MBAP client on node:net instead of wrapping modbus-serial 8.0.25's TcpPort:
// - TcpPort numbers transactions modulo 256 (MAX_TRANSACTIONS) and ModbusRTU matches a reply by
//   looking that number up in `_transactions`, so after a device freezes its backlog of stale
//   replies is matched to newer requests (node-modbus-serial#264; field notes measured 100
//   "expected address X got Y" errors, and a stale reply to the same unit+address passes silently).
// - TcpPort strips the MBAP header and re-adds an RTU CRC to every frame, so the transaction id
//   we would need to match on is only available through a side field (`_transactionIdRead`).
// - A garbled length field makes TcpPort wait forever for bytes that never come; a short PDU
//   reaches readUInt16BE in index.js (the RangeError class of node-red-contrib-modbus#480).
// - Its reconnect/timeout handling is per-client, with no priority queue and no per-unit state.
// Wrapping would mean re-parsing every frame ourselves anyway, so the client below owns the
// socket, the 16-bit transaction ids, the frame reader and the queue (about 300 lines), and
// modbus-serial stays in the repo as the bare baseline of `npm run bench:modbus`.
// Everything that leaves this module is a ModbusError with a stable `code`.

import net from 'node:net';
import { CheckedWrite } from '../config/profile-controls.js';
import type { RegisterTable } from '../config/profile-types.js';
import { backoffDelay, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import {
  FrameReader, checkRead, checkWrite, encodeRead, encodeWrite, parseReadResponse, parseWriteResponse,
  type EncodedRequest, type Frame,
} from './endpoint-frames.js';
import {
  ModbusError, type ModbusEndpointClient, type ModbusErrorType, type ReadRequest, type ReadResult,
  type RequestOptions,
} from './types.js';
import type { EndpointDeps, EndpointOptions, EndpointStats, UnitSettings } from './endpoint-types.js';
import { UnitBackoff, type UnitHealth } from './unit-backoff.js';

export type { EndpointDeps, EndpointObserver, EndpointOptions, EndpointStats, RequestEvent, UnitSettings } from './endpoint-types.js';

interface Pending {
  enc: EncodedRequest;
  write: boolean;
  table: RegisterTable;
  deviceId: string | undefined;
  high: boolean;
  timeoutMs: number;
  tid: number;
  sentAt: number;
  timer: ClockTimer | undefined;
  resolve: (v: ReadResult | undefined) => void;
  reject: (e: ModbusError) => void;
}

type State = 'idle' | 'connecting' | 'ready' | 'waiting' | 'closed';

export class ModbusEndpoint implements ModbusEndpointClient {
  readonly key: string;
  private state: State = 'idle';
  private socket: net.Socket | undefined;
  private readonly reader = new FrameReader();
  private readonly high: Pending[] = [];
  private readonly normal: Pending[] = [];
  private inFlight: Pending | undefined;
  private nextTid = 1;
  private gapTimer: ClockTimer | undefined;
  private connectTimer: ClockTimer | undefined;
  private reconnectTimer: ClockTimer | undefined;
  private attempt = 0;
  private consecutiveTimeouts = 0;
  private readonly listeners = new Set<() => void>();
  private readonly unitSettings = new Map<number, UnitSettings>();
  private readonly backoff: UnitBackoff;
  private readonly log: Logger;
  private counters = { connects: 0, disconnects: 0, strays: 0, malformed: 0 };

  constructor(private readonly opts: EndpointOptions, private readonly deps: EndpointDeps) {
    this.key = `${opts.host}:${opts.port}`;
    this.backoff = new UnitBackoff({ random: opts.random, ...opts.unitBackoff });
    this.log = deps.logger.child({ component: 'modbus', endpoint: this.key });
  }

  get connected(): boolean {
    return this.state === 'ready';
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
      connected: this.connected, ...this.counters, queued: this.high.length + this.normal.length,
      reconnectAttempt: this.attempt,
    };
  }

  onConnect(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  read(req: ReadRequest, opts: RequestOptions = {}): Promise<ReadResult> {
    const bad = checkRead(req);
    if (bad !== undefined) return Promise.reject(this.error('invalid_request', `read ${bad}`, req.unitId, opts.deviceId));
    return this.enqueue(encodeRead(req), false, req.table, opts) as Promise<ReadResult>;
  }

  async write(unitId: number, value: CheckedWrite, opts: RequestOptions = {}): Promise<void> {
    // A look-alike object (a copy, a cast) is refused at run time too, not only by the type checker.
    if (!CheckedWrite.isGenuine(value)) throw this.error('invalid_request', 'write: not a checked value of a writable control', unitId, opts.deviceId);
    const req = value.request(unitId);
    const bad = checkWrite(req);
    if (bad !== undefined) throw this.error('invalid_request', `write ${bad}`, req.unitId, opts.deviceId);
    await this.enqueue(encodeWrite(req), true, req.table, opts);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const t of [this.gapTimer, this.connectTimer, this.reconnectTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.gapTimer = this.connectTimer = this.reconnectTimer = undefined;
    this.failAll('closed', 'endpoint closed');
    const sock = this.socket;
    this.socket = undefined;
    if (sock !== undefined && !sock.destroyed) {
      await new Promise<void>((resolve) => {
        sock.once('close', () => resolve());
        sock.destroy();
      });
    }
  }

  // ---------------------------------------------------------------- queue

  private enqueue(enc: EncodedRequest, write: boolean, table: RegisterTable, opts: RequestOptions): Promise<ReadResult | undefined> {
    return new Promise((resolve, reject) => {
      const high = opts.priority === 'high';
      const timeoutMs = opts.timeoutMs ?? this.unitSettings.get(enc.unitId)?.timeoutMs ?? this.opts.defaultTimeoutMs ?? 1000;
      const p: Pending = { enc, write, table, deviceId: opts.deviceId, high, timeoutMs, tid: 0, sentAt: 0, timer: undefined, resolve, reject };
      if (this.state === 'closed') return this.refuse(p, 'closed', 'endpoint closed');
      // Fail fast while waiting to reconnect: queued polls would only pile up behind a dead line.
      if (this.state === 'waiting') return this.refuse(p, 'disconnected', `not connected (reconnect attempt ${this.attempt})`);
      // Writes and read-backs may probe a backed-off unit; polls may not.
      if (!high && this.backoff.isBackedOff(enc.unitId, this.deps.clock.monotonic())) {
        return this.refuse(p, 'unit_backed_off', `unit backed off for ${Math.round(this.backoff.remainingMs(enc.unitId, this.deps.clock.monotonic()))} ms`);
      }
      (high ? this.high : this.normal).push(p);
      this.kick();
    });
  }

  private kick(): void {
    if (this.state === 'idle') {
      this.connect();
      return;
    }
    while (this.state === 'ready' && this.inFlight === undefined && this.gapTimer === undefined) {
      const p = this.high.shift() ?? this.normal.shift();
      if (p === undefined) return;
      if (!p.high && this.backoff.isBackedOff(p.enc.unitId, this.deps.clock.monotonic())) {
        this.refuse(p, 'unit_backed_off', 'unit backed off');
        continue;
      }
      this.send(p);
    }
  }

  private send(p: Pending): void {
    const sock = this.socket;
    if (sock === undefined) return this.refuse(p, 'disconnected', 'not connected');
    p.tid = this.nextTid;
    this.nextTid = this.nextTid === 0xffff ? 1 : this.nextTid + 1;
    p.enc.frame.writeUInt16BE(p.tid, 0);
    p.sentAt = this.deps.clock.monotonic();
    this.inFlight = p;
    p.timer = this.deps.clock.setTimeout(() => this.onTimeout(p), p.timeoutMs);
    sock.write(p.enc.frame);
  }

  private onTimeout(p: Pending): void {
    if (this.inFlight !== p) return;
    this.inFlight = undefined;
    if (this.reader.pending > 0) {
      // Half a frame and then silence: those bytes can never be completed correctly.
      this.reader.clear();
      this.noteMalformed('partial frame discarded at timeout');
    }
    this.consecutiveTimeouts += 1;
    const backedOffMs = this.backoff.failed(p.enc.unitId, this.deps.clock.monotonic());
    if (backedOffMs > 0) this.log.debug({ unit_id: p.enc.unitId, device: p.deviceId, backoff_ms: backedOffMs }, 'unit backed off after timeouts');
    // Drop a dead line before finishing, so nothing more is sent into it.
    if (this.consecutiveTimeouts >= (this.opts.timeoutsBeforeReconnect ?? 3) && this.socket !== undefined) {
      this.log.warn({ timeouts: this.consecutiveTimeouts }, 'no answer from any unit: reconnecting');
      this.drop(this.socket);
    }
    this.finish(p, undefined, this.error('timeout', `no response within ${p.timeoutMs} ms`, p.enc.unitId, p.deviceId, p), 0);
  }

  private onData(sock: net.Socket, chunk: Buffer): void {
    if (sock !== this.socket) return;
    this.reader.push(chunk);
    for (;;) {
      const f = this.reader.next();
      if (f === undefined) return;
      if (f === 'garbled') {
        this.noteMalformed('garbled MBAP header');
        const p = this.inFlight;
        if (p !== undefined) {
          this.inFlight = undefined;
          this.finish(p, undefined, this.error('malformed_response', 'garbled MBAP header: reconnecting to resynchronise', p.enc.unitId, p.deviceId, p), chunk.length);
        }
        this.reader.clear();
        this.drop(sock);
        return;
      }
      this.onFrame(f);
    }
  }

  private onFrame(f: Frame): void {
    const p = this.inFlight;
    if (p === undefined || f.tid !== p.tid) {
      // A late answer to a request that already timed out: never the answer to the next one.
      this.counters.strays += 1;
      this.deps.observer?.stray(this.key, f.bytes);
      return;
    }
    this.inFlight = undefined;
    this.attempt = 0;
    this.consecutiveTimeouts = 0;
    if (p.write) {
      const r = parseWriteResponse(p.enc, f.pdu);
      if (r.ok) this.finish(p, undefined, undefined, f.bytes);
      else this.finish(p, undefined, this.error(r.code, r.detail, p.enc.unitId, p.deviceId, p, r.exceptionCode), f.bytes);
    } else {
      const r = parseReadResponse(p.enc, f.pdu);
      if (r.ok) this.finish(p, r.value, undefined, f.bytes);
      else this.finish(p, undefined, this.error(r.code, r.detail, p.enc.unitId, p.deviceId, p, r.exceptionCode), f.bytes);
    }
  }

  private finish(p: Pending, value: ReadResult | undefined, err: ModbusError | undefined, bytesIn: number): void {
    if (p.timer !== undefined) this.deps.clock.clearTimeout(p.timer);
    const now = this.deps.clock.monotonic();
    const unit = p.enc.unitId;
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
      durationMs: now - p.sentAt, bytesOut: p.enc.frame.length, bytesIn, error: err?.code,
    });
    const gap = this.unitSettings.get(unit)?.requestGapMs ?? 0;
    if (gap > 0 && this.state === 'ready') {
      this.gapTimer = this.deps.clock.setTimeout(() => {
        this.gapTimer = undefined;
        this.kick();
      }, gap);
    }
    if (err === undefined) p.resolve(value);
    else p.reject(err);
    this.kick();
  }

  private refuse(p: Pending, code: ModbusErrorType, detail: string): void {
    this.deps.observer?.requestDone({
      endpoint: this.key, deviceId: p.deviceId, unitId: p.enc.unitId, table: p.table, write: p.write, sent: false,
      durationMs: 0, bytesOut: 0, bytesIn: 0, error: code,
    });
    p.reject(this.error(code, detail, p.enc.unitId, p.deviceId, p));
  }

  private failAll(code: ModbusErrorType, detail: string): void {
    const p = this.inFlight;
    this.inFlight = undefined;
    if (p !== undefined) {
      if (p.timer !== undefined) this.deps.clock.clearTimeout(p.timer);
      this.deps.observer?.requestDone({
        endpoint: this.key, deviceId: p.deviceId, unitId: p.enc.unitId, table: p.table, write: p.write, sent: true,
        durationMs: this.deps.clock.monotonic() - p.sentAt, bytesOut: p.enc.frame.length, bytesIn: 0, error: code,
      });
      p.reject(this.error(code, detail, p.enc.unitId, p.deviceId, p));
    }
    for (const q of this.high.splice(0).concat(this.normal.splice(0))) this.refuse(q, code, detail);
  }

  private noteMalformed(detail: string): void {
    this.counters.malformed += 1;
    this.deps.observer?.malformed(this.key, detail);
  }

  private error(code: ModbusErrorType, detail: string, unitId: number, deviceId: string | undefined, p?: Pending, exceptionCode?: number): ModbusError {
    const what = p === undefined ? '' : ` ${p.write ? 'write' : 'read'} ${p.table} ${p.enc.address}+${p.enc.count}`;
    const who = deviceId === undefined ? `unit ${unitId}` : `${deviceId} (unit ${unitId})`;
    return new ModbusError(code, `${who} at ${this.key}${what}: ${detail}`, { device: deviceId, exceptionCode });
  }

  // ---------------------------------------------------------------- connection

  private connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.reader.clear();
    const sock = net.connect({ host: this.opts.host, port: this.opts.port });
    this.socket = sock;
    sock.setNoDelay(true);
    this.connectTimer = this.deps.clock.setTimeout(() => {
      this.connectTimer = undefined;
      if (sock === this.socket && this.state === 'connecting') sock.destroy(new Error(`connect timeout after ${this.opts.connectTimeoutMs ?? 3000} ms`));
    }, this.opts.connectTimeoutMs ?? 3000);
    sock.on('data', (chunk: Buffer) => this.onData(sock, chunk));
    sock.on('error', (err) => {
      if (sock === this.socket) this.log.debug({ err: err.message }, 'socket error');
    });
    sock.on('close', () => this.onClose(sock));
    sock.once('connect', () => {
      if (sock !== this.socket) return;
      const delay = this.opts.connectDelayMs ?? 0;
      // Some devices drop requests that arrive right after the handshake (profile connect_delay_ms).
      if (this.connectTimer !== undefined) this.deps.clock.clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
      if (delay > 0) this.connectTimer = this.deps.clock.setTimeout(() => this.becomeReady(sock), delay);
      else this.becomeReady(sock);
    });
  }

  private becomeReady(sock: net.Socket): void {
    this.connectTimer = undefined;
    if (sock !== this.socket || this.state !== 'connecting') return;
    this.state = 'ready';
    this.counters.connects += 1;
    this.consecutiveTimeouts = 0;
    if (this.counters.connects > 1) this.log.info({ attempt: this.attempt }, 'reconnected');
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

  /** Give up on this socket now (not at its 'close' event): nothing more is sent into it. */
  private drop(sock: net.Socket): void {
    sock.destroy();
    this.onClose(sock);
  }

  private onClose(sock: net.Socket): void {
    if (sock !== this.socket) return;
    this.socket = undefined;
    const wasReady = this.state === 'ready';
    if (this.connectTimer !== undefined) this.deps.clock.clearTimeout(this.connectTimer);
    if (this.gapTimer !== undefined) this.deps.clock.clearTimeout(this.gapTimer);
    this.connectTimer = this.gapTimer = undefined;
    this.reader.clear();
    if (this.state === 'closed') return;
    if (wasReady) this.counters.disconnects += 1;
    const delay = backoffDelay(this.attempt, this.opts.reconnectBaseMs ?? 500, this.opts.reconnectMaxMs ?? 30_000, this.opts.random);
    this.attempt += 1;
    this.state = 'waiting';
    const code: ModbusErrorType = wasReady ? 'disconnected' : 'connect_failed';
    if (wasReady || this.attempt === 1) this.log.warn({ retry_in_ms: delay }, wasReady ? 'connection lost' : 'connect failed');
    else this.log.debug({ attempt: this.attempt, retry_in_ms: delay }, 'connect failed');
    this.failAll(code, wasReady ? 'connection lost' : 'connect failed');
    this.reconnectTimer = this.deps.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === 'waiting') this.connect();
    }, delay);
  }
}
