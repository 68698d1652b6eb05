// Repeated log lines are limited per key (a dead device must not write a line per poll, a broken
// publisher must not write a line per reading). The first occurrence of a key is logged at once;
// repeats within the interval are counted, and the next line after the interval carries
// `suppressed: N` so nothing is silently lost. Time comes from the injected Clock.
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

type RateLimitedLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

interface RateLimiterOptions {
  /** At most one line per key per interval. Default 60 s. */
  intervalMs?: number;
  /** Keys remembered at most (oldest forgotten first) so hostile input cannot grow memory. Default 10,000. */
  maxKeys?: number;
}

type KeyState = { lastLoggedMs: number; suppressed: number };

/** The decision part, separate from pino so it can be used for anything repetitive. */
export class RepeatLimiter {
  private readonly keys = new Map<string, KeyState>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;

  constructor(private readonly clock: Clock, opts: RateLimiterOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 60_000;
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  /** Returns the number of suppressed repeats to report when this occurrence should be emitted, or undefined to suppress it. */
  hit(key: string): number | undefined {
    const now = this.clock.monotonic();
    const st = this.keys.get(key);
    if (st === undefined) {
      if (this.keys.size >= this.maxKeys) {
        const oldest = this.keys.keys().next().value;
        if (oldest !== undefined) this.keys.delete(oldest);
      }
      this.keys.set(key, { lastLoggedMs: now, suppressed: 0 });
      return 0;
    }
    if (now - st.lastLoggedMs >= this.intervalMs) {
      const n = st.suppressed;
      st.lastLoggedMs = now;
      st.suppressed = 0;
      return n;
    }
    st.suppressed += 1;
    return undefined;
  }

  /** Forget a key (the condition cleared: the next occurrence logs at once). Returns the repeats that were never reported. */
  reset(key: string): number {
    const n = this.keys.get(key)?.suppressed ?? 0;
    this.keys.delete(key);
    return n;
  }

  get size(): number {
    return this.keys.size;
  }
}

export interface RateLimitedLogger {
  /** Logs at `level` unless `key` was logged within the interval; then counts the repeat. */
  log(level: RateLimitedLevel, key: string, obj: Record<string, unknown>, msg: string): boolean;
  warn(key: string, obj: Record<string, unknown>, msg: string): boolean;
  error(key: string, obj: Record<string, unknown>, msg: string): boolean;
  info(key: string, obj: Record<string, unknown>, msg: string): boolean;
  debug(key: string, obj: Record<string, unknown>, msg: string): boolean;
  /** The condition behind `key` cleared (device back up): the next occurrence logs at once. */
  reset(key: string): void;
}

export function rateLimitedLogger(logger: Logger, clock: Clock, opts: RateLimiterOptions = {}): RateLimitedLogger {
  const limiter = new RepeatLimiter(clock, opts);
  const log = (level: RateLimitedLevel, key: string, obj: Record<string, unknown>, msg: string): boolean => {
    const suppressed = limiter.hit(key);
    if (suppressed === undefined) return false;
    logger[level](suppressed > 0 ? { ...obj, suppressed } : obj, msg);
    return true;
  };
  return {
    log,
    warn: (k, o, m) => log('warn', k, o, m),
    error: (k, o, m) => log('error', k, o, m),
    info: (k, o, m) => log('info', k, o, m),
    debug: (k, o, m) => log('debug', k, o, m),
    reset: (key) => {
      const n = limiter.reset(key);
      // Repeats that happened since the last line are still reported, once.
      if (n > 0) logger.debug({ key, suppressed: n }, 'repeats suppressed before the condition cleared');
    },
  };
}
