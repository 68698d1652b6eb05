// Device gauges through the GaugeProducer (the gateway's path) report exactly what the observable
// gauges report (names, units, attributes, values), drop stale values the same way, and keep the
// cardinality limit.
import { MeterProvider, MetricReader, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceGauges, FINAL_FIGURES_MS } from '../../src/modbus/device-metrics.js';
import { DeviceSnapshot } from '../../src/modbus/snapshot.js';
import type { Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { GaugeProducer } from '../../src/telemetry/gauge-producer.js';
import { gatewayTemporality } from '../../src/telemetry/views.js';
import { flatten, testDevice, testProfile, type Point } from './poller-fixtures.js';

class Reader extends MetricReader {
  constructor(producers: MetricProducer[] = []) {
    super({ aggregationTemporalitySelector: gatewayTemporality, metricProducers: producers });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const profile = testProfile();
const devices = [testDevice('inv-1', 1, 1), testDevice('inv-2', 1, 2, { zone: 'zone-b', role: 'pv' })];
const polled = devices.map((device) => ({ device, profile }));

let nowMs = 1_700_000_000_000;
const clock = { now: () => nowMs } as unknown as Clock;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function fill(snap: DeviceSnapshot, at: number): void {
  for (const d of devices) snap.register(d, profile);
  snap.set('inv-1', 'w', 123.4, at);
  snap.set('inv-1', 'hz', 50.01, at);
  snap.set('inv-1', 'wh', 70_000, at);
  snap.set('inv-2', 'w', 99, at);
  snap.set('inv-2', 'temp', 21.5, at - 60_000); // stale: older than 5 s
}

function build(snap: DeviceSnapshot, viaProducer: boolean, limit = 2000): { gauges: DeviceGauges; collect: () => Promise<{ points: Point[]; errors: unknown[] }> } {
  const resource = resourceFromAttributes({ 'service.name': 'test' });
  const producer = new GaugeProducer(resource, { name: 'ems-gateway' }, limit, clock.now);
  const reader = new Reader(viaProducer ? [producer] : []);
  const provider = new MeterProvider({ resource, readers: [reader] });
  const gauges = new DeviceGauges({
    meter: provider.getMeter('ems-gateway'), snapshot: snap, clock, logger: silentLogger(),
    isUp: (id) => (id === 'inv-1' ? true : undefined), ...(viaProducer ? { producer } : {}),
  }, polled);
  gauges.start();
  stops.push(async () => {
    gauges.stop();
    await provider.shutdown();
  });
  return {
    gauges,
    collect: async () => {
      const r = await reader.collect();
      return { points: flatten(r.resourceMetrics), errors: r.errors };
    },
  };
}

const key = (p: Point): string => `${p.name}|${p.unit}|${JSON.stringify(p.attrs)}|${p.value}`;

describe('device gauges through the GaugeProducer', () => {
  it('report the same series as the observable gauges, stale values excluded', async () => {
    const snap = new DeviceSnapshot();
    fill(snap, nowMs);
    const sdk = await build(snap, false).collect();
    const direct = await build(snap, true).collect();
    expect(direct.errors).toEqual([]);
    expect(direct.points.map(key).sort()).toEqual(sdk.points.map(key).sort());
    expect(direct.points).toHaveLength(5); // up(inv-1) + 3 values of inv-1 + w of inv-2; temp is stale
    const w2 = direct.points.find((p) => p.name === 'ems.device.ac_power' && p.attrs['device_id'] === 'inv-2');
    expect(w2).toEqual({ name: 'ems.device.ac_power', unit: 'W', value: 99, attrs: { device_id: 'inv-2', zone: 'zone-b', role: 'pv', point: 'w' } });
    expect(direct.points.some((p) => p.name === 'ems.modbus.device.up' && p.value === 1 && p.attrs['device_id'] === 'inv-1')).toBe(true);
  });

  it('drop a value once it is stale and report it again when fresh', async () => {
    const snap = new DeviceSnapshot();
    fill(snap, nowMs);
    const g = build(snap, true);
    expect((await g.collect()).points.filter((p) => p.name === 'ems.device.frequency')).toHaveLength(1);
    nowMs += 6_000;
    expect((await g.collect()).points.filter((p) => p.name !== 'ems.modbus.device.up')).toEqual([]);
    snap.set('inv-1', 'hz', 49.9, nowMs);
    expect((await g.collect()).points.filter((p) => p.name === 'ems.device.frequency').map((p) => p.value)).toEqual([49.9]);
  });

  it.each([true, false])('frozen at shutdown: the figures of that moment, each only while it would be fresh (producer: %s)', async (viaProducer) => {
    const snap = new DeviceSnapshot();
    fill(snap, nowMs);
    const g = build(snap, viaProducer);
    const before = (await g.collect()).points.map(key).sort();
    g.gauges.freeze();
    for (const d of devices) snap.clear(d.id); // what the stopping pollers do
    expect((await g.collect()).points.map(key).sort()).toEqual(before);
    // The devices' staleness bound is 5 s (3 x 200 ms, at least 5 s): well inside FINAL_FIGURES_MS,
    // a frozen value and the frozen availability end where a live one would have gone stale.
    expect(FINAL_FIGURES_MS).toBeGreaterThan(5_001);
    nowMs += 5_000;
    expect((await g.collect()).points.map(key).sort()).toEqual(before);
    nowMs += 1;
    expect((await g.collect()).points).toEqual([]);
  });

  it('frozen figures of values read earlier end earlier: their own staleness bound, not the freeze time', async () => {
    const snap = new DeviceSnapshot();
    fill(snap, nowMs - 4_000);                // read 4 s before the shutdown
    const g = build(snap, true);
    g.gauges.freeze();
    for (const d of devices) snap.clear(d.id);
    nowMs += 1_001;                           // 5.001 s after they were read: stale; up is still within its bound
    expect((await g.collect()).points.map((p) => `${p.name}:${String(p.attrs['device_id'])}:${p.value}`)).toEqual(['ems.modbus.device.up:inv-1:1']);
  });

  it('keep the cardinality limit per metric and say so', async () => {
    const snap = new DeviceSnapshot();
    fill(snap, nowMs);
    const r = await build(snap, true, 1).collect();
    expect(r.points.filter((p) => p.name === 'ems.device.ac_power')).toHaveLength(1);
    expect(String(r.errors[0])).toMatch(/cardinality limit 1/);
  });
});
