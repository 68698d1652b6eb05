// The shapes that leave the meter ingest: a validated reading and the hand-off target.
import type { Rejection } from './validate.js';

/** One reading that passed validation and deduplication. Timestamps are normalised to epoch ms. */
export interface ValidReading {
  meter_id: string;
  region: string;
  /** The reading's own time, epoch ms (from epoch s, epoch ms or RFC 3339 in the payload). */
  timestamp_ms: number;
  kwh: number;
  voltage: number;
  current: number;
  power_factor: number;
  /** Instantaneous active power in W: the payload's `power_w` / `power` field, else V x I x PF. */
  power_w: number;
  /** Monotonic ms when the MQTT message carrying it arrived (for ingestion latency). */
  arrived_at: number;
}

/**
 * Where readings are handed on. The at-least-once boundary: a QoS 1 message is acknowledged to the
 * broker only after `write()` resolved for every reading it carried. A rejected write is retried
 * (the message stays unacknowledged meanwhile), so a sink must tolerate seeing a batch twice.
 * `dropped` are the batch's rejected readings (a durable sink commits their counts with the batch).
 */
export interface ReadingSink {
  /**
   * Writes the sink takes at once (default 1). A sink that commits in groups says more: the ingest
   * then hands it the next batches while one commits, and still acknowledges them in order.
   */
  readonly concurrentWrites?: number;
  /**
   * True when write() reads the readings (and the batch array) before it returns, and keeps no
   * reference to them after: the ingest then reuses the reading records once the batch was handed
   * off (reading-pool.ts). A sink that keeps the records it was given must leave this unset.
   */
  readonly copiesReadings?: boolean;
  write(batch: readonly ValidReading[], dropped?: readonly Pick<Rejection, 'region' | 'error_type'>[]): Promise<void>;
  /**
   * A durable sink that commits a dedupe journal with each batch (dedupe-journal.ts) returns its
   * committed entries, oldest first: the ingest replays them into its dedupe state at start, so
   * the broker's redeliveries of readings committed before a crash are recognised as duplicates.
   */
  committedJournal?(): Uint8Array[];
  /**
   * The regions of the counts a durable sink committed: without `mqtt.meters.regions`, the ingest
   * admits these first (open-regions.ts), so the distinct regions stay bounded across restarts.
   */
  committedRegions?(): string[];
}
