// SunSpec discovery against the team simulator serving the shipped profile in several layouts:
// the chain found at connect places every point where the device has its model; a model the
// device lacks is not read (absent, never 0, no gauge, no control handle) with the reason in
// /status; length mismatches are logged once with both lengths; a reconnect finds the chain again
// (another device behind the same address gets its own plan); a marker one register off stops the
// device with identity_mismatch.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer, type SimulatedDevice, type SunSpecLayout } from '../../simulators/modbus/index.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import { profileControls } from '../../src/modbus/write-controls.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import type { ReadRequest } from '../../src/modbus/types.js';
import { deviceDetail, deviceStatus } from '../../src/status/adapters.js';
import { pointWidth } from '../../src/config/profile-types.js';
import { waitFor } from './endpoint-helpers.js';
import { slabBytesCarved } from '../../src/modbus/typed-slab.js';
import { flatten, pollOne, testDevice } from './poller-fixtures.js';

const SUNSPEC = fileURLToPath(new URL('../../devices/sunspec-inverter-3ph.yaml', import.meta.url));


const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(sim: SimulatedDevice): Promise<ModbusSimServer> {
  const server = await startModbusServer({ units: new Map([[1, sim]]) });
  cleanups.push(() => server.close());
  return server;
}

function poll(profile: DeviceProfile, port: number): ReturnType<typeof pollOne> {
  return pollOne(profile, port, cleanups);
}

/** Values pinned so the poller's reading can be compared exactly. */
function pin(sim: SimulatedDevice): void {
  sim.set('ac_power', 7321);
  sim.set('ac_voltage_a', 231.4);
  sim.set('ac_frequency', 50.02);
  sim.set('cabinet_temperature', 41.3);
}

const EXPECTED = { ac_power: 7321, ac_voltage_a: 231.4, ac_frequency: 50.02, cabinet_temperature: 41.3, operating_state: 4, energy_produced: 12345678, power_factor: 0.99 };

const got = (set: PollerSet): Record<string, unknown> =>
  Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, set.snapshot.get('inv-1', k)?.value]));

/** The values once they all read as expected (bounded); the last reading otherwise, for the message. */
async function settled(set: PollerSet): Promise<Record<string, unknown>> {
  let last = got(set);
  await waitFor(() => { last = got(set); return JSON.stringify(last) === JSON.stringify(EXPECTED); }, 10_000);
  return last;
}

/** The shipped SunSpec inverter profile on a simulator of the reference chain (values pinned), polled. */
async function pollReference(): Promise<{ profile: DeviceProfile; sim: SimulatedDevice; server: ModbusSimServer } & ReturnType<typeof poll>> {
  const profile = await loadProfile(SUNSPEC);
  const sim = createSimulatedDevice(profile);
  pin(sim);
  const server = await serve(sim);
  const polled = poll(profile, server.port);
  polled.set.start();
  return { profile, sim, server, ...polled };
}

