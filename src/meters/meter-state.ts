// Per-meter memory the ingest needs before hand-off: recent timestamps (QoS 1 redelivers, so the
// same reading arrives again) and the latest kwh register (it never runs backwards).
import type { MeterErrorType } from './validate.js';

/** How many recent timestamps per meter are remembered for deduplication. */
export const RECENT_TIMESTAMPS = 16;

interface MeterMemory {
  latestTs: number;
  latestKwh: number;
  recent: number[];       // ring of accepted timestamps (epoch ms), at most RECENT_TIMESTAMPS
  next: number;           // ring write index
  lastAcceptedAt: number; // wall-clock ms of the last accepted reading
}

/**
 * A reading is a `duplicate` when its (meter_id, timestamp) equals one of that meter's last
 * RECENT_TIMESTAMPS accepted readings and the meter was heard from within the dedupe window.
 * It is `kwh_decreasing` when it is newer than the meter's latest reading but its kwh is lower.
 * Older (out-of-order) readings are accepted and do not move the meter's latest values.
 */
export class MeterStateTable {
  private readonly meters = new Map<string, MeterMemory>();
  private lastSweep = 0;

  constructor(private readonly windowMs: number) {}

  get size(): number { return this.meters.size; }

  /** Checks and, when accepted, records the reading. */
  accept(meterId: string, tsMs: number, kwh: number, nowMs: number): MeterErrorType | undefined {
    let m = this.meters.get(meterId);
    if (m !== undefined && nowMs - m.lastAcceptedAt > this.windowMs) {
      // Outside the window: forget the timestamps, keep the kwh register for the monotonic check.
      m.recent.length = 0;
      m.next = 0;
    }
    if (m === undefined) {
      m = { latestTs: tsMs, latestKwh: kwh, recent: [tsMs], next: 1, lastAcceptedAt: nowMs };
      this.meters.set(meterId, m);
      return undefined;
    }
    if (m.recent.includes(tsMs)) return 'duplicate';
    if (tsMs > m.latestTs) {
      if (kwh < m.latestKwh) return 'kwh_decreasing';
      m.latestTs = tsMs;
      m.latestKwh = kwh;
    }
    if (m.recent.length < RECENT_TIMESTAMPS) m.recent.push(tsMs);
    else m.recent[m.next % RECENT_TIMESTAMPS] = tsMs;
    m.next = (m.next + 1) % RECENT_TIMESTAMPS;
    m.lastAcceptedAt = nowMs;
    return undefined;
  }

  /** Forgets meters silent for longer than `keepMs` (at most once per window/4). */
  sweep(nowMs: number, keepMs: number): void {
    if (nowMs - this.lastSweep < this.windowMs / 4) return;
    this.lastSweep = nowMs;
    for (const [id, m] of this.meters) if (nowMs - m.lastAcceptedAt > keepMs) this.meters.delete(id);
  }
}
