// Interop with an independent implementation: our pollers read a pymodbus 3.0 TCP server
// (test/interop/pymodbus-server.py, Debian python3-pymodbus) serving float32 in all four orders,
// int32, scale and scale-factor values and sentinels, and must report exactly the expected values
// (test/interop/pymodbus-fixture.ts; the RTU transports: pymodbus-rtu.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { flatten, testMeter } from '../modbus/poller-fixtures.js';
import { ABSENT, EXPECTED, pymodbusProfile, startPymodbus, type PymodbusServer } from './pymodbus-fixture.js';

let py: PymodbusServer | undefined;
let port = 0;

beforeAll(async () => {
  port = await freePort();
  py = await startPymodbus([String(port)]);
});

afterAll(async () => {
  await py?.stop();
});

describe('interop: our pollers read a pymodbus 3.0 server', () => {
  it('reports exactly the expected values, with 0- and 1-based profiles alike, and no value for sentinels', async () => {
    const dev = (id: string, prof: string, unit: number): DeviceConfig => ({
      id, profile: prof, host: '127.0.0.1', port, unit_id: unit, zone: 'z1', poll_interval_ms: 300, labels: {}, enabled: true,
    });
    const p0 = pymodbusProfile('pymodbus-base0', 0);
    const p1 = pymodbusProfile('pymodbus-base1', 1);
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
