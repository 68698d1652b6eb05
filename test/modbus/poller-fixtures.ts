// A small device profile and site for poller tests, plus a metric reader tests can collect from.
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';
import { gatewayTemporality } from '../../src/telemetry/views.js';
import { pino } from 'pino';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { jsonLines } from '../helpers/capture.js';

export const TEST_POINTS: PointDef[] = [
  { id: 'w', table: 'holding', address: 0, type: 'int16', scale_factor: 'w_sf', unit: 'W', metric: 'ems.device.ac_power', role: 'generation' },
  { id: 'w_sf', table: 'holding', address: 1, type: 'int16', role: 'scale_factor' },
  { id: 'hz', table: 'holding', address: 2, type: 'uint16', scale: 0.01, unit: 'Hz', metric: 'ems.device.frequency', role: 'frequency' },
  { id: 'wh', table: 'holding', address: 3, type: 'uint32', unit: 'Wh', metric: 'ems.device.energy', role: 'energy' },
  { id: 'temp', table: 'holding', address: 100, type: 'int16', scale: 0.1, unit: 'Cel', metric: 'ems.device.temperature', role: 'temperature' },
];

export function testProfile(overrides: Partial<DeviceProfile> = {}, quirks: Partial<DeviceProfile['quirks']> = {}): DeviceProfile {
  return {
    profile: 'test-device', vendor: 'test', model: 'test', kind: 'inverter', address_base: 0, default_order: 'ABCD',
    quirks: {
      max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0,
      one_request_per_point: false, timeout_ms: 200, max_connections: 1, ...quirks,
    },
    points: TEST_POINTS, controls: [], source: 'test-device.yaml', ...overrides,
  };
}

export function testDevice(id: string, port: number, unitId: number, overrides: Partial<DeviceConfig> = {}): DeviceConfig {
  return {
    id, profile: 'test-device', host: '127.0.0.1', port, unit_id: unitId, zone: 'zone-a', poll_interval_ms: 200,
    labels: {}, enabled: true, ...overrides,
  };
}

export function testSite(devices: DeviceConfig[], profile: DeviceProfile = testProfile()): Pick<LoadedSite, 'site' | 'profiles'> {
  const site = { site: { id: 'test-site', region: 'r1', nominal_frequency_hz: 50 }, devices } as unknown as SiteConfig;
  return { site, profiles: new Map([[profile.profile, profile]]) };
}

/** Registers served for the test profile: w = raw 1234 with sf -1 (123.4 W), hz 5001 (50.01), wh 70000, temp 215 (21.5). */
export function testRegisters(address: number, count: number, w = 1234): number[] {
  const map: Record<number, number> = { 0: w, 1: 0xffff /* sf -1 */, 2: 5001, 3: 1, 4: 70000 - 65536, 100: 215 };
  return Array.from({ length: count }, (_, i) => map[address + i] ?? 0);
}

export class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: gatewayTemporality });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export function testMeter(): { provider: MeterProvider; reader: TestReader } {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  return { provider, reader };
}

export interface LogLine { level: number; msg: string; [k: string]: unknown }

/**
 * Polls one device `inv-1` (unit 1 at `port`, every 100 ms, quick reconnects) with `profile`; its log
 * lines are parsed into `lines`. Stopping it (and its meter provider) is pushed onto `cleanups`.
 */
export function pollOne(profile: DeviceProfile, port: number, cleanups: Array<() => Promise<void>>): { set: PollerSet; lines: LogLine[]; reader: TestReader } {
  const { lines, sink } = jsonLines<LogLine>();
  const { provider, reader } = testMeter();
  const set = new PollerSet(testSite([testDevice('inv-1', port, 1, { profile: profile.profile, poll_interval_ms: 100 })], profile), {
    clock: systemClock, logger: pino({ level: 'info' }, sink), meter: provider.getMeter('t'), endpointDefaults: { reconnectBaseMs: 50, reconnectMaxMs: 200 },
  });
  cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
  return { set, lines, reader };
}

export interface Point { name: string; unit: string; value: number; attrs: Record<string, unknown> }

/** Flattens one collection into gauge/sum points (histograms: value = count). */
export function flatten(rm: ResourceMetrics): Point[] {
  const out: Point[] = [];
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      for (const dp of m.dataPoints) {
        const v = dp.value as number | { count: number };
        out.push({ name: m.descriptor.name, unit: m.descriptor.unit, value: typeof v === 'number' ? v : v.count, attrs: dp.attributes });
      }
    }
  }
  return out;
}
