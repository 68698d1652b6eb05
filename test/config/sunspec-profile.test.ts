// SunSpec profile keys (`sunspec_models`, a point's `sunspec: { model, offset | point }`): placed
// in the reference chain at load as the SunSpec model definitions say, and every mistake refused
// with file:line:col and what to do.
import { describe, expect, it } from 'vitest';
import { formatProblem } from '../../src/config/errors.js';
import { parseProfile } from '../../src/modbus/profile-load.js';
import { wireAddress } from '../../src/config/profile-types.js';
import { sunspecModel } from '../../src/config/sunspec-models.js';
import { Problems } from '../../src/config/yaml-source.js';

const HEAD = `vendor: T
model: T
kind: inverter
address_base: 0
sunspec_base: 40000
sunspec_models:
  - { id: 1, length: 66 }
  - { id: 113, length: 60 }
  - { id: 123, length: 24 }
points:
`;

function parse(body: string, head = HEAD): { ok: boolean; errors: string[]; profile: ReturnType<typeof parseProfile> } {
  const problems = new Problems();
  const profile = parseProfile(head + body, '/x/devices/t-sun.yaml', problems);
  return { ok: profile !== undefined, errors: problems.list.filter((p) => p.severity === 'error').map((p) => formatProblem(p, '/x')), profile };
}

