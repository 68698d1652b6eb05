// Which load controllers demand response drives: one rule for the planner and the coordinator
// (src/demand-response) and for `validate` (site-checks.ts), so validate says what runtime does.
import type { ControlDef, DeviceProfile } from './profile-types.js';
import { isSunSpecProfile } from './profile-sunspec.js';

/**
 * Why a load controller is left out of DR (undefined: it takes part). Only load controllers are
 * DR targets (inverters, BMS and meters never are). A profile placed by SunSpec discovery has its
 * controls at addresses known only per device, and only when the device has their model: DR
 * drives controls at the profile's fixed addresses, so such a device is left out.
 */
export function drExclusion(profile: Pick<DeviceProfile, 'sunspec_models'>): string | undefined {
  if (isSunSpecProfile(profile)) {
    return 'its profile places controls by SunSpec discovery (per device, absent when the device lacks the model): DR drives load controllers at fixed addresses only';
  }
  return undefined;
}

/** The control DR drives on a load controller: the one with role setpoint, else the first. */
export function drSetpointControl(profile: Pick<DeviceProfile, 'controls'>): ControlDef | undefined {
  return profile.controls.find((c) => c.role === 'setpoint') ?? profile.controls[0];
}

/**
 * Spans one command makes per load controller it drives, at most: controller_cmd, read_back, and a
 * modbus_write per value written (the setpoint, its enable control, its revert timer).
 * test/demand-response holds the executor to this, with and without an enable control.
 */
export function drSpansPerController(profile: Pick<DeviceProfile, 'controls'>): number {
  const c = drSetpointControl(profile);
  return c === undefined ? 0 : 3 + (c.enable ? 1 : 0) + (c.revert_timer ? 1 : 0);
}
