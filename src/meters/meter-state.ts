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

/** [meter_id, latest timestamp ms, latest kwh, last accepted at (wall ms), recent timestamps]. */
export interface MeterStateSnapshot {
  version: 1;
  saved_at: number;
  meters: Array<[string, number, number, number, number[]]>;
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

  /** What survives a restart: meters heard within the window, as plain data. */
  snapshot(nowMs: number): MeterStateSnapshot {
    const meters: MeterStateSnapshot['meters'] = [];
    for (const [id, m] of this.meters) {
      if (nowMs - m.lastAcceptedAt > this.windowMs) continue;
      // Oldest first, so a restored full ring overwrites its oldest entry next.
      const ordered = m.recent.length < RECENT_TIMESTAMPS ? m.recent.slice() : [...m.recent.slice(m.next), ...m.recent.slice(0, m.next)];
      meters.push([id, m.latestTs, m.latestKwh, m.lastAcceptedAt, ordered]);
    }
    return { version: 1, saved_at: nowMs, meters };
  }

  /** Restores a snapshot; malformed entries are skipped. Returns how many meters were restored. */
  restore(snap: unknown, nowMs: number): number {
    if (typeof snap !== 'object' || snap === null || (snap as { version?: unknown }).version !== 1) return 0;
    const list = (snap as { meters?: unknown }).meters;
    if (!Array.isArray(list)) return 0;
    let n = 0;
    for (const e of list as unknown[]) {
      if (!Array.isArray(e) || e.length !== 5) continue;
      const [id, latestTs, latestKwh, lastAcceptedAt, recent] = e as unknown[];
      if (typeof id !== 'string' || typeof latestTs !== 'number' || typeof latestKwh !== 'number' || typeof lastAcceptedAt !== 'number') continue;
      if (!Array.isArray(recent) || !recent.every((t) => typeof t === 'number') || nowMs - lastAcceptedAt > this.windowMs) continue;
      const ring = (recent as number[]).slice(-RECENT_TIMESTAMPS);
      this.meters.set(id, { latestTs, latestKwh, recent: ring, next: ring.length % RECENT_TIMESTAMPS, lastAcceptedAt });
      n++;
    }
    return n;
  }

  /** Forgets meters silent for longer than `keepMs` (at most once per window/4). */
  sweep(nowMs: number, keepMs: number): void {
    if (nowMs - this.lastSweep < this.windowMs / 4) return;
    this.lastSweep = nowMs;
    for (const [id, m] of this.meters) if (nowMs - m.lastAcceptedAt > keepMs) this.meters.delete(id);
  }
}
