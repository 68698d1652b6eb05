// The default ReadingSink: the latest reading of every meter, from which the meter fleet's
// instantaneous power per region feeds the grid load total (GridSampleSource). Bounded like the
// dedupe state (slot-table.ts): at most `maxMeters` meters, the least recently written evicted
// first, and a meter silent for `forgetAfterMs` forgotten by sweep().
import type { GridSample, GridSampleSource } from '../grid/sources.js';
import type { Clock } from '../runtime/clock.js';
import { DEFAULT_MAX_METERS } from './meter-state.js';
import { SlotTable, type Column, type ColumnSpec, type SlotColumns } from './slot-table.js';
import type { ReadingSink, ValidReading } from './types.js';

interface RegionPower {
  region: string;
  power_w: number;
  meters: number;
  newest_ms: number;
}

interface PowerTableOptions {
  /** At most this many meters (default DEFAULT_MAX_METERS); ignored with `slots`. */
  maxMeters?: number;
  /**
   * A table shared with the dedupe state (MeterIngest), which adds the meters: a reading of a meter
   * it no longer holds (evicted since the reading was accepted) is left out. Default: a table of its own.
   */
  slots?: SlotTable;
  /**
   * A meter not written for longer is forgotten by sweep(); default twice the stale age. It should
   * be at least stale age + future skew, so no meter that still counts is forgotten. Ignored with `slots`.
   */
  forgetAfterMs?: number;
}

/**
 * Keeps each meter's latest reading (by the reading's own timestamp: a late, older reading does not
 * replace a newer one). A meter whose latest reading is older than `staleAfterMs` no longer counts:
 * stale is never reported as fresh, and a region with no fresh meter yields no sample at all.
 * An eviction at `maxMeters` is counted as active when the evicted meter was written within the
 * stale age (its power may still have counted).
 */
export class MeterPowerTable implements ReadingSink, GridSampleSource, SlotColumns {
  readonly slots: SlotTable;
  /** write() copies the values it keeps into its columns. */
  readonly copiesReadings = true;
  private readonly addsMeters: boolean;
  readonly layout: readonly ColumnSpec[] = [{ kind: 'f64', stride: 2 }, { kind: 'i32', stride: 1 }];
  private values = new Float64Array(0); // per slot: power W, reading timestamp ms
  private regionOf = new Int32Array(0); // per slot: index into regionNames
  private regionNames: string[] = [];
  private readonly regionIds = new Map<string, number>();
  private lastRegion = '';
  private lastRegionId = -1;

  constructor(private readonly clock: Clock, private readonly staleAfterMs: number, opts: PowerTableOptions = {}) {
    this.addsMeters = opts.slots === undefined;
    this.slots = opts.slots ?? new SlotTable({ maxSize: opts.maxMeters ?? DEFAULT_MAX_METERS, forgetAfterMs: opts.forgetAfterMs ?? 2 * staleAfterMs, activeMs: staleAfterMs });
    this.slots.attach(this);
    if (opts.slots === undefined) this.slots.allocateColumns(); // its own table: complete now
  }

  /** Meters held (with a shared table: every meter it holds, some perhaps without a reading here yet). */
  get meterCount(): number { return this.slots.size; }

  write(batch: readonly ValidReading[]): Promise<void> {
    const now = this.clock.now();
    for (const r of batch) this.store(r, this.slots.find(r.meter_id), now);
    return Promise.resolve();
  }

  /**
   * write() for readings whose meter's slot was noted when the dedupe state accepted them
   * (`hints[i]`, MeterStateTable.acceptedSlot): used when the slot still holds that meter, which
   * saves hashing the id again; otherwise the meter is looked up as write() does.
   */
  writeHinted(batch: readonly ValidReading[], hints: readonly number[]): void {
    const now = this.clock.now();
    const slots = this.slots;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i] as ValidReading;
      const h = hints[i];
      this.store(r, h !== undefined && h >= 0 && slots.keyOf(h) === r.meter_id ? h : slots.find(r.meter_id), now);
    }
  }

  /** Keeps `r` as its meter's latest reading unless a newer one is kept; `s`: the meter's slot or -1. */
  private store(r: ValidReading, s: number, now: number): void {
    if (s < 0) {
      if (!this.addsMeters) return;
      s = this.slots.add(r.meter_id, now);
    } else {
      this.slots.touch(s, now);
      if (r.timestamp_ms < (this.values[2 * s + 1] as number)) return;
    }
    this.values[2 * s] = r.power_w;
    this.values[2 * s + 1] = r.timestamp_ms;
    this.regionOf[s] = this.regionId(r.region);
  }

  /** Fresh power per region. */
  regionPower(): RegionPower[] {
    const now = this.clock.now();
    const byRegion = new Map<number, RegionPower>();
    for (let s = this.slots.first(); s >= 0; s = this.slots.after(s)) {
      const ts = this.values[2 * s + 1] as number;
      if (now - ts > this.staleAfterMs) continue;
      const id = this.regionOf[s] as number;
      let r = byRegion.get(id);
      if (r === undefined) {
        r = { region: this.regionNames[id] as string, power_w: 0, meters: 0, newest_ms: 0 };
        byRegion.set(id, r);
      }
      r.power_w += this.values[2 * s] as number;
      r.meters++;
      if (ts > r.newest_ms) r.newest_ms = ts;
    }
    return [...byRegion.values()].sort((a, b) => a.region.localeCompare(b.region));
  }

  gridSamples(): GridSample[] {
    return this.regionPower().map((r) => ({
      source: `meters:${r.region}`, point: 'power', role: 'load', value: r.power_w, unit: 'W', observedAtMs: r.newest_ms,
    }));
  }

  /** Forgets silent meters (SlotTable.sweep). */
  sweep(nowMs = this.clock.now(), limit?: number): number {
    return this.slots.sweep(nowMs, limit);
  }

  private regionId(region: string): number {
    // A batch is mostly one region: the last answer again without a Map lookup.
    if (region === this.lastRegion && this.lastRegionId >= 0) return this.lastRegionId;
    let id = this.regionIds.get(region);
    if (id === undefined) {
      id = this.regionNames.length;
      this.regionNames.push(region);
      this.regionIds.set(region, id);
    }
    this.lastRegion = region;
    this.lastRegionId = id;
    return id;
  }

  // --- SlotColumns ---

  cleared(s: number): void {
    // A meter the dedupe state added first: no reading here yet, never fresh.
    this.values[2 * s] = 0;
    this.values[2 * s + 1] = -Infinity;
    this.regionOf[s] = 0;
  }

  released(): void { /* nothing held outside the columns */ }

  /** Region names are kept once each; when far more are known than meters held, compaction drops the unused. */
  wantsCompaction(): boolean {
    return this.regionNames.length > 64 && this.regionNames.length > 2 * this.slots.size;
  }

  bind(cols: Column[], from: Int32Array | null, n: number): void {
    this.values = cols[0] as Float64Array<ArrayBuffer>;
    this.regionOf = cols[1] as Int32Array<ArrayBuffer>;
    if (from === null) return;
    // Compaction: only the regions still in use keep a number.
    const names: string[] = [];
    this.regionIds.clear();
    this.lastRegionId = -1;
    for (let j = 0; j < n; j++) {
      const name = this.regionNames[this.regionOf[j] as number] ?? '';
      let id = this.regionIds.get(name);
      if (id === undefined) {
        id = names.length;
        names.push(name);
        this.regionIds.set(name, id);
      }
      this.regionOf[j] = id;
    }
    this.regionNames = names;
  }
}
