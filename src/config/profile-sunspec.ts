// SunSpec points of a profile (`sunspec: { model, offset }` or `{ model, point }`), checked and
// placed when the profile is loaded: each gets the address it has in the profile's reference chain
// (`sunspec_models` from `sunspec_base`), so validate, the read planner and the simulators see an
// ordinary register map. The gateway does not poll those addresses: it finds the chain on each
// device at connect (src/modbus/sunspec-discovery.ts) and places the points there
// (src/modbus/sunspec-layout.ts).
import { hint } from './did-you-mean.js';
import type { DeviceProfile, PointDef, SunSpecModelRef, UnplacedPoint, UnplacedProfile } from './profile-types.js';
import { pointWidth } from './profile-types.js';
import { sunspecModel } from './sunspec-models.js';
import type { FileCtx } from './yaml-source.js';

/** Where each model of the reference chain starts (wire address of its ID register). */
function referenceStarts(base: number, models: readonly SunSpecModelRef[]): Map<number, number> {
  const out = new Map<number, number>();
  let at = base + 2;
  for (const m of models) {
    if (!out.has(m.id)) out.set(m.id, at);
    at += 2 + m.length;
  }
  return out;
}

/** Whether a profile places points by SunSpec discovery. */
export function isSunSpecProfile(p: Pick<DeviceProfile, 'sunspec_models'>): boolean {
  return p.sunspec_models !== undefined && p.sunspec_models.length > 0;
}

/** Whether a point has its place: an `address`, and for a `sunspec` point its `offset` too. */
function isPlaced<P extends UnplacedPoint>(pt: P): pt is P & Pick<PointDef, 'address' | 'sunspec'> {
  return pt.address !== undefined && (pt.sunspec === undefined || pt.sunspec.offset !== undefined);
}

/**
 * Checks the `sunspec` keys of a profile and fills each such point's `address` from the reference
 * chain (and `offset`, when the point is named). Returns the profile of the placed points: those
 * that cannot be placed are left out, for the caller refuses the profile when any was reported
 * (the lenient pass checks what remains).
 */
export function placeSunSpecPoints(p: UnplacedProfile, ctx: FileCtx): DeviceProfile {
  place(p, ctx);
  const placedProfile = { ...p, points: p.points.filter(isPlaced), controls: p.controls.filter(isPlaced) };
  const origin = ctx.origins.get(p);
  if (origin !== undefined) ctx.origins.set(placedProfile, origin);
  return placedProfile;
}

function place(p: UnplacedProfile, ctx: FileCtx): void {
  const all: UnplacedPoint[] = [...p.points, ...p.controls];
  const placed = all.filter((pt) => pt.sunspec !== undefined);
  const models = p.sunspec_models;
  if (models === undefined) {
    for (const pt of placed) ctx.errorAt(pt, 'sunspec', 'a `sunspec` point needs the profile\'s `sunspec_models` (the model chain the profile was written for)');
    return;
  }
  if (p.sunspec_base === undefined) {
    ctx.errorAt(p, 'sunspec_models', '`sunspec_models` needs `sunspec_base` (where the \'SunS\' marker of that chain is: 40000, 0 or 50000)');
    return;
  }
  const seen = new Set<number>();
  let end = p.sunspec_base - p.address_base + 2;
  for (const m of models) {
    for (const id of [m.id, ...(m.or ?? [])]) {
      if (seen.has(id)) ctx.errorAt(m, id === m.id ? 'id' : 'or', `model ${id} is listed twice: a profile places each model once`);
      seen.add(id);
    }
    const def = sunspecModel(m.id);
    for (const alt of m.or ?? []) {
      const other = sunspecModel(alt);
      if (def === undefined || other === undefined || JSON.stringify(def.points) !== JSON.stringify(other.points)) {
        ctx.errorAt(m, 'or', `model ${alt} does not have the layout of model ${m.id} (\`or\` is for models known to share one, e.g. 101, 102 for 103; 111, 112 for 113)`);
      }
    }
    end += 2 + m.length;
  }
  if (end + 2 > 0x10000) ctx.errorAt(p, 'sunspec_models', `the chain from sunspec_base ${p.sunspec_base} runs past register 65535 (ends at ${end + 1})`);
  const starts = referenceStarts(p.sunspec_base - p.address_base, models);
  const lengths = new Map(models.map((m) => [m.id, m.length]));
  for (const pt of placed) {
    const ref = pt.sunspec;
    if (ref === undefined) continue;
    if (pt.address !== undefined) {
      ctx.errorAt(pt, 'address', 'give `address` or `sunspec`, not both: a SunSpec point is placed from the chain found on the device');
      continue;
    }
    const start = starts.get(ref.model);
    if (start === undefined) {
      ctx.errorAt(ref, 'model', `model ${ref.model} is not in \`sunspec_models\` (${models.map((m) => m.id).join(', ')})`);
      continue;
    }
    if (pt.table !== 'holding') ctx.errorAt(pt, 'table', `SunSpec models are holding registers, not ${pt.table}`);
    const def = sunspecModel(ref.model);
    if (ref.point !== undefined) {
      if (def === undefined) {
        ctx.errorAt(ref, 'point', `model ${ref.model} is not known by point name: give \`offset\` (from the model's ID register)`);
        continue;
      }
      const sp = def.points.find((x) => x.name === ref.point);
      if (sp === undefined) {
        ctx.errorAt(ref, 'point', `model ${ref.model} (${def.name}) has no point ${JSON.stringify(ref.point)}${hint(ref.point, def.points.map((x) => x.name))}`);
        continue;
      }
      if (ref.offset !== undefined && ref.offset !== sp.offset) {
        ctx.errorAt(ref, 'offset', `point ${sp.name} of model ${ref.model} is at offset ${sp.offset}, not ${ref.offset}`);
        continue;
      }
      if (pointWidth(pt) !== sp.size) {
        ctx.errorAt(pt, 'type', `point ${sp.name} of model ${ref.model} is ${sp.size} register(s) (${sp.type}), ${pt.type} is ${pointWidth(pt)}`);
        continue;
      }
      ref.offset = sp.offset;
    } else if (ref.offset === undefined) {
      ctx.errorAt(ref, 'model', 'a `sunspec` point needs `offset` or `point`');
      continue;
    }
    const length = lengths.get(ref.model) ?? 0;
    if (ref.offset + pointWidth(pt) > length + 2) {
      ctx.errorAt(ref, 'offset', `offset ${ref.offset} + ${pointWidth(pt)} register(s) runs past model ${ref.model} (length ${length}: offsets 2..${length + 1})`);
      continue;
    }
    pt.address = start + ref.offset + p.address_base;
  }
  // A value and its scale factor must come from the same model: one read, one moment (evcc#2162).
  const byId = new Map(all.map((x) => [x.id, x]));
  for (const pt of placed) {
    const sf = pt.scale_factor === undefined ? undefined : byId.get(pt.scale_factor);
    if (sf && pt.sunspec && sf.sunspec?.model !== pt.sunspec.model) {
      ctx.errorAt(pt, 'scale_factor', `scale factor ${JSON.stringify(sf.id)} is not in model ${pt.sunspec.model} with the point: give it \`sunspec: { model: ${pt.sunspec.model}, ... }\` too`);
    }
  }
}
