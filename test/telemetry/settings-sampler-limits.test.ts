// Env precedence, the span-name sampler, and the stated cardinality limit, without sockets.
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SamplingDecision, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { silentLogger } from '../../src/runtime/logger.js';
import { createGatewaySampler } from '../../src/telemetry/sampler.js';
import { METRICS, SPANS } from '../../src/telemetry/semconv.js';
import { resolveTelemetrySettings } from '../../src/telemetry/settings.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/setup.js';
import { gatewayViews } from '../../src/telemetry/views.js';
import { telemetryConfig } from './fixtures.js';

const site = { id: 'site-1', region: 'north', nominal_frequency_hz: 60 as const };

describe('resolveTelemetrySettings', () => {
  const resolve = (env: NodeJS.ProcessEnv, over = {}) =>
    resolveTelemetrySettings({ config: telemetryConfig(over), site, env, serviceVersion: '9.9.9', hostName: 'gw-host' });

  it('defaults: localhost:4318, resource from the site and host', () => {
    const s = resolve({});
    expect(s.metricsUrl).toBe('http://localhost:4318/v1/metrics');
    expect(s.tracesUrl).toBe('http://localhost:4318/v1/traces');
    expect(s.resourceAttributes).toEqual({
      'service.name': 'ems-gateway', 'service.version': '9.9.9', 'service.instance.id': 'site-1@gw-host',
      'host.name': 'gw-host', 'ems.site.id': 'site-1', 'ems.site.region': 'north',
    });
    expect(s.enabled).toBe(true);
  });

  it('site file sets endpoint, headers, interval; env wins over each', () => {
    const file = { otlp_endpoint: 'https://collector.example:4318/', otlp_headers: { authorization: 'Bearer file', 'x-a': '1' }, export_interval_ms: 30_000 };
    expect(resolve({}, file)).toMatchObject({ metricsUrl: 'https://collector.example:4318/v1/metrics', metricsHeaders: { authorization: 'Bearer file', 'x-a': '1' }, exportIntervalMs: 30_000 });
    const s = resolve({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces-only:4318/custom/path',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20env',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-a=2',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
    }, file);
    expect(s.metricsUrl).toBe('http://env:4318/v1/metrics');
    expect(s.tracesUrl).toBe('http://traces-only:4318/custom/path');   // per-signal endpoints are used as is
    expect(s.metricsHeaders).toEqual({ authorization: 'Bearer env', 'x-a': '2' });
    expect(s.tracesHeaders).toEqual({ authorization: 'Bearer env', 'x-a': '1' });
    expect(s.exportIntervalMs).toBe(5000);
  });

  it('span queue and batch size: site file, OTEL_BSP_* env wins, the batch never above the queue', () => {
    expect(resolve({})).toMatchObject({ spanQueueSize: 2048, spanBatchSize: 512 });
    expect(resolve({}, { span_queue_size: 20_000, span_batch_size: 1000 })).toMatchObject({ spanQueueSize: 20_000, spanBatchSize: 1000 });
    expect(resolve({ OTEL_BSP_MAX_QUEUE_SIZE: '4096', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '256' }, { span_queue_size: 20_000 }))
      .toMatchObject({ spanQueueSize: 4096, spanBatchSize: 256 });
    expect(resolve({ OTEL_BSP_MAX_QUEUE_SIZE: '100' })).toMatchObject({ spanQueueSize: 100, spanBatchSize: 100 });
    expect(resolve({ OTEL_BSP_MAX_QUEUE_SIZE: 'lots' })).toMatchObject({ spanQueueSize: 2048 });
  });

  it('OTEL_SDK_DISABLED=true or enabled: false turns export off; a bad interval falls back', () => {
    expect(resolve({ OTEL_SDK_DISABLED: 'TRUE' }).enabled).toBe(false);
    expect(resolve({}, { enabled: false }).enabled).toBe(false);
    expect(resolve({ OTEL_SDK_DISABLED: 'false' }).enabled).toBe(true);
    expect(resolve({ OTEL_METRIC_EXPORT_INTERVAL: 'soon' }).exportIntervalMs).toBe(60_000);
    expect(resolve({ OTEL_METRIC_EXPORT_INTERVAL: '1000' }, { export_timeout_ms: 5000 }).exportTimeoutMs).toBe(1000);
  });

  it('resource: site file attributes, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME', () => {
    const s = resolve(
      { OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=gw-2,deployment.environment=prod', OTEL_SERVICE_NAME: 'ems-edge' },
      { resource_attributes: { 'deployment.environment': 'lab', rack: 'r7' }, service_name: 'from-file' },
    );
    expect(s.resourceAttributes).toMatchObject({ 'service.name': 'ems-edge', 'service.instance.id': 'gw-2', 'deployment.environment': 'prod', rack: 'r7' });
  });
});

describe('span-name sampler', () => {
  it('records process_reading at the ratio, everything else always, and never under an unsampled parent', () => {
    let n = 0;
    const sampler = createGatewaySampler({ [SPANS.meterProcessReading]: 0.25 }, () => (n++ % 4) / 4);
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED });
    const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.NONE });
    const decide = (ctx: typeof ROOT_CONTEXT, name: string) => sampler.shouldSample(ctx, 'a'.repeat(32), name, SpanKind.INTERNAL, {}, []).decision;
    const readings = Array.from({ length: 100 }, () => decide(sampledParent, SPANS.meterProcessReading));
    expect(readings.filter((d) => d === SamplingDecision.RECORD_AND_SAMPLED)).toHaveLength(25);
    expect(decide(ROOT_CONTEXT, SPANS.meterProcessBatch)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(sampledParent, SPANS.drControllerCmd)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(unsampledParent, SPANS.drControllerCmd)).toBe(SamplingDecision.NOT_RECORD);
  });

  it('an unsampled reading span is not recording, so the ingest can skip its attributes', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ sampler: createGatewaySampler({ [SPANS.meterProcessReading]: 0 }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('t');
    const batch = tracer.startSpan(SPANS.meterProcessBatch);
    const reading = tracer.startSpan(SPANS.meterProcessReading, {}, trace.setSpan(ROOT_CONTEXT, batch));
    expect(reading.isRecording()).toBe(false);
    reading.end();
    batch.end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([SPANS.meterProcessBatch]);
  });
});

