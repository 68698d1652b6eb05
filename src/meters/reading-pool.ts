// Reading records reused from one batch to the next. A reading that passed validation is a record
// of nine fields, seven of them doubles, each a heap number of its own in V8: about 210 bytes per
// reading, thousands per second, all garbage a moment later. Made fresh each time they are most of
// what the ingest allocates, and at a high rate V8 starts allocating them in the old generation,
// whose collections then cost about as much as the rest of the ingest (bench/ingest-cpu.ts: 1.20 us
// of CPU per reading with records made fresh, 0.87 us reused; medians of 6 alternating runs). A
// record taken from here has its fields overwritten in place (a double written into a record that
// already holds one allocates nothing).
//
// Records come back only from a sink that copies what it keeps (ReadingSink.copiesReadings) once
// its batch was handed off (hand-off.ts), and from the ingest for a reading the dedupe state
// refused: nobody else holds them then. A sink that keeps the records it was given gets fresh ones.
import type { ValidReading } from './types.js';

/** Records kept for reuse at most: the default hand-off backlog's worth twice over (hand-off.ts); a larger one only allocates more. */
export const MAX_FREE_READINGS = 16_384;

export class ReadingPool {
  private readonly free: ValidReading[] = [];

  /** A record with every field to be set by the caller (reused, or new when none is free). */
  take(): ValidReading {
    return this.free.pop() ?? {
      meter_id: '', region: '', timestamp_ms: NaN, kwh: NaN, voltage: NaN, current: NaN, power_factor: NaN, power_w: NaN, arrived_at: NaN,
    };
  }

  /** Gives a record back: whoever gave it holds no reference to it any more. */
  give(r: ValidReading): void {
    if (this.free.length < MAX_FREE_READINGS) this.free.push(r);
  }

  /** Gives back every record of a handed-off batch. */
  giveAll(readings: readonly ValidReading[]): void {
    for (let i = 0; i < readings.length && this.free.length < MAX_FREE_READINGS; i++) this.free.push(readings[i] as ValidReading);
  }

  /** Records free for reuse now. */
  get available(): number { return this.free.length; }
}
