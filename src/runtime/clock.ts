// Time is injected so polling, backoff, expiry and reversion are testable with fake timers.
// Production code takes a Clock; tests pass vitest's fake-timer-driven systemClock or their own.

export interface Clock {
  /** Wall-clock epoch milliseconds (reading timestamps, command expiry). */
  now(): number;
  /** Monotonic milliseconds with sub-ms resolution (latencies, intervals). */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

export type ClockTimer = ReturnType<typeof setTimeout>;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
};

/** Full-jitter exponential backoff (AWS architecture blog): uniform in [0, min(max, base * 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
