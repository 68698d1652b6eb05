// A site file -> one simulator per host:port with its unit ids, loaded through the real config
// loader from YAML; and the `simulate` command's start-up path.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSite } from '../../src/config/load.js';
import { wireAddress } from '../../src/config/profile-types.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { parseFault, parseSimulateArgs, startSimulate } from '../../src/cli/simulate.js';
import net from 'node:net';
import { freePort } from '../helpers/ports.js';
import { SiteSimulatorError, startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import { RawClient, readPdu, registersOf } from './raw-client.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const PROFILE = `# A small meter for simulator tests
vendor: Test
model: Meter
kind: grid_meter
address_base: 0
default_order: CDAB
quirks:
  max_connections: 1
points:
  - { id: p_total, table: input, address: 0, type: float32, unit: kW, role: grid_import, simulate: { kind: constant, value: 12.5 } }
  - { id: hz, table: input, address: 2, type: uint16, scale: 0.01, unit: Hz, role: frequency, simulate: { kind: constant, value: 49.98 } }
`;
const SITE = `version: 1
profiles_dir: devices
site: { id: sim-test, region: test, nominal_frequency_hz: 50 }
devices:
  - { id: meter-a, profile: test-meter, host: 127.0.0.1, port: 1502, unit_id: 1 }
  - { id: meter-b, profile: test-meter, host: 127.0.0.1, port: 1502, unit_id: 2 }
  - { id: meter-c, profile: test-meter, host: 127.0.0.1, port: 1503, unit_id: 7 }
`;

let dir = '';
let sims: SiteSimulators | undefined;
const clients: RawClient[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sim-site-'));
  mkdirSync(join(dir, 'devices'));
  writeFileSync(join(dir, 'devices', 'test-meter.yaml'), PROFILE);
  writeFileSync(join(dir, 'site.yaml'), SITE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await sims?.close();
  sims = undefined;
});

describe('site simulators', () => {
  it('groups devices by host:port, one server per endpoint with its unit ids', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0 });
    expect(sims.endpoints.map((e) => [e.key, e.devices.map((d) => d.unitId)])).toEqual([
      ['127.0.0.1:1502', [1, 2]], ['127.0.0.1:1503', [7]],
    ]);
    const a = sims.endpoints[0]!;
    expect(a.server.port).not.toBe(1502);
    const c = await RawClient.connect(a.server.port);
    clients.push(c);
    const f = await c.request(1, 2, readPdu(4, 0, 3));
    // float32 12.5 in CDAB (low word first), then 49.98 Hz as 4998.
    expect(registersOf(f!)).toEqual([0x0000, 0x4148, 4998]);
    expect(sims.device('meter-c')?.numberOf('hz')).toBe(49.98);
    const other = await c.request(2, 7, readPdu(4, 0, 1)); // unit 7 lives on the other endpoint
    expect(Array.from(other!.pdu)).toEqual([0x84, 11]);
  });

  it("enforceMaxConnections honours the profile's max_connections", async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0, enforceMaxConnections: true });
    const port = sims.endpoints[0]!.server.port;
    const first = await RawClient.connect(port);
    const second = await RawClient.connect(port);
    clients.push(first, second);
    expect(await second.waitClosed()).toBe(true);
    expect((await first.request(1, 1, readPdu(4, 2, 1)))?.fc).toBe(4);
  });

  it('the simulate command starts the site and prints its endpoints as JSON', async () => {
    const args = parseSimulateArgs([join(dir, 'site.yaml'), '--any-port', '--json']);
    expect(typeof args).toBe('object');
    if (typeof args === 'string') return;
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => { text += b.toString(); });
    sims = await startSimulate(args, out);
    const printed = JSON.parse(text.trim()) as { endpoints: { key: string; port: number; units: { id: string; unitId: number }[] }[] };
    expect(printed.endpoints.map((e) => e.key)).toEqual(['127.0.0.1:1502', '127.0.0.1:1503']);
    const c = await RawClient.connect(printed.endpoints[1]!.port);
    clients.push(c);
    expect(registersOf((await c.request(1, 7, readPdu(4, 2, 1)))!)).toEqual([4998]);
  });

  it('two devices of one profile differ on the wire: SunSpec serial from the device id, address from the unit id', async () => {
    const loaded = await loadSite(join(packageRoot(), 'config/demo-site.yaml'), { profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0 });
    const profile = loaded.profiles.get('sunspec-inverter-3ph')!;
    const sn = profile.points.find((p) => p.name === 'SN')!;
    const da = profile.points.find((p) => p.name === 'DA')!;
    const ep = sims.endpoints.find((e) => e.devices.some((d) => d.id === 'inverter-2'))!;
    const c = await RawClient.connect(ep.server.port);
    clients.push(c);
    const ascii = (regs: number[]): string => Buffer.from(regs.flatMap((w) => [w >> 8, w & 0xff])).toString('latin1').replace(/\0+$/, '');
    let tid = 1;
    const seen: Array<[string, number]> = [];
    for (const { id, unitId } of ep.devices.filter((d) => d.profile === 'sunspec-inverter-3ph')) {
      const serial = ascii(registersOf((await c.request(tid++, unitId, readPdu(3, wireAddress(profile, sn), sn.length ?? 1)))!));
      const [address] = registersOf((await c.request(tid++, unitId, readPdu(3, wireAddress(profile, da), 1)))!);
      expect(serial, id).toBe(`SN-${id}`);
      seen.push([serial, address ?? -1]);
    }
    expect(seen).toEqual([['SN-inverter-1', 1], ['SN-inverter-2', 2]]);
  });

  it('argument errors are reported, not thrown', () => {
    expect(parseSimulateArgs([])).toMatch(/site file is required/);
    expect(parseSimulateArgs(['a.yaml', '--port-offset', 'x'])).toMatch(/port-offset/);
    expect(parseSimulateArgs(['a.yaml', 'b.yaml'])).toMatch(/unexpected argument "b.yaml"/);
    expect(parseSimulateArgs(['a.yaml', '--port-offset', '1000'])).toMatchObject({ site: 'a.yaml', portOffset: 1000 });
  });

  it('--fault injects a fault into one device of the site', async () => {
    const args = parseSimulateArgs([join(dir, 'site.yaml'), '--any-port', '--fault', 'meter-b:exception=6', '--fault', 'meter-c:latency=1']);
    if (typeof args === 'string') throw new Error(args);
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => { text += b.toString(); });
    sims = await startSimulate(args, out);
    expect(text).toMatch(/fault on meter-b \(unit 2 at 127\.0\.0\.1:\d+\): \{"exception":6\}/);
    const c = await RawClient.connect(sims.endpoints[0]!.server.port);
    clients.push(c);
    expect(Array.from((await c.request(1, 2, readPdu(4, 0, 1)))!.pdu)).toEqual([0x84, 6]);
    expect((await c.request(2, 1, readPdu(4, 0, 1)))?.fc).toBe(4); // meter-a, same endpoint, healthy
  });

  it('fault specs parse, or say what is wrong', () => {
    expect(parseFault('latency=200,drop,exception=6,disconnect-after=3,single-client,garble,short,late=5000')).toEqual({
      latencyMs: 200, drop: true, exception: 6, disconnectAfter: 3, singleClient: true, garble: true, short: true, late: { delayMs: 5000 },
    });
    expect(parseFault('exception=0')).toMatch(/exception needs a code/);
    expect(parseFault('latency')).toMatch(/latency needs milliseconds/);
    expect(parseFault('explode')).toMatch(/unknown fault "explode"/);
    expect(parseSimulateArgs(['a.yaml', '--fault', 'nocolon'])).toMatch(/--fault needs <device>:<fault>/);
    expect(parseSimulateArgs(['a.yaml', '--fault', 'x:boom'])).toMatch(/unknown fault/);
  });

  it('a busy port is a SiteSimulatorError naming the endpoint, and nothing is left listening', async () => {
    const loaded = await loadSite(join(dir, 'site.yaml'), { profileChecks: modbusProfileChecks });
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const busy = (blocker.address() as net.AddressInfo).port;
    const free = await freePort();
    try {
      // The first endpoint gets a free port, the second the busy one: the first must be closed again.
      const err = await startSiteSimulators(loaded, { port: (_p, key) => (key.endsWith(':1503') ? busy : free) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SiteSimulatorError);
      expect(err).toMatchObject({ code: 'listen_failed', message: expect.stringContaining('127.0.0.1:1503 (meter-c)') });
      const probe = net.createServer();
      await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.listen(free, '127.0.0.1', () => resolve()); });
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

