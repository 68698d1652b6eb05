// The lifecycle every part of the gateway goes through (zigbee2mqtt's controller is the model):
// parts start in order and stop in reverse; a start-up failure is fatal (the parts already started
// are stopped again, and the caller prints one line and exits non-zero); a failure at run time is
// isolated: the part is marked failed, stopped on its own, and the others keep going.
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** One part of the gateway. The constructor only assigns; start() does the work; stop() releases everything. */
export interface Part {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A snapshot for the status endpoint; must be cheap and must not do I/O. */
  status?(): unknown;
}

type PartState = 'idle' | 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';

export interface PartHealth {
  name: string;
  state: PartState;
  /** Why the part failed (start-up or run time), when it did. */
  error?: string;
  /** Wall-clock epoch ms of the last state change. */
  since_ms: number;
}

export interface StopReport {
  /** Parts that did not stop within their bound (left behind; the process exits anyway). */
  timedOut: string[];
  /** Parts whose stop() rejected. */
  failed: Array<{ name: string; error: string }>;
  durationMs: number;
}

export class StartupError extends Error {
  readonly code = 'GW_STARTUP_FAILED';
  readonly part: string;
  constructor(part: string, cause: unknown) {
    super(`${part} failed to start: ${errorText(cause)}`, { cause });
    this.name = 'StartupError';
    this.part = part;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

interface LifecycleOptions {
  logger: Logger;
  clock: Clock;
  /** Bound for the whole stop sequence; each part gets what is left of it. Default 7 s: with the 1 s exit grace of `run`, the process is gone within 10 s of SIGTERM (the acceptance bound). */
  stopTimeoutMs?: number;
  /** Bound for each part's start(). Default 30 s. */
  startTimeoutMs?: number;
}

type Entry = { part: Part; health: PartHealth };

const TIMED_OUT = Symbol('timed-out');

export class Lifecycle {
  private readonly entries: Entry[];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly stopTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private phase: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  private stopping: Promise<StopReport> | undefined;
  private readonly startedAtMs: number;

  constructor(parts: Part[], opts: LifecycleOptions) {
    const seen = new Set<string>();
    for (const p of parts) {
      if (seen.has(p.name)) throw new Error(`two parts named ${JSON.stringify(p.name)}`);
      seen.add(p.name);
    }
    this.clock = opts.clock;
    this.entries = parts.map((part) => ({ part, health: { name: part.name, state: 'idle', since_ms: opts.clock.now() } }));
    this.logger = opts.logger;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 7000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.startedAtMs = opts.clock.now();
  }

  /** Starts every part in order. On failure stops what started (reverse) and throws StartupError. */
  async start(): Promise<void> {
    if (this.phase !== 'idle') throw new Error(`cannot start: lifecycle is ${this.phase}`);
    this.phase = 'starting';
    for (const e of this.entries) {
      if (this.phase !== 'starting') break; // a signal arrived during start-up
      this.setState(e, 'starting');
      const t0 = this.clock.monotonic();
      try {
        const r = await this.bounded(e.part.start(), this.startTimeoutMs);
        if (r === TIMED_OUT) throw new Error(`start did not finish within ${this.startTimeoutMs} ms`);
      } catch (err) {
        this.setState(e, 'failed', errorText(err));
        this.logger.error({ component: 'lifecycle', part: e.part.name, err }, 'part failed to start');
        await this.stop();
        throw new StartupError(e.part.name, err);
      }
      this.setState(e, 'running');
      this.logger.info({ component: 'lifecycle', part: e.part.name, ms: Math.round(this.clock.monotonic() - t0) }, 'part started');
    }
    if (this.phase === 'starting') this.phase = 'running';
  }

  /**
   * A part reports that it broke at run time. It is isolated: marked failed, stopped on its own
   * (bounded), reported on /status and /readyz; every other part keeps running.
   */
  reportFailure(name: string, err: unknown): void {
    const e = this.entries.find((x) => x.part.name === name);
    if (!e || e.health.state === 'failed' || e.health.state === 'stopped' || e.health.state === 'stopping') return;
    this.setState(e, 'failed', errorText(err));
    this.logger.error({ component: 'lifecycle', part: name, err }, 'part failed at run time; isolated, the others keep running');
    void this.bounded(e.part.stop(), this.stopTimeoutMs).catch((stopErr: unknown) => {
      // Stopping a broken part may fail too; it is already marked failed, so only log it.
      this.logger.warn({ component: 'lifecycle', part: name, err: stopErr }, 'failed part did not stop cleanly');
    });
  }

  /** Wraps a callback (timer, event handler) so a throw is reported against its part, never uncaught. */
  guard<A extends unknown[]>(name: string, fn: (...args: A) => void | Promise<void>): (...args: A) => void {
    return (...args: A) => {
      try {
        const r = fn(...args);
        if (r instanceof Promise) r.catch((err: unknown) => this.reportFailure(name, err));
      } catch (err) {
        this.reportFailure(name, err);
      }
    };
  }

  /** Stops the running parts in reverse order within one overall bound. Idempotent. */
  stop(): Promise<StopReport> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<StopReport> {
    this.phase = 'stopping';
    const t0 = this.clock.monotonic();
    const deadline = t0 + this.stopTimeoutMs;
    const report: StopReport = { timedOut: [], failed: [], durationMs: 0 };
    for (const e of [...this.entries].reverse()) {
      // A failed part was stopped when it failed (or never started); idle parts never started.
      if (e.health.state !== 'running' && e.health.state !== 'starting') continue;
      this.setState(e, 'stopping');
      const left = Math.max(100, deadline - this.clock.monotonic());
      try {
        const r = await this.bounded(e.part.stop(), left);
        if (r === TIMED_OUT) {
          report.timedOut.push(e.part.name);
          this.logger.warn({ component: 'lifecycle', part: e.part.name, bound_ms: Math.round(left) }, 'part did not stop in time; leaving it');
        }
      } catch (err) {
        report.failed.push({ name: e.part.name, error: errorText(err) });
        this.logger.warn({ component: 'lifecycle', part: e.part.name, err }, 'part failed to stop cleanly');
      }
      this.setState(e, 'stopped');
    }
    this.phase = 'stopped';
    report.durationMs = Math.round(this.clock.monotonic() - t0);
    return report;
  }

  health(): PartHealth[] {
    return this.entries.map((e) => ({ ...e.health }));
  }

  /** Ready: every part running. Started-but-degraded (a part failed) is live but not ready. */
  ready(): boolean {
    return this.phase === 'running' && this.entries.every((e) => e.health.state === 'running');
  }

  get state(): 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' {
    return this.phase;
  }

  uptimeMs(): number {
    return this.clock.now() - this.startedAtMs;
  }

  /** The part by name, for status adapters. */
  part<T extends Part = Part>(name: string): T | undefined {
    return this.entries.find((e) => e.part.name === name)?.part as T | undefined;
  }

  private setState(e: Entry, state: PartState, error?: string): void {
    e.health = { name: e.part.name, state, since_ms: this.clock.now(), ...(error !== undefined ? { error } : e.health.error !== undefined ? { error: e.health.error } : {}) };
  }

  private bounded<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(TIMED_OUT), ms);
    });
    return Promise.race([p, timeout]).finally(() => {
      if (timer !== undefined) this.clock.clearTimeout(timer);
    });
  }
}
