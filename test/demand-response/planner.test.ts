import { describe, expect, it } from 'vitest';
import { profileControls } from '../../src/modbus/write-controls.js';
import { leftOutControllers, planCurtailment, restoreValue, zoneControllers } from '../../src/demand-response/planner.js';
import { device, loadControllerProfile } from './fixtures.js';

const profile = loadControllerProfile();
const profiles = new Map([[profile.profile, profile]]);

describe('DR planner', () => {
  it('shares a reduction by sheddable capacity and rounds to the register resolution', () => {
    const devices = [device('a', 1, 1, 'z', 100), device('b', 1, 2, 'z', 300), device('c', 1, 3, 'other', 100)];
    const plan = planCurtailment(zoneControllers(devices, profiles, 'z'), 'z', 0.2);
    expect(plan.controllers.map((c) => c.device.id)).toEqual(['a', 'b']);
    expect(plan.controllers.map((c) => c.reduction_kw)).toEqual([50, 150]);
    expect(plan.controllers.map((c) => c.setpoint)).toEqual([50, 150]);
    expect(plan.partial).toBe(false);
    expect(plan.planned_mw).toBe(0.2);
  });

  it('uses the current load when known, and says partial when the zone cannot give it all', () => {
    const devices = [device('a', 1, 1, 'z', 100), device('b', 1, 2, 'z', 100)];
    const loads: Record<string, number> = { a: 40, b: 10 };
    const plan = planCurtailment(zoneControllers(devices, profiles, 'z'), 'z', 1, (id) => loads[id]);
    expect(plan.partial).toBe(true);
    expect(plan.planned_mw).toBeCloseTo(0.05, 6);
    expect(plan.controllers.map((c) => c.setpoint)).toEqual([0, 0]);
  });

  it('leaves out a load controller whose controls are placed by SunSpec discovery, with the reason; inverters are never targets', () => {
    const sunspec = { ...loadControllerProfile(), profile: 'sunspec-lc', sunspec_base: 40000, sunspec_models: [{ id: 123, length: 24 }] };
    const inverter = { ...loadControllerProfile(), profile: 'inv', kind: 'inverter' as const };
    const all = new Map([[profile.profile, profile], [sunspec.profile, sunspec], [inverter.profile, inverter]]);
    const devices = [device('a', 1, 1, 'z', 100), { ...device('s', 1, 2, 'z', 100), profile: 'sunspec-lc' }, { ...device('i', 1, 3, 'z', 100), profile: 'inv' }];
    expect(zoneControllers(devices, all, 'z').map((c) => c.device.id)).toEqual(['a']);
    expect(leftOutControllers(devices, all)).toEqual([{ device: 's', reason: expect.stringMatching(/SunSpec discovery .*fixed addresses only/) }]);
  });

  it('never plans below the control minimum', () => {
    const p = loadControllerProfile({ min: 20 });
    const plan = planCurtailment([{ device: device('a', 1, 1, 'z', 100), profile: p, control: profileControls(p).list[0]! }], 'z', 1);
    expect(plan.controllers[0]?.setpoint).toBe(20);
    expect(plan.partial).toBe(true);
  });

  it('restores to the profile value, default max', () => {
    expect(restoreValue(loadControllerProfile().controls[0]!)).toBe(500);
    expect(restoreValue(loadControllerProfile({ restore: 250 }).controls[0]!)).toBe(250);
    expect(restoreValue(loadControllerProfile({ restore: 'min' }).controls[0]!)).toBe(0);
  });
});
