// Planning: which load controllers of a zone take which share of a reduction. Each controller can
// shed what it carries above its control's minimum, capped at its configured capacity_kw; the
// reduction is shared in proportion to that. When the zone cannot give it all, every controller
// sheds all it can and the plan says `partial`.
import { profileControls, type WritableControl } from '../modbus/write-controls.js';
import { drExclusion, drSetpointControl } from '../config/dr-targets.js';
import type { ControlDef, DeviceProfile } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';

export interface ZoneController {
  device: DeviceConfig;
  profile: DeviceProfile;
  control: WritableControl;
}

interface PlannedController {
  device: DeviceConfig;
  profile: DeviceProfile;
  control: WritableControl;
  baseline_kw: number;
  reduction_kw: number;
  /** Setpoint in the control's own scaled unit (kW, W, %, ...). */
  setpoint: number;
}

interface Plan {
  zone: string;
  requested_mw: number;
  planned_mw: number;
  /** True when the zone can give less than requested. */
  partial: boolean;
  controllers: PlannedController[];
}

/** Current load of a device in kW, e.g. from the poller's latest reading; undefined when unknown or stale. */
export type LoadProvider = (deviceId: string) => number | undefined;

/** The handle of the control a DR command drives (drSetpointControl: the one rule validate uses too). */
function setpointControl(profile: DeviceProfile): WritableControl | undefined {
  const def = drSetpointControl(profile);
  return def === undefined ? undefined : profileControls(profile).get(def.id);
}

/** The enabled load controllers DR leaves out, each with the reason (logged when DR starts). */
export function leftOutControllers(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>): Array<{ device: string; reason: string }> {
  const out: Array<{ device: string; reason: string }> = [];
  for (const device of devices) {
    const profile = profiles.get(device.profile);
    if (!device.enabled || profile?.kind !== 'load_controller') continue;
    const reason = drExclusion(profile);
    if (reason !== undefined) out.push({ device: device.id, reason });
  }
  return out;
}

/** The zone's (or, without a zone, every zone's) enabled load controllers that have a control to drive. */
export function zoneControllers(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>, zone?: string): ZoneController[] {
  const out: ZoneController[] = [];
  for (const device of devices) {
    if (!device.enabled || (zone !== undefined && device.zone !== zone)) continue;
    const profile = profiles.get(device.profile);
    if (!profile || profile.kind !== 'load_controller' || drExclusion(profile) !== undefined) continue;
    const control = setpointControl(profile);
    if (control) out.push({ device, profile, control });
  }
  return out;
}

/** kW per one unit of the control's value; for % the reference is the device's capacity. */
function kwPerUnit(control: Pick<ControlDef, 'unit'>, device: DeviceConfig): number | undefined {
  switch (control.unit) {
    case 'W': return 0.001;
    case 'kW': case undefined: return 1;
    case 'MW': return 1000;
    case '%': return device.capacity_kw === undefined ? undefined : device.capacity_kw / 100;
    default: return undefined;
  }
}

/** The value written when a command ends (profile `restore`, default the control's max). */
export function restoreValue(control: Pick<ControlDef, 'restore' | 'min' | 'max'>): number {
  const r = control.restore ?? 'max';
  return r === 'max' ? control.max : r === 'min' ? control.min : r;
}

/** Rounds to the control's register resolution so the read-back can match exactly. */
function roundToResolution(value: number, control: Pick<ControlDef, 'scale' | 'scale_factor'>): number {
  const step = control.scale_factor === undefined ? Math.abs(control.scale ?? 1) : 0;
  if (step <= 0) return value;
  const rounded = Math.round(value / step) * step;
  return Number(rounded.toFixed(10));
}

export function planCurtailment(
  controllers: readonly ZoneController[],
  zone: string,
  reductionMw: number,
  loadKw: LoadProvider = () => undefined,
): Plan {
  const rows = controllers.map(({ device, profile, control }) => {
    const { def } = control;
    const k = kwPerUnit(def, device);
    const maxKw = k === undefined ? 0 : def.max * k;
    const floorKw = k === undefined ? 0 : Math.max(0, def.min * k);
    const baseline = loadKw(device.id) ?? device.capacity_kw ?? maxKw;
    const cap = device.capacity_kw ?? Infinity;
    const sheddable = k === undefined ? 0 : Math.max(0, Math.min(cap, baseline - floorKw));
    return { device, profile, control, k, baseline, sheddable };
  });
  const requestedKw = reductionMw * 1000;
  const totalSheddable = rows.reduce((s, r) => s + r.sheddable, 0);
  const share = totalSheddable <= requestedKw ? 1 : requestedKw / totalSheddable;
  const planned: PlannedController[] = [];
  let plannedKw = 0;
  for (const r of rows) {
    if (r.k === undefined || r.sheddable <= 0) continue;
    const reduction = r.sheddable * share;
    const setpoint = roundToResolution((r.baseline - reduction) / r.k, r.control.def);
    const actual = r.baseline - setpoint * r.k;
    plannedKw += actual;
    planned.push({ device: r.device, profile: r.profile, control: r.control, baseline_kw: r.baseline, reduction_kw: actual, setpoint });
  }
  return {
    zone,
    requested_mw: reductionMw,
    planned_mw: Number((plannedKw / 1000).toFixed(6)),
    partial: plannedKw + 1e-6 < requestedKw,
    controllers: planned,
  };
}
