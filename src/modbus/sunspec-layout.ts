// A SunSpec profile placed on one device: each `sunspec` point (model + offset) goes to the block
// start of its model in the chain found on that device (sunspec-discovery.ts). Points of a model
// the device lacks, or past the end of the device's shorter model, are left out with the reason:
// they are not read, so they are absent (never 0), and a control among them has no handle. The
// result is an ordinary DeviceProfile (its placed points carry no `sunspec`): the read planner and
// profileControls() take it as it is, and only it gives handles to the SunSpec controls.
import type { ControlDef, DeviceProfile, PointDef } from '../config/profile-types.js';
import { pointWidth } from '../config/profile-types.js';
import { sunspecModelName } from '../config/sunspec-models.js';

export interface SunSpecBlock {
  id: number;
  /** Wire address of the model's ID register. */
  start: number;
  /** The model's L register: registers after ID and L. */
  length: number;
}

/** How the walk ended: the 0xFFFF end marker, a read the device refused, or a bound. */
type ChainEnd = 'end_marker' | 'refused' | 'model_limit' | 'address_space';

export interface SunSpecChain {
  /** Wire address of the 'SunS' marker. */
  base: number;
  models: SunSpecBlock[];
  end: ChainEnd;
}

interface LeftOut {
  id: string;
  model: number | undefined;
  reason: string;
}

interface LengthMismatch {
  model: number;
  device: number;
  profile: number;
}

export interface DeviceLayout {
  chain: SunSpecChain;
  /** The profile with its SunSpec points at this device's addresses, the left-out ones removed. */
  profile: DeviceProfile;
  /** Points and controls not read or not writable on this device, each with its reason. */
  leftOut: LeftOut[];
  lengthMismatches: LengthMismatch[];
}

/** The first block of each model id (a model repeated in a chain is placed at its first copy). */
function blocksById(chain: SunSpecChain): Map<number, SunSpecBlock> {
  const out = new Map<number, SunSpecBlock>();
  for (const b of chain.models) if (!out.has(b.id)) out.set(b.id, b);
  return out;
}

/** `1 common @40002+66, 103 inverter_three_phase @40070+50, ...` for logs. */
export function describeChain(chain: SunSpecChain): string {
  return chain.models.map((b) => `${b.id} ${sunspecModelName(b.id)} @${b.start}+${b.length}`).join(', ');
}

export function placeOnDevice(profile: DeviceProfile, chain: SunSpecChain): DeviceLayout {
  const blocks = blocksById(chain);
  // A model of the profile may stand for others of its layout (`or`): the first the device has.
  const alternatives = new Map((profile.sunspec_models ?? []).map((m) => [m.id, [m.id, ...(m.or ?? [])]]));
  const blockOf = (model: number): SunSpecBlock | undefined => {
    for (const id of alternatives.get(model) ?? [model]) {
      const b = blocks.get(id);
      if (b !== undefined) return b;
    }
    return undefined;
  };
  const named = (model: number): string => {
    const ids = alternatives.get(model) ?? [model];
    return `model ${ids.join(' or ')} (${ids.map(sunspecModelName).join(' / ')})`;
  };
  const reasons = new Map<string, LeftOut>();
  const place = <T extends PointDef>(pt: T): T | undefined => {
    const ref = pt.sunspec;
    if (ref === undefined) return pt;
    const block = blockOf(ref.model);
    if (block === undefined) {
      reasons.set(pt.id, { id: pt.id, model: ref.model, reason: `${named(ref.model)} is not in the device's SunSpec chain` });
      return undefined;
    }
    if (ref.offset + pointWidth(pt) > block.length + 2) {
      reasons.set(pt.id, { id: pt.id, model: ref.model, reason: `offset ${ref.offset} is past the end of the device's model ${block.id} (length ${block.length})` });
      return undefined;
    }
    // Placed: an ordinary point at this device's address (no `sunspec` left, so its control has a handle).
    const { sunspec: _ref, ...placed } = pt;
    return { ...placed, address: block.start + ref.offset + profile.address_base } as T;
  };
  const modelOf = new Map([...profile.points, ...profile.controls].map((p) => [p.id, p.sunspec?.model]));
  let points = profile.points.map(place).filter((p): p is PointDef => p !== undefined);
  let controls = profile.controls.map(place).filter((c): c is ControlDef => c !== undefined);
  // What depends on a left-out point goes too (its scale factor, read-back point, enable, timer).
  for (let changed = true; changed;) {
    changed = false;
    const have = new Set([...points, ...controls].map((p) => p.id));
    const haveControl = new Set(controls.map((c) => c.id));
    const missing = (pt: PointDef): string | undefined => {
      if (pt.scale_factor !== undefined && !have.has(pt.scale_factor)) return `its scale factor ${JSON.stringify(pt.scale_factor)} is not on the device`;
      const c = pt as Partial<ControlDef>;
      if (c.verify?.point !== undefined && !have.has(c.verify.point)) return `its read-back point ${JSON.stringify(c.verify.point)} is not on the device`;
      if (c.enable !== undefined && !haveControl.has(c.enable.point)) return `its enable control ${JSON.stringify(c.enable.point)} is not on the device`;
      if (c.revert_timer !== undefined && !haveControl.has(c.revert_timer.point)) return `its revert timer ${JSON.stringify(c.revert_timer.point)} is not on the device`;
      return undefined;
    };
    const keep = <T extends PointDef>(pt: T): boolean => {
      const why = missing(pt);
      if (why === undefined) return true;
      reasons.set(pt.id, { id: pt.id, model: modelOf.get(pt.id), reason: why });
      changed = true;
      return false;
    };
    points = points.filter(keep);
    controls = controls.filter(keep);
  }
  const lengthMismatches: LengthMismatch[] = [];
  for (const m of profile.sunspec_models ?? []) {
    const b = blockOf(m.id);
    if (b !== undefined && b.length !== m.length) lengthMismatches.push({ model: b.id, device: b.length, profile: m.length });
  }
  const order = new Map([...profile.points, ...profile.controls].map((p, i) => [p.id, i]));
  const leftOut = [...reasons.values()].sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return { chain, profile: { ...profile, points, controls }, leftOut, lengthMismatches };
}

/** Left-out points grouped by model, for /status and the log: one line per model. */
export function absentModels(layout: DeviceLayout): Array<{ model: number | undefined; points: string[]; reason: string }> {
  const out = new Map<string, { model: number | undefined; points: string[]; reason: string }>();
  for (const l of layout.leftOut) {
    const key = `${String(l.model)}|${l.reason}`;
    const e = out.get(key) ?? { model: l.model, points: [], reason: l.reason };
    e.points.push(l.id);
    out.set(key, e);
  }
  return [...out.values()];
}
