// The identity read at connect against the team simulator serving a fixed-address SunSpec profile
// (test/fixtures/profiles/sunspec-fixed-3ph.yaml: the shipped profile before discovery; the
// shipped profile itself is placed by discovery, test/modbus/sunspec-discovery.test.ts):
// the 'SunS' marker checked where sunspec_base says, identity strings kept in the poller status
// (never in the snapshot or the metrics), and a wrong address base stopping the device with
// identity_mismatch (one error line, no cyclic read) until the device reads right again.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../../simulators/modbus/index.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import { IdentityCheck } from '../../src/modbus/identity-check.js';
import { planIdentityReads, planReads } from '../../src/modbus/read-plan.js';
import type { ModbusEndpointClient, ReadRequest } from '../../src/modbus/types.js';
import { waitFor } from './endpoint-helpers.js';
import { flatten, pollOne, testProfile, type TestReader } from './poller-fixtures.js';

const SUNSPEC = fileURLToPath(new URL('../fixtures/profiles/sunspec-fixed-3ph.yaml', import.meta.url));


const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(deviceProfile: DeviceProfile): Promise<ModbusSimServer> {
  const server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(deviceProfile)]]) });
  cleanups.push(() => server.close());
  return server;
}

function poll(profile: DeviceProfile, port: number): ReturnType<typeof pollOne> {
  return pollOne(profile, port, cleanups);
}

async function mismatchErrors(reader: TestReader): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  return flatten(resourceMetrics)
    .filter((p) => p.name === 'ems.modbus.errors' && p.attrs.error_type === 'identity_mismatch')
    .reduce((n, p) => n + p.value, 0);
}

/** The same device one register further up (a pad register where it was): what a base-1 device looks like to a base-0 profile. */
function shiftedByOne(p: DeviceProfile): DeviceProfile {
  const up = <T extends PointDef>(x: T): T => ({ ...x, address: x.address + 1 });
  const pad: PointDef = { id: 'pad', table: 'holding', address: p.sunspec_base ?? 40000, type: 'uint16', simulate: { kind: 'constant', value: 0 } };
  return { ...p, points: [pad, ...p.points.map(up)], controls: p.controls.map(up) };
}

