// Which load controllers demand response drives: one rule for the planner and the coordinator
// (src/demand-response) and for `validate` (site-checks.ts), so validate says what runtime does.
import type { DeviceProfile } from './profile-types.js';
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