describe('cardinality limit', () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => { await telemetry?.shutdown(500); telemetry = undefined; });

  class PullReader extends MetricReader {
    protected override async onForceFlush(): Promise<void> {}
    protected override async onShutdown(): Promise<void> {}
  }

  it('caps every gateway metric at telemetry.cardinality_limit attribute sets, overflow folded into one', async () => {
    const reader = new PullReader();
    telemetry = createTelemetry({
      config: telemetryConfig({ cardinality_limit: 50, enabled: false }), site, logger: silentLogger(), serviceVersion: '0', env: {},
      extraMetricReaders: [reader],
    });
    const dropped = telemetry.meter.createCounter(METRICS.meterReadingsDropped);
    for (let i = 0; i < 500; i++) dropped.add(1, { region: `r${i}` });   // what a meter_id attribute would do
    const { resourceMetrics } = await reader.collect();
    const m = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === METRICS.meterReadingsDropped);
    const points = m?.dataPoints ?? [];
    expect(points).toHaveLength(50);
    const overflow = points.find((p) => p.attributes['otel.metric.overflow'] === true);
    expect(overflow?.value).toBe(500 - 49);
    expect(points.reduce((a, p) => a + (p.value as number), 0)).toBe(500);   // nothing lost, only folded
  });

  it('the default limit is 2000 (the SDK cap the field notes cite), one view per semconv metric', () => {
    expect(telemetryConfig().cardinality_limit).toBe(2000);
    const views = gatewayViews(2000);
    expect(views).toHaveLength(Object.keys(METRICS).length);
    expect(views.every((v) => v.aggregationCardinalityLimit === 2000)).toBe(true);
  });
});