describe('identity at connect (SunSpec marker)', () => {
  it('marker OK: cyclic values flow, identity strings in status only', async () => {
    const profile = await loadProfile(SUNSPEC);
    const server = await serve(profile);
    const { set, reader } = poll(profile, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 3, 5000)).toBe(true);
    const st = set.status()[0]!;
    expect(st.identity).toMatchObject({ sunspec_marker: 'SunS', manufacturer: 'EMS Demo', model_name: 'SIM-3PH-10K', serial_number: 'SN0001', version: '1.0.0' });
    expect(st.lastError).toBeUndefined();
    expect(set.snapshot.get('inv-1', 'operating_state')?.value).toBe(4);
    expect(set.snapshot.get('inv-1', 'serial_number')).toBeUndefined();
    // Read once per connection, not every cycle: 3+ cycles of the cyclic plan plus one identity pass.
    const identityReads = planIdentityReads(profile).requests.length;
    const cyclicReads = set.status()[0]!.cycles; // a lower bound: at least one request a cycle
    expect(server.stats.requests).toBeGreaterThanOrEqual(identityReads + cyclicReads);
    const { resourceMetrics } = await reader.collect();
    const pts = flatten(resourceMetrics);
    expect(pts.some((p) => p.attrs.point === 'serial_number' || p.attrs.point === 'sunspec_marker')).toBe(false);
    expect(await mismatchErrors(reader)).toBe(0);
  });

  it('identity is read again after a reconnect, and not on other cycles', async () => {
    const profile = await loadProfile(SUNSPEC);
    const server = await serve(profile);
    const { set } = poll(profile, server.port);
    const reads: ReadRequest[] = [];
    set.start();
    const ep = set.pool.all()[0] as ModbusEndpointClient;
    const orig = ep.read.bind(ep);
    // Spy on the shared endpoint: the marker is wire 40000, only the identity pass reads it.
    ep.read = (req, opts) => { reads.push(req); return orig(req, opts); };
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 5, 5000)).toBe(true);
    const markerReads = (): number => reads.filter((r) => r.address <= 40000 && 40000 < r.address + r.count).length;
    expect(markerReads()).toBe(1); // the spy is in place before the first (timer-driven) cycle
    const before = markerReads();
    server.dropConnections();
    expect(await waitFor(() => markerReads() > before, 5000)).toBe(true);
    expect(await waitFor(() => set.status()[0]?.up === true, 5000)).toBe(true);
    const c = set.status()[0]!.cycles;
    expect(await waitFor(() => set.status()[0]!.cycles >= c + 3, 5000)).toBe(true);
    expect(markerReads()).toBe(before + 1);
  });

  it('identity is read again when the device comes back up on the same connection', async () => {
    const profile = await loadProfile(SUNSPEC);
    const server = await serve(profile);
    const { set } = poll(profile, server.port);
    const reads: ReadRequest[] = [];
    set.start();
    const ep = set.pool.all()[0] as ModbusEndpointClient;
    const orig = ep.read.bind(ep);
    ep.read = (req, opts) => { reads.push(req); return orig(req, opts); };
    const markerReads = (): number => reads.filter((r) => r.address <= 40000 && 40000 < r.address + r.count).length;
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 2, 5000)).toBe(true);
    expect(markerReads()).toBe(1);
    // Exception 4 on every read: the device is down, the connection stays (no reconnect).
    server.setFault(1, { exception: 4 });
    expect(await waitFor(() => set.status()[0]?.up === false, 5000)).toBe(true);
    server.clearFaults();
    expect(await waitFor(() => set.status()[0]?.up === true, 5000)).toBe(true);
    expect(set.pool.all()[0]!.stats().connects).toBe(1);
    expect(markerReads()).toBeGreaterThanOrEqual(2);
    expect(set.status()[0]!.identity?.serial_number).toBe('SN0001');
  });

  it('address_base off by one: identity_mismatch, no cyclic read, one error line', async () => {
    const shipped = await loadProfile(SUNSPEC);
    const server = await serve(shipped);
    const wrong: DeviceProfile = { ...shipped, address_base: 1 };
    const { set, lines, reader } = poll(wrong, server.port);
    set.start();
    // Several cycles and at least one retry (1 s + jitter) of the identity read.
    expect(await waitFor(() => (set.status()[0]?.cycles ?? 0) >= 8 && (set.status()[0]?.errors ?? 0) >= 2, 8000)).toBe(true);
    const st = set.status()[0]!;
    expect(st.up).toBe(false);
    expect(st.lastError?.code).toBe('identity_mismatch');
    expect(st.identity).toBeUndefined();
    expect(set.snapshot.values('inv-1').size).toBe(0);
    // Every request that reached the device was a marker read that failed the check.
    const mismatches = await mismatchErrors(reader);
    expect(mismatches).toBeGreaterThanOrEqual(2);
    expect(server.stats.requests).toBe(mismatches);
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    const e = errors[0]!;
    expect(e).toMatchObject({ device: 'inv-1', error_type: 'identity_mismatch', endpoint: `127.0.0.1:${server.port}`, wire_address: 39999, address_base: 1 });
    expect(String(e.hint)).toMatch(/address_base/);
    expect(String(e.err)).toMatch(/exception 2|exception_illegal_address/);
  });

  it('device one register off: the bytes read and where SunS is; recovers once the device reads right', async () => {
    const shipped = await loadProfile(SUNSPEC);
    const server = await serve(shiftedByOne(shipped));
    const { set, lines } = poll(shipped, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'identity_mismatch' && set.status()[0]!.cycles >= 3, 5000)).toBe(true);
    expect(set.status()[0]!.up).toBe(false);
    const e = lines.find((l) => l.level >= 50);
    expect(e).toMatchObject({ device: 'inv-1', bytes: '0x0000 0x5375', ascii: '..Su', found_at_wire_address: 40001, wire_address: 40000 });
    expect(String(e?.err)).toMatch(/read 0x0000 0x5375/);
    // The installer fixes the device (or the map): the backed-off retry finds the marker.
    server.units.set(1, createSimulatedDevice(shipped));
    expect(await waitFor(() => set.status()[0]?.up === true, 8000)).toBe(true);
    const st = set.status()[0]!;
    expect(st.identity?.serial_number).toBe('SN0001');
    expect(await waitFor(() => set.snapshot.get('inv-1', 'operating_state')?.value === 4, 3000)).toBe(true);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    expect(lines.some((l) => /identity verified/.test(l.msg))).toBe(true);
  });

  it('without identity points: no identity pass, every request is the cyclic plan', async () => {
    const plain = testProfile();
    expect(new IdentityCheck(plain).needed).toBe(false);
    const server = await serve(plain);
    const { set } = poll(plain, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 3, 5000)).toBe(true);
    expect(set.status()[0]!.identity).toBeUndefined();
    expect(set.status()[0]!.errors).toBe(0);
    // Requests so far: whole cycles of the cyclic plan (plus at most one cycle in flight).
    const perCycle = planReads(plain).requests.length;
    const cycles = set.status()[0]!.cycles;
    expect(server.stats.requests).toBeGreaterThanOrEqual(cycles * perCycle);
    expect(server.stats.requests).toBeLessThanOrEqual((cycles + 1) * perCycle);
  });

  it('without sunspec_base: identity read and kept, no marker check', async () => {
    const shipped = await loadProfile(SUNSPEC);
    const { sunspec_base: _drop, ...noBase } = shipped;
    const server = await serve(shiftedByOne(shipped));
    const { set, lines } = poll(noBase, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 2, 5000)).toBe(true);
    expect(set.status()[0]!.identity).toBeDefined();
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(0);
  });
});
