// Writes outside bounds, on the never_write list, unencodable, or to registers the profile does not
// declare writable never reach the wire: asserted on the simulator's write log.
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlDefinitionError, profileControls, type WritableControl } from '../../src/modbus/write-controls.js';
import type { ControlDef, DeviceProfile } from '../../src/config/profile-types.js';
import { ControllerExecutor, type ControllerTask } from '../../src/demand-response/executor.js';
import { EndpointPool } from '../../src/modbus/endpoint-pool.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../../simulators/modbus/index.js';
import { device, loadControllerProfile } from './fixtures.js';

describe('DR write bounds', () => {
  const profile = loadControllerProfile({ min: 10, max: 400, never_write: [0, 42] });
  let server: ModbusSimServer;
  let pool: EndpointPool;
  const lines: Array<Record<string, unknown>> = [];
  let executor: ControllerExecutor;
  let dryRun: ControllerExecutor;

  beforeAll(async () => {
    server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(profile)]]) });
    pool = new EndpointPool({ clock: systemClock, logger: silentLogger() });
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
    const deps = {
      endpoints: () => pool.get('127.0.0.1', server.port), clock: systemClock, audit: pino(sink),
      tracer: new BasicTracerProvider().getTracer('t'), controllerCommands: new MeterProvider().getMeter('t').createCounter('c'),
    };
    executor = new ControllerExecutor({ ...deps, dryRun: false });
    dryRun = new ControllerExecutor({ ...deps, dryRun: true });
  });
  afterAll(async () => {
    await pool.close();
    await server.close();
  });

  const handle = (p: DeviceProfile): WritableControl => profileControls(p).list[0] as WritableControl;
  const task = (value: number, control: WritableControl = handle(profile), p: DeviceProfile = profile): ControllerTask => ({
    commandId: 'b-1', purpose: 'curtail', device: device('lc1', server.port, 1), profile: p, control, value, reductionKw: 1,
  });
  const withControl = (c: ControlDef): DeviceProfile => ({ ...profile, controls: [c] });

  it.each([
    ['above max', 400.5],
    ['below min', 5],
    ['on the never_write list', 42],
    ['zero (never_write: standby)', 0],
    ['NaN', NaN],
    ['Infinity', Infinity],
  ])('rejects %s without clamping and without a write', async (_name, value) => {
    const before = server.writes.length;
    const r = await executor.execute(task(value), ROOT_CONTEXT);
    expect(r.outcome).toBe('rejected_bounds');
    expect(r.error).toBe('rejected_write');
    expect(server.writes.length).toBe(before);
    expect(lines.at(-1)).toMatchObject({ audit: 'dr_write', command_id: 'b-1', device: 'lc1', register: 10, outcome: 'rejected_bounds' });
  });

  it('rejects a value the register cannot carry (uint16 at scale 0.1 tops out at 6553.5)', async () => {
    const wide = loadControllerProfile({ max: 10_000 });
    const r = await executor.execute(task(7000, handle(wide), wide), ROOT_CONTEXT);
    expect(r.outcome).toBe('rejected_bounds');
    expect(server.writes).toHaveLength(0);
  });

  it('never writes to a register that is not a holding/coil control or to an undeclared enable point', async () => {
    // Such a control gets no handle at all, so nothing can ask for the write.
    const inputCtl = { ...(profile.controls[0] as ControlDef), id: 'ro', table: 'input' as const, address: 0 };
    expect(() => profileControls(withControl(inputCtl))).toThrow(ControlDefinitionError);
    const ghostEnable = { ...(profile.controls[0] as ControlDef), enable: { point: 'no_such_point', value: 1 } };
    expect(() => profileControls(withControl(ghostEnable))).toThrow(/no_such_point/);
    // A look-alike of a handle (a copy, a cast) is refused by the executor and by the endpoint.
    const forged = { ...handle(profile), address: 0 } as unknown as WritableControl;
    expect((await executor.execute(task(100, forged), ROOT_CONTEXT)).outcome).toBe('rejected_bounds');
    const checked = handle(profile).check(100);
    if (!checked.ok) throw new Error(checked.problem);
    const ep = pool.get('127.0.0.1', server.port);
    await expect(ep.write(1, { ...checked.write } as never)).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(ep.write(1, { control: forged, request: () => ({ unitId: 1, table: 'holding', address: 0, values: Uint16Array.of(1) }) } as never)).rejects.toMatchObject({ code: 'invalid_request' });
    expect(server.writes).toHaveLength(0);
  });

  it('a register the device does not accept is reported, and the device refused it (exception 2)', async () => {
    const undeclared = withControl({ ...(profile.controls[0] as ControlDef), id: 'status', address: 20 });
    // The profile here claims a control the simulated device does not have: the device answers exception 2.
    const r = await executor.execute(task(100, handle(undeclared), undeclared), ROOT_CONTEXT);
    expect(r).toMatchObject({ outcome: 'write_failed', error: 'exception_illegal_address' });
    expect(server.writes).toHaveLength(0);
  });

  it('dry run does everything but the write', async () => {
    const r = await dryRun.execute(task(100), ROOT_CONTEXT);
    expect(r.outcome).toBe('dry_run');
    expect(server.writes).toHaveLength(0);
    expect(lines.at(-1)).toMatchObject({ outcome: 'dry_run', dry_run: true, requested: 100 });
  });

  it('writes an in-bounds value once and audits requested and read-back values', async () => {
    const r = await executor.execute(task(123.4), ROOT_CONTEXT);
    expect(r).toMatchObject({ outcome: 'acknowledged', read_back: 123.4 });
    expect(server.writes.map((w) => [w.address, [...w.values]])).toEqual([[10, [1234]]]);
    expect(lines.at(-1)).toMatchObject({ audit: 'dr_write', command_id: 'b-1', device: 'lc1', register: 10, requested: 123.4, read_back: 123.4, outcome: 'acknowledged' });
  });
});
