// The connection an endpoint holds on its link (a TCP socket, a serial port): one at a time,
// opened on demand, with a connect timeout, the pause some devices need after connect, and
// reconnects with exponential backoff and full jitter. The endpoint hears of it through three
// hooks: ready, data, lost. Every event of an older connection is ignored.
import { backoffDelay, type Clock, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { EndpointTuning } from './endpoint-types.js';
import type { Link, LinkConn } from './framing.js';

type ConnectionState = 'idle' | 'connecting' | 'ready' | 'waiting' | 'closed';

interface ConnectionHooks {
  ready(): void;
  data(chunk: Buffer): void;
  /** The connection is gone (or never came up): what was in flight or queued fails with `code`. */
  lost(code: 'disconnected' | 'connect_failed', detail: string): void;
}

export class Connection {
  state: ConnectionState = 'idle';
  /** Attempts since the link last worked (the reconnect backoff's exponent). */
  attempt = 0;
  connects = 0;
  disconnects = 0;
  private conn: LinkConn | undefined;
  private connectTimer: ClockTimer | undefined;
  private reconnectTimer: ClockTimer | undefined;

  /** `opts` is read at each attempt: the endpoint may raise connectDelayMs while it runs. */
  constructor(
    private readonly link: Link,
    private readonly opts: EndpointTuning,
    private readonly deps: { clock: Clock; log: Logger },
    private readonly hooks: ConnectionHooks,
  ) {}

  get ready(): boolean {
    return this.state === 'ready';
  }

  /** A unit answered: the link works, the next reconnect starts from the shortest backoff again. */
  answered(): void {
    this.attempt = 0;
  }

  /** Opens the link when nothing has been tried yet. */
  start(): void {
    if (this.state === 'idle') this.connect();
  }

  write(frame: Buffer): boolean {
    if (this.conn === undefined || this.state !== 'ready') return false;
    this.conn.write(frame);
    return true;
  }

  /** Gives up on the current connection now (not at its close event): nothing more is sent into it. */
  drop(reason: string): void {
    const conn = this.conn;
    if (conn === undefined) return;
    void conn.destroy();
    this.onClose(conn, reason);
  }

  async close(): Promise<void> {
    this.state = 'closed';
    for (const t of [this.connectTimer, this.reconnectTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.connectTimer = this.reconnectTimer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    await conn?.destroy();
  }

  private connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const conn: LinkConn = this.link({
      open: () => this.onOpen(conn),
      data: (chunk) => { if (conn === this.conn) this.hooks.data(chunk); },
      close: (reason) => this.onClose(conn, reason),
    });
    this.conn = conn;
    const ms = this.opts.connectTimeoutMs ?? 3000;
    this.connectTimer = this.deps.clock.setTimeout(() => {
      this.connectTimer = undefined;
      if (conn === this.conn && this.state === 'connecting') this.drop(`connect timeout after ${ms} ms`);
    }, ms);
  }

  private onOpen(conn: LinkConn): void {
    if (conn !== this.conn) return;
    const delay = this.opts.connectDelayMs ?? 0;
    // Some devices drop requests that arrive right after the handshake (profile connect_delay_ms).
    if (this.connectTimer !== undefined) this.deps.clock.clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (delay > 0) this.connectTimer = this.deps.clock.setTimeout(() => this.becomeReady(conn), delay);
    else this.becomeReady(conn);
  }

  private becomeReady(conn: LinkConn): void {
    this.connectTimer = undefined;
    if (conn !== this.conn || this.state !== 'connecting') return;
    this.state = 'ready';
    this.connects += 1;
    if (this.connects > 1) this.deps.log.info({ attempt: this.attempt }, 'reconnected');
    this.hooks.ready();
  }

  private onClose(conn: LinkConn, reason: string | undefined): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (this.connectTimer !== undefined) this.deps.clock.clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    if (wasReady) this.disconnects += 1;
    const delay = backoffDelay(this.attempt, this.opts.reconnectBaseMs ?? 500, this.opts.reconnectMaxMs ?? 30_000, this.opts.random);
    this.attempt += 1;
    this.state = 'waiting';
    const what = wasReady ? 'connection lost' : 'connect failed';
    if (wasReady || this.attempt === 1) this.deps.log.warn({ retry_in_ms: delay, err: reason }, what);
    else this.deps.log.debug({ attempt: this.attempt, retry_in_ms: delay, err: reason }, what);
    this.hooks.lost(wasReady ? 'disconnected' : 'connect_failed', reason === undefined ? what : `${what}: ${reason}`);
    this.reconnectTimer = this.deps.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === 'waiting') this.connect();
    }, delay);
  }
}
