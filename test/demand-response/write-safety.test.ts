// Writes by construction, with profiles that `validate` accepts (parsed by the real loader): every
// value of a command (setpoint, enable, revert timer, restore) is encoded and checked after
// rounding before the first frame goes out; a failure stops the whole command; only controls have
// handles; a stored control id the profile no longer has is refused loudly. Each case asserts on
// the simulator's write log.
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { profileControls, type WritableControl } from '../../src/modbus/write-controls.js';
import { parseProfile } from '../../src/modbus/profile-load.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { Problems } from '../../src/config/yaml-source.js';
import { ControllerExecutor, type ControllerTask } from '../../src/demand-response/executor.js';
import { EndpointPool } from '../../src/modbus/endpoint-pool.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../../simulators/modbus/index.js';
import { device } from './fixtures.js';
import { Rig } from './harness.js';

/** A load controller whose setpoint has an enable control and a revert-timer control (YAML lines given). */
function profileYaml(name: string, enable: string[], timer: string[], setpointExtra: string[] = []): string {
  return [
    'vendor: Test', 'model: Rounding', 'kind: load_controller', 'address_base: 0',
    'points:',
    '  - { id: load_kw, table: holding, address: 0, type: uint16, scale: 0.1, unit: kW, metric: ems.device.load_power, role: load }',
    'controls:',
    '  - id: limit', '    table: holding', '    address: 10', '    type: uint16', '    scale: 0.1', '    unit: kW', '    role: setpoint',
    '    min: 0', '    max: 500', '    verify: { tolerance: 0.1, timeout: 300ms }', '    rate_limit: 0s',
    '    enable: { point: en, value: 1 }', '    revert_timer: { point: rvrt }', ...setpointExtra.map((l) => `    ${l}`),
    '  - id: en', '    table: holding', '    address: 11', ...enable.map((l) => `    ${l}`), '    verify: {}',
    '  - id: rvrt', '    table: holding', '    address: 12', '    unit: s', ...timer.map((l) => `    ${l}`), '    verify: {}',
    '',
  ].join('\n').replace('vendor: Test', `profile: ${name}\nvendor: Test`);
}

/** Parses like `ems-gateway validate` does; fails the test when the loader refuses the profile. */
function validated(name: string, text: string): DeviceProfile {
  const problems = new Problems();
  const p = parseProfile(text, `/profiles/${name}.yaml`, problems);
  if (!p || problems.errorCount > 0) throw new Error(`profile ${name} does not validate: ${problems.list.map((x) => x.message).join('; ')}`);
  return p;
}

const PLAIN_ENABLE = ['type: uint16', 'min: 0', 'max: 1'];
const PLAIN_TIMER = ['type: uint16', 'min: 0', 'max: 3600'];

