// Shared test wiring for the meter ingest: a typed MqttConfig, an in-memory metric reader and
// span exporter, a wait helper with a bounded deadline, and an ingest with a custom sink on a
// fresh mosquitto.
import mqtt from 'mqtt';
import { MeterProvider, type Histogram as HistogramPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { MeterIngestConfig, MqttConfig } from '../../src/config/site-types.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { CumulativeProducer } from '../../src/telemetry/cumulative-producer.js';
import { PullMetricReader } from '../../src/telemetry/pull-reader.js';
import { startMosquitto } from '../helpers/mosquitto.js';

export function meterIngestConfig(over: Partial<MeterIngestConfig> = {}): MeterIngestConfig {
  return {
    topics: ['meters/#'], qos: 1, region_topic_level: 1, regions: ['north', 'south'],
    batch_max_size: 500, batch_max_wait_ms: 50, max_payload_bytes: 1024 * 1024, future_skew_ms: 300_000,
    dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: 1_000_000, reading_span_ratio: 0.01, ...over,
  };
}

export function mqttConfig(url: string, over: Partial<MqttConfig> = {}, meters: Partial<MeterIngestConfig> = {}): MqttConfig {
  return {
    url, client_id: `gw-test-${Math.random().toString(36).slice(2, 8)}`, protocol_version: 5, session_expiry_ms: 3_600_000,
    keepalive_ms: 30_000, reconnect_min_ms: 50, reconnect_max_ms: 500, meters: meterIngestConfig(meters), ...over,
  };
}

/** A pull reader; given to buildGateway (extraMetricReaders) it also sees the cumulative producer's metrics. */
export class TestReader extends PullMetricReader {}

export class TestTelemetry {
  /** The ems.meter.* counters and histograms: pass it to MeterIngest as `producer`. */
  readonly producer = new CumulativeProducer({ name: 'test' });
  readonly reader = new TestReader();
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly spans = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spans)] });
  readonly meter = this.meterProvider.getMeter('test');
  readonly tracer = this.tracerProvider.getTracer('test');

  constructor() {
    this.reader.addProducer(this.producer);
  }

  async metrics(): Promise<MetricData[]> {
    const { resourceMetrics } = await this.reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  }

  async metric(name: string): Promise<MetricData | undefined> {
    return (await this.metrics()).find((m) => m.descriptor.name === name);
  }

  /** Sum of a counter's points whose attributes include `match`. */
  async counterSum(name: string, match: Record<string, string> = {}): Promise<number> {
    const m = await this.metric(name);
    if (!m) return 0;
    let sum = 0;
    for (const p of m.dataPoints) {
      if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) sum += p.value as number;
    }
    return sum;
  }

  /** Counter sums grouped by one attribute. */
  async counterBy(name: string, attr: string): Promise<Record<string, number>> {
    const m = await this.metric(name);
    const out: Record<string, number> = {};
    for (const p of m?.dataPoints ?? []) {
      const k = String(p.attributes[attr]);
      out[k] = (out[k] ?? 0) + (p.value as number);
    }
    return out;
  }

  async histogramCount(name: string): Promise<number> {
    const m = await this.metric(name);
    return (m?.dataPoints ?? []).reduce((n, p) => n + (p.value as HistogramPoint).count, 0);
  }

  async shutdown(): Promise<void> {
    await this.meterProvider.shutdown();
    await this.tracerProvider.shutdown();
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * A started MeterIngest handing off to `sink`, subscribed on a fresh mosquitto, and a publisher
 * connected to it; what it starts is pushed onto `cleanups` (run them in reverse order).
 */
export async function ingestWithSink(
  sink: ReadingSink, meters: Partial<MeterIngestConfig>, cleanups: Array<() => Promise<void>>,
): Promise<{ ingest: MeterIngest; pub: mqtt.MqttClient }> {
  const m = await startMosquitto();
  cleanups.push(() => m.stop());
  const tel = new TestTelemetry();
  cleanups.push(() => tel.shutdown());
  const ingest = new MeterIngest({
    mqtt: mqttConfig(m.url, {}, meters), clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink,
  });
  await ingest.start();
  cleanups.push(() => ingest.stop());
  await waitFor(() => ingest.status().subscribed, 5000, 'subscribed');
  const pub = await mqtt.connectAsync(m.url, { protocolVersion: 5, reconnectPeriod: 0 });
  cleanups.push(() => pub.endAsync());
  return { ingest, pub };
}
