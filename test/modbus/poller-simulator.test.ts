// The pollers against the team's Modbus simulator (simulators/modbus) serving the real profiles
// of devices/, with its fault injection: every value as the simulator's own decode says, and
// each fault class observed as the right error_type with no wrong value and no second connection.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimulatedDevice, startModbusServer, type ModbusFault, type ModbusSimServer, type SimulatedDevice } from '../../simulators/modbus/index.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { waitFor } from './endpoint-helpers.js';
import { testDevice, testMeter, testSite } from './poller-fixtures.js';

const DEVICES_DIR = fileURLToPath(new URL('../../devices/', import.meta.url));
// Animated points frozen at one instant, so the simulator's value and ours can be compared exactly.
const frozen: Clock = { ...systemClock, now: () => Date.UTC(2026, 5, 21, 12, 0, 0) };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function simulate(profile: DeviceProfile, unitIds: number[]): Promise<{ server: ModbusSimServer; units: Map<number, SimulatedDevice> }> {
  const units = new Map(unitIds.map((u) => [u, createSimulatedDevice(profile, { clock: frozen, seed: u })] as const));
  const server = await startModbusServer({ units });
  cleanups.push(() => server.close());
  return { server, units };
}

function poll(profile: DeviceProfile, port: number, unitIds: number[], intervalMs = 100): PollerSet {
  const { provider } = testMeter();
  const devices = unitIds.map((u) => testDevice(`u${u}`, port, u, { profile: profile.profile, poll_interval_ms: intervalMs }));
  const set = new PollerSet(testSite(devices, profile), {
    clock: systemClock, logger: silentLogger(), meter: provider.getMeter('t'), endpointDefaults: { reconnectBaseMs: 50, reconnectMaxMs: 200 },
  });
  cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
  return set;
}

/** Every polled point: the simulator's own decode, or absent where it has none. */
function expectMatches(set: PollerSet, deviceId: string, sim: SimulatedDevice): void {
  for (const p of sim.profile.points) {
    if (p.role === 'identity') continue;
    const want = sim.get(p.id);
    const got = set.snapshot.get(deviceId, p.id)?.value;
    expect(got, `${sim.profile.profile} ${p.id}`).toEqual(want.ok ? want.value : undefined);
  }
}

const profiles = readdirSync(DEVICES_DIR).filter((f) => f.endsWith('.yaml')).sort();

describe('pollers x simulator: every profile of devices/', () => {
  it.each(profiles)('%s: every point as the simulator decodes it', async (file) => {
    const profile = await loadProfile(`${DEVICES_DIR}${file}`);
    const { server, units } = await simulate(profile, [1]);
    const set = poll(profile, server.port, [1]);
    set.start();
    expect(await waitFor(() => set.status()[0]?.up === true && set.status()[0]!.cycles >= 2, 5000)).toBe(true);
    expectMatches(set, 'u1', units.get(1)!);
  });
});

describe('pollers x simulator: fault injection', () => {
  async function setup(fault: ModbusFault, unitIds = [1, 2], faultUnit: number | '*' = 1) {
    const profile = await loadProfile(`${DEVICES_DIR}generic-grid-meter.yaml`);
    const fast = { ...profile, quirks: { ...profile.quirks, timeout_ms: 150 } };
    const sim = await simulate(fast, unitIds);
    const set = poll(fast, sim.server.port, unitIds);
    set.start();
    expect(await waitFor(() => set.status().every((s) => s.up === true), 5000)).toBe(true);
    sim.server.setFault(faultUnit, fault);
    return { ...sim, set };
  }

  it('exception 6 (busy): exception_busy, value absent, no reconnect', async () => {
    const { server, set } = await setup({ exception: 6 });
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'exception_busy')).toBe(true);
    expect(await waitFor(() => set.snapshot.values('u1').size === 0)).toBe(true);
    expect(set.status()[1]?.up).toBe(true);
    expect(server.stats.connectionsTotal).toBe(1);
  });

  it('exception 11 (gateway target): that unit backed off, its neighbour keeps polling', async () => {
    const { server, set } = await setup({ exception: 11 });
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'unit_backed_off', 3000)).toBe(true);
    const before = set.status()[1]?.cycles ?? 0;
    expect(await waitFor(() => (set.status()[1]?.cycles ?? 0) - before >= 8, 10_000)).toBe(true);
    expect(set.status()[1]?.up).toBe(true);
    expect(server.stats.connectionsTotal).toBe(1);
  });

  it('late responses after the timeout are strays: counted, never a wrong value', async () => {
    const { set, units } = await setup({ late: { delayMs: 300, count: 3 } });
    expect(await waitFor(() => set.metrics.totals().strays >= 1, 5000)).toBe(true);
    expect(await waitFor(() => set.status()[0]?.up === true, 5000)).toBe(true);
    expectMatches(set, 'u1', units.get(1)!);
  });

  it('garbled frames are strays (wrong function code), short frames malformed_response; no crash, recovery afterwards', async () => {
    const { server, set, units } = await setup({ garble: true });
    expect(await waitFor(() => set.metrics.totals().strays >= 1 && set.status()[0]?.lastError?.code === 'timeout', 5000)).toBe(true);
    expect(set.snapshot.values('u1').size).toBe(0);
    server.setFault(1, { short: true });
    expect(await waitFor(() => set.status()[0]?.lastError?.code === 'malformed_response', 10_000)).toBe(true);
    server.clearFaults();
    expect(await waitFor(() => set.status()[0]?.up === true && set.snapshot.values('u1').size > 0, 10_000)).toBe(true);
    expectMatches(set, 'u1', units.get(1)!);
    expect(server.stats.connectionsTotal).toBe(1);
  });

  it('a device that drops the connection every few requests: reconnects, values stay right', async () => {
    const { server, set, units } = await setup({ disconnectAfter: 4 }, [1], '*');
    expect(await waitFor(() => server.stats.connectionsTotal >= 3, 5000)).toBe(true);
    expect(await waitFor(() => set.status()[0]?.up === true, 5000)).toBe(true);
    expectMatches(set, 'u1', units.get(1)!);
  });

  it('a device that accepts a single client: three units, exactly one connection held', async () => {
    const { server, set } = await setup({ singleClient: true }, [1, 2, 3], '*');
    expect(await waitFor(() => set.status().every((s) => s.up === true && s.cycles >= 3), 10_000)).toBe(true);
    expect(server.stats.connectionsTotal).toBe(1);
    expect(server.stats.maxConnectionsOpen).toBe(1);
  });
});
