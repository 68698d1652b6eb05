// Test device profiles as typed objects (the devices/*.yaml files are loaded in other tests).
import type { ControlDef, DeviceProfile, DeviceQuirks, PointDef } from '../../src/config/profile-types.js';

export const QUIRKS: DeviceQuirks = {
  max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0,
  one_request_per_point: false, timeout_ms: 1000, max_connections: 4,
};

const control = (c: Omit<ControlDef, 'verify'> & Partial<Pick<ControlDef, 'verify'>>): ControlDef => ({ verify: {}, ...c });

/** An inverter-ish device with SunSpec scale factors, a CDAB float, and a curtailment control. */
export function testInverter(): DeviceProfile {
  const points: PointDef[] = [
    { id: 'suns', table: 'holding', address: 40001, type: 'string', length: 2, role: 'identity', simulate: { kind: 'constant', value: 'SunS' } },
    { id: 'w', table: 'holding', address: 40003, type: 'int16', scale_factor: 'w_sf', unit: 'W', role: 'generation', simulate: { kind: 'constant', value: 4321 } },
    { id: 'w_sf', table: 'holding', address: 40004, type: 'int16', role: 'scale_factor', simulate: { kind: 'constant', value: 0 } },
    { id: 'hz', table: 'holding', address: 40005, type: 'uint16', scale: 0.01, unit: 'Hz', role: 'frequency', simulate: { kind: 'constant', value: 50.02 } },
    { id: 'v', table: 'holding', address: 40006, type: 'float32', order: 'CDAB', unit: 'V', simulate: { kind: 'constant', value: 230.5 } },
    { id: 'e', table: 'holding', address: 40008, type: 'uint32', unit: 'Wh', role: 'energy', simulate: { kind: 'constant', value: 123456789 } },
    { id: 'temp', table: 'holding', address: 40010, type: 'int16', scale: 0.1, unit: 'Cel', simulate: { kind: 'constant', value: -12.5 } },
    { id: 'pf', table: 'holding', address: 40011, type: 'int16' }, // unsimulated: 0
    { id: 'status', table: 'holding', address: 40012, type: 'uint16', role: 'status', simulate: { kind: 'ack', control: 'lim_pct', value: 1 } },
    { id: 'lim_sf', table: 'holding', address: 40023, type: 'int16', role: 'scale_factor', simulate: { kind: 'constant', value: -1 } },
    { id: 'in_w', table: 'input', address: 30001, type: 'int32', unit: 'W', simulate: { kind: 'sine', mean: 1000, amplitude: 500, period_s: 60 } },
    { id: 'alarm', table: 'discrete', address: 10001, type: 'bool', simulate: { kind: 'constant', value: 1 } },
    { id: 'alarm2', table: 'discrete', address: 10002, type: 'bool', simulate: { kind: 'constant', value: 0 } },
    { id: 'alarm3', table: 'discrete', address: 10003, type: 'bool', simulate: { kind: 'constant', value: 1 } },
  ];
  const controls: ControlDef[] = [
    control({ id: 'lim_pct', table: 'holding', address: 40020, type: 'uint16', scale_factor: 'lim_sf', min: 0, max: 100, unit: '%', role: 'setpoint',
      enable: { point: 'lim_ena', value: 1 }, revert_timer: { point: 'lim_rvrt' } }),
    control({ id: 'lim_ena', table: 'holding', address: 40021, type: 'uint16', min: 0, max: 1, restore: 'min' }),
    control({ id: 'lim_rvrt', table: 'holding', address: 40022, type: 'uint16', min: 0, max: 3600, restore: 'min' }),
    control({ id: 'relay', table: 'coil', address: 1, type: 'bool', min: 0, max: 1, restore: 'max' }),
    control({ id: 'relay2', table: 'coil', address: 2, type: 'bool', min: 0, max: 1, restore: 'min' }),
  ];
  return {
    profile: 'test-inverter', vendor: 'Test', model: 'Inv', kind: 'inverter', address_base: 1, default_order: 'ABCD',
    quirks: QUIRKS, points, controls, source: 'test-inverter.yaml',
  };
}

/** A battery, a load controller, and a summed meter, for behaviour tests. */
export function testBehaviours(): DeviceProfile {
  const points: PointDef[] = [
    { id: 'bat_kw', table: 'holding', address: 0, type: 'int16', scale: 0.1, unit: 'kW', simulate: { kind: 'constant', value: 10 } },
    { id: 'soc', table: 'holding', address: 1, type: 'uint16', scale: 0.01, unit: '%', simulate: { kind: 'soc', start_pct: 50, capacity_kwh: 20, power_point: 'bat_kw' } },
    { id: 'load_kw', table: 'holding', address: 2, type: 'uint16', scale: 0.1, simulate: { kind: 'follow_setpoint', base: 80, setpoint: 'curtail_kw', enable: 'curtail_on' } },
    { id: 'l1', table: 'holding', address: 3, type: 'int16', simulate: { kind: 'constant', value: 100 } },
    { id: 'l2', table: 'holding', address: 4, type: 'int16', simulate: { kind: 'sine', mean: 200, amplitude: 100, period_s: 40 } },
    { id: 'total', table: 'holding', address: 5, type: 'int16', simulate: { kind: 'sum', points: ['l1', 'l2'] } },
    { id: 'walk', table: 'holding', address: 6, type: 'int16', simulate: { kind: 'random_walk', start: 0, step: 5, min: -10, max: 10 } },
    { id: 'pv', table: 'holding', address: 7, type: 'uint16', simulate: { kind: 'solar', peak: 5000 } },
  ];
  const controls: ControlDef[] = [
    control({ id: 'curtail_kw', table: 'holding', address: 10, type: 'uint16', scale: 0.1, min: 0, max: 100, enable: { point: 'curtail_on', value: 1 } }),
    control({ id: 'curtail_on', table: 'holding', address: 11, type: 'uint16', min: 0, max: 1, restore: 'min' }),
  ];
  return {
    profile: 'test-behaviours', vendor: 'Test', model: 'Beh', kind: 'other', address_base: 0, default_order: 'ABCD',
    quirks: QUIRKS, points, controls, source: 'test-behaviours.yaml',
  };
}

/** A controllable clock for behaviour tests. */
export function manualClock(start = Date.UTC(2026, 5, 21, 12, 0, 0)): { now(): number; monotonic(): number; advance(ms: number): void; setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout } {
  let t = start;
  return {
    now: () => t,
    monotonic: () => t,
    advance: (ms: number) => { t += ms; },
    setTimeout: ((fn: () => void, ms: number) => setTimeout(fn, ms)) as typeof setTimeout,
    clearTimeout: ((h: ReturnType<typeof setTimeout>) => clearTimeout(h)) as typeof clearTimeout,
  };
}