describe('SunSpec discovery: points placed from the chain each device has', () => {
  it('the reference chain: chain in /status, every value, the model 123 limit and its control at the found address', async () => {
    const { set, lines } = await pollReference();
    expect(await waitFor(() => set.status()[0]?.up === true && set.snapshot.get('inv-1', 'power_limit_pct') !== undefined, 10_000)).toBe(true);
    expect(await settled(set)).toEqual(EXPECTED);
    expect(set.snapshot.get('inv-1', 'power_limit_pct')?.value).toBe(100);
    const st = set.status()[0]!;
    expect(st.identity).toMatchObject({ manufacturer: 'EMS Demo', model_name: 'SIM-3PH-10K', serial_number: 'SN0001' });
    expect(st.sunspec).toEqual({
      base: 40000, end: 'end_marker', absent: [], length_mismatches: [],
      models: [
        { id: 1, name: 'common', start: 40002, length: 66 },
        { id: 103, name: 'inverter_three_phase', start: 40070, length: 50 },
        { id: 123, name: 'controls', start: 40122, length: 24 },
      ],
    });
    // /status carries the chain as the poller found it.
    expect(deviceStatus(set.status(), [])[0]?.sunspec?.models.map((m) => m.id)).toEqual([1, 103, 123]);
    const controls = profileControls(set.deviceProfile('inv-1')!);
    expect(controls.get('set_power_limit_pct')?.address).toBe(40127);
    // Nothing left out, no length reported (other warnings, e.g. an overrun on a loaded machine, are not this test's).
    expect(lines.filter((l) => l.level >= 40 && /SunSpec/.test(l.msg))).toEqual([]);
  });

  it('/status/devices/<id> on a device with model 1 of 65: each model-103 point shows the registers the device holds there, and decodes from them', async () => {
    const profile = await loadProfile(SUNSPEC);
    const layout: SunSpecLayout = { base: 40000, models: [{ id: 1, length: 65 }, { id: 103, length: 50 }, { id: 123, length: 24 }] };
    const sim = createSimulatedDevice(profile, { sunspecLayout: layout });
    pin(sim);
    const server = await serve(sim);
    const { set } = poll(profile, server.port);
    set.start();
    expect(await settled(set)).toEqual(EXPECTED);
    const placed = set.deviceProfile('inv-1')!;
    // Model 103 starts one register before the reference chain's 40070 on this device.
    expect(placed.points.find((p) => p.id === 'ac_power')?.address).toBe(40069 + 14);
    const ep = set.pool.all()[0]!;
    const detail = deviceDetail('inv-1', set.status(), [testDevice('inv-1', server.port, 1, { profile: profile.profile })], set, Date.now());
    const values = detail?.values ?? [];
    const inModel103 = placed.points.filter((p) => p.sunspec === undefined && p.address >= 40069 && p.address < 40069 + 52);
    expect(inModel103.length).toBeGreaterThan(10);
    // Constant points: the words cannot change between the poll and this read.
    for (const id of ['energy_produced', 'operating_state']) {
      const p = placed.points.find((x) => x.id === id)!;
      const words = await ep.read({ unitId: 1, table: 'holding', address: p.address, count: pointWidth(p) });
      expect(values.find((v) => v.id === id)?.registers, id).toEqual([...words]);
    }
    const energy = values.find((v) => v.id === 'energy_produced');
    expect(energy).toMatchObject({ value: 12345678, order: 'ABCD' });
    expect(energy?.orders?.ABCD).toBe(12345678);
    // Every model-103 point's registers are the device's words at its placed address (as last read).
    const reads = detail?.reads ?? [];
    let checked = 0;
    for (const p of inModel103) {
      const block = reads.find((b) => b.address <= p.address && p.address + pointWidth(p) <= b.address + b.count);
      const v = values.find((x) => x.id === p.id);
      if (block === undefined || v?.registers === undefined) continue;
      expect(v.registers, p.id).toEqual(block.registers?.slice(p.address - block.address, p.address - block.address + pointWidth(p)));
      checked += 1;
    }
    expect(checked).toBe(inModel103.length);
  });

  it('another layout (base 50000, model 1 of 65, a vendor model, 103 of 52, 160, no 123): same values, no limit, no control, reasons', async () => {
    const profile = await loadProfile(SUNSPEC);
    const layout: SunSpecLayout = { base: 50000, models: [{ id: 1, length: 65 }, { id: 64001, length: 10 }, { id: 103, length: 52 }, { id: 160, length: 20 }] };
    const sim = createSimulatedDevice(profile, { sunspecLayout: layout });
    pin(sim);
    const server = await serve(sim);
    const { set, lines, reader } = poll(profile, server.port);
    const reads: ReadRequest[] = [];
    set.start();
    const ep = set.pool.all()[0]!;
    const orig = ep.read.bind(ep);
    ep.read = (req, opts) => { reads.push(req); return orig(req, opts); };
    expect(await waitFor(() => set.status()[0]?.up === true && set.snapshot.get('inv-1', 'ac_power') !== undefined && set.status()[0]!.cycles >= 4, 10_000)).toBe(true);
    expect(await settled(set)).toEqual(EXPECTED);
    expect(set.snapshot.get('inv-1', 'power_limit_pct')).toBeUndefined();
    const st = set.status()[0]!;
    expect(st.identity?.serial_number).toBe('SN0001');
    expect(st.sunspec?.models).toEqual([
      { id: 1, name: 'common', start: 50002, length: 65 },
      { id: 64001, name: 'vendor', start: 50069, length: 10 },
      { id: 103, name: 'inverter_three_phase', start: 50081, length: 52 },
      { id: 160, name: 'mppt', start: 50135, length: 20 },
    ]);
    expect(st.sunspec?.absent).toEqual([{
      model: 123, reason: "model 123 (controls) is not in the device's SunSpec chain",
      points: ['power_limit_pct', 'wmaxlimpct_sf', 'set_power_limit_pct', 'set_power_limit_revert_s', 'set_power_limit_enable'],
    }]);
    expect(st.sunspec?.length_mismatches).toEqual([{ model: 1, device_length: 65, profile_length: 66 }, { model: 103, device_length: 52, profile_length: 50 }]);
    // Identity and cyclic reads stay inside models 1 and 103 where this device has them (headers are 2-4 register reads).
    const cyclic = reads.filter((r) => r.count > 4);
    expect(cyclic.length).toBeGreaterThan(0);
    expect(cyclic.every((r) => r.address >= 50002 && r.address + r.count <= 50135)).toBe(true);
    // No control handle for what the device lacks.
    expect(profileControls(set.deviceProfile('inv-1')!).list).toEqual([]);
    // No gauge for the absent limit; the present values are exported.
    const pts = flatten((await reader.collect()).resourceMetrics).filter((p) => p.attrs['device_id'] === 'inv-1');
    expect(pts.some((p) => p.name === 'ems.device.power_limit')).toBe(false);
    expect(pts.find((p) => p.name === 'ems.device.ac_power')?.value).toBe(7321);
    // Mismatches once, with both lengths, however many cycles ran.
    const mism = lines.filter((l) => /has length/.test(l.msg));
    expect(mism.map((l) => [l.model, l.device_length, l.profile_length])).toEqual([[1, 65, 66], [103, 52, 50]]);
    expect(lines.filter((l) => /not read on this device/.test(l.msg))).toHaveLength(1);
  });

  it('after a reconnect the chain is found again: another layout behind the same address gets its own plan', async () => {
    const { profile, server, set } = await pollReference();
    expect(await waitFor(() => set.snapshot.get('inv-1', 'power_limit_pct') !== undefined, 10_000)).toBe(true);
    const other = createSimulatedDevice(profile, { sunspecLayout: { base: 0, models: [{ id: 1, length: 66 }, { id: 103, length: 50 }] } });
    pin(other);
    other.set('ac_power', 1111);
    server.units.set(1, other);
    server.dropConnections();
    expect(await waitFor(() => set.status()[0]?.sunspec?.base === 0 && set.snapshot.get('inv-1', 'ac_power')?.value === 1111, 10_000)).toBe(true);
    expect(await waitFor(() => set.snapshot.get('inv-1', 'power_limit_pct') === undefined, 10_000)).toBe(true);
    expect(set.status()[0]!.sunspec?.models.map((m) => [m.id, m.start])).toEqual([[1, 2], [103, 70]]);
  });

  it('a plan compiled again at each reconnect takes no slab memory: only the first plan is carved from the slabs', async () => {
    const { sim, server, set } = await pollReference();
    expect(await settled(set)).toEqual(EXPECTED);
    const carved = slabBytesCarved();
    for (let i = 1; i <= 5; i++) {
      server.dropConnections();
      sim.set('ac_power', 1000 + i);
      expect(await waitFor(() => set.snapshot.get('inv-1', 'ac_power')?.value === 1000 + i, 10_000)).toBe(true);
    }
    expect(set.status()[0]!.sunspec?.models.map((m) => m.id)).toEqual([1, 103, 123]);
    expect(slabBytesCarved()).toBe(carved);
  });

  it('none of the profile\'s models on the device (a wrong unit id hitting a SunSpec meter): down with the reason, no up gauge', async () => {
    const profile = await loadProfile(SUNSPEC);
    const server = await serve(createSimulatedDevice(profile, { sunspecLayout: { base: 40000, models: [{ id: 1, length: 66 }, { id: 203, length: 105 }] } }));
    const { set, reader } = poll(profile, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.sunspec !== undefined && set.status()[0]!.cycles >= 3, 10_000)).toBe(true);
    const st = set.status()[0]!;
    expect(st.up).toBe(false);
    expect(st.lastError?.code).toBe('identity_mismatch');
    expect(st.lastError?.message).toMatch(/^none of the profile's points is on this device \(its SunSpec chain: 1 common @40002\+66, 203 .*model 103 or 101 or 102 .* is not in the device's SunSpec chain.*check the unit id and the profile$/);
    expect(set.snapshot.values('inv-1').size).toBe(0);
    const up = flatten((await reader.collect()).resourceMetrics).find((p) => p.name === 'ems.modbus.device.up' && p.attrs['device_id'] === 'inv-1');
    expect(up?.value).toBe(0);
  });

  it('a chain its points cannot be planned on: down with the reason, and the next device behind the address is discovered and read', async () => {
    const loaded = await loadProfile(SUNSPEC);
    // Made in code (the loader keeps a value and its scale factor in one model): ac_power scaled by a model-123 point.
    const profile: DeviceProfile = { ...loaded, points: loaded.points.map((p) => (p.id === 'ac_power' ? { ...p, scale_factor: 'wmaxlimpct_sf' } : p)) };
    // A 200-register vendor model between 103 and 123: value and scale factor no longer fit one read.
    const far = createSimulatedDevice(loaded, { sunspecLayout: { base: 40000, models: [{ id: 1, length: 66 }, { id: 103, length: 50 }, { id: 64001, length: 200 }, { id: 123, length: 24 }] } });
    const server = await serve(far);
    const { set } = poll(profile, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'invalid_request' && set.status()[0]!.cycles >= 2, 10_000)).toBe(true);
    const st = set.status()[0]!;
    expect(st.up).toBe(false);
    expect(st.lastError?.message).toMatch(/^read plan on the discovered chain: .*value and scale factor "wmaxlimpct_sf" span/);
    expect(st.sunspec).toBeUndefined();
    // The reference chain behind the same address (no reconnect): discovered again and read.
    const good = createSimulatedDevice(loaded);
    pin(good);
    server.units.set(1, good);
    expect(await waitFor(() => set.status()[0]?.up === true && set.snapshot.get('inv-1', 'ac_voltage_a')?.value === 231.4, 10_000)).toBe(true);
    expect(set.status()[0]!.sunspec?.models.map((m) => m.id)).toEqual([1, 103, 123]);
  });

  it("'SunS' one register off: identity_mismatch naming where it is, nothing polled", async () => {
    const profile = await loadProfile(SUNSPEC);
    const server = await serve(createSimulatedDevice(profile, { sunspecLayout: { base: 40001, models: profile.sunspec_models! } }));
    const { set, lines } = poll(profile, server.port);
    set.start();
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'identity_mismatch' && set.status()[0]!.cycles >= 2, 10_000)).toBe(true);
    expect(set.status()[0]!.up).toBe(false);
    expect(set.snapshot.values('inv-1').size).toBe(0);
    const e = lines.filter((l) => l.level >= 50);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ error_type: 'identity_mismatch', found_at_wire_address: 40001 });
    expect(String(e[0]?.hint)).toMatch(/address base is off/);
  });
});
