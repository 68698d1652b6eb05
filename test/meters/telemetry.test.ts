// The ems.meter.* contract of product.md: metric names, kinds, units, attributes and histogram
// boundaries; batch spans complete, reading spans sampled at the configured ratio as children.
import mqtt from 'mqtt';
import { DataPointType, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS, SPANS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

describe('meter ingest telemetry', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function setup(ratio: number): Promise<{ ingest: MeterIngest; tel: TestTelemetry; pub: mqtt.MqttClient }> {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = new MeterIngest({
      mqtt: mqttConfig(broker.url, { protocol_version: 4 }, { reading_span_ratio: ratio }),
      clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
    });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    await waitFor(() => ingest.status().subscribed, 5000, 'subscribed');
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    return { ingest, tel, pub };
  }

  const reading = (i: number, region: string, ageS: number): Record<string, unknown> => ({
    meter_id: `m-${i}`, timestamp: Date.now() - ageS * 1000, kwh: 10 + i, voltage: 230, current: 10, power_factor: 0.5, region,
  });

  it('metrics: names, kinds, units, attributes (never meter_id) and boundaries that resolve 5 s and 900 s', async () => {
    const { ingest, tel, pub } = await setup(0.01);
    await pub.publishAsync('meters/north/a', JSON.stringify(Array.from({ length: 30 }, (_, i) => reading(i, 'north', 1000))), { qos: 1 });
    await pub.publishAsync('meters/south/b', JSON.stringify([reading(100, 'south', 2), { ...reading(101, 'south', 2), voltage: -3 }]), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 31 && ingest.status().readings_dropped === 1, 5000, 'counted');

    const metrics = await tel.metrics();
    const byName = new Map(metrics.map((m) => [m.descriptor.name, m]));
    const ingested = byName.get(METRICS.meterReadingsIngested);
    expect(ingested?.dataPointType).toBe(DataPointType.SUM);
    expect(ingested?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ region: 'north' }, 30], [{ region: 'south' }, 1]]);
    const dropped = byName.get(METRICS.meterReadingsDropped);
    expect(dropped?.dataPointType).toBe(DataPointType.SUM);
    expect(dropped?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ region: 'south', error_type: 'out_of_range' }, 1]]);

    const latency = byName.get(METRICS.meterIngestionLatency) as HistogramMetricData | undefined;
    expect(latency?.descriptor.unit).toBe('ms');
    expect(latency?.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(latency?.dataPoints.map((p) => p.attributes)).toEqual([{ region: 'north' }, { region: 'south' }]);
    expect(latency?.dataPoints[0]?.value.buckets.boundaries).toContain(5000);
    expect(latency?.dataPoints[0]?.value.count).toBe(30);

    const age = byName.get(METRICS.meterDataAge) as HistogramMetricData | undefined;
    expect(age?.descriptor.unit).toBe('s');
    const north = age?.dataPoints.find((p) => p.attributes['region'] === 'north');
    expect(north?.value.buckets.boundaries).toContain(900);
    // 1000 s old readings land above the 900 s boundary (stale meter data alert).
    const idx900 = north?.value.buckets.boundaries.indexOf(900) ?? -1;
    const above = north?.value.buckets.counts.slice(idx900 + 1).reduce((a, b) => a + b, 0);
    expect(above).toBe(30);
    for (const m of metrics) {
      if (!m.descriptor.name.startsWith('ems.meter.')) continue;
      for (const p of m.dataPoints) expect(Object.keys(p.attributes)).not.toContain('meter_id');
    }
  });

  it('spans: one process_batch per batch with its attributes, process_reading children sampled at the ratio', async () => {
    const { ingest, tel, pub } = await setup(0.1);
    const batch = Array.from({ length: 99 }, (_, i) => reading(i, 'north', 5));
    batch.push({ ...reading(99, 'north', 5), power_factor: 7 });
    await pub.publishAsync('meters/north/a', JSON.stringify(batch), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested + ingest.status().readings_dropped === 100, 5000, 'counted');

    const spans = tel.spans.getFinishedSpans();
    const batches = spans.filter((s) => s.name === SPANS.meterProcessBatch);
    const readings = spans.filter((s) => s.name === SPANS.meterProcessReading);
    expect(batches).toHaveLength(1);
    const b = batches[0];
    expect(b?.attributes).toMatchObject({ 'ems.batch.size': 100, 'ems.batch.success': 99, 'ems.batch.failed': 1 });
    expect(typeof b?.attributes['ems.batch.duration_ms']).toBe('number');
    expect(readings).toHaveLength(10); // exactly ratio x readings, spread evenly
    for (const r of readings) {
      expect(r.parentSpanContext?.spanId).toBe(b?.spanContext().spanId);
      expect(r.spanContext().traceId).toBe(b?.spanContext().traceId);
      expect(r.attributes['ems.region']).toBe('north');
      expect(String(r.attributes['ems.meter_id'])).toMatch(/^m-\d+$/);
      expect(typeof r.attributes['ems.write_latency_ms']).toBe('number');
    }
    const failed = readings.filter((r) => r.attributes['ems.validation'] !== undefined);
    expect(failed.map((r) => [r.attributes['ems.validation'], r.attributes['ems.meter_id'], r.status.code]))
      .toEqual([['out_of_range', 'm-99', SpanStatusCode.ERROR]]);
  });

  it('grid source: one load sample per region in W from V x I x PF; stale meters drop out', async () => {
    const { ingest, pub } = await setup(0);
    await pub.publishAsync('meters/north/a', JSON.stringify([reading(1, 'north', 1), reading(2, 'north', 1), reading(3, 'north', 400)]), { qos: 1 });
    await pub.publishAsync('meters/south/a', JSON.stringify(reading(4, 'south', 1)), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 4, 5000, 'ingested');
    // meter_stale_after_ms is 300 s: the 400 s old reading of m-3 does not count.
    const samples = ingest.gridSamples();
    expect(samples.map((s) => [s.source, s.point, s.role, s.unit, s.value])).toEqual([
      ['meters:north', 'power', 'load', 'W', 2 * 230 * 10 * 0.5],
      ['meters:south', 'power', 'load', 'W', 230 * 10 * 0.5],
    ]);
    expect(samples[0]?.observedAtMs).toBeGreaterThan(Date.now() - 5000);
    const s = ingest.status();
    expect(s).toMatchObject({ connected: true, subscribed: true, messages: 2, readings_ingested: 4, readings_dropped: 0, queued_readings: 0 });
    expect(s.last_message_age_ms).toBeLessThan(5000);
    await waitFor(() => ingest.status().flow_confirmed, 6000, 'probe');
  });
});
