// Counters behind MeterIngest.status(): what the runtime's status page and the CLI show. The
// OTel metrics are the exported truth; these are the same counts, readable without a collector.
import type { SessionStatus } from '../mqtt/session-continuity.js';
import type { Clock } from '../runtime/clock.js';
import type { DroppedReading } from './ingest-telemetry.js';
import type { ValidReading } from './types.js';

export interface MeterIngestStatus {
  connected: boolean;
  subscribed: boolean;
  /** True once a probe message came back through the broker after the latest (re)subscribe. */
  flow_confirmed: boolean;
  reconnects: number;
  messages: number;
  readings_ingested: number;
  readings_dropped: number;
  drops_by_reason: Record<string, number>;
  /**
   * Readings handed off per second over the rate window: the RATE_WINDOW_S whole seconds before
   * the current one (fewer just after start, never the current, partial second). 0 before the
   * first whole second has passed.
   */
  ingest_rate_per_s: number;
  /** Readings dropped per second over the same window. */
  drop_rate_per_s: number;
  /** ms since the last meter message arrived; undefined before the first. */
  last_message_age_ms: number | undefined;
  /** Readings received but not yet handed off (their messages are not acknowledged yet). */
  queued_readings: number;
  /** PUBACKs not sent because the connection changed before hand-off (the broker redelivers). */
  stale_acks: number;
  sink_errors: number;
  meters_tracked: number;
  /** The broker session: persistent or not, and how often the broker lost it. */
  session: SessionStatus;
}

/** Whole seconds the rates are computed over. */
export const RATE_WINDOW_S = 10;

export class IngestStats {
  private messages = 0;
  private ingested = 0;
  private dropped = 0;
  private readonly byReason: Record<string, number> = {};
  lastMessageAt: number | undefined;
  private staleAcks = 0;
  private sinkErrors = 0;
  // Per-second buckets of [ingested, dropped] for the rates: the window's seconds and the current one.
  private readonly buckets: Array<{ second: number; ingested: number; dropped: number }> = [];
  // The second the stats began in: partial, so never part of a rate window.
  private readonly startSecond: number;

  constructor(private readonly clock: Clock) {
    this.startSecond = Math.floor(clock.monotonic() / 1000);
  }

  message(nowMs: number): void {
    this.messages++;
    this.lastMessageAt = nowMs;
  }

  batch(readings: readonly ValidReading[], rejections: readonly DroppedReading[], staleAcks: number): void {
    this.ingested += readings.length;
    this.dropped += rejections.length;
    for (const d of rejections) this.byReason[d.error_type] = (this.byReason[d.error_type] ?? 0) + 1;
    this.staleAcks += staleAcks;
    const second = Math.floor(this.clock.monotonic() / 1000);
    let b = this.buckets[this.buckets.length - 1];
    if (b === undefined || b.second !== second) {
      b = { second, ingested: 0, dropped: 0 };
      this.buckets.push(b);
      while (this.buckets.length > RATE_WINDOW_S + 1) this.buckets.shift();
    }
    b.ingested += readings.length;
    b.dropped += rejections.length;
  }

  sinkError(): void { this.sinkErrors++; }

  snapshot(live: {
    connected: boolean; subscribed: boolean; flowConfirmed: boolean; reconnects: number; queuedReadings: number; meters: number; session: SessionStatus;
  }): MeterIngestStatus {
    // Whole seconds only: counting the current second as a full one read the rate low by the
    // part of it still to come (up to a tenth: 925/s at 1,000/s 0.75 s into a second).
    const nowSecond = Math.floor(this.clock.monotonic() / 1000);
    const first = Math.max(nowSecond - RATE_WINDOW_S, this.startSecond + 1);
    const seconds = nowSecond - first;
    let ing = 0;
    let drop = 0;
    for (const b of this.buckets) {
      if (b.second >= first && b.second < nowSecond) {
        ing += b.ingested;
        drop += b.dropped;
      }
    }
    return {
      connected: live.connected,
      subscribed: live.subscribed,
      flow_confirmed: live.flowConfirmed,
      reconnects: live.reconnects,
      messages: this.messages,
      readings_ingested: this.ingested,
      readings_dropped: this.dropped,
      drops_by_reason: { ...this.byReason },
      ingest_rate_per_s: seconds > 0 ? ing / seconds : 0,
      drop_rate_per_s: seconds > 0 ? drop / seconds : 0,
      last_message_age_ms: this.lastMessageAt === undefined ? undefined : Math.max(0, this.clock.now() - this.lastMessageAt),
      queued_readings: live.queuedReadings,
      stale_acks: this.staleAcks,
      sink_errors: this.sinkErrors,
      meters_tracked: live.meters,
      session: live.session,
    };
  }
}
