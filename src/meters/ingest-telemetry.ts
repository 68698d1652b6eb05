// The ems.meter.* instruments and spans, created once. Metrics are complete (every reading);
// per-reading spans are sampled at reading_span_ratio; one span per batch.
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Counter, type Histogram, type Meter, type Tracer } from '@opentelemetry/api';
import { BUCKETS, METRIC_ATTRS, METRICS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import type { ValidReading } from './types.js';
import type { Rejection } from './validate.js';

export interface DroppedReading extends Rejection {
  arrived_at: number;
}

export interface SealedBatch {
  readings: ValidReading[];
  rejections: DroppedReading[];
  /** Wall-clock ms when the first message of the batch arrived (the batch span's start). */
  openedAtWall: number;
}

export class IngestTelemetry {
  private readonly ingested: Counter;
  private readonly dropped: Counter;
  private readonly latency: Histogram;
  private readonly dataAge: Histogram;
  private readonly regionAttrs = new Map<string, Attributes>();
  private readonly dropAttrs = new Map<string, Attributes>();
  private seen = 0;

  constructor(meter: Meter, private readonly tracer: Tracer, private readonly readingSpanRatio: number) {
    this.ingested = meter.createCounter(METRICS.meterReadingsIngested, { description: 'Meter readings handed off', unit: '{reading}' });
    this.dropped = meter.createCounter(METRICS.meterReadingsDropped, { description: 'Meter readings dropped, by error_type', unit: '{reading}' });
    this.latency = meter.createHistogram(METRICS.meterIngestionLatency, {
      description: 'Time from the MQTT message arrival to the hand-off of its readings', unit: 'ms',
      advice: { explicitBucketBoundaries: [...BUCKETS.ingestionLatencyMs] },
    });
    this.dataAge = meter.createHistogram(METRICS.meterDataAge, {
      description: 'Now minus the reading timestamp, at hand-off', unit: 's',
      advice: { explicitBucketBoundaries: [...BUCKETS.dataAgeSeconds] },
    });
  }

  private attrsFor(region: string): Attributes {
    let a = this.regionAttrs.get(region);
    if (a === undefined) {
      a = { [METRIC_ATTRS.region]: region };
      this.regionAttrs.set(region, a);
    }
    return a;
  }

  private dropAttrsFor(region: string, errorType: string): Attributes {
    const key = `${region}\u0000${errorType}`;
    let a = this.dropAttrs.get(key);
    if (a === undefined) {
      a = { [METRIC_ATTRS.region]: region, [METRIC_ATTRS.errorType]: errorType };
      this.dropAttrs.set(key, a);
    }
    return a;
  }

  /** Records a batch handed off at `handoffMono` (monotonic ms) / `nowWall` (epoch ms). */
  record(batch: SealedBatch, handoffMono: number, nowWall: number): void {
    const counts = new Map<string, number>();
    for (const r of batch.readings) {
      const attrs = this.attrsFor(r.region);
      // ROOT_CONTEXT: no active-context lookup per record (the hand-off callback has no useful context).
      this.latency.record(Math.max(0, handoffMono - r.arrived_at), attrs, ROOT_CONTEXT);
      this.dataAge.record(Math.max(0, (nowWall - r.timestamp_ms) / 1000), attrs, ROOT_CONTEXT);
      counts.set(r.region, (counts.get(r.region) ?? 0) + 1);
    }
    for (const [region, n] of counts) this.ingested.add(n, this.attrsFor(region));
    const drops = new Map<Attributes, number>();
    for (const d of batch.rejections) {
      const attrs = this.dropAttrsFor(d.region, d.error_type);
      drops.set(attrs, (drops.get(attrs) ?? 0) + 1);
    }
    for (const [attrs, n] of drops) this.dropped.add(n, attrs);
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
        s.setStatus({ code: SpanStatusCode.ERROR, message: d.detail });
        s.end(nowWall);
      }
    }
    span.end(nowWall);
  }
}
