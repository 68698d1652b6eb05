// Writes for endpoint-level tests: ModbusEndpoint.write takes only a CheckedWrite, made by a
// writable-control handle of a profile. This builds a one-control profile at a wire address
// (address base 0, unbounded enough for raw test values) and checks the value through it.
import { profileControls, type CheckedWrite } from '../../src/modbus/write-controls.js';
import type { ControlDef, DeviceProfile } from '../../src/config/profile-types.js';

export function checkedWrite(table: 'holding' | 'coil', address: number, value: number, type: ControlDef['type'] = table === 'coil' ? 'bool' : 'uint16'): CheckedWrite {
  const control: ControlDef = { id: 'c', table, address, type, min: 0, max: 2 ** 32, verify: {} };
  const profile: DeviceProfile = {
    profile: 'test-writes', vendor: 't', model: 't', kind: 'other', address_base: 0, default_order: 'ABCD',
    quirks: { max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: 1000, max_connections: 1 },
    points: [], controls: [control], source: 'inline',
  };
  const r = profileControls(profile).list[0]?.check(value);
  if (!r?.ok) throw new Error(`test write ${table} ${address} = ${value}: ${r?.problem ?? 'no handle'}`);
  return r.write;
}
