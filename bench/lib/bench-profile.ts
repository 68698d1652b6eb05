// The benchmark's device: 60 holding registers read in one request, like a SunSpec-style
// inverter: 12 float32 (mixed word orders), 4 uint32 energy counters, 12 int16 values sharing a
// scale factor, 15 status/alarm words; 14 values change every second. 20 points become gauges (distinct metric names, so 1,000
// devices stay under the SDK's 2,000 attribute sets per metric).
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';

export const BENCH_REGISTERS = 60;

function points(): PointDef[] {
  const out: PointDef[] = [];
  let a = 0;
  for (let i = 0; i < 12; i++, a += 2) {
    out.push({
      id: `f${i}`, table: 'holding', address: a, type: 'float32', order: i % 2 === 0 ? 'ABCD' : 'CDAB', unit: 'W',
      metric: i < 8 ? `ems.bench.float_${i}` : undefined, role: i === 0 ? 'generation' : 'other',
      // Half the values move every second (power, currents), half are steady (limits, ratings).
      simulate: i === 0 ? { kind: 'sine', mean: 5000, amplitude: 1000, period_s: 60 }
        : i < 6 ? { kind: 'random_walk', start: 1000 + i, step: 5, min: 0, max: 10_000 } : { kind: 'constant', value: 100 + i },
    });
  }
  for (let i = 0; i < 4; i++, a += 2) {
    out.push({
      id: `e${i}`, table: 'holding', address: a, type: 'uint32', unit: 'Wh', metric: `ems.bench.energy_${i}`, role: 'energy',
      simulate: i < 2 ? { kind: 'random_walk', start: 1_000_000, step: 10, min: 0, max: 4_000_000_000 } : { kind: 'constant', value: 1_000_000 + i },
    });
  }
  const sfAddress = a + 12;
  for (let i = 0; i < 12; i++, a += 1) {
    out.push({
      id: `v${i}`, table: 'holding', address: a, type: 'int16', scale_factor: 'v_sf', unit: 'V',
      metric: i < 8 ? `ems.bench.scaled_${i}` : undefined, role: 'voltage',
      simulate: i >= 6 ? { kind: 'random_walk', start: 230, step: 0.5, min: 200, max: 260 } : { kind: 'constant', value: 230.5 + i },
    });
  }
  out.push({ id: 'v_sf', table: 'holding', address: sfAddress, type: 'int16', role: 'scale_factor', simulate: { kind: 'constant', value: -1 } });
  a += 1;
  for (let i = 0; i < 15; i++, a += 1) {
    out.push({ id: `s${i}`, table: 'holding', address: a, type: 'uint16', role: 'status', simulate: { kind: 'constant', value: i } });
  }
  if (a !== BENCH_REGISTERS) throw new Error(`bench profile spans ${a} registers, expected ${BENCH_REGISTERS}`);
  return out;
}

export function benchProfile(): DeviceProfile {
  return {
    profile: 'bench-device', vendor: 'bench', model: 'sixty', kind: 'inverter', address_base: 0, default_order: 'ABCD',
    quirks: {
      max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0,
      one_request_per_point: false, timeout_ms: 1000, max_connections: 4,
    },
    points: points(), controls: [], source: 'bench-device.yaml',
  };
}

export function benchDevices(ports: number[], unitsPerEndpoint: number, intervalMs: number): DeviceConfig[] {
  const out: DeviceConfig[] = [];
  ports.forEach((port, e) => {
    for (let u = 1; u <= unitsPerEndpoint; u++) {
      out.push({
        id: `dev-${e}-${u}`, profile: 'bench-device', host: '127.0.0.1', port, unit_id: u, zone: `zone-${e % 4}`,
        poll_interval_ms: intervalMs, labels: {}, enabled: true,
      });
    }
  });
  return out;
}

export function benchSite(devices: DeviceConfig[]): Pick<LoadedSite, 'site' | 'profiles'> {
  const site = { site: { id: 'bench', region: 'bench', nominal_frequency_hz: 50 }, devices } as unknown as SiteConfig;
  const p = benchProfile();
  return { site, profiles: new Map([[p.profile, p]]) };
}
