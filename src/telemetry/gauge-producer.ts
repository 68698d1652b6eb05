// Snapshot gauges without the SDK's per-series state. An observable gauge costs the OpenTelemetry
// SDK, per series and per collection: an attribute hash (keys sorted, JSON-stringified), a new
// accumulation, and entries in three hash maps (delta, cumulative memo, report history). For the
// ~21,000 device-gauge series of bench:modbus that was ~12 MB of live state and ~50 MB of garbage
// per export, promoted to the old generation because a collection is one synchronous burst (the
// gateway's RSS, docs/modbus.md "Benchmark"). A source here reads its snapshot at collection
// time and emits data points directly, with attribute objects it built once; nothing is kept
// between collections. Register the producer on every reader that should see the gauges
// (`metricProducers: [producer]`); createTelemetry does so for its OTLP reader.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality, DataPointType,
  type CollectionResult, type DataPoint, type GaugeMetricData, type MetricData, type MetricProducer,
} from '@opentelemetry/sdk-metrics';

/** One gauge metric a source reports (name, unit, description fixed at registration). */
export interface GaugeStream {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

/** Emits the current value of one series of a stream; the attributes object is reused as is. */
export type GaugeEmit = (stream: number, value: number, attributes: Attributes) => void;

export interface GaugeSource {
  readonly streams: readonly GaugeStream[];
  /** Called once per collection: emit every series that has a fresh value, nothing else. Never does I/O. */
  collect(emit: GaugeEmit): void;
}

export class GaugeProducer implements MetricProducer {
  private readonly sources = new Set<GaugeSource>();
  private lastCollectMs: number | undefined;

  /**
   * @param scope the instrumentation scope the gauges are reported under (the gateway's meter scope)
   * @param cardinalityLimit series per metric, as the SDK's views: past it, series are dropped and reported in `errors`
   */
  constructor(
    private readonly resource: Resource,
    private readonly scope: InstrumentationScope,
    private readonly cardinalityLimit = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  add(source: GaugeSource): void {
    this.sources.add(source);
  }

  remove(source: GaugeSource): void {
    this.sources.delete(source);
  }

  collect(): Promise<CollectionResult> {
    const nowMs = this.now();
    const end: HrTime = millisToHrTime(nowMs);
    // Gauges carry no temporality on the wire; the start is the previous collection, like the SDK's DELTA.
    const start: HrTime = this.lastCollectMs === undefined ? end : millisToHrTime(this.lastCollectMs);
    this.lastCollectMs = nowMs;
    const metrics: MetricData[] = [];
    const errors: unknown[] = [];
    for (const source of this.sources) {
      const points: Array<Array<DataPoint<number>>> = source.streams.map(() => []);
      let dropped = 0;
      const limit = this.cardinalityLimit;
      const emit: GaugeEmit = (stream, value, attributes) => {
        const list = points[stream];
        if (list === undefined) return;
        if (list.length >= limit) dropped += 1;
        else list.push({ startTime: start, endTime: end, attributes, value });
      };
      try {
        source.collect(emit);
      } catch (err) {
        errors.push(err);
      }
      if (dropped > 0) errors.push(new Error(`gauge cardinality limit ${limit} reached: ${dropped} series dropped`));
      source.streams.forEach((s, i) => {
        const dataPoints = points[i];
        if (dataPoints === undefined || dataPoints.length === 0) return;
        const m: GaugeMetricData = {
          descriptor: { name: s.name, unit: s.unit, description: s.description, valueType: ValueType.DOUBLE },
          aggregationTemporality: AggregationTemporality.DELTA,
          dataPointType: DataPointType.GAUGE,
          dataPoints,
        };
        metrics.push(m);
      });
    }
    return Promise.resolve({
      resourceMetrics: { resource: this.resource, scopeMetrics: metrics.length === 0 ? [] : [{ scope: this.scope, metrics }] },
      errors,
    });
  }
}