describe('DR writes by construction (executor, simulator)', () => {
  const servers: ModbusSimServer[] = [];
  let pool: EndpointPool;
  const lines: Array<Record<string, unknown>> = [];
  let executor: ControllerExecutor;

  beforeAll(() => {
    pool = new EndpointPool({ clock: systemClock, logger: silentLogger() });
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
    executor = new ControllerExecutor({
      endpoints: (d) => pool.get('127.0.0.1', d.port), clock: systemClock, audit: pino(sink),
      tracer: new BasicTracerProvider().getTracer('t'), controllerCommands: new MeterProvider().getMeter('t').createCounter('c'), dryRun: false,
    });
  });
  afterAll(async () => {
    await pool.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  async function run(profile: DeviceProfile, value: number, purpose: ControllerTask['purpose'] = 'curtail'): Promise<{ outcome: string; writes: number; detail: unknown }> {
    const server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(profile)]]) });
    servers.push(server);
    const r = await executor.execute({
      commandId: 'ws-1', purpose, device: { ...device('lc1', server.port, 1), profile: profile.profile }, profile,
      control: profileControls(profile).get('limit') as WritableControl, value, reductionKw: 1, revertSeconds: purpose === 'restore' ? 0 : 900,
    }, ROOT_CONTEXT);
    return { outcome: r.outcome, writes: server.writes.length, detail: lines.at(-1)?.['detail'] };
  }

  it('a valid command writes timer, setpoint and enable (the control case)', async () => {
    const r = await run(validated('ws-plain', profileYaml('ws-plain', PLAIN_ENABLE, PLAIN_TIMER)), 40);
    expect(r).toMatchObject({ outcome: 'acknowledged', writes: 3 });
  });

  it('refuses an enable value that rounds above its max and onto its never_write list (scale 2: 1 -> raw 1 -> 2)', async () => {
    const p = validated('ws-enable', profileYaml('ws-enable', ['type: uint16', 'scale: 2', 'min: 0', 'max: 1', 'never_write: [2]'], PLAIN_TIMER));
    const r = await run(p, 40);
    expect(r).toMatchObject({ outcome: 'rejected_bounds', writes: 0 });
    expect(String(r.detail)).toMatch(/after rounding to the register, value 2 outside \[0, 1\]/);
  });

  it('refuses a revert-timer value that rounds above its max (a minutes register: 890 s -> 15 min = 900 s)', async () => {
    const p = validated('ws-timer', profileYaml('ws-timer', PLAIN_ENABLE, ['type: uint16', 'scale: 60', 'min: 0', 'max: 890', 'never_write: [900]']));
    const r = await run(p, 40);
    expect(r).toMatchObject({ outcome: 'rejected_bounds', writes: 0 });
    expect(String(r.detail)).toMatch(/after rounding to the register, value 900 outside \[0, 890\]/);
  });

  it('refuses before the first frame an enable value its register cannot carry (nothing, not even the timer, goes out)', async () => {
    const p = validated('ws-codec', profileYaml('ws-codec', ['type: int16', 'scale: 0.00001', 'min: 0', 'max: 1'], PLAIN_TIMER));
    const r = await run(p, 40);
    expect(r).toMatchObject({ outcome: 'rejected_bounds', writes: 0 });
    expect(String(r.detail)).toMatch(/out_of_range/);
  });

  it('a restore whose enable restore value cannot be written leaves everything as it is (timer not cleared either)', async () => {
    const p = validated('ws-restore', profileYaml('ws-restore', ['type: uint16', 'scale: 2', 'min: 0', 'max: 1', 'restore: 1'], PLAIN_TIMER));
    const r = await run(p, 500, 'restore');
    expect(r).toMatchObject({ outcome: 'rejected_bounds', writes: 0 });
  });

  it('refuses a value a bool register would round (enable 0.4 -> 1): coils and bools are checked like words', async () => {
    const p = validated('ws-bool', profileYaml('ws-bool', ['type: bool', 'min: 0', 'max: 1'], PLAIN_TIMER).replace(
      '    enable: { point: en, value: 1 }', '    enable: { point: en, value: 0.4 }'));
    const r = await run(p, 40);
    expect(r).toMatchObject({ outcome: 'rejected_bounds', writes: 0 });
    expect(String(r.detail)).toMatch(/not 0 or 1/);
  });

  it('has no handle for a read-only point: a profile naming one as enable or timer does not validate, and one made in code gets no handles', () => {
    const text = profileYaml('ws-ro', PLAIN_ENABLE, PLAIN_TIMER).replace('revert_timer: { point: rvrt }', 'revert_timer: { point: load_kw }');
    const problems = new Problems();
    expect(parseProfile(text, '/profiles/ws-ro.yaml', problems)).toBeUndefined();
    expect(problems.list.map((x) => x.message).join('\n')).toMatch(/"load_kw" is not another control/);
    const ok = validated('ws-plain2', profileYaml('ws-plain2', PLAIN_ENABLE, PLAIN_TIMER));
    const inCode: DeviceProfile = { ...ok, controls: ok.controls.map((c) => (c.id === 'limit' ? { ...c, revert_timer: { point: 'load_kw' } } : c)) };
    expect(() => profileControls(inCode)).toThrow(/"load_kw" is not another control/);
    expect(profileControls(ok).get('load_kw')).toBeUndefined();
  });
});

