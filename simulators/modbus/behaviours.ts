// How simulated points move (the `simulate:` key of a profile point, in scaled units).
// Pure functions of time and state so they are tested without a server.

import type { SimBehaviour } from '../../src/config/profile-types.js';

export { seededRandom } from '../random.js';

/**
 * A daily solar bell curve by local wall-clock hour: 0 before 06:00 and after 20:00, `peak` at
 * 13:00, sin^2 in between (a clear-sky day, shaped enough for demos and grid totals).
 */
export function solarAt(epochMs: number, peak: number): number {
  const d = new Date(epochMs);
  const hour = d.getHours() + d.getMinutes() / 60 + d.getSeconds() / 3600;
  if (hour <= 6 || hour >= 20) return 0;
  return peak * Math.sin((Math.PI * (hour - 6)) / 14) ** 2;
}

export function sineAt(epochMs: number, b: Extract<SimBehaviour, { kind: 'sine' }>): number {
  if (b.period_s <= 0) return b.mean;
  return b.mean + b.amplitude * Math.sin((2 * Math.PI * (epochMs / 1000)) / b.period_s);
}

/** One random-walk step, kept inside [min, max]. */
export function walkStep(current: number, b: Extract<SimBehaviour, { kind: 'random_walk' }>, random: () => number): number {
  const next = current + (random() * 2 - 1) * b.step;
  return Math.min(b.max, Math.max(b.min, next));
}

/**
 * State of charge after `dtMs` at `powerKw` (+ = discharge): percent, clamped to 0..100.
 * A battery with no capacity keeps its charge.
 */
export function socStep(socPct: number, powerKw: number, dtMs: number, capacityKwh: number): number {
  if (!(capacityKwh > 0) || !Number.isFinite(powerKw)) return socPct;
  const dKwh = (powerKw * dtMs) / 3_600_000;
  return Math.min(100, Math.max(0, socPct - (dKwh / capacityKwh) * 100));
}

/** A load controller's load: its base load, capped by the curtailment setpoint while enabled. */
export function followSetpoint(base: number, setpoint: number | undefined, enabled: boolean): number {
  if (!enabled || setpoint === undefined || !Number.isFinite(setpoint)) return base;
  return Math.min(base, setpoint);
}
