// Per-unit health behind one endpoint. A dead unit id behind an RTU gateway must not slow its
// neighbours (telegraf drops and reconnects everything; node-red resets its queue): its requests
// each hold the line for a whole timeout, so after a few failures the unit is refused locally
// ('unit_backed_off') for an exponentially growing, jittered while, then probed once.
import { backoffDelay } from '../runtime/clock.js';

export interface UnitBackoffOptions {
  /** Consecutive timeouts before the unit is backed off. Default 2. */
  failuresBeforeBackoff?: number;
  baseMs?: number;   // default 1000
  maxMs?: number;    // default 60000
  random?: () => number;
}

export interface UnitHealth {
  failures: number;
  /** Monotonic ms until which requests are refused; 0 when not backed off. */
  backedOffUntil: number;
  attempt: number;
}

export class UnitBackoff {
  private readonly units = new Map<number, UnitHealth>();
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(opts: UnitBackoffOptions = {}) {
    this.threshold = opts.failuresBeforeBackoff ?? 2;
    this.baseMs = opts.baseMs ?? 1000;
    this.maxMs = opts.maxMs ?? 60_000;
    this.random = opts.random ?? Math.random;
  }

  private get(unitId: number): UnitHealth {
    let h = this.units.get(unitId);
    if (h === undefined) {
      h = { failures: 0, backedOffUntil: 0, attempt: 0 };
      this.units.set(unitId, h);
    }
    return h;
  }

  /** True when a request to this unit should be refused now. */
  isBackedOff(unitId: number, nowMs: number): boolean {
    const h = this.units.get(unitId);
    return h !== undefined && h.backedOffUntil > nowMs;
  }

  /** Remaining backoff in ms (0 when none). */
  remainingMs(unitId: number, nowMs: number): number {
    const h = this.units.get(unitId);
    return h === undefined ? 0 : Math.max(0, h.backedOffUntil - nowMs);
  }

  succeeded(unitId: number): void {
    const h = this.units.get(unitId);
    if (h === undefined) return;
    h.failures = 0;
    h.attempt = 0;
    h.backedOffUntil = 0;
  }

  /**
   * A failure that says the unit (not the connection) is unreachable: a timeout while others
   * answer, or gateway exceptions 10/11 (`immediate`: the gateway told us the path is gone).
   * Returns the backoff started, in ms, or 0.
   */
  failed(unitId: number, nowMs: number, immediate = false): number {
    const h = this.get(unitId);
    h.failures += 1;
    if (!immediate && h.failures < this.threshold) return 0;
    // A floor of baseMs: full jitter alone may draw ~0 and probe a dead unit at once.
    const delay = this.baseMs + backoffDelay(h.attempt, this.baseMs, this.maxMs, this.random);
    h.attempt += 1;
    h.backedOffUntil = nowMs + Math.min(delay, this.maxMs);
    return Math.min(delay, this.maxMs);
  }

  health(unitId: number): UnitHealth | undefined {
    const h = this.units.get(unitId);
    return h === undefined ? undefined : { ...h };
  }
}
