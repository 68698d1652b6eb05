// The gateway's side of the benchmark: (a) PollerSet over 1,000 devices with decoding, device
// gauges, self-metrics and a real OTLP/HTTP protobuf export every 10 s; (c) the read path
// (endpoint + decode + snapshot + self-metrics) at full speed.
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ExportResult } from '@opentelemetry/core';
import { EndpointPool } from '../../src/modbus/endpoint-pool.js';
import { ModbusMetrics } from '../../src/modbus/poller-metrics.js';
import { DevicePoller } from '../../src/modbus/poller.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { planReads } from '../../src/modbus/read-plan.js';
import { DeviceSnapshot } from '../../src/modbus/snapshot.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { CumulativeProducer } from '../../src/telemetry/cumulative-producer.js';
import { GaugeProducer } from '../../src/telemetry/gauge-producer.js';
import { RESOURCE_ATTRS } from '../../src/telemetry/semconv.js';
import { INSTRUMENTATION_SCOPE } from '../../src/telemetry/setup.js';
import { gatewayTemporality, gatewayViews } from '../../src/telemetry/views.js';
import { benchDevices, benchProfile, benchSite } from './bench-profile.js';
import { ResourceMeter, percentile, sleep, type Msg } from './child.js';
import type { FastParams, RateParams } from './roles-sim-bare.js';

/**
 * The gateway's MeterProvider as createTelemetry builds it: OTLP reader with the device-gauge
 * producer and the cumulative producer (the ems.modbus.* counters and histograms); `cardinalityLimit` is the site's telemetry.cardinality_limit (default 2000: a site of
 * more devices than that raises it, or its per-device series overflow).
 */
function meterProvider(sinkUrl: string, cardinalityLimit = 2000): { provider: MeterProvider; gaugeProducer: GaugeProducer; producer: CumulativeProducer } {
  const otlp = new OTLPMetricExporter({ url: `${sinkUrl}/v1/metrics` });
  // The gateway's temporality choice (gauges DELTA) on the stock exporter.
  const exporter: PushMetricExporter = {
    export: (m: ResourceMetrics, cb: (r: ExportResult) => void) => otlp.export(m, cb),
    forceFlush: () => otlp.forceFlush(),
    shutdown: () => otlp.shutdown(),
    selectAggregationTemporality: gatewayTemporality,
  };
  const resource = resourceFromAttributes({ 'service.name': 'ems-gateway', [RESOURCE_ATTRS.siteId]: 'bench' });
  const gaugeProducer = new GaugeProducer(resource, { name: INSTRUMENTATION_SCOPE }, cardinalityLimit);
  const producer = new CumulativeProducer({ name: INSTRUMENTATION_SCOPE }, cardinalityLimit, Date.now, resource);
  const provider = new MeterProvider({
    resource,
    views: gatewayViews(cardinalityLimit),
    readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 10_000, exportTimeoutMillis: 5_000, metricProducers: [gaugeProducer, producer] })],
  });
  return { provider, gaugeProducer, producer };
}

/** (a) The gateway polling every device at its interval, fully decoded and exported. */
export async function runGateway(p: RateParams & { sinkUrl: string; cardinalityLimit?: number }): Promise<Msg> {
  const { provider, gaugeProducer, producer } = meterProvider(p.sinkUrl, p.cardinalityLimit);
  const cycles: number[] = [];
  let measuring = false;
  let overruns = 0;
  const devices = benchDevices(p.ports, p.units, p.intervalMs);
  const set = new PollerSet(benchSite(devices), {
    clock: systemClock, logger: silentLogger(), meter: provider.getMeter(INSTRUMENTATION_SCOPE), gaugeProducer, producer,
    onCycle: (_id, ms, overrun) => {
      if (!measuring) return;
      cycles.push(ms);
      if (overrun) overruns += 1;
    },
  });
  set.start();
  await sleep(p.warmupS * 1000);
  const meter = new ResourceMeter();
  measuring = true;
  meter.start();
  await sleep(p.durationS * 1000);
  measuring = false;
  const r = meter.stop();
  // Sanity: the values are the simulator's (a constant point and a scale-factor point).
  const first = devices[0]?.id ?? '';
  const valuesOk = set.snapshot.get(first, 'f6')?.value === 106 && set.snapshot.get(first, 'v3')?.value === 233.5;
  const status = set.status();
  const up = status.filter((s) => s.up === true).length;
  const errors = status.reduce((n, s) => n + s.errors, 0);
  await set.stop();
  await provider.shutdown();
  cycles.sort((a, b) => a - b);
  return {
    type: 'result', polls: cycles.length, polls_per_s: cycles.length / r.elapsedS, cycle_p50_ms: percentile(cycles, 0.5),
    cycle_p99_ms: percentile(cycles, 0.99), cycle_max_ms: cycles[cycles.length - 1] ?? 0, overruns, up, errors,
    values_ok: valuesOk, cpu_pct: r.cpuPct, rss_mb: r.rssMb, heap_mb: r.heapMb,
  };
}

/**
 * (c) The gateway's read path at full speed: the pollers' own cycle (endpoint, decode, snapshot,
 * self-metrics) called back to back, one loop per endpoint over its devices.
 */
export async function runGatewayFast(p: FastParams & { sinkUrl: string }): Promise<Msg> {
  const { provider, producer } = meterProvider(p.sinkUrl);
  const metrics = new ModbusMetrics(provider.getMeter(INSTRUMENTATION_SCOPE), producer);
  const pool = new EndpointPool({ clock: systemClock, logger: silentLogger(), observer: metrics });
  const profile = benchProfile();
  const plan = planReads(profile).requests;
  const snapshot = new DeviceSnapshot();
  const devices = benchDevices(p.ports, p.units, 1000);
  const pollers = devices.map((d) => {
    snapshot.register(d, profile);
    const poller = new DevicePoller(d, profile, { clock: systemClock, logger: silentLogger(), endpoint: pool.forDevice(d, profile), snapshot, observer: metrics, plan });
    poller.prepare();
    return poller;
  });
  const byEndpoint = p.ports.map((_, e) => pollers.slice(e * p.units, (e + 1) * p.units));
  // Connect first so the window measures requests, not handshakes.
  await Promise.all(byEndpoint.map((ps) => ps[0]?.cycle()));
  let n = 0;
  const end = performance.now() + p.seconds * 1000;
  const meter = new ResourceMeter();
  meter.start();
  await Promise.all(byEndpoint.map(async (ps) => {
    for (let i = 0; performance.now() < end; i = (i + 1) % ps.length) {
      const poller = ps[i];
      if (poller === undefined) break;
      await poller.cycle();
      n += 1;
    }
  }));
  const r = meter.stop();
  const up = pollers.filter((x) => x.isUp === true).length;
  await pool.close();
  await provider.shutdown();
  return { type: 'result', requests: n, requests_per_s: n / r.elapsedS, cpu_pct: r.cpuPct, up };
}
