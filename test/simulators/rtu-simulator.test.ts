// The simulators speaking Modbus RTU: the request framing on its own, a serial line served on a
// socat pseudo-terminal pair (the gateway's endpoint on the other end), raw RTU over TCP, faults
// (a CRC error on the line), and a site with RTU lines through startSiteSimulators and `simulate`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSimulateArgs, startSimulate } from '../../src/cli/simulate.js';
import { loadSite } from '../../src/config/load.js';
import type { DeviceConfig, LoadedSite } from '../../src/config/site-types.js';
import { ModbusEndpoint } from '../../src/modbus/endpoint.js';
import { crc16 } from '../../src/modbus/framing-rtu.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { ModbusError } from '../../src/modbus/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createSimulatedDevice, openPtyPair, startModbusServer, startRtuSerialServer } from '../../simulators/modbus/index.js';
import { RtuRequestReader, aduToRtu } from '../../simulators/modbus/rtu.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { testMeter } from '../modbus/poller-fixtures.js';
import { hasPeer } from '../peers.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const PROFILE = `# A small meter for simulator tests
vendor: Test
model: Meter
kind: grid_meter
address_base: 0
default_order: CDAB
points:
  - { id: p_total, table: input, address: 0, type: float32, unit: kW, role: grid_import, simulate: { kind: constant, value: 12.5 } }
  - { id: hz, table: input, address: 2, type: uint16, scale: 0.01, unit: Hz, role: frequency, simulate: { kind: constant, value: 49.98 } }
`;
const SITE = `version: 1
profiles_dir: devices
site: { id: rtu-test, region: test, nominal_frequency_hz: 50 }
devices:
  - { id: m1, profile: test-meter, transport: rtu, serial: &a { device: /dev/ttyUSB0, baud: 19200 }, unit_id: 1 }
  - { id: m2, profile: test-meter, transport: rtu, serial: *a, unit_id: 2 }
  - { id: m3, profile: test-meter, transport: rtu_over_tcp, host: 127.0.0.1, port: 4001, serial: { baud: 9600 }, unit_id: 5 }
