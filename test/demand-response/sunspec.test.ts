// The shipped SunSpec inverter profile (model 123): WMaxLimPct written with its scale factor
// (evcc#16008), the device revert timer WMaxLimPct_RvrtTms set first, WMaxLim_Ena after, and the
// limit read back through the scaled read-back point. Restore: 100 % and disabled first, then timer 0.
// The handles are those of the profile placed on the device's chain (the loaded profile has none for
// its SunSpec controls: their addresses there are the reference chain's, not the device's).
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/modbus/profile-load.js';
import { profileControls, type WritableControl } from '../../src/modbus/write-controls.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { ControllerExecutor, type ControllerTask } from '../../src/demand-response/executor.js';
import { EndpointPool } from '../../src/modbus/endpoint-pool.js';
import { placeOnDevice } from '../../src/modbus/sunspec-layout.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer, type SimulatedDevice } from '../../simulators/modbus/index.js';
import { device } from './fixtures.js';

describe('DR writes to a SunSpec inverter (model 123)', () => {
  let profile: DeviceProfile;
  let sim: SimulatedDevice;
  let server: ModbusSimServer;
  let pool: EndpointPool;
  let executor: ControllerExecutor;

  beforeAll(async () => {
    const loaded = await loadProfile(new URL('../../devices/sunspec-inverter-3ph.yaml', import.meta.url).pathname);
    expect(profileControls(loaded).get('set_power_limit_pct')).toBeUndefined();
    // The chain the simulator serves (the profile's reference chain).
    profile = placeOnDevice(loaded, { base: 40000, end: 'end_marker', models: [{ id: 1, start: 40002, length: 66 }, { id: 103, start: 40070, length: 50 }, { id: 123, start: 40122, length: 24 }] }).profile;
    sim = createSimulatedDevice(loaded);
    sim.set('wmaxlimpct_sf', -1); // WMaxLimPct in 0.1 %
    server = await startModbusServer({ units: new Map([[1, sim]]) });
    pool = new EndpointPool({ clock: systemClock, logger: silentLogger() });
    executor = new ControllerExecutor({
      endpoints: () => pool.get('127.0.0.1', server.port), clock: systemClock, audit: silentLogger(),
      tracer: new BasicTracerProvider().getTracer('t'), controllerCommands: new MeterProvider().getMeter('t').createCounter('c'), dryRun: false,
    });
  });
  afterAll(async () => {
    await pool.close();
    await server.close();
  });

  const task = (value: number, purpose: ControllerTask['purpose'], revertSeconds: number): ControllerTask => ({
    commandId: 'ss-1', purpose, device: { ...device('inv1', server.port, 1), profile: profile.profile }, profile,
    control: profileControls(profile).get('set_power_limit_pct') as WritableControl, value, reductionKw: 0, revertSeconds,
  });

  it('writes timer, scaled limit and enable, and verifies through the scaled read-back point', async () => {
    const r = await executor.execute(task(60, 'curtail', 900), ROOT_CONTEXT);
    expect(r).toMatchObject({ outcome: 'acknowledged', read_back: 60 });
    expect(server.writes.map((w) => [w.address, [...w.values]])).toEqual([[40129, [900]], [40127, [600]], [40131, [1]]]);
    expect(sim.numberOf('power_limit_pct')).toBe(60);
  });

  it('never writes 0 % (standby) or below the 5 % minimum', async () => {
    const before = server.writes.length;
    expect((await executor.execute(task(0, 'curtail', 900), ROOT_CONTEXT)).outcome).toBe('rejected_bounds');
    expect((await executor.execute(task(4.9, 'curtail', 900), ROOT_CONTEXT)).outcome).toBe('rejected_bounds');
    expect(server.writes.length).toBe(before);
  });

  it('refuses a value the scale factor would round onto a forbidden one (40 % in 100 % steps is 0 %: standby)', async () => {
    sim.set('wmaxlimpct_sf', 2);
    server.writes.length = 0;
    try {
      const r = await executor.execute(task(40, 'curtail', 900), ROOT_CONTEXT);
      expect(r).toMatchObject({ outcome: 'rejected_bounds', error: 'rejected_write' });
      expect(server.writes).toHaveLength(0);
    } finally {
      sim.set('wmaxlimpct_sf', -1);
    }
  });

  it('restores to 100 % and disables the limit before clearing the timer (a failed restore leaves the device timer armed)', async () => {
    server.writes.length = 0;
    const r = await executor.execute(task(100, 'restore', 0), ROOT_CONTEXT);
    expect(r.outcome).toBe('acknowledged');
    expect(server.writes.map((w) => [w.address, [...w.values]])).toEqual([[40127, [1000]], [40131, [0]], [40129, [0]]]);
  });

  it('refuses to write when the scale factor is "not implemented": nothing goes out, not even the timer', async () => {
    sim.set('wmaxlimpct_sf', NaN);
    server.writes.length = 0;
    const r = await executor.execute(task(50, 'curtail', 900), ROOT_CONTEXT);
    expect(r).toMatchObject({ outcome: 'rejected_bounds', error: 'rejected_write' });
    expect(server.writes).toHaveLength(0);
  });
});
