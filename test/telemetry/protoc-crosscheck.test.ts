// A second, independent decoder: protoc --decode (Debian protobuf-compiler) reads the same bytes
// the receiver got, against the same vendored official schema, and must see the same names.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS, METRIC_UNITS, SPANS } from '../../src/telemetry/semconv.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/setup.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { hasPeer } from '../peers.js';
import { telemetryConfig } from './fixtures.js';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/otlp-proto');
const PROTOC = '/usr/bin/protoc';
// The preflight fails a run without protoc unless EMS_TEST_PEERS=optional (test/peers.ts).
const haveProtoc = hasPeer('protoc');

function protocDecode(message: string, file: string, body: Buffer): string {
  const r = spawnSync(PROTOC, [`--decode=${message}`, `-I${PROTO_DIR}`, file], { input: body, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`protoc failed: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!haveProtoc)('protoc cross-check of the exported bytes', () => {
  let receiver: OtlpReceiver | undefined;
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown(1000);
    await receiver?.stop();
  });

  it('protoc decodes the same metric and span names, units and resource', async () => {
    const rx = await OtlpReceiver.start();
    receiver = rx;
    telemetry = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: rx.url }), site: { id: 'xcheck', region: 'east', nominal_frequency_hz: 60 },
      logger: silentLogger(), serviceVersion: '1.0.0', env: {},
    });
    telemetry.meter.createHistogram(METRICS.meterDataAge, { unit: METRIC_UNITS.meterDataAge }).record(901, { region: 'east' });
    telemetry.tracer.startSpan(SPANS.meterProcessBatch, { attributes: { 'ems.batch.size': 3 } }).end();
    await telemetry.forceFlush();
    await rx.waitFor((r) => r.bodies.some((b) => b.path === '/v1/metrics') && r.bodies.some((b) => b.path === '/v1/traces'), 5000, 'both signals');

    const metrics = rx.bodies.find((b) => b.path === '/v1/metrics');
    const traces = rx.bodies.find((b) => b.path === '/v1/traces');
    const m = protocDecode('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest', 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto', metrics?.body ?? Buffer.alloc(0));
    expect(m).toContain(`name: "${METRICS.meterDataAge}"`);
    expect(m).toContain('unit: "s"');
    expect(m).toContain('explicit_bounds: 900');
    expect(m).toMatch(/key: "ems\.site\.id"\s+value \{\s+string_value: "xcheck"/);
    const t = protocDecode('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest', 'opentelemetry/proto/collector/trace/v1/trace_service.proto', traces?.body ?? Buffer.alloc(0));
    expect(t).toContain(`name: "${SPANS.meterProcessBatch}"`);
    expect(t).toMatch(/key: "ems\.batch\.size"\s+value \{\s+int_value: 3/);
    // And the receiver's protobufjs decoding agrees.
    expect(rx.metric(METRICS.meterDataAge)[0]?.unit).toBe('s');
    expect(rx.spans()[0]?.attributes['ems.batch.size']).toBe(3);
  });
});
