// The ems.modbus.* counters and histograms through the CumulativeProducer (the gateway's path)
// report exactly what the SDK instruments report under the gateway's views: names, units,
// descriptions, attributes, temporality, counts, sums, min/max and bucket boundaries and counts.
import type { MetricData } from '@opentelemetry/sdk-metrics';
import { MeterProvider, MetricReader, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { ModbusMetrics } from '../../src/modbus/poller-metrics.js';
import type { RequestEvent } from '../../src/modbus/endpoint.js';
import { CumulativeProducer } from '../../src/telemetry/cumulative-producer.js';
import { BUCKETS, METRICS } from '../../src/telemetry/semconv.js';
import { gatewayTemporality, gatewayViews } from '../../src/telemetry/views.js';

class Reader extends MetricReader {
  constructor(producers: MetricProducer[] = []) {
    super({ aggregationTemporalitySelector: gatewayTemporality, metricProducers: producers });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const LIMIT = 50;

function sdkSide(): { metrics: ModbusMetrics; reader: Reader } {
  const reader = new Reader();
  const provider = new MeterProvider({ views: gatewayViews(LIMIT), readers: [reader] });
  return { metrics: new ModbusMetrics(provider.getMeter('ems-gateway')), reader };
}

function producerSide(): { metrics: ModbusMetrics; reader: Reader; producer: CumulativeProducer } {
  const producer = new CumulativeProducer({ name: 'ems-gateway' }, LIMIT);
  const reader = new Reader([producer]);
  const provider = new MeterProvider({ views: gatewayViews(LIMIT), readers: [reader] });
  return { metrics: new ModbusMetrics(provider.getMeter('ems-gateway'), producer), reader, producer };
}

const ev = (over: Partial<RequestEvent>): RequestEvent => ({
  endpoint: '127.0.0.1:502', deviceId: 'inv-1', unitId: 1, table: 'holding', write: false, sent: true,
  durationMs: 3, bytesOut: 12, bytesIn: 129, error: undefined, ...over,
});

/** The same traffic for both: good reads, timeouts, refusals, exceptions, strays, garbage, cycles on bucket edges. */
function feed(m: ModbusMetrics): void {
  const durations = [0.2, 0.5, 1, 4.9, 5, 26, 5000, 7000];
  durations.forEach((d, i) => m.requestDone(ev({ durationMs: d, deviceId: i % 2 === 0 ? 'inv-1' : 'inv-2', unitId: i % 2 === 0 ? 1 : 2 })));
  m.requestDone(ev({ deviceId: 'inv-2', unitId: 2, durationMs: 1000, bytesIn: 0, error: 'timeout' }));
  m.requestDone(ev({ deviceId: 'inv-2', unitId: 2, sent: false, durationMs: 0, bytesOut: 0, bytesIn: 0, error: 'unit_backed_off' }));
  m.requestDone(ev({ deviceId: undefined, unitId: 7, table: 'coil', write: true, durationMs: 12, bytesIn: 9, error: 'exception_illegal_address' }));
  m.stray('127.0.0.1:502', 11);
  m.malformed('127.0.0.1:502');
  m.garbage({ endpoint: '127.0.0.1:502', deviceId: 'inv-1', unitId: 1 });
  m.decodeError('inv-1', 'implausible');
  for (const ms of [1, 9.5, 250, 1200, 20_000]) m.cycleDone('inv-1', ms, ms > 1000);
  m.cycleDone('inv-2', 40, false);
}

/** Everything of a metric but its times, its points in a stable order. */
function comparable(metrics: MetricData[]): unknown[] {
  return metrics.filter((m) => m.descriptor.name.startsWith('ems.modbus.')).map((m) => ({
    name: m.descriptor.name, unit: m.descriptor.unit, description: m.descriptor.description, valueType: m.descriptor.valueType,
    type: m.dataPointType, temporality: m.aggregationTemporality, monotonic: 'isMonotonic' in m ? m.isMonotonic : undefined,
    points: m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })).sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes))),
  })).sort((a, b) => a.name.localeCompare(b.name));
}

async function collect(r: Reader): Promise<MetricData[]> {
  const { resourceMetrics } = await r.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

describe('ems.modbus.* through the cumulative producer', () => {
  it('reports what the SDK instruments report, twice in a row (cumulative)', async () => {
    const sdk = sdkSide();
    const prod = producerSide();
    for (let round = 0; round < 2; round++) {
      feed(sdk.metrics);
      feed(prod.metrics);
      const a = comparable(await collect(sdk.reader));
      const b = comparable(await collect(prod.reader));
      expect(a.map((m) => (m as { name: string }).name)).toEqual([
        METRICS.modbusBytes, METRICS.modbusErrors, METRICS.modbusMalformedFrames, METRICS.modbusPollCycleDuration,
        METRICS.modbusPollOverruns, METRICS.modbusRequestDuration, METRICS.modbusRequests, METRICS.modbusStrayResponses,
      ].sort());
      expect(b).toEqual(a);
    }
    // The buckets are semconv's, and the totals the status page shows are the same.
    const hist = (await collect(prod.reader)).find((m) => m.descriptor.name === METRICS.modbusRequestDuration);
    const point = hist?.dataPoints[0]?.value as { buckets: { boundaries: number[] } } | undefined;
    expect(point?.buckets.boundaries).toEqual([...BUCKETS.modbusRequestMs]);
    expect(prod.metrics.totals()).toEqual(sdk.metrics.totals());
    expect(prod.metrics.totals().requests).toBe(2 * 10);
  });

  it('two ModbusMetrics on one producer (a PollerSet started again) continue the same series', async () => {
    const prod = producerSide();
    prod.metrics.requestDone(ev({}));
    const again = new ModbusMetrics(new MeterProvider().getMeter('x'), prod.producer);
    again.requestDone(ev({}));
    const requests = (await collect(prod.reader)).find((m) => m.descriptor.name === METRICS.modbusRequests);
    expect(requests?.dataPoints.map((p) => p.value)).toEqual([2]);
  });
});
