// Placing a SunSpec profile on a device's chain: a profile naming both inverter families reads the
// one the device has, points past a shorter model are left out, and whatever depends on a
// left-out point (its scale factor, a read-back point, an enable control) goes with it, each with
// its reason; the result plans and makes control handles like any profile.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadProfile, parseProfile } from '../../src/modbus/profile-load.js';
import { profileControls } from '../../src/modbus/write-controls.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { Problems } from '../../src/config/yaml-source.js';
import { planReads } from '../../src/modbus/read-plan.js';
import { absentModels, placeOnDevice, type SunSpecChain } from '../../src/modbus/sunspec-layout.js';

const BOTH = `vendor: T
model: both families
kind: inverter
address_base: 0
sunspec_base: 40000
sunspec_models: [{ id: 1, length: 66 }, { id: 103, length: 50 }, { id: 113, length: 60 }, { id: 123, length: 24 }]
points:
  - { id: w_int, name: W, table: holding, sunspec: { model: 103, point: W }, type: int16, scale_factor: w_sf, unit: W, metric: ems.device.ac_power, role: generation }
  - { id: w_sf, name: W_SF, table: holding, sunspec: { model: 103, point: W_SF }, type: int16, role: scale_factor }
  - { id: evt_int, name: EvtVnd4, table: holding, sunspec: { model: 103, point: EvtVnd4 }, type: uint32, unit: '1', metric: ems.device.alarm_flags, role: alarm }
  - { id: w_float, name: W, table: holding, sunspec: { model: 113, point: W }, type: float32, unit: W, metric: ems.device.ac_power, role: generation }
  - { id: lim, name: WMaxLimPct, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, scale_factor: lim_sf, unit: '%', metric: ems.device.power_limit, role: setpoint }
  - { id: lim_sf, name: WMaxLimPct_SF, table: holding, sunspec: { model: 123, point: WMaxLimPct_SF }, type: int16, role: scale_factor }
controls:
  - { id: set_lim, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, scale_factor: lim_sf, unit: '%', min: 5, max: 100, verify: { point: lim, tolerance: 0.5 }, enable: { point: set_ena, value: 1 } }
  - { id: set_ena, table: holding, sunspec: { model: 123, point: WMaxLim_Ena }, type: uint16, min: 0, max: 1, verify: { tolerance: 0 } }
`;

function load(): DeviceProfile {
  const problems = new Problems();
  const p = parseProfile(BOTH, '/x/devices/t-both.yaml', problems);
  expect(problems.list).toEqual([]);
  return p as DeviceProfile;
}

const chain = (models: Array<[number, number, number]>): SunSpecChain => ({ base: 40000, end: 'end_marker', models: models.map(([id, start, length]) => ({ id, start, length })) });

describe('placing a SunSpec profile on a device', () => {
  it('a float device: the integer points are left out with the reason, the float ones read where the device has them', () => {
    const l = placeOnDevice(load(), chain([[1, 40002, 66], [113, 40070, 60], [123, 40132, 24]]));
    expect(l.profile.points.map((p) => [p.id, p.address])).toEqual([['w_float', 40092], ['lim', 40137], ['lim_sf', 40155]]);
    expect(absentModels(l)).toEqual([{ model: 103, points: ['w_int', 'w_sf', 'evt_int'], reason: "model 103 (inverter_three_phase) is not in the device's SunSpec chain" }]);
    expect(profileControls(l.profile).get('set_lim')?.address).toBe(40137);
    expect(planReads(l.profile).requests.map((r) => [r.address, r.count])).toEqual([[40092, 2], [40137, 19]]);
  });

  it('a shorter model 103 leaves its last points out; without model 123 its controls go, and what depends on them', () => {
    const l = placeOnDevice(load(), chain([[1, 40002, 65], [103, 40069, 48]]));
    expect(l.profile.points.map((p) => p.id)).toEqual(['w_int', 'w_sf']);
    expect(l.profile.controls).toEqual([]);
    expect(l.leftOut.find((x) => x.id === 'evt_int')?.reason).toBe('offset 50 is past the end of the device\'s model 103 (length 48)');
    expect(l.lengthMismatches).toEqual([{ model: 1, device: 65, profile: 66 }, { model: 103, device: 48, profile: 50 }]);
  });

  it('a control whose scale factor or enable control is not on the device goes too (never half a command)', () => {
    const p = load();
    // Model 123 too short for WMaxLimPct_SF (offset 23) and WMaxLim_Ena (offset 9).
    const short = placeOnDevice(p, chain([[1, 40002, 66], [103, 40070, 50], [123, 40122, 7]]));
    expect(short.profile.controls).toEqual([]);
    expect(short.leftOut.find((x) => x.id === 'set_lim')?.reason).toBe('its scale factor "lim_sf" is not on the device');
    expect(short.leftOut.find((x) => x.id === 'lim')?.reason).toBe('its scale factor "lim_sf" is not on the device');
    expect(short.leftOut.find((x) => x.id === 'set_ena')?.reason).toMatch(/offset 9 is past the end of the device's model 123 \(length 7\)/);
    // Without the scale factor in play, the missing enable control alone takes the limit with it.
    const noSf: DeviceProfile = {
      ...p,
      points: p.points.filter((x) => x.id !== 'lim' && x.id !== 'lim_sf'),
      controls: p.controls.map((c) => {
        if (c.id !== 'set_lim') return c;
        const { scale_factor: _sf, ...rest } = c;
        return { ...rest, verify: { tolerance: 0.5 } };
      }),
    };
    const l = placeOnDevice(noSf, chain([[1, 40002, 66], [103, 40070, 50], [123, 40122, 7]]));
    expect(l.profile.controls).toEqual([]);
    expect(l.leftOut.find((x) => x.id === 'set_lim')?.reason).toBe('its enable control "set_ena" is not on the device');
  });

  it('`or`: the shipped integer profile reads a single-phase model 101 where the device has it', async () => {
    const p = await loadProfile(fileURLToPath(new URL('../../devices/sunspec-inverter-3ph.yaml', import.meta.url)));
    const l = placeOnDevice(p, chain([[1, 40002, 65], [101, 40069, 50], [123, 40121, 24]]));
    expect(l.profile.points.find((x) => x.id === 'ac_power')?.address).toBe(40069 + 14);
    expect(l.profile.controls.find((c) => c.id === 'set_power_limit_pct')?.address).toBe(40121 + 5);
    expect(l.leftOut).toEqual([]);
    expect(l.lengthMismatches).toEqual([{ model: 1, device: 65, profile: 66 }]);
    const none = placeOnDevice(p, chain([[1, 40002, 66], [113, 40070, 60]]));
    expect(absentModels(none).map((a) => a.reason)).toEqual([
      "model 103 or 101 or 102 (inverter_three_phase / inverter_single_phase / inverter_split_phase) is not in the device's SunSpec chain",
      "model 123 (controls) is not in the device's SunSpec chain",
    ]);
  });
});
