// What the local alert evaluator reads from the SDK's own aggregated data: one snapshot of the
// cumulative counters and histograms (and the latest gauges) per evaluation, and increases over a
// window (the `rate(...[5m])` of the Prometheus rules) by differencing against an older snapshot.
// Pure functions over plain data so the arithmetic is tested without a MeterProvider.
import { DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { METRICS, METRIC_ATTRS } from '../telemetry/semconv.js';

interface BucketCounts {
  /** Finite inclusive upper bounds. */
  boundaries: number[];
  /** Per-bucket counts (boundaries.length + 1; the last is the +Inf bucket). */
  counts: number[];
}

export interface MetricSnapshot {
  atMs: number;
  ingested: Map<string, number>;          // region -> cumulative count
  dropped: Map<string, number>;           // region -> cumulative count (all error types)
  latency: Map<string, BucketCounts>;     // region -> cumulative buckets (ms)
  dataAge: Map<string, BucketCounts>;     // region -> cumulative buckets (s)
  drCommands: Map<string, number>;        // outcome -> cumulative count (all zones)
  sessionLost: Map<string, number>;       // MQTT client -> cumulative lost broker sessions
  /** Latest grid frequency, when the gauge was observed in this collection. */
  frequencyHz: number | null;
  /** sink -> latest age of its oldest pending reading, s (delivery backlog). */
  deliveryOldestAgeS: Map<string, number>;
}

function emptySnapshot(atMs: number): MetricSnapshot {
  return {
    atMs, ingested: new Map(), dropped: new Map(), latency: new Map(), dataAge: new Map(), drCommands: new Map(), sessionLost: new Map(),
    frequencyHz: null, deliveryOldestAgeS: new Map(),
  };
}

const attr = (attrs: Record<string, unknown>, key: string): string => {
  const v = attrs[key];
  return typeof v === 'string' ? v : 'unknown';
};

function addCount(map: Map<string, number>, key: string, v: number): void {
  map.set(key, (map.get(key) ?? 0) + v);
}

function addBuckets(map: Map<string, BucketCounts>, key: string, b: BucketCounts): void {
  const prev = map.get(key);
  if (!prev || prev.boundaries.join() !== b.boundaries.join()) {
    map.set(key, { boundaries: [...b.boundaries], counts: [...b.counts] });
    return;
  }
  prev.counts = prev.counts.map((c, i) => c + (b.counts[i] ?? 0));
}

/** Counter name -> where its points go and the attribute they are keyed by. */
const COUNTERS: ReadonlyArray<[string, (s: MetricSnapshot) => Map<string, number>, string]> = [
  [METRICS.meterReadingsIngested, (s) => s.ingested, METRIC_ATTRS.region],
  [METRICS.meterReadingsDropped, (s) => s.dropped, METRIC_ATTRS.region],
  [METRICS.drControllerCommands, (s) => s.drCommands, METRIC_ATTRS.outcome],
  [METRICS.mqttSessionLost, (s) => s.sessionLost, METRIC_ATTRS.client],
];

/** Reads the alerts' inputs out of one collection of the gateway's MeterProvider. */
export function snapshotFrom(rm: ResourceMetrics, atMs: number): MetricSnapshot {
  const s = emptySnapshot(atMs);
  for (const metric of rm.scopeMetrics.flatMap((sm) => sm.metrics)) {
    const name = metric.descriptor.name;
    if (metric.dataPointType === DataPointType.SUM) {
      const counter = COUNTERS.find(([n]) => n === name);
      if (counter) {
        const [, target, key] = counter;
        for (const p of metric.dataPoints) addCount(target(s), attr(p.attributes, key), p.value);
      }
    } else if (metric.dataPointType === DataPointType.HISTOGRAM) {
      const target = name === METRICS.meterIngestionLatency ? s.latency : name === METRICS.meterDataAge ? s.dataAge : undefined;
      if (target) for (const p of metric.dataPoints) addBuckets(target, attr(p.attributes, METRIC_ATTRS.region), p.value.buckets);
    } else if (metric.dataPointType === DataPointType.GAUGE && name === METRICS.gridFrequency) {
      const p = metric.dataPoints[metric.dataPoints.length - 1];
      if (p) s.frequencyHz = p.value;
    } else if (metric.dataPointType === DataPointType.GAUGE && name === METRICS.deliveryOldestAge) {
      for (const p of metric.dataPoints) s.deliveryOldestAgeS.set(attr(p.attributes, METRIC_ATTRS.sink), p.value);
    }
  }
  return s;
}

function diffCounts(now: Map<string, number>, base: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  // A counter that went down was reset (cannot happen within one process; handled like Prometheus).
  for (const [k, v] of now) out.set(k, v >= (base.get(k) ?? 0) ? v - (base.get(k) ?? 0) : v);
  return out;
}

function diffBuckets(now: Map<string, BucketCounts>, base: Map<string, BucketCounts>): Map<string, BucketCounts> {
  const out = new Map<string, BucketCounts>();
  for (const [k, b] of now) {
    const prev = base.get(k);
    const compatible = prev && prev.boundaries.join() === b.boundaries.join();
    out.set(k, { boundaries: b.boundaries, counts: b.counts.map((c, i) => (compatible ? Math.max(0, c - (prev.counts[i] ?? 0)) : c)) });
  }
  return out;
}

/** The increase from `base` to `now` (counters and histograms); the gauge is `now`'s. */
export function increase(now: MetricSnapshot, base: MetricSnapshot): MetricSnapshot {
  return {
    atMs: now.atMs,
    ingested: diffCounts(now.ingested, base.ingested),
    dropped: diffCounts(now.dropped, base.dropped),
    latency: diffBuckets(now.latency, base.latency),
    dataAge: diffBuckets(now.dataAge, base.dataAge),
    drCommands: diffCounts(now.drCommands, base.drCommands),
    sessionLost: diffCounts(now.sessionLost, base.sessionLost),
    frequencyHz: now.frequencyHz,
    deliveryOldestAgeS: now.deliveryOldestAgeS,
  };
}

/**
 * Prometheus' histogram_quantile over one histogram: linear interpolation inside the bucket that
 * holds the rank, the lowest bucket starting at 0, a rank in the +Inf bucket answered with the
 * highest finite bound. null when there are no observations.
 */
export function histogramQuantile(q: number, b: BucketCounts): number | null {
  const total = b.counts.reduce((a, c) => a + c, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < b.counts.length; i++) {
    const count = b.counts[i] ?? 0;
    if (cumulative + count >= rank && count > 0) {
      if (i >= b.boundaries.length) return b.boundaries[b.boundaries.length - 1] ?? null;
      const upper = b.boundaries[i] ?? 0;
      const lower = i === 0 ? Math.min(0, upper) : (b.boundaries[i - 1] ?? 0);
      return lower + (upper - lower) * ((rank - cumulative) / count);
    }
    cumulative += count;
  }
  return b.boundaries[b.boundaries.length - 1] ?? null;
}

/** Keeps snapshots long enough to difference over the longest window. */
export class SnapshotHistory {
  private readonly items: MetricSnapshot[] = [];
  constructor(private readonly keepMs: number) {}

  push(s: MetricSnapshot): void {
    this.items.push(s);
    // Keep one snapshot at or before the window start; drop everything older.
    while (this.items.length > 2 && (this.items[1]?.atMs ?? Infinity) <= s.atMs - this.keepMs) this.items.shift();
  }

  /** The newest snapshot taken at or before `atMs`; the process start (all zero) when none is that old. */
  baseline(atMs: number, startMs: number): MetricSnapshot {
    let best: MetricSnapshot | undefined;
    for (const s of this.items) if (s.atMs <= atMs) best = s;
    return best ?? emptySnapshot(startMs);
  }
}

/**
 * When each region's ingested counter last moved: "stale by silence". A region whose meters stop
 * completely (head-end down) leaves the data-age histogram empty, so its P99 has nothing to judge;
 * its cumulative counter, though, stays in every collection, unchanged. Only regions seen with a
 * non-zero count in this process are tracked: after a restart a region is unknown until its next
 * reading, so a restart alone never reads as silence (the rule file does the same).
 */
export class IngestActivity {
  private readonly regions = new Map<string, { count: number; movedAtMs: number }>();

  /** Feeds one snapshot's cumulative ingested counts. The first sighting counts as a move. */
  observe(ingested: Map<string, number>, atMs: number): void {
    for (const [region, count] of ingested) {
      if (count <= 0) continue;
      const prev = this.regions.get(region);
      // Any change (a reset included) is a reading since the last look.
      if (!prev || prev.count !== count) this.regions.set(region, { count, movedAtMs: atMs });
    }
  }

  /** region -> ms since its counter last moved, for every region seen. */
  silentFor(atMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [region, r] of this.regions) out.set(region, Math.max(0, atMs - r.movedAtMs));
    return out;
  }
}
