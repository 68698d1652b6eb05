// The cumulative counts the spool commits with every batch and every sink position, so they
// survive a crash exactly as far as the readings they count do (docs/delivery.md, "Accounting").

export interface SinkTotals {
  /** Readings that entered the spool since this sink was configured. */
  ingested: number;
  delivered: number;
  /** Readings the upstream refused one by one (poison), by error_type; also corrupt records. */
  rejected: Record<string, number>;
  /** Readings evicted (drop_oldest, age bound) before this sink had them. */
  evicted: number;
}

export interface SpoolTotals {
  /**
   * Epoch ms these totals began (the spool's first open): the start time of the exported
   * cumulative series that resume from them. Absent in spools written before it existed: set at
   * their next open.
   */
  since_ms: number;
  /** Meter readings ingested, per region. */
  ingested: Record<string, number>;
  /** Readings dropped, per region and error_type (the ingest's reasons and spool_evicted). */
  dropped: Record<string, Record<string, number>>;
  sinks: Record<string, SinkTotals>;
}

/** What one meter batch adds to the totals. */
export interface IngestDelta {
  ingested: Map<string, number>;
  dropped: Map<string, Map<string, number>>;
}

export function emptyTotals(sinceMs: number): SpoolTotals {
  return { since_ms: sinceMs, ingested: {}, dropped: {}, sinks: {} };
}

/** Invariant per sink: ingested = delivered + rejected + pending + evicted. */
export function sinkBalance(t: SinkTotals, pending: number): number {
  const rejected = Object.values(t.rejected).reduce((a, b) => a + b, 0);
  return t.ingested - (t.delivered + rejected + pending + t.evicted);
}
