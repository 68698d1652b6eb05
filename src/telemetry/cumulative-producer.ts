// Cumulative counters and histograms without the SDK's per-call cost. An SDK Counter.add or
// Histogram.record hashes its attributes (keys sorted, JSON-stringified) and looks the series up
// in a hash map on every call: for the meter ingest that was two histogram records and a counter
// add per reading. Here a part opens a series once (a small integer index) and records into plain
// typed arrays; the producer turns them into the data points the SDK would have made (same
// names, units, descriptions, bucket boundaries, min/max, cardinality overflow, CUMULATIVE
// temporality), at collection time only. Register the producer on every reader that should see
// these metrics (`metricProducers: [producer]`, or PullMetricReader.addProducer); createTelemetry
// does so for its OTLP reader and for the extra pull readers it is given.
//
// A series may start from a committed value (`seed`) and at a given start time: that is how the
// exported counters resume after a restart from the totals the spool committed (docs/telemetry.md,
// "Counters across a restart").
import { ValueType, type Attributes } from '@opentelemetry/api';
import { millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import { emptyResource, type Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality, DataPointType,
  type CollectionResult, type DataPoint, type Histogram, type HistogramMetricData, type MetricData, type MetricProducer, type SumMetricData,
} from '@opentelemetry/sdk-metrics';

interface StreamDescriptor {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

/** The attribute set the SDK folds series past the cardinality limit into. */
const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ 'otel.metric.overflow': true });

/** Series bookkeeping shared by sums and histograms: key -> index, attributes, start times. */
abstract class SeriesTable {
  protected readonly index = new Map<string, number>();
  protected readonly attrs: Attributes[] = [];
  protected starts: Float64Array = new Float64Array(8);
  private overflow = -1;
  /** Set by resumeFrom(): the start time of every series, opened before or after. */
  private since: number | undefined;

  protected constructor(readonly descriptor: StreamDescriptor, private readonly limit: number) {}

  get size(): number { return this.attrs.length; }

  /**
   * The index of the series `key` (the caller's own encoding of `attributes`, e.g. the region),
   * opened at `startMs` (epoch ms) when new. Past the cardinality limit (as the SDK: limit - 1
   * series and one overflow series) new attribute sets share the overflow series.
   */
  series(key: string, attributes: Attributes, startMs: number): number {
    const i = this.index.get(key);
    if (i !== undefined) return i;
    if (this.since !== undefined) startMs = this.since;
    if (this.attrs.length >= this.limit - 1) {
      // Not indexed: the keys folded into the overflow series must not grow the index instead.
      if (this.overflow < 0) this.overflow = this.open(OVERFLOW_ATTRIBUTES, startMs);
      return this.overflow;
    }
    const n = this.open(attributes, startMs);
    this.index.set(key, n);
    return n;
  }

  private open(attributes: Attributes, startMs: number): number {
    const n = this.attrs.length;
    this.attrs.push(attributes);
    if (n >= this.starts.length) this.grow(this.starts.length * 2);
    this.starts[n] = startMs;
    return n;
  }

  /**
   * The stream continues counts committed since `sinceMs` (epoch ms; a restart resuming from the
   * spool's totals): every series, open or opened later, reports that start time.
   */
  resumeFrom(sinceMs: number): void {
    this.since = sinceMs;
    for (let i = 0; i < this.attrs.length; i++) this.starts[i] = Math.min(this.starts[i] ?? sinceMs, sinceMs);
  }

  protected grow(capacity: number): void {
    const s = new Float64Array(capacity);
    s.set(this.starts);
    this.starts = s;
  }

  abstract toMetricData(endMs: number): MetricData | undefined;
}

/** A monotonic cumulative sum (an SDK Counter's stream). */
export class CumulativeSum extends SeriesTable {
  private values: Float64Array = new Float64Array(8);

  constructor(descriptor: StreamDescriptor, limit: number) { super(descriptor, limit); }

  add(i: number, n: number): void {
    if (n > 0) this.values[i] = (this.values[i] ?? 0) + n;
  }

  /** Raises a series to a committed total (never lowers it: the stream stays monotonic). */
  raiseTo(i: number, total: number): void {
    if (total > (this.values[i] ?? 0)) this.values[i] = total;
  }

  value(i: number): number { return this.values[i] ?? 0; }

  protected override grow(capacity: number): void {
    super.grow(capacity);
    const v = new Float64Array(capacity);
    v.set(this.values);
    this.values = v;
  }

