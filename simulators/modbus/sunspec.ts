// SunSpec layouts for the simulated device: a profile with `sunspec_models` is served as a real
// SunSpec device is laid out, the 'SunS' marker, each model's ID and L registers and the 0xFFFF
// end marker included, either in the profile's own reference chain or in another layout (models
// left out, longer models, vendor models in between, another base): the same placement the
// gateway makes from a discovered chain (src/modbus/sunspec-layout.ts), so both sides agree.
import { isSunSpecProfile } from '../../src/config/profile-sunspec.js';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import { placeOnDevice, type SunSpecBlock, type SunSpecChain } from '../../src/modbus/sunspec-layout.js';

export interface SunSpecLayout {
  /** Wire address of the marker; default the profile's sunspec_base. */
  base?: number;
  /** The chain served, in order; models absent here are absent on the device. */
  models: ReadonlyArray<{ id: number; length: number }>;
}

/** The chain a layout describes, with each model's block start. */
export function layoutChain(base: number, models: SunSpecLayout['models']): SunSpecChain {
  const blocks: SunSpecBlock[] = [];
  let at = base + 2;
  for (const m of models) {
    blocks.push({ id: m.id, start: at, length: m.length });
    at += 2 + m.length;
  }
  return { base, models: blocks, end: 'end_marker' };
}

const constant = (id: string, address: number, type: 'uint16' | 'string', value: number | string, length?: number): PointDef => ({
  id, table: 'holding', address, type, role: 'identity', sentinel: 'none',
  ...(length === undefined ? {} : { length }), simulate: { kind: 'constant', value },
});

/**
 * The profile the simulator serves: for a SunSpec profile its points placed on the layout (the
 * profile's own chain by default) plus the marker, model headers and end marker; any other
 * profile as it is.
 */
export function servedProfile(profile: DeviceProfile, layout?: SunSpecLayout): DeviceProfile {
  if (!isSunSpecProfile(profile) || profile.sunspec_base === undefined) return profile;
  const base = layout?.base ?? profile.sunspec_base - profile.address_base;
  const chain = layoutChain(base, layout?.models ?? profile.sunspec_models ?? []);
  const placed = placeOnDevice(profile, chain).profile;
  const ab = profile.address_base;
  const headers: PointDef[] = [constant('sunspec__marker', base + ab, 'string', 'SunS', 2)];
  for (const b of chain.models) {
    headers.push(constant(`sunspec__${b.id}_${b.start}_id`, b.start + ab, 'uint16', b.id));
    headers.push(constant(`sunspec__${b.id}_${b.start}_l`, b.start + 1 + ab, 'uint16', b.length));
  }
  const end = chain.models.reduce((at, b) => b.start + 2 + b.length, base + 2);
  headers.push(constant('sunspec__end_id', end + ab, 'uint16', 0xffff), constant('sunspec__end_l', end + 1 + ab, 'uint16', 0));
  // Animations that sum points of a model the layout leaves out still run, over what is there.
  const have = new Set(placed.points.map((p) => p.id));
  const points = placed.points.map((p) => (p.simulate?.kind === 'sum' ? { ...p, simulate: { ...p.simulate, points: p.simulate.points.filter((id) => have.has(id)) } } : p));
  return { ...placed, points: [...headers, ...points] };
}