describe('DR stored records (service, simulator)', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('refuses, loudly, a stored control id the profile does not have: no fallback to the setpoint control', async () => {
    const profile = validated('ws-store', profileYaml('ws-store', PLAIN_ENABLE, PLAIN_TIMER));
    rig = await Rig.start({ profile, servers: [[1]], clock: systemClock });
    await rig.stopService();
    const now = Date.now();
    writeFileSync(rig.stateFile, JSON.stringify({
      version: 1, seen: {},
      active: [{ command_id: 'old-1', zone: 'zone-a', reduction_mw: 0.05, duration_minutes: 15, accepted_at: now - 60_000, ends_at: now + 600_000,
        controllers: [{ device_id: 'lc1', control: 'gone_limit', setpoint: 5, reduction_kw: 50 }] }],
    }));
    const errors: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'error' }, new Writable({ write(chunk: Buffer, _e, cb) { errors.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } }));
    await rig.startService({ logger });
    await rig.service?.idle();
    expect(rig.writes()).toBe(0);
    expect(errors.some((e) => e['control'] === 'gone_limit' && e['reason'] === 'unknown_control' && e['level'] === 50)).toBe(true);
    const refused = await rig.counter(METRICS.drStateRefused);
    expect(refused.find((p) => p.attrs['reason'] === 'unknown_control')?.value).toBeGreaterThanOrEqual(1);
  });

  it('refuses a stored record for a controller whose profile became SunSpec-placed (same control id): nothing goes to the reference address', async () => {
    const sunspec = validated('ws-sunspec', [
      'profile: ws-sunspec', 'vendor: Test', 'model: SunSpec LC', 'kind: load_controller', 'address_base: 0',
      'sunspec_base: 40000', 'sunspec_models: [{ id: 1, length: 66 }, { id: 123, length: 24 }]',
      'points:',
      '  - { id: load_kw, table: holding, address: 0, type: uint16, scale: 0.1, unit: kW, metric: ems.device.load_power, role: load }',
      '  - { id: lim, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, unit: \'%\', metric: ems.device.power_limit, role: setpoint }',
      'controls:',
      '  - { id: limit, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, unit: \'%\', role: setpoint, min: 5, max: 100, verify: { point: lim, tolerance: 1 } }',
      '',
    ].join('\n'));
    // The loaded profile has no handle for its SunSpec control: its address (40000 + 2 + 68 + 5) is the reference chain's.
    expect(profileControls(sunspec).get('limit')).toBeUndefined();
    expect(sunspec.controls.find((c) => c.id === 'limit')?.address).toBe(40075);
    rig = await Rig.start({ profile: sunspec, servers: [[1]], clock: systemClock });
    await rig.stopService();
    const now = Date.now();
    writeFileSync(rig.stateFile, JSON.stringify({
      version: 1, seen: {},
      active: [
        { command_id: 'old-end', zone: 'zone-a', reduction_mw: 0.05, duration_minutes: 15, accepted_at: now - 900_000, ends_at: now - 1000,
          controllers: [{ device_id: 'lc1', control: 'limit', setpoint: 50, reduction_kw: 50 }] },
        { command_id: 'old-live', zone: 'zone-a', reduction_mw: 0.05, duration_minutes: 15, accepted_at: now - 60_000, ends_at: now + 600_000,
          controllers: [{ device_id: 'lc1', control: 'limit', setpoint: 50, reduction_kw: 50 }] },
      ],
    }));
    const errors: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'error' }, new Writable({ write(chunk: Buffer, _e, cb) { errors.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } }));
    await rig.startService({ logger });
    await rig.service?.idle();
    expect(rig.writes()).toBe(0);
    const excluded = errors.filter((e) => e['reason'] === 'excluded_controller' && e['device'] === 'lc1' && e['level'] === 50);
    expect(excluded.map((e) => e['command_id'])).toEqual(expect.arrayContaining(['old-end', 'old-live']));
    expect(String(excluded[0]?.['msg'])).toMatch(/DR now leaves out .*SunSpec discovery/);
    const refused = await rig.counter(METRICS.drStateRefused);
    expect(refused.find((p) => p.attrs['reason'] === 'excluded_controller')?.value).toBeGreaterThanOrEqual(2);
  });
});
