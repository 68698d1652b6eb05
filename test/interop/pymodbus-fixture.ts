// The pymodbus interop fixture, shared by the Modbus TCP and the Modbus RTU interop tests: the
// profiles that read test/interop/pymodbus-server.py's register map (float32 in all four orders,
// int32, scale and scale-factor values, sentinels, a frequency, discrete inputs), the values a
// datasheet of that map lists, and the server process.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { DEBIAN_PYTHON } from '../peers.js';

const SCRIPT = fileURLToPath(new URL('./pymodbus-server.py', import.meta.url));

const m = (id: string, extra: Partial<PointDef>): PointDef =>
  ({ id, table: 'holding', address: 0, type: 'uint16', metric: `ems.test.${id}`, unit: '1', role: 'other', ...extra }) as PointDef;

/** SunSpec model 103 St and an alarm word's flags, as a datasheet lists them. */
export const SUNSPEC_ST = { 1: 'OFF', 2: 'SLEEPING', 3: 'STARTING', 4: 'MPPT', 5: 'THROTTLED', 6: 'SHUTTING_DOWN', 7: 'FAULT', 8: 'STANDBY' };
export const ALARM_BITS = { 0: 'COMMS', 1: 'OVER_VOLTAGE', 2: 'OVER_TEMP_WARNING', 3: 'UNDER_VOLTAGE', 4: 'FAN', 5: 'ISOLATION' };

/** Points at wire addresses; `base` shifts them to a 1-based datasheet numbering. */
function points(base: 0 | 1): PointDef[] {
  const a = (wire: number): number => wire + base;
  return [
    m('f_abcd', { address: a(0), type: 'float32', order: 'ABCD' }),
    m('f_cdab', { address: a(2), type: 'float32', order: 'CDAB', valid_range: [-100, 100] }),
    m('f_badc', { address: a(4), type: 'float32', order: 'BADC' }),
    m('f_dcba', { address: a(6), type: 'float32', order: 'DCBA' }),
    m('i32', { address: a(8), type: 'int32' }),
    m('u16_scaled', { address: a(10), type: 'uint16', scale: 0.1 }),
    m('w', { address: a(11), type: 'int16', scale_factor: 'w_sf', unit: 'W', role: 'generation' }),
    { id: 'w_sf', table: 'holding', address: a(12), type: 'int16', role: 'scale_factor' },
    m('i16_na', { address: a(13), type: 'int16' }),
    m('u16_na', { address: a(14), type: 'uint16' }),
    m('f_nan', { address: a(15), type: 'float32' }),
    m('i32_na', { address: a(17), type: 'int32' }),
    m('i32_cdab', { address: a(19), type: 'int32', order: 'CDAB' }),
    m('u16_max', { address: a(21), type: 'uint16' }),
    m('st', { name: 'St', address: a(23), type: 'uint16', role: 'status', enum: SUNSPEC_ST }),
    m('alarm', { name: 'ALARM', address: a(24), type: 'uint16', role: 'alarm', sentinel: 'none', bits: ALARM_BITS }),
    m('soc', { name: 'SOC', address: a(25), type: 'float32', order: 'CDAB', unit: '%', role: 'state_of_charge', valid_range: [0, 100] }),
    m('hz', { table: 'input', address: a(1), type: 'uint16', scale: 0.01, unit: 'Hz', role: 'frequency', valid_range: [45, 65] }),
    m('flag0', { table: 'discrete', address: a(0), type: 'bool' }),
    m('flag1', { table: 'discrete', address: a(1), type: 'bool' }),
  ];
}

export function pymodbusProfile(name: string, base: 0 | 1, timeoutMs = 1000): DeviceProfile {
  return {
    profile: name, vendor: 'pymodbus', model: 'interop', kind: 'other', address_base: base, default_order: 'ABCD',
    quirks: { max_registers_per_request: 125, max_gap_registers: 10, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: timeoutMs, max_connections: 1 },
    points: points(base), controls: [], source: `${name}.yaml`,
  };
}

export const EXPECTED: Record<string, number | boolean> = {
  f_abcd: 1234.5, f_cdab: -50.25, f_badc: Math.fround(3.14159), f_dcba: 6.5e6, i32: -123456, u16_scaled: 432.1,
  w: 23.45, w_sf: -2, i32_cdab: 70000, u16_max: 65534, st: 4, alarm: 37, soc: 62, hz: 60.01, flag0: true, flag1: false,
};
/** The labels the status page shows for the enum and the bit field. */
export const EXPECTED_LABELS = { st: { label: 'MPPT' }, alarm: { flags: ['COMMS', 'OVER_TEMP_WARNING', 'ISOLATION'] } };
export const ABSENT = ['i16_na', 'u16_na', 'f_nan', 'i32_na'];

export interface PymodbusServer { child: ChildProcess; stop(): Promise<void> }

/** Starts pymodbus-server.py with the given specs (see its header); resolves once it prints ready. */
export async function startPymodbus(specs: string[]): Promise<PymodbusServer> {
  const child = spawn(DEBIAN_PYTHON, [SCRIPT, ...specs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  // pymodbus logs every closed connection as ERROR: kept only to explain a failed start.
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
  const ready = await waitFor(() => out.includes('ready ') || child.exitCode !== null, 15_000);
  if (!ready || child.exitCode !== null) {
    await stop();
    throw new Error(`pymodbus server did not start (exit ${String(child.exitCode)}): ${out}${err}`);
  }
  return { child, stop };
}
