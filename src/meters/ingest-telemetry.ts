// The ems.meter.* metrics and spans. Metrics are complete (every reading) and aggregated per
// region in plain typed arrays (telemetry/cumulative-producer.ts): no attribute hashing, no
// allocation per reading; the producer emits them as the SDK's counters and histograms would.
// Per-reading spans are sampled at reading_span_ratio; one span per batch.
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import type { CumulativeHistogram, CumulativeProducer, CumulativeSum } from '../telemetry/cumulative-producer.js';
import { BUCKETS, METRIC_ATTRS, METRICS, METRIC_UNITS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import type { ValidReading } from './types.js';
import { describeRejection, METER_ERROR_TYPES, type DroppedReading } from './validate.js';

export type { DroppedReading } from './validate.js';

export interface SealedBatch {
  readings: ValidReading[];
  rejections: DroppedReading[];
  /** Wall-clock ms when the first message of the batch arrived (the batch span's start). */
  openedAtWall: number;
}

/** The ems.meter.* streams of one producer, made once per name (the spool's evictions share `dropped`). */
export function meterStreams(producer: CumulativeProducer): { ingested: CumulativeSum; dropped: CumulativeSum; latency: CumulativeHistogram; dataAge: CumulativeHistogram } {
  return {
    ingested: producer.sum({ name: METRICS.meterReadingsIngested, description: 'Meter readings handed off', unit: METRIC_UNITS.meterReadingsIngested }),
    dropped: producer.sum({ name: METRICS.meterReadingsDropped, description: 'Meter readings dropped, by error_type', unit: METRIC_UNITS.meterReadingsDropped }),
    latency: producer.histogram({
      name: METRICS.meterIngestionLatency, description: 'Time from the MQTT message arrival to the hand-off of its readings', unit: METRIC_UNITS.meterIngestionLatency,
    }, BUCKETS.ingestionLatencyMs),
    dataAge: producer.histogram({
      name: METRICS.meterDataAge, description: 'Now minus the reading timestamp, at hand-off', unit: METRIC_UNITS.meterDataAge,
    }, BUCKETS.dataAgeSeconds),
  };
}

/** The key of a readings_dropped series: region and error_type (a NUL cannot occur in either). */
function dropKey(region: string, errorType: string): string {
  return `${region}\u0000${errorType}`;
}

/** Opens (or finds) the readings_dropped series of (region, error_type). */
export function dropSeries(dropped: CumulativeSum, region: string, errorType: string, startMs: number): number {
  return dropped.series(dropKey(region, errorType), { [METRIC_ATTRS.region]: region, [METRIC_ATTRS.errorType]: errorType }, startMs);
}

const ERROR_INDEX = new Map<string, number>(METER_ERROR_TYPES.map((t, i) => [t, i]));

/** The series indices of one region (-1: not opened yet, as the SDK makes a series at its first record). */
class RegionSeries {
  ingested = -1;
  latency = -1;
  dataAge = -1;
  readonly drops = new Int32Array(METER_ERROR_TYPES.length).fill(-1);
  constructor(readonly region: string, readonly attrs: Attributes) {}
}

export class IngestTelemetry {
  private readonly ingested: CumulativeSum;
  private readonly dropped: CumulativeSum;
  private readonly latency: CumulativeHistogram;
  private readonly dataAge: CumulativeHistogram;
  private readonly regions = new Map<string, RegionSeries>();
  private last: RegionSeries | undefined;
  private seen = 0;

  constructor(producer: CumulativeProducer, private readonly tracer: Tracer, private readonly readingSpanRatio: number) {
    ({ ingested: this.ingested, dropped: this.dropped, latency: this.latency, dataAge: this.dataAge } = meterStreams(producer));
  }

  private regionSeries(region: string): RegionSeries {
    const last = this.last;
    if (last !== undefined && last.region === region) return last;
    let r = this.regions.get(region);
    if (r === undefined) {
      r = new RegionSeries(region, { [METRIC_ATTRS.region]: region });
      this.regions.set(region, r);
    }
    this.last = r;
    return r;
  }

  /** Records a batch handed off at `handoffMono` (monotonic ms) / `nowWall` (epoch ms). */
  record(batch: SealedBatch, handoffMono: number, nowWall: number): void {
    // A new series starts now (as the SDK's: at its first record), unless its stream was resumed
    // from committed totals (delivery-telemetry.ts resumeCounters): then at the totals' start.
    const { ingested, latency, dataAge } = this;
    for (const r of batch.readings) {
      const s = this.regionSeries(r.region);
      if (s.latency < 0) {
        if (s.ingested < 0) s.ingested = ingested.series(s.region, s.attrs, nowWall);
        s.latency = latency.series(s.region, s.attrs, nowWall);
        s.dataAge = dataAge.series(s.region, s.attrs, nowWall);
      }
      latency.record(s.latency, Math.max(0, handoffMono - r.arrived_at));
      dataAge.record(s.dataAge, Math.max(0, (nowWall - r.timestamp_ms) / 1000));
      ingested.add(s.ingested, 1);
    }
    for (const d of batch.rejections) {
      const s = this.regionSeries(d.region);
      const t = ERROR_INDEX.get(d.error_type) ?? -1;
      let i = t >= 0 ? (s.drops[t] as number) : -1;
      if (i < 0) {
        i = dropSeries(this.dropped, d.region, d.error_type, nowWall);
        if (t >= 0) s.drops[t] = i;
      }
      this.dropped.add(i, 1);
    }
    this.spans(batch, handoffMono, nowWall);
  }

  /** Deterministic: the n-th reading is sampled when floor(n x ratio) steps up (exactly ratio of them). */
  private sample(ratio: number): boolean {
    const before = Math.floor(this.seen * ratio + 1e-9);
    this.seen++;
    if (this.seen > 1e15) this.seen = 0;
    return Math.floor(this.seen * ratio + 1e-9) > before;
  }

  private spans(batch: SealedBatch, handoffMono: number, nowWall: number): void {
    const size = batch.readings.length + batch.rejections.length;
    const span = this.tracer.startSpan(SPANS.meterProcessBatch, { startTime: batch.openedAtWall });
    span.setAttributes({
      [SPAN_ATTRS.batchSize]: size,
      [SPAN_ATTRS.batchSuccess]: batch.readings.length,
      [SPAN_ATTRS.batchFailed]: batch.rejections.length,
      [SPAN_ATTRS.batchDurationMs]: Math.max(0, nowWall - batch.openedAtWall),
    });
    const ratio = this.readingSpanRatio;
    if (ratio > 0) {
      const parent = trace.setSpan(ROOT_CONTEXT, span);
      for (const r of batch.readings) {
        if (!this.sample(ratio)) continue;
        const latency = Math.max(0, handoffMono - r.arrived_at);
        const s = this.tracer.startSpan(SPANS.meterProcessReading, { startTime: nowWall - latency }, parent);
        s.setAttributes({ [SPAN_ATTRS.meterId]: r.meter_id, [SPAN_ATTRS.region]: r.region, [SPAN_ATTRS.writeLatencyMs]: latency });
        s.end(nowWall);
      }
      for (const d of batch.rejections) {
        if (!this.sample(ratio)) continue;
        const latency = Math.max(0, handoffMono - d.arrived_at);
        const s = this.tracer.startSpan(SPANS.meterProcessReading, { startTime: nowWall - latency }, parent);
        s.setAttributes({
          ...(d.meter_id !== undefined ? { [SPAN_ATTRS.meterId]: d.meter_id } : {}),
          [SPAN_ATTRS.region]: d.region, [SPAN_ATTRS.validation]: d.error_type, [SPAN_ATTRS.writeLatencyMs]: latency,
        });
        s.setStatus({ code: SpanStatusCode.ERROR, message: describeRejection(d) });
        s.end(nowWall);
      }
    }
    span.end(nowWall);
  }
}
