// The write check fails closed when the encoded words cannot be decoded back (src/modbus/write-controls.ts,
// `wire === undefined`), reached with the real codec, no stub: a float32 control whose profile names
// a "not implemented" sentinel value. The encoder refuses the sentinel itself, but a value a little
// off it passes the encoder's check (made on the double) and rounds to the sentinel in float32, so
// the words would read back as "not implemented": nothing may be written then.
import { describe, expect, it } from 'vitest';
import { profileControls } from '../../src/modbus/write-controls.js';
import { parseProfile } from '../../src/modbus/profile-load.js';
import { Problems } from '../../src/config/yaml-source.js';

const yaml = [
  'profile: fail-closed', 'vendor: Test', 'model: Float', 'kind: load_controller', 'address_base: 0',
  'points:',
  '  - { id: load_kw, table: holding, address: 0, type: uint16, unit: kW, metric: ems.device.load_power, role: load }',
  'controls:',
  '  - id: limit', '    table: holding', '    address: 10', '    type: float32', '    unit: kW', '    role: setpoint',
  '    min: 0', '    max: 500', '    sentinel: { values: [0.5] }', '    verify: { tolerance: 0.1, timeout: 300ms }', '    rate_limit: 0s',
  '',
].join('\n');

describe('writable control check: fails closed when the encoding cannot be read back', () => {
  const problems = new Problems();
  const profile = parseProfile(yaml, '/profiles/fail-closed.yaml', problems);
  it('the profile validates', () => {
    expect(problems.list.map((p) => p.message)).toEqual([]);
    expect(profile).toBeDefined();
  });

  it('refuses a value whose float32 encoding is the sentinel, naming why; the neighbours and the sentinel itself are judged as before', () => {
    const limit = profileControls(profile!).get('limit');
    expect(limit).toBeDefined();
    // 0.5 + 1e-9 is not the sentinel as a double, but Math.fround makes it exactly 0.5.
    expect(Math.fround(0.500000001)).toBe(0.5);
    expect(limit!.check(0.500000001)).toEqual({
      ok: false,
      problem: 'value 0.500000001 cannot be read back from its encoding (not_implemented): refused, as it cannot be checked',
    });
    // The sentinel itself is refused earlier, by the encoder.
    expect(limit!.check(0.5)).toMatchObject({ ok: false, problem: expect.stringMatching(/^sentinel_value: /) as unknown as string });
    // A value that rounds elsewhere is written.
    const ok = limit!.check(0.75);
    expect(ok.ok).toBe(true);
  });
});
