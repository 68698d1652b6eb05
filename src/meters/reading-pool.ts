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

  /** A record of these values: a free one overwritten, or a new one when none is free. */
  take(
    meterId: string, region: string, timestampMs: number, kwh: number, voltage: number, current: number, powerFactor: number,
    powerW: number, arrivedAt: number,
  ): ValidReading {
    const r = this.free.pop();
    if (r === undefined) {
      return {
        meter_id: meterId, region, timestamp_ms: timestampMs, kwh, voltage, current, power_factor: powerFactor, power_w: powerW, arrived_at: arrivedAt,
      };
    }
    r.meter_id = meterId;
    r.region = region;
    r.timestamp_ms = timestampMs;
    r.kwh = kwh;
    r.voltage = voltage;
    r.current = current;
    r.power_factor = powerFactor;
    r.power_w = powerW;
    r.arrived_at = arrivedAt;
    return r;
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
