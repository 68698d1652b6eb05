// Per-meter memory the ingest needs before hand-off: recent timestamps (QoS 1 redelivers, so the
// same reading arrives again) and the latest kwh register (it never runs backwards). Bounded
// (slot-table.ts): at most `max_meters` meters, the least recently heard one evicted first, and a
// meter silent for longer than the dedupe window forgotten by sweep() (docs/meters.md
// "Bounded meter state").
import type { MeterErrorType } from './validate.js';
import { SlotTable, type Column, type ColumnSpec, type SlotColumns } from './slot-table.js';

/** How many recent timestamps per meter are remembered for deduplication. */
export const RECENT_TIMESTAMPS = 16;
/** The default of `mqtt.meters.max_meters`: sized for a million meters per gateway. */
export const DEFAULT_MAX_METERS = 1_000_000;

const NO_RING = -1;
const MIN_RINGS = 64;

/** [meter_id, latest timestamp ms, latest kwh, last accepted at (wall ms), recent timestamps]. */
export interface MeterStateSnapshot {
  version: 1;
  saved_at: number;
  meters: Array<[string, number, number, number, number[]]>;
}

interface MeterStateOptions {
  /** At most this many meters (default DEFAULT_MAX_METERS); ignored with `slots`. */
  maxMeters?: number;
  /** A table shared with other column sets (the power table); default one of its own, swept after the window. */
  slots?: SlotTable;
}

/**
 * A reading is a `duplicate` when its (meter_id, timestamp) equals one of that meter's last
 * RECENT_TIMESTAMPS accepted readings and the meter was heard from within the dedupe window.
 * It is `kwh_decreasing` when it is newer than the meter's latest reading but its kwh is lower.
 * Older (out-of-order) readings are accepted and do not move the meter's latest values.
 *
 * Storage per meter: latest timestamp, latest kwh, last accepted at and the first remembered
 * timestamp in columns; a ring of RECENT_TIMESTAMPS timestamps only once a meter has a second
 * reading in the window (a million meters heard once each cost no rings).
 */
export class MeterStateTable implements SlotColumns {
  readonly slots: SlotTable;
  readonly layout: readonly ColumnSpec[] = [{ kind: 'f64', stride: 4 }, { kind: 'i32', stride: 1 }, { kind: 'u8', stride: 1 }, { kind: 'u8', stride: 1 }];
  private values = new Float64Array(0); // per slot: latest ts, latest kwh, first remembered ts, last accepted at (wall ms)
  private ringOf = new Int32Array(0);   // per slot: ring number or NO_RING
  private count = new Uint8Array(0);    // per slot: timestamps remembered (0..RECENT_TIMESTAMPS)
  private write = new Uint8Array(0);    // per slot: ring write position once full
  private rings = new Float64Array(0);  // RECENT_TIMESTAMPS per ring
  private ringsUsed = 0;
  private ringsLive = 0;
  private freeRings: number[] = [];

  /** `windowMs`: the dedupe window. */
  constructor(private readonly windowMs: number, opts: MeterStateOptions = {}) {
    this.slots = opts.slots ?? new SlotTable({ maxSize: opts.maxMeters ?? DEFAULT_MAX_METERS, forgetAfterMs: windowMs, activeMs: windowMs });
    this.slots.attach(this);
    if (opts.slots === undefined) this.slots.allocateColumns(); // its own table: complete now
  }

  /** Meters remembered. */
  get size(): number { return this.slots.size; }
  /** Rings (of RECENT_TIMESTAMPS timestamps) in use: meters with more than one reading in the window. */
  get ringCount(): number { return this.ringsLive; }

  /** Forgets silent meters (SlotTable.sweep). */
  sweep(nowMs: number, limit?: number): number { return this.slots.sweep(nowMs, limit); }

  /** The meter's slot in the table after the latest accept() (-1 before the first): a hint for the power table. */
  acceptedSlot = -1;

