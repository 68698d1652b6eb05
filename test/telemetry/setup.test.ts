// createTelemetry against a real HTTP receiver decoding OTLP protobuf with the official schema.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/runtime/logger.js';
import { BUCKETS, METRICS, METRIC_UNITS, RESOURCE_ATTRS, SPANS } from '../../src/telemetry/semconv.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/setup.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { telemetryConfig } from './fixtures.js';

const site = { id: 'test-site', region: 'north', nominal_frequency_hz: 50 as const };

describe('createTelemetry', () => {
  let receiver: OtlpReceiver;
  let telemetry: Telemetry | undefined;
  beforeEach(async () => { receiver = await OtlpReceiver.start(); });
  afterEach(async () => {
    await telemetry?.shutdown(2000);
    telemetry = undefined;
    await receiver.stop();
  });

  it('exports metrics and spans as OTLP protobuf with the site on the resource', async () => {
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: receiver.url, otlp_headers: { 'x-site-token': 'abc' } }),
      site, logger: silentLogger(), serviceVersion: '1.2.3', env: {},
    });
    const hist = telemetry.meter.createHistogram(METRICS.meterIngestionLatency, { unit: METRIC_UNITS.meterIngestionLatency });
    hist.record(4999, { region: 'north' });
    hist.record(5001, { region: 'north' });
    telemetry.meter.createCounter(METRICS.meterReadingsIngested, { unit: METRIC_UNITS.meterReadingsIngested }).add(3, { region: 'north' });
    telemetry.tracer.startActiveSpan(SPANS.gridStateUpdate, (span) => { span.setAttribute('ems.grid.frequency_hz', 50.01); span.end(); });
    await telemetry.forceFlush();
    await receiver.waitFor((r) => r.metricNames().has(METRICS.meterReadingsIngested) && r.spans().length > 0, 5000, 'export');

    const [latency] = receiver.metric(METRICS.meterIngestionLatency);
    expect(latency?.kind).toBe('histogram');
    expect(latency?.unit).toBe('ms');
    expect(latency?.points[0]?.explicitBounds).toEqual(BUCKETS.ingestionLatencyMs);
    // 4999 and 5001 fall either side of the 5000 ms edge: the alert threshold is resolved exactly.
    const bounds = latency?.points[0]?.explicitBounds ?? [];
    const counts = latency?.points[0]?.bucketCounts ?? [];
    const edge = bounds.indexOf(5000);
    expect(counts[edge]).toBe(1);
    expect(counts[edge + 1]).toBe(1);
    const [ingested] = receiver.metric(METRICS.meterReadingsIngested);
    expect(ingested).toMatchObject({ kind: 'sum', monotonic: true, temporality: 2, unit: '{reading}' });
    expect(ingested?.points[0]).toMatchObject({ value: 3, attributes: { region: 'north' } });
    const span = receiver.spans()[0];
    expect(span?.name).toBe(SPANS.gridStateUpdate);
    expect(span?.scope).toBe('ems-gateway');
    expect(span?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span?.resource).toMatchObject({
      'service.name': 'ems-gateway', 'service.version': '1.2.3', [RESOURCE_ATTRS.siteId]: 'test-site', [RESOURCE_ATTRS.siteRegion]: 'north',
    });
    expect(typeof span?.resource['service.instance.id']).toBe('string');
    expect(typeof span?.resource['host.name']).toBe('string');
    expect(telemetry.exporterHealth().metrics.state).toBe('ok');
    expect(telemetry.exporterHealth().traces.state).toBe('ok');
  });

  it('OTEL_* environment wins over the site file', async () => {
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: 'http://127.0.0.1:9', service_name: 'from-file', resource_attributes: { 'deployment.environment': 'file' } }),
      site, logger: silentLogger(), serviceVersion: '1.0.0',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'from-env', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=env,rack=r%201' },
    });
    telemetry.meter.createCounter('ems.test.counter').add(1);
    await telemetry.forceFlush();
    await receiver.waitFor((r) => r.metricNames().has('ems.test.counter'), 5000, 'export');
    expect(receiver.resourceAttributes()[0]).toMatchObject({ 'service.name': 'from-env', 'deployment.environment': 'env', rack: 'r 1' });
  });

  it('shutdown flushes what was recorded since the last export, on both signals', async () => {
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: receiver.url }), site, logger: silentLogger(), serviceVersion: '1.0.0', env: {},
    });
    telemetry.meter.createCounter(METRICS.meterReadingsDropped, { unit: METRIC_UNITS.meterReadingsDropped }).add(2, { region: 'north', error_type: 'duplicate' });
    telemetry.tracer.startSpan(SPANS.drSend).end();
    await telemetry.shutdown(3000);
    expect(receiver.metric(METRICS.meterReadingsDropped)[0]?.points[0]?.value).toBe(2);
    expect(receiver.spanNames()).toContain(SPANS.drSend);
    await telemetry.shutdown(3000);   // idempotent
  });

  it('OTEL_SDK_DISABLED=true: nothing is sent, the providers still work for local readers', async () => {
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: receiver.url }), site, logger: silentLogger(), serviceVersion: '1.0.0', env: { OTEL_SDK_DISABLED: 'true' },
    });
    telemetry.meter.createCounter('ems.test.counter').add(1);
    telemetry.tracer.startSpan('ems.test.span').end();
    await telemetry.forceFlush();
    await telemetry.shutdown(1000);
    expect(receiver.stats.metricsRequests + receiver.stats.tracesRequests).toBe(0);
    expect(telemetry.exporterHealth().metrics.state).toBe('disabled');
  });

  it('shutdown is bounded when the collector is unreachable', async () => {
    await receiver.stop();
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: receiver.url, export_timeout_ms: 500 }),
      site, logger: silentLogger(), serviceVersion: '1.0.0', env: {},
    });
    telemetry.meter.createCounter('ems.test.counter').add(1);
    telemetry.tracer.startSpan('ems.test.span').end();
    const t0 = performance.now();
    await telemetry.shutdown(1500);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