`;

function frame(bytes: number[]): Buffer {
  const crc = crc16(Uint8Array.from(bytes));
  return Buffer.from([...bytes, crc & 0xff, crc >> 8]);
}

let dir = '';
const cleanups: Array<() => Promise<void>> = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sim-rtu-'));
  mkdirSync(join(dir, 'devices'));
  writeFileSync(join(dir, 'devices', 'test-meter.yaml'), PROFILE);
  writeFileSync(join(dir, 'site.yaml'), SITE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('RTU request framing (simulator side)', () => {
  it('cuts requests out of split, concatenated and noisy bytes, by function code and CRC', () => {
    const reader = new RtuRequestReader();
    const got: number[][] = [];
    const on = (adu: Buffer): void => { got.push([adu[6] ?? 0, adu[7] ?? 0, adu.length]); };
    const read = frame([1, 3, 0, 0, 0, 2]);
    const write16 = frame([2, 16, 0, 10, 0, 2, 4, 0, 1, 0, 2]);
    const custom = frame([3, 0x2b, 0x0e, 1, 0]);      // FC43: framed by its CRC
    expect(reader.push(read.subarray(0, 3), on)).toBe(0);
    expect(reader.push(Buffer.concat([read.subarray(3), write16]), on)).toBe(0);
    expect(reader.push(Buffer.concat([Buffer.from([0xff, 0x00]), custom]), on)).toBe(2);
    expect(got).toEqual([[1, 3, 12], [2, 16, 17], [3, 0x2b, 11]]);
  });

  it('answers become RTU frames, with the CRC wrong on purpose for the crc fault', () => {
    const adu = Buffer.from([0, 0, 0, 0, 0, 5, 7, 3, 2, 0x12, 0x34]);
    expect([...aduToRtu(adu)]).toEqual([...frame([7, 3, 2, 0x12, 0x34])]);
    expect(aduToRtu(adu, true).subarray(-2)).not.toEqual(frame([7, 3, 2, 0x12, 0x34]).subarray(-2));
  });
});

describe.skipIf(!hasPeer('socat'))('simulators serving Modbus RTU', () => {
  it('serves a serial line on a pseudo-terminal: values, a CRC fault counted as crc_error, a missing unit silent', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    const profile = loaded.profiles.get('test-meter')!;
    const pty = await openPtyPair('sim');
    cleanups.push(() => pty.close());
    const server = await startRtuSerialServer({ path: pty.device, units: new Map([[1, createSimulatedDevice(profile)], [2, createSimulatedDevice(profile)]]) });
    cleanups.push(() => server.close());
    const ep = new ModbusEndpoint(
      { transport: 'rtu', serial: { device: pty.gateway, baud: 19200, parity: 'even', stop_bits: 1, data_bits: 8, turnaround_ms: 0 }, defaultTimeoutMs: 150 },
      { clock: systemClock, logger: silentLogger() },
    );
    cleanups.push(() => ep.close());
    expect(Array.from(await ep.read({ unitId: 2, table: 'input', address: 0, count: 3 }))).toEqual([0x0000, 0x4148, 4998]);
    server.setFault(1, { crc: true });
    const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof ModbusError ? e.code : String(e)));
    expect(await code(ep.read({ unitId: 1, table: 'input', address: 2, count: 1 }))).toBe('crc_error');
    expect(await code(ep.read({ unitId: 9, table: 'input', address: 2, count: 1 }))).toBe('timeout');
    expect(server.stats.dropped).toBe(1);
    expect(Array.from(await ep.read({ unitId: 2, table: 'input', address: 2, count: 1 }))).toEqual([4998]);
    expect(server.stats.minSilenceMs).toBeGreaterThanOrEqual(1.9); // 3.5 characters at 19200 baud: 2 ms
  });

  it('serves raw RTU frames over TCP (a serial device server)', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    const server = await startModbusServer({ units: new Map([[5, createSimulatedDevice(loaded.profiles.get('test-meter')!)]]), framing: 'rtu' });
    cleanups.push(() => server.close());
    const ep = new ModbusEndpoint(
      { transport: 'rtu_over_tcp', host: '127.0.0.1', port: server.port, serial: { baud: 9600, parity: 'none', stop_bits: 1, data_bits: 8, turnaround_ms: 0 } },
      { clock: systemClock, logger: silentLogger() },
    );
    cleanups.push(() => ep.close());
    expect(Array.from(await ep.read({ unitId: 5, table: 'input', address: 2, count: 1 }))).toEqual([4998]);
    expect(server.stats.responses).toBe(1);
  });

  it('a site with RTU lines: startSiteSimulators makes a pty pair per line, and the pollers read every device', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    const sims: SiteSimulators = await startSiteSimulators(loaded, { port: 0, pty: true });
    cleanups.push(() => sims.close());
    expect(sims.lines.map((l) => [l.key, l.devices.map((d) => d.id)])).toEqual([['/dev/ttyUSB0', ['m1', 'm2']]]);
    expect(sims.endpoints.map((e) => [e.key, e.transport])).toEqual([['127.0.0.1:4001', 'rtu_over_tcp']]);
    const gateway = sims.lines[0]?.gateway ?? '';
    const port = sims.endpoints[0]?.server.port ?? 0;
    const devices: DeviceConfig[] = loaded.site.devices.map((d) => (d.transport === 'rtu'
      ? { ...d, serial: { ...d.serial!, device: gateway } } : { ...d, port }));
    const site: Pick<LoadedSite, 'site' | 'profiles'> = { site: { ...loaded.site, devices }, profiles: loaded.profiles };
    const { provider } = testMeter();
    const set = new PollerSet(site, { clock: systemClock, logger: silentLogger(), meter: provider.getMeter('rtu') });
    cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
    set.start();
    expect(await waitFor(() => ['m1', 'm2', 'm3'].every((id) => set.snapshot.get(id, 'hz')?.value === 49.98), 10_000)).toBe(true);
    expect(set.snapshot.get('m2', 'p_total')?.value).toBe(12.5);
    expect(set.pool.all().map((e) => e.key).sort()).toEqual([gateway, `127.0.0.1:${port}`].sort());
  });

  it('`simulate --pty --json` prints the serial lines with the end the gateway opens', async () => {
    const args = parseSimulateArgs([join(dir, 'site.yaml'), '--any-port', '--pty', '--json', '--fault', 'm2:crc']);
    if (typeof args === 'string') throw new Error(args);
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => { text += b.toString(); });
    const sims = await startSimulate(args, out);
    cleanups.push(() => sims.close());
    const printed = JSON.parse(text.trim()) as { lines: { key: string; path: string; gateway: string; units: unknown[] }[]; endpoints: { transport: string }[] };
    expect(printed.lines).toHaveLength(1);
    expect(printed.lines[0]).toMatchObject({ key: '/dev/ttyUSB0', gateway: sims.lines[0]?.gateway });
    expect(printed.endpoints.map((e) => e.transport)).toEqual(['rtu_over_tcp']);
    expect(parseSimulateArgs(['a.yaml', '--serial', '/dev/ttyUSB0'])).toMatch(/--serial needs <site serial.device>=<path>/);
    expect(parseSimulateArgs(['a.yaml', '--serial', '/dev/ttyUSB0=/tmp/x'])).toMatchObject({ serial: new Map([['/dev/ttyUSB0', '/tmp/x']]) });
  });

  it('a site serial line with no path and no --pty is refused, naming the option', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    await expect(startSiteSimulators(loaded, { port: 0 })).rejects.toThrow(/m1, m2 on serial line \/dev\/ttyUSB0: name where to serve it \(--serial \/dev\/ttyUSB0=<path>\) or use --pty/);
  });
});