  /**
   * Checks and, when accepted, records the reading. `hint`: the meter's slot as the payload
   * scanner found it (ParseResult.slots), used when that slot still holds this meter.
   */
  accept(meterId: string, tsMs: number, kwh: number, nowMs: number, hint = -1): MeterErrorType | undefined {
    let s = hint >= 0 && this.slots.keyOf(hint) === meterId ? hint : this.slots.find(meterId);
    if (s < 0) {
      s = this.slots.add(meterId, nowMs);
      this.acceptedSlot = s;
      this.values[4 * s] = tsMs;
      this.values[4 * s + 1] = kwh;
      this.values[4 * s + 2] = tsMs;
      this.values[4 * s + 3] = nowMs;
      this.count[s] = 1;
      return undefined;
    }
    this.acceptedSlot = s;
    // Outside the window: forget the timestamps, keep the kwh register for the monotonic check.
    if (nowMs - (this.values[4 * s + 3] as number) > this.windowMs) this.count[s] = 0;
    // Every remembered timestamp is at most the latest one (accept() remembers no other, restore()
    // takes no other): a reading newer than the latest is no duplicate, and the ring is not read.
    const latest = this.values[4 * s] as number;
    if (tsMs <= latest && this.remembers(s, tsMs)) return 'duplicate';
    if (tsMs > latest) {
      if (kwh < (this.values[4 * s + 1] as number)) return 'kwh_decreasing';
      this.values[4 * s] = tsMs;
      this.values[4 * s + 1] = kwh;
    }
    this.remember(s, tsMs);
    this.values[4 * s + 3] = nowMs;
    this.slots.touch(s, nowMs);
    return undefined;
  }

  /** What survives a restart: meters heard within the window, as plain data (least recently heard first). */
  snapshot(nowMs: number): MeterStateSnapshot {
    const meters: MeterStateSnapshot['meters'] = [];
    for (let s = this.slots.first(); s >= 0; s = this.slots.after(s)) {
      const at = this.values[4 * s + 3] as number;
      if (this.count[s] === 0 || nowMs - at > this.windowMs) continue; // count 0: only the power table knows it
      meters.push([this.slots.keyOf(s), this.values[4 * s] as number, this.values[4 * s + 1] as number, at, this.recent(s)]);
    }
    return { version: 1, saved_at: nowMs, meters };
  }

  /** Restores a snapshot; malformed entries are skipped. Returns how many meters were restored. */
  restore(snap: unknown, nowMs: number): number {
    if (typeof snap !== 'object' || snap === null || (snap as { version?: unknown }).version !== 1) return 0;
    const list = (snap as { meters?: unknown }).meters;
    if (!Array.isArray(list)) return 0;
    const valid: Array<[string, number, number, number, number[]]> = [];
    for (const e of list as unknown[]) {
      if (!Array.isArray(e) || e.length !== 5) continue;
      const [id, latestTs, latestKwh, lastAcceptedAt, recent] = e as unknown[];
      if (typeof id !== 'string' || typeof latestTs !== 'number' || typeof latestKwh !== 'number' || typeof lastAcceptedAt !== 'number') continue;
      if (!Array.isArray(recent) || !recent.every((t) => typeof t === 'number') || nowMs - lastAcceptedAt > this.windowMs) continue;
      // snapshot() never writes a remembered timestamp later than the latest one (accept() relies on
      // it): a file that does (hand-edited, corrupt) loses those, and keeps the rest of the meter.
      const kept = (recent as number[]).filter((t) => t <= latestTs);
      valid.push([id, latestTs, latestKwh, lastAcceptedAt, kept]);
    }
    // Least recently heard first, so the eviction order is right (at max_meters the oldest give way).
    valid.sort((a, b) => a[3] - b[3]);
    for (const [id, latestTs, latestKwh, lastAcceptedAt, recent] of valid) {
      let s = this.slots.find(id);
      if (s >= 0) this.slots.touch(s, lastAcceptedAt);
      else s = this.slots.add(id, lastAcceptedAt);
      this.values[4 * s] = latestTs;
      this.values[4 * s + 1] = latestKwh;
      this.values[4 * s + 3] = lastAcceptedAt;
      this.count[s] = 0;
      this.write[s] = 0;
      for (const t of recent.slice(-RECENT_TIMESTAMPS)) this.remember(s, t);
    }
    return valid.length;
  }

