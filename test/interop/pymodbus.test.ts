// Interop with an independent implementation: our pollers read a pymodbus 3.0 TCP server
// (test/interop/pymodbus-server.py, Debian python3-pymodbus) serving float32 in all four orders,
// int32, scale and scale-factor values and sentinels, and must report exactly the expected values.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { freePort } from '../helpers/ports.js';
import { DEBIAN_PYTHON } from '../peers.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { flatten, testMeter } from '../modbus/poller-fixtures.js';

const SCRIPT = fileURLToPath(new URL('./pymodbus-server.py', import.meta.url));

const m = (id: string, extra: Partial<PointDef>): PointDef =>
  ({ id, table: 'holding', address: 0, type: 'uint16', metric: `ems.test.${id}`, unit: '1', role: 'other', ...extra }) as PointDef;

/** Points at wire addresses; `base` shifts them to a 1-based datasheet numbering. */
function points(base: 0 | 1): PointDef[] {
  const a = (wire: number): number => wire + base;
  return [
    m('f_abcd', { address: a(0), type: 'float32', order: 'ABCD' }),
    m('f_cdab', { address: a(2), type: 'float32', order: 'CDAB' }),
    m('f_badc', { address: a(4), type: 'float32', order: 'BADC' }),
    m('f_dcba', { address: a(6), type: 'float32', order: 'DCBA' }),
    m('i32', { address: a(8), type: 'int32' }),
    m('u16_scaled', { address: a(10), type: 'uint16', scale: 0.1 }),
    m('w', { address: a(11), type: 'int16', scale_factor: 'w_sf', unit: 'W', role: 'generation' }),
    { id: 'w_sf', table: 'holding', address: a(12), type: 'int16', role: 'scale_factor' },
    m('i16_na', { address: a(13), type: 'int16' }),
    m('u16_na', { address: a(14), type: 'uint16' }),
    m('f_nan', { address: a(15), type: 'float32' }),
    m('i32_na', { address: a(17), type: 'int32' }),
    m('i32_cdab', { address: a(19), type: 'int32', order: 'CDAB' }),
    m('u16_max', { address: a(21), type: 'uint16' }),
    m('hz', { table: 'input', address: a(1), type: 'uint16', scale: 0.01, unit: 'Hz', role: 'frequency' }),
    m('flag0', { table: 'discrete', address: a(0), type: 'bool' }),
    m('flag1', { table: 'discrete', address: a(1), type: 'bool' }),
  ];
}

function profile(name: string, base: 0 | 1): DeviceProfile {
  return {
    profile: name, vendor: 'pymodbus', model: 'interop', kind: 'other', address_base: base, default_order: 'ABCD',
    quirks: { max_registers_per_request: 125, max_gap_registers: 10, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: 1000, max_connections: 1 },
    points: points(base), controls: [], source: `${name}.yaml`,
  };
}

const EXPECTED: Record<string, number | boolean> = {
  f_abcd: 1234.5, f_cdab: -50.25, f_badc: Math.fround(3.14159), f_dcba: 6.5e6, i32: -123456, u16_scaled: 432.1,
  w: 23.45, w_sf: -2, i32_cdab: 70000, u16_max: 65534, hz: 60.01, flag0: true, flag1: false,
};
const ABSENT = ['i16_na', 'u16_na', 'f_nan', 'i32_na'];

let py: ChildProcess | undefined;
let port = 0;

beforeAll(async () => {
  port = await freePort();
  const child = spawn(DEBIAN_PYTHON, [SCRIPT, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  py = child;
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', () => undefined); // pymodbus logs every closed connection as ERROR
  const ready = await waitFor(() => out.includes(`ready ${port}`) || child.exitCode !== null, 15_000);
  if (!ready || child.exitCode !== null) throw new Error(`pymodbus server did not start (exit ${String(child.exitCode)}): ${out}`);
});

afterAll(async () => {
  const child = py;
  if (child !== undefined && child.exitCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
});

describe('interop: our pollers read a pymodbus 3.0 server', () => {
  it('reports exactly the expected values, with 0- and 1-based profiles alike, and no value for sentinels', async () => {
    const dev = (id: string, prof: string, unit: number): DeviceConfig => ({
      id, profile: prof, host: '127.0.0.1', port, unit_id: unit, zone: 'z1', poll_interval_ms: 300, labels: {}, enabled: true,
    });
    const p0 = profile('pymodbus-base0', 0);
    const p1 = profile('pymodbus-base1', 1);
    // unit 2 does not exist on the server (it never answers): a dead unit beside healthy ones.
    const devices = [dev('py-0', p0.profile, 1), dev('py-1', p1.profile, 1), dev('py-missing', p0.profile, 2)];
    const loaded: Pick<LoadedSite, 'site' | 'profiles'> = {
      site: { site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, devices } as unknown as SiteConfig,
      profiles: new Map([[p0.profile, { ...p0, quirks: { ...p0.quirks, timeout_ms: 300 } }], [p1.profile, p1]]),
    };
    const { provider, reader } = testMeter();
    const set = new PollerSet(loaded, { clock: systemClock, logger: silentLogger(), meter: provider.getMeter('interop') });
    try {
      set.start();
      const complete = (id: string): boolean => Object.keys(EXPECTED).every((k) => set.snapshot.get(id, k) !== undefined);
      expect(await waitFor(() => complete('py-0') && complete('py-1'), 10_000)).toBe(true);
      for (const id of ['py-0', 'py-1']) {
        const got = Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, set.snapshot.get(id, k)?.value]));
        expect(got).toEqual(EXPECTED);
        for (const k of ABSENT) expect(set.snapshot.get(id, k), `${id} ${k}`).toBeUndefined();
      }
      const pts = flatten((await reader.collect()).resourceMetrics).filter((p) => p.attrs['device_id'] === 'py-0');
      const gauge = (k: string): number | undefined => pts.find((p) => p.name === `ems.test.${k}`)?.value;
      expect(gauge('f_cdab')).toBe(-50.25);
      expect(gauge('w')).toBe(23.45);
      expect(gauge('flag0')).toBe(1);
      for (const k of ABSENT) expect(gauge(k)).toBeUndefined();
      expect(await waitFor(() => set.status().find((s) => s.deviceId === 'py-missing')?.up === false, 5000)).toBe(true);
      expect(set.status().filter((s) => s.up === true).map((s) => s.deviceId).sort()).toEqual(['py-0', 'py-1']);
      expect(set.pool.all()).toHaveLength(1);
    } finally {
      await set.stop();
      await provider.shutdown();
    }
  });
});