  toMetricData(endMs: number): SumMetricData | undefined {
    if (this.attrs.length === 0) return undefined;
    const endTime = millisToHrTime(endMs);
    const dataPoints: Array<DataPoint<number>> = this.attrs.map((attributes, i) => ({
      attributes, startTime: millisToHrTime(this.starts[i] ?? endMs), endTime, value: this.values[i] ?? 0,
    }));
    return {
      descriptor: { ...this.descriptor, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      dataPoints,
      isMonotonic: true,
    };
  }
}

/** An explicit-bucket histogram with min/max (an SDK Histogram's stream under the gateway's views). */
export class CumulativeHistogram extends SeriesTable {
  private readonly bounds: Float64Array;
  private readonly width: number;
  private counts: Float64Array;
  private sums: Float64Array = new Float64Array(8);
  private mins: Float64Array = new Float64Array(8).fill(Infinity);
  private maxs: Float64Array = new Float64Array(8).fill(-Infinity);

  constructor(descriptor: StreamDescriptor, readonly boundaries: readonly number[], limit: number) {
    super(descriptor, limit);
    this.bounds = Float64Array.from(boundaries);
    this.width = boundaries.length + 1;
    this.counts = new Float64Array(8 * this.width);
  }

  /** As the SDK: a value equal to a boundary falls in that boundary's bucket (upper bound inclusive). */
  record(i: number, value: number): void {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((b[mid] as number) < value) lo = mid + 1;
      else hi = mid;
    }
    const c = this.counts;
    const at = i * this.width + lo;
    c[at] = (c[at] as number) + 1;
    this.sums[i] = (this.sums[i] as number) + value;
    if (value < (this.mins[i] as number)) this.mins[i] = value;
    if (value > (this.maxs[i] as number)) this.maxs[i] = value;
  }

  protected override grow(capacity: number): void {
    super.grow(capacity);
    const c = new Float64Array(capacity * this.width);
    c.set(this.counts);
    this.counts = c;
    const s = new Float64Array(capacity);
    s.set(this.sums);
    this.sums = s;
    const lo = new Float64Array(capacity).fill(Infinity);
    lo.set(this.mins);
    this.mins = lo;
    const hi = new Float64Array(capacity).fill(-Infinity);
    hi.set(this.maxs);
    this.maxs = hi;
  }

  toMetricData(endMs: number): HistogramMetricData | undefined {
    if (this.attrs.length === 0) return undefined;
    const endTime = millisToHrTime(endMs);
    const boundaries = [...this.boundaries];
    const dataPoints: Array<DataPoint<Histogram>> = this.attrs.map((attributes, i) => {
      const counts = Array.from(this.counts.subarray(i * this.width, (i + 1) * this.width));
      const count = counts.reduce((a, b) => a + b, 0);
      const hasMinMax = count > 0;
      return {
        attributes, startTime: millisToHrTime(this.starts[i] ?? endMs), endTime,
        value: {
          min: hasMinMax ? this.mins[i] : undefined, max: hasMinMax ? this.maxs[i] : undefined,
          sum: this.sums[i] ?? 0, buckets: { boundaries, counts }, count,
        },
      };
    });
    return {
      descriptor: { ...this.descriptor, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
}

/**
 * One producer for the cumulative streams of a process. A stream is made once per name: a part
 * asking for a name that exists gets the same stream (as the SDK returns one aggregation for two
 * instruments of one name), so `ems.meter.readings_dropped` of the ingest and of the spool is one.
 */
export class CumulativeProducer implements MetricProducer {
  private readonly streams = new Map<string, SeriesTable>();

  /**
   * @param scope the instrumentation scope the streams are reported under (the gateway's meter scope)
   * @param cardinalityLimit series per stream, as the SDK's views (overflow folded into one series)
   */
  constructor(
    private readonly scope: InstrumentationScope,
    private readonly cardinalityLimit = 2000,
    private readonly now: () => number = Date.now,
    private readonly resource: Resource = emptyResource(),
  ) {}

  sum(d: StreamDescriptor): CumulativeSum {
    const s = this.streams.get(d.name);
    if (s instanceof CumulativeSum) return s;
    if (s !== undefined) throw new Error(`metric ${d.name} already exists as another kind`);
    const made = new CumulativeSum(d, this.cardinalityLimit);
    this.streams.set(d.name, made);
    return made;
  }

  histogram(d: StreamDescriptor, boundaries: readonly number[]): CumulativeHistogram {
    const s = this.streams.get(d.name);
    if (s instanceof CumulativeHistogram) return s;
    if (s !== undefined) throw new Error(`metric ${d.name} already exists as another kind`);
    const made = new CumulativeHistogram(d, boundaries, this.cardinalityLimit);
    this.streams.set(d.name, made);
    return made;
  }

  collect(): Promise<CollectionResult> {
    const endMs = this.now();
    const metrics: MetricData[] = [];
    for (const s of this.streams.values()) {
      const m = s.toMetricData(endMs);
      if (m !== undefined) metrics.push(m);
    }
    return Promise.resolve({
      resourceMetrics: { resource: this.resource, scopeMetrics: metrics.length === 0 ? [] : [{ scope: this.scope, metrics }] },
      errors: [],
    });
  }
}
