// Interop with an independent implementation: our pollers read a pymodbus 3.0 TCP server
// (test/interop/pymodbus-server.py, Debian python3-pymodbus) serving float32 in all four orders,
// int32, scale and scale-factor values and sentinels, and must report exactly the expected values
// (test/interop/pymodbus-fixture.ts; the RTU transports: pymodbus-rtu.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { createLogger, silentLogger } from '../../src/runtime/logger.js';
import { deviceDetail, deviceStatus } from '../../src/status/adapters.js';
import type { DeviceDetail, DeviceStatus } from '../../src/status/status-model.js';
import { StatusServer } from '../../src/status/status-server.js';
import { sampleContext } from '../status/fixture.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { flatten, testMeter } from '../modbus/poller-fixtures.js';
import { ABSENT, EXPECTED, EXPECTED_LABELS, pymodbusProfile, startPymodbus, type PymodbusServer } from './pymodbus-fixture.js';

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

  it('/status carries the same values with their labels and units, the page shows them without JavaScript, and a wrong word order is withheld as implausible', async () => {
    const dev = (id: string, prof: string, unit: number): DeviceConfig => ({
      id, profile: prof, host: '127.0.0.1', port, unit_id: unit, zone: 'z1', poll_interval_ms: 200, labels: {}, enabled: true,
    });
    const good = pymodbusProfile('pymodbus-good', 0, 300);
    // The same map with the state of charge declared ABCD: the device sends it CDAB.
    const wrong = pymodbusProfile('pymodbus-wrong-order', 0, 300);
    wrong.points = wrong.points.map((p) => (p.id === 'soc' ? { ...p, order: 'ABCD' } : p));
    const devices = [dev('py-0', good.profile, 1), dev('py-wrong', wrong.profile, 1), dev('py-missing', good.profile, 2)];
    const loaded: Pick<LoadedSite, 'site' | 'profiles'> = {
      site: { site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, devices } as unknown as SiteConfig,
      profiles: new Map([[good.profile, good], [wrong.profile, wrong]]),
    };
    const chunks: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk.toString()); cb(); } });
    const logLines = (): Array<Record<string, unknown>> => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const { provider, reader } = testMeter();
    const set = new PollerSet(loaded, { clock: systemClock, logger: createLogger({ destination: dest, env: { LOG_LEVEL: 'info' } }), meter: provider.getMeter('interop') });
    const ctx = sampleContext({
      devices: () => deviceStatus(set.status(), devices, set, Date.now()),
      device: (id) => deviceDetail(id, set.status(), devices, set, Date.now()),
    });
    const server = new StatusServer({ host: '127.0.0.1', port: 0, context: ctx, logger: silentLogger() });
    const json = async <T>(path: string): Promise<T> => {
      const r = await fetch(new URL(path, server.url));
      expect(r.status, path).toBe(200);
      return (await r.json()) as T;
    };
    try {
      await server.start();
      set.start();
      const cyclesOf = (id: string): number => set.status().find((s) => s.deviceId === id)?.cycles ?? 0;
      const complete = Object.keys(EXPECTED).filter((k) => k !== 'soc');
      expect(await waitFor(() => complete.every((k) => set.snapshot.get('py-wrong', k) !== undefined) && cyclesOf('py-wrong') >= 4
        && Object.keys(EXPECTED).every((k) => set.snapshot.get('py-0', k) !== undefined), 10_000)).toBe(true);
      expect(await waitFor(() => set.status().find((s) => s.deviceId === 'py-missing')?.up === false, 5000)).toBe(true);

      const report = await json<{ devices: DeviceStatus[] }>('/status');
      const byDevice = new Map(report.devices.map((d) => [d.id, new Map((d.values ?? []).map((v) => [v.id, v]))]));
      const py0 = byDevice.get('py-0');
      expect(py0).toBeDefined();
      for (const [k, want] of Object.entries(EXPECTED)) {
        expect(py0?.get(k)?.value, k).toEqual(want);
        expect(py0?.get(k)?.absent, k).toBeUndefined();
        expect(py0?.get(k)?.age_s, k).toBeLessThan(10);
      }
      expect(py0?.get('st')).toMatchObject({ name: 'St', value: 4, ...EXPECTED_LABELS.st });
      expect(py0?.get('alarm')).toMatchObject({ name: 'ALARM', value: 37, ...EXPECTED_LABELS.alarm });
      expect(py0?.get('hz')).toMatchObject({ value: 60.01, unit: 'Hz', valid_range: [45, 65] });
      for (const k of ABSENT) expect(py0?.get(k), k).toMatchObject({ absent: 'sentinel', reason: expect.stringMatching(/not implemented/) });
      expect(py0?.get('i16_na')?.reason).toBe('0x8000 means "not implemented"');
      // The unit that never answers: every value absent as a failed read, with the error.
      for (const v of byDevice.get('py-missing')?.values() ?? []) expect(v, v.id).toMatchObject({ absent: 'failed_read', reason: expect.stringMatching(/^(timeout|unit_backed_off)/) });
      expect(byDevice.get('py-missing')?.size).toBe(byDevice.get('py-0')?.size);

      // The wrong order: no value anywhere, the reason names the right order.
      expect(set.snapshot.get('py-wrong', 'soc')).toBeUndefined();
      const soc = byDevice.get('py-wrong')?.get('soc');
      expect(soc).toMatchObject({ absent: 'implausible' });
      expect(soc?.reason).toMatch(/^2\.38\d*e-41 is a denormal float .*did you mean CDAB\?$/);
      expect(byDevice.get('py-0')?.get('soc')).toMatchObject({ value: 62, unit: '%' });
      const implausibleLogs = logLines().filter((l) => l['error_type'] === 'implausible');
      expect(implausibleLogs).toHaveLength(1);
      expect(implausibleLogs[0]).toMatchObject({ device: 'py-wrong', point: 'soc', order: 'ABCD', in_range_orders: ['CDAB'], registers: ['0x0000', '0x4278'] });
      expect(String(implausibleLogs[0]?.['msg'])).toMatch(/implausible value withheld: soc = .* \(registers 0x0000 0x4278\); did you mean CDAB\?/);
      const pts = flatten((await reader.collect()).resourceMetrics);
      const implausible = pts.find((p) => p.name === 'ems.modbus.errors' && p.attrs['device_id'] === 'py-wrong' && p.attrs['error_type'] === 'implausible');
      expect(implausible?.value).toBeGreaterThanOrEqual(3);
      expect(pts.find((p) => p.name === 'ems.test.soc' && p.attrs['device_id'] === 'py-wrong')).toBeUndefined();
      expect(pts.find((p) => p.name === 'ems.modbus.errors' && p.attrs['device_id'] === 'py-0' && p.attrs['error_type'] === 'implausible')).toBeUndefined();

      // /status/devices/<id>: raw registers of each read, and the four orders of 32-bit points.
      const detail = await json<DeviceDetail>('/status/devices/py-wrong');
      const dsoc = detail.values?.find((v) => v.id === 'soc');
      expect(dsoc).toMatchObject({ registers: [0x0000, 0x4278], order: 'ABCD', orders: { CDAB: 62 } });
      expect(detail.values?.find((v) => v.id === 'f_cdab')).toMatchObject({ registers: [0x0000, 0xc249], orders: { CDAB: -50.25 } });
      const hr = detail.reads.find((r) => r.table === 'holding' && r.address === 0);
      expect(hr?.registers?.slice(23, 27)).toEqual([4, 37, 0x0000, 0x4278]);
      expect(hr?.age_s).toBeLessThan(10);
      expect((await fetch(new URL('/status/devices/nope', server.url))).status).toBe(404);

      // The page's first paint is the server's render: values, labels and reasons with no script run.
      const html = await (await fetch(server.url)).text();
      expect(html).toContain('<td class="v">4 MPPT</td>');
      expect(html).toContain('<td class="v">37: COMMS, OVER_TEMP_WARNING, ISOLATION</td>');
      expect(html).toContain('did you mean CDAB?');
      expect(html).toContain('<td class="v">60.01</td><td>Hz</td>');
    } finally {
      await set.stop();
      await server.stop();
      await provider.shutdown();
    }
  }, 30_000);
});