  private remembers(s: number, tsMs: number): boolean {
    const n = this.count[s] as number;
    if (n === 0) return false;
    const r = this.ringOf[s] as number;
    if (r === NO_RING) return this.values[4 * s + 2] === tsMs;
    const base = r * RECENT_TIMESTAMPS;
    for (let i = 0; i < n; i++) if (this.rings[base + i] === tsMs) return true;
    return false;
  }

  private remember(s: number, tsMs: number): void {
    const n = this.count[s] as number;
    let r = this.ringOf[s] as number;
    if (n === 0 && r === NO_RING) {
      this.values[4 * s + 2] = tsMs;
      this.count[s] = 1;
      return;
    }
    if (r === NO_RING) {
      r = this.newRing();
      this.ringOf[s] = r;
      this.rings[r * RECENT_TIMESTAMPS] = this.values[4 * s + 2] as number;
    }
    const base = r * RECENT_TIMESTAMPS;
    if (n < RECENT_TIMESTAMPS) {
      this.rings[base + n] = tsMs;
      this.count[s] = n + 1;
      this.write[s] = (n + 1) % RECENT_TIMESTAMPS;
    } else {
      const w = this.write[s] as number;
      this.rings[base + w] = tsMs;
      this.write[s] = (w + 1) % RECENT_TIMESTAMPS;
    }
  }

  /** Remembered timestamps, oldest first. */
  private recent(s: number): number[] {
    const n = this.count[s] as number;
    const r = this.ringOf[s] as number;
    if (n === 0) return [];
    if (r === NO_RING) return [this.values[4 * s + 2] as number];
    const ring = Array.from(this.rings.subarray(r * RECENT_TIMESTAMPS, (r + 1) * RECENT_TIMESTAMPS));
    if (n < RECENT_TIMESTAMPS) return ring.slice(0, n);
    const w = this.write[s] as number;
    return [...ring.slice(w), ...ring.slice(0, w)];
  }

  private newRing(): number {
    this.ringsLive++;
    const free = this.freeRings.pop();
    if (free !== undefined) return free;
    if (this.ringsUsed * RECENT_TIMESTAMPS === this.rings.length) {
      const grown = new Float64Array(Math.max(MIN_RINGS, this.ringsUsed * 2) * RECENT_TIMESTAMPS);
      grown.set(this.rings);
      this.rings = grown;
    }
    return this.ringsUsed++;
  }

  // --- SlotColumns ---

  cleared(s: number): void {
    // A meter the power table added first: no reading remembered, any next reading is newer.
    this.values[4 * s] = -Infinity;
    this.values[4 * s + 1] = -Infinity;
    this.values[4 * s + 3] = -Infinity;
    this.ringOf[s] = NO_RING;
    this.count[s] = 0;
    this.write[s] = 0;
  }

  released(s: number): void {
    const r = this.ringOf[s] as number;
    if (r === NO_RING) return;
    this.freeRings.push(r);
    this.ringOf[s] = NO_RING;
    this.ringsLive--;
  }

  wantsCompaction(): boolean {
    return this.ringsUsed > MIN_RINGS && this.ringsLive <= this.ringsUsed / 4;
  }

  bind(cols: Column[], from: Int32Array | null, n: number): void {
    this.values = cols[0] as Float64Array<ArrayBuffer>;
    this.ringOf = cols[1] as Int32Array<ArrayBuffer>;
    this.count = cols[2] as Uint8Array<ArrayBuffer>;
    this.write = cols[3] as Uint8Array<ArrayBuffer>;
    if (from === null) return;
    // Compaction: the rings move together too, the live ones to 0..live-1.
    const rings = new Float64Array(Math.max(MIN_RINGS, this.ringsLive * 2) * RECENT_TIMESTAMPS);
    let next = 0;
    for (let j = 0; j < n; j++) {
      const r = this.ringOf[j] as number;
      if (r === NO_RING) continue;
      rings.set(this.rings.subarray(r * RECENT_TIMESTAMPS, (r + 1) * RECENT_TIMESTAMPS), next * RECENT_TIMESTAMPS);
      this.ringOf[j] = next++;
    }
    this.rings = rings;
    this.ringsUsed = next;
    this.ringsLive = next;
    this.freeRings = [];
  }
}
