// The ems.meter.* metrics come from a CumulativeProducer instead of SDK instruments: for a fixed
// set of readings and drops its output must equal what the SDK made of the former recording code
// (two Histogram.record per reading, Counter.add per region and per (region, error_type), under
// the gateway's views and temporality): descriptors, kinds, temporality, attributes, bucket
// boundaries and counts, sums, min/max, counts, and the cardinality overflow.
import { ROOT_CONTEXT, trace, type Attributes } from '@opentelemetry/api';
import { MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { IngestTelemetry, type SealedBatch } from '../../src/meters/ingest-telemetry.js';
import type { ValidReading } from '../../src/meters/types.js';
import type { DroppedReading, MeterErrorType } from '../../src/meters/validate.js';
import { AlertMetricReader } from '../../src/alerts/evaluator.js';
import { snapshotFrom } from '../../src/alerts/metric-window.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { CumulativeProducer } from '../../src/telemetry/cumulative-producer.js';
import { createTelemetry } from '../../src/telemetry/setup.js';
import { PullMetricReader } from '../../src/telemetry/pull-reader.js';
import { BUCKETS, METRICS } from '../../src/telemetry/semconv.js';
import { gatewayTemporality, gatewayViews } from '../../src/telemetry/views.js';
import { telemetryConfig } from '../telemetry/fixtures.js';

const NOW = 1_750_000_000_000;
const HANDOFF_MONO = 100_000;

/** The recording code the producer replaced (ingest-telemetry.ts before), on a real MeterProvider. */
function recordWithSdk(batches: SealedBatch[], cardinalityLimit: number): PullMetricReader {
  const reader = new PullMetricReader({ aggregationTemporalitySelector: gatewayTemporality });
  const meter = new MeterProvider({ views: gatewayViews(cardinalityLimit), readers: [reader] }).getMeter('test');
  const ingested = meter.createCounter(METRICS.meterReadingsIngested, { description: 'Meter readings handed off', unit: '{reading}' });
  const dropped = meter.createCounter(METRICS.meterReadingsDropped, { description: 'Meter readings dropped, by error_type', unit: '{reading}' });
  const latency = meter.createHistogram(METRICS.meterIngestionLatency, {
    description: 'Time from the MQTT message arrival to the hand-off of its readings', unit: 'ms',
    advice: { explicitBucketBoundaries: [...BUCKETS.ingestionLatencyMs] },
  });
  const dataAge = meter.createHistogram(METRICS.meterDataAge, {
    description: 'Now minus the reading timestamp, at hand-off', unit: 's',
    advice: { explicitBucketBoundaries: [...BUCKETS.dataAgeSeconds] },
  });
  for (const batch of batches) {
    const counts = new Map<string, number>();
    for (const r of batch.readings) {
      const attrs: Attributes = { region: r.region };
      latency.record(Math.max(0, HANDOFF_MONO - r.arrived_at), attrs, ROOT_CONTEXT);
      dataAge.record(Math.max(0, (NOW - r.timestamp_ms) / 1000), attrs, ROOT_CONTEXT);
      counts.set(r.region, (counts.get(r.region) ?? 0) + 1);
    }
    for (const [region, n] of counts) ingested.add(n, { region });
    for (const d of batch.rejections) dropped.add(1, { region: d.region, error_type: d.error_type });
  }
  return reader;
}

function recordWithProducer(batches: SealedBatch[], cardinalityLimit: number): PullMetricReader {
  const producer = new CumulativeProducer({ name: 'test' }, cardinalityLimit, () => NOW);
  const reader = new PullMetricReader();
  new MeterProvider({ readers: [reader] });
  reader.addProducer(producer);
  const telemetry = new IngestTelemetry(producer, trace.getTracer('none'), 0);
  for (const b of batches) telemetry.record(b, HANDOFF_MONO, NOW);
  return reader;
}

/** What a collector sees of a metric, times left out (the start time has its own test below). */
function wire(metrics: MetricData[]): unknown[] {
  return metrics
    .filter((m) => m.descriptor.name.startsWith('ems.meter.'))
    .map((m) => ({
      name: m.descriptor.name, unit: m.descriptor.unit, description: m.descriptor.description, valueType: m.descriptor.valueType,
      kind: m.dataPointType, temporality: m.aggregationTemporality, monotonic: 'isMonotonic' in m ? m.isMonotonic : undefined,
      points: m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value }))
        .sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes))),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function collected(reader: PullMetricReader): Promise<MetricData[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

function reading(i: number, region: string, latencyMs: number, ageS: number): ValidReading {
  return {
    meter_id: `m-${i}`, region, timestamp_ms: NOW - ageS * 1000, kwh: i, voltage: 230, current: 1, power_factor: 1, power_w: 230,
    arrived_at: HANDOFF_MONO - latencyMs,
  };
}

function drop(region: string, error_type: MeterErrorType): DroppedReading {
  return { region, error_type, detail: 'x', arrived_at: HANDOFF_MONO };
}

/** Readings on and between every boundary, a late arrival (negative latency), a future timestamp, three regions, drops. */
function fixedBatches(): SealedBatch[] {
  const latencies = [0, 0.5, ...BUCKETS.ingestionLatencyMs, 3, 4999.999, 5000.001, 70_000, -5];
  const ages = [0, 0.1, ...BUCKETS.dataAgeSeconds, 899.9, 900, 900.5, 1e6, -2];
  const regions = ['north', 'south', 'east'];
  const batches: SealedBatch[] = [];
  let i = 0;
  for (let b = 0; b < 4; b++) {
    const readings: ValidReading[] = [];
    for (let k = 0; k < 40; k++, i++) {
      readings.push(reading(i, regions[i % 3] as string, latencies[i % latencies.length] as number, ages[(i * 7) % ages.length] as number));
    }
    const rejections = [drop('north', 'duplicate'), drop('unknown', 'malformed_json'), drop('south', 'out_of_range'), drop('north', 'duplicate')];
    if (b === 2) rejections.push(drop('east', 'spool_evicted'));
    batches.push({ readings, rejections, openedAtWall: NOW - 10 });
  }
  batches.push({ readings: [], rejections: [drop('west', 'unknown_region')], openedAtWall: NOW });
  return batches;
}

describe('meter metrics through the CumulativeProducer', () => {
  it('equal what the SDK made of the same readings: buckets, sums, counts, min/max, attributes, kinds', async () => {
    const batches = fixedBatches();
    const sdk = wire(await collected(recordWithSdk(batches, 2000)));
    const ours = wire(await collected(recordWithProducer(batches, 2000)));
    expect(sdk).toHaveLength(4);
    expect(ours).toEqual(sdk);
    // A second collection (cumulative) after more readings: still equal.
    const more = fixedBatches().slice(0, 2);
    const sdkReader = recordWithSdk([...batches, ...more], 2000);
    const ourReader = recordWithProducer([...batches, ...more], 2000);
    expect(wire(await collected(ourReader))).toEqual(wire(await collected(sdkReader)));
  });

  it('past the cardinality limit series fold into otel.metric.overflow exactly as the SDK folds them', async () => {
    const batches: SealedBatch[] = [{
      readings: Array.from({ length: 30 }, (_, i) => reading(i, `r${i % 6}`, i, i)),
      rejections: Array.from({ length: 12 }, (_, i) => drop(`r${i % 4}`, i % 2 === 0 ? 'duplicate' : 'not_object')),
      openedAtWall: NOW,
    }];
    const sdk = wire(await collected(recordWithSdk(batches, 4)));
    const ours = wire(await collected(recordWithProducer(batches, 4)));
    expect(JSON.stringify(sdk)).toContain('otel.metric.overflow');
    expect(ours).toEqual(sdk);
  });

  it('a series starts at its first record, and at the committed totals\' start once resumed', async () => {
    let now = NOW;
    const producer = new CumulativeProducer({ name: 'test' }, 2000, () => now);
    const telemetry = new IngestTelemetry(producer, trace.getTracer('none'), 0);
    telemetry.record({ readings: [reading(1, 'north', 1, 1)], rejections: [], openedAtWall: NOW }, HANDOFF_MONO, NOW);
    now += 5000;
    const first = (await producer.collect()).resourceMetrics.scopeMetrics[0]?.metrics ?? [];
    const ingested = first.find((m) => m.descriptor.name === METRICS.meterReadingsIngested);
    expect(ingested?.dataPoints[0]?.startTime).toEqual([Math.floor(NOW / 1000), (NOW % 1000) * 1e6]);
    expect(ingested?.dataPoints[0]?.endTime).toEqual([Math.floor(now / 1000), (now % 1000) * 1e6]);
    // Resumed from totals that began a day earlier: the open series and new ones report that start.
    const since = NOW - 86_400_000;
    const streams = producer.sum({ name: METRICS.meterReadingsIngested, unit: '{reading}', description: 'Meter readings handed off' });
    streams.resumeFrom(since);
    telemetry.record({ readings: [reading(2, 'south', 1, 1)], rejections: [], openedAtWall: now }, HANDOFF_MONO, now);
    const second = (await producer.collect()).resourceMetrics.scopeMetrics[0]?.metrics ?? [];
    const points = second.find((m) => m.descriptor.name === METRICS.meterReadingsIngested)?.dataPoints ?? [];
    expect(points.map((p) => [p.attributes, p.value, p.startTime])).toEqual([
      [{ region: 'north' }, 1, [Math.floor(since / 1000), 0]],
      [{ region: 'south' }, 1, [Math.floor(since / 1000), 0]],
    ]);
  });

  it('createTelemetry registers the producer on its extra pull readers: the alert evaluator reads the meter metrics', async () => {
    const reader = new AlertMetricReader();
    const telemetry = createTelemetry({
      config: telemetryConfig({ enabled: false }), site: { id: 's', region: 'north', nominal_frequency_hz: 50 }, logger: silentLogger(),
      serviceVersion: '0', env: {}, extraMetricReaders: [reader],
    });
    try {
      const ingest = new IngestTelemetry(telemetry.cumulativeProducer, telemetry.tracer, 0);
      ingest.record({ readings: [reading(1, 'north', 6000, 1000), reading(2, 'north', 1, 1)], rejections: [drop('north', 'duplicate')], openedAtWall: NOW }, HANDOFF_MONO, NOW);
      const { resourceMetrics } = await reader.collect();
      const snap = snapshotFrom(resourceMetrics, NOW);
      expect(snap.ingested.get('north')).toBe(2);
      expect(snap.dropped.get('north')).toBe(1);
      expect(snap.latency.get('north')?.counts.reduce((a, b) => a + b, 0)).toBe(2);
      expect(snap.dataAge.get('north')?.counts.at(BUCKETS.dataAgeSeconds.indexOf(1800))).toBe(1); // 1000 s: in (900, 1800]
    } finally {
      await telemetry.shutdown(500);
    }
  });
});