describe('SunSpec profile keys', () => {
  it('places points by offset or by point name in the reference chain (float model 113, controls 123)', () => {
    const r = parse(`  - { id: w, sunspec: { model: 113, point: W }, table: holding, type: float32, unit: W, metric: ems.device.ac_power }
  - { id: hz, sunspec: { model: 113, offset: 24 }, table: holding, type: float32, unit: Hz, metric: ems.device.ac_frequency }
  - { id: sn, sunspec: { model: 1, point: SN }, table: holding, type: string, length: 16, role: identity }
  - { id: lim, sunspec: { model: 123, point: WMaxLimPct }, table: holding, type: uint16, scale_factor: lim_sf, unit: '%' }
  - { id: lim_sf, sunspec: { model: 123, point: WMaxLimPct_SF }, table: holding, type: int16, role: scale_factor }
`);
    expect(r.errors).toEqual([]);
    const at = (id: string): number | undefined => { const p = r.profile?.points.find((x) => x.id === id); return p && wireAddress(r.profile!, p); };
    // 1 @40002 (+2+66) -> 113 @40070 (+2+60) -> 123 @40132
    expect([at('w'), at('hz'), at('sn'), at('lim'), at('lim_sf')]).toEqual([40070 + 22, 40070 + 24, 40002 + 50, 40132 + 5, 40132 + 23]);
    expect(r.profile?.points.find((x) => x.id === 'w')?.sunspec).toEqual({ model: 113, point: 'W', offset: 22 });
  });

  it('the model definitions the names come from: offsets and lengths as published', () => {
    const off = (m: number, n: string): number | undefined => sunspecModel(m)?.points.find((p) => p.name === n)?.offset;
    expect([sunspecModel(1)?.length, sunspecModel(103)?.length, sunspecModel(113)?.length, sunspecModel(120)?.length, sunspecModel(121)?.length, sunspecModel(122)?.length, sunspecModel(123)?.length])
      .toEqual([66, 50, 60, 26, 30, 44, 24]);
    expect([off(1, 'SN'), off(1, 'DA'), off(103, 'W'), off(103, 'WH'), off(103, 'St'), off(103, 'Evt1'), off(113, 'W'), off(113, 'St'), off(120, 'WRtg'), off(121, 'WMax'), off(121, 'WMax_SF'), off(123, 'WMaxLimPct'), off(123, 'WMaxLimPct_SF')])
      .toEqual([50, 66, 14, 24, 38, 40, 22, 48, 3, 2, 22, 5, 23]);
    for (const m of [101, 102]) expect(sunspecModel(m)?.points).toEqual(sunspecModel(103)?.points);
    for (const m of [111, 112]) expect(sunspecModel(m)?.points).toEqual(sunspecModel(113)?.points);
  });

  it('refuses each mistake with file:line:col', () => {
    const r = parse(`  - { id: a, sunspec: { model: 103, offset: 14 }, table: holding, type: int16 }
  - { id: b, sunspec: { model: 113, point: Watts }, table: holding, type: float32 }
  - { id: c, sunspec: { model: 113, point: W }, table: holding, type: int16 }
  - { id: d, sunspec: { model: 123, offset: 26 }, table: holding, type: uint16 }
  - { id: e, address: 40100, sunspec: { model: 1, offset: 66 }, table: holding, type: uint16 }
  - { id: f, sunspec: { model: 113, offset: 30 }, table: holding, type: float32, scale_factor: g }
  - { id: g, sunspec: { model: 123, offset: 23 }, table: holding, type: int16, role: scale_factor }
  - { id: h, sunspec: { model: 1 }, table: holding, type: uint16 }
  - { id: i, table: holding, type: uint16 }
`);
    expect(r.ok).toBe(false);
    const has = (re: RegExp): void => { expect(r.errors.some((e) => re.test(e)), `${re} in\n${r.errors.join('\n')}`).toBe(true); };
    has(/^devices\/t-sun\.yaml:11:\d+ points\[0\]\.sunspec\.model: model 103 is not in `sunspec_models` \(1, 113, 123\)$/);
    has(/^devices\/t-sun\.yaml:12:\d+ points\[1\]\.sunspec\.point: model 113 \(inverter_three_phase_float\) has no point "Watts"/);
    has(/^devices\/t-sun\.yaml:13:\d+ points\[2\]\.type: point W of model 113 is 2 register\(s\) \(float32\), int16 is 1$/);
    has(/^devices\/t-sun\.yaml:14:\d+ points\[3\]\.sunspec\.offset: offset 26 \+ 1 register\(s\) runs past model 123 \(length 24: offsets 2\.\.25\)$/);
    has(/^devices\/t-sun\.yaml:15:\d+ points\[4\]\.address: give `address` or `sunspec`, not both/);
    has(/^devices\/t-sun\.yaml:16:\d+ points\[5\]\.scale_factor: scale factor "g" is not in model 113 with the point/);
    has(/^devices\/t-sun\.yaml:18:\d+ points\[7\]\.sunspec\.model: a `sunspec` point needs `offset` or `point`$/);
    has(/^devices\/t-sun\.yaml:19:\d+ points\[8\]: missing required key "address"$/);
  });

  it('`or` names only models of the same layout, each model once', () => {
    const head = 'vendor: T\nmodel: T\nkind: inverter\naddress_base: 0\nsunspec_base: 40000\nsunspec_models:\n  - { id: 103, length: 50, or: [101, 113] }\n  - { id: 101, length: 50 }\npoints:\n';
    const r = parse('  - { id: a, sunspec: { model: 103, point: W }, table: holding, type: int16 }\n', head);
    expect(r.errors).toEqual([
      'devices/t-sun.yaml:7:32 sunspec_models[0].or: model 113 does not have the layout of model 103 (`or` is for models known to share one, e.g. 101, 102 for 103; 111, 112 for 113)',
      'devices/t-sun.yaml:8:11 sunspec_models[1].id: model 101 is listed twice: a profile places each model once',
    ]);
  });

  it('a `sunspec` point without `sunspec_models`, and `sunspec_models` without `sunspec_base`', () => {
    const noModels = parse(`  - { id: a, sunspec: { model: 103, offset: 14 }, table: holding, type: int16 }\n`, 'vendor: T\nmodel: T\nkind: inverter\naddress_base: 0\npoints:\n');
    expect(noModels.errors).toEqual(["devices/t-sun.yaml:6:23 points[0].sunspec: a `sunspec` point needs the profile's `sunspec_models` (the model chain the profile was written for)"]);
    const noBase = parse(`  - { id: a, sunspec: { model: 1, offset: 66 }, table: holding, type: uint16 }\n`,
      'vendor: T\nmodel: T\nkind: inverter\naddress_base: 0\nsunspec_models: [{ id: 1, length: 66 }]\npoints:\n');
    expect(noBase.errors).toEqual(["devices/t-sun.yaml:5:17 sunspec_models: `sunspec_models` needs `sunspec_base` (where the 'SunS' marker of that chain is: 40000, 0 or 50000)"]);
  });
});
