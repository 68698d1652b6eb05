// A profile with schema errors still gets its cross-point checks on the points that are valid,
// so one run shows every problem (overlaps, scale factors, references) and not only the first
// layer. Schema problems were reported by the full pass; this pass only feeds checkProfile.
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { profileSchema } from './profile-schema.js';
import type { DeviceProfile, PointDef } from './profile-types.js';
import { INVALID, type ArrSchema, type Schema } from './schema-dsl.js';
import type { ObjSchema } from './schema-object.js';
import type { FileCtx } from './yaml-source.js';

export interface LenientProfile { profile: DeviceProfile; unresolved: Set<string> }

function field(root: Node, key: string): Node | null | undefined {
  if (!isMap(root)) return undefined;
  return root.items.find((p) => isScalar(p.key) && p.key.value === key)?.value as Node | null | undefined;
}

function parsed<T>(s: Schema, node: Node | null | undefined, path: string, ctx: FileCtx): T | undefined {
  if (node === undefined || node === null) return undefined;
  const scratch = ctx.scratch();
  const v = s.parse(scratch.deref(node, path), path, scratch);
  return v === INVALID || scratch.problems.errorCount > 0 ? undefined : (v as T);
}

/** The valid parts of a broken profile, or undefined when too little is valid to check anything. */
export function lenientProfile(root: Node | null | undefined, file: string, name: string, ctx: FileCtx): LenientProfile | undefined {
  if (!root || !isMap(root)) return undefined;
  const f = profileSchema.fields;
  const fieldSchema = (k: string): Schema => {
    const entry = f[k];
    if (!entry) throw new Error(`profile schema has no ${k}`);
    return entry.s;
  };
  const base = parsed<0 | 1>(fieldSchema('address_base'), field(root, 'address_base'), 'address_base', ctx);
  if (base === undefined) return undefined;
  const scratch = ctx.scratch();
  const defaults = (fieldSchema('quirks') as ObjSchema).fromDefaults('quirks', scratch, root);
  const quirks = parsed<DeviceProfile['quirks']>(fieldSchema('quirks'), field(root, 'quirks'), 'quirks', ctx)
    ?? (defaults === INVALID ? undefined : (defaults as unknown as DeviceProfile['quirks']));
  if (!quirks) return undefined;
  const unresolved = new Set<string>();
  const items = (key: 'points' | 'controls'): PointDef[] => {
    const seq = field(root, key);
    if (!isSeq(seq)) return [];
    const item = (fieldSchema(key) as ArrSchema<unknown>).item;
    const out: PointDef[] = [];
    seq.items.forEach((raw, i) => {
      const v = parsed<PointDef>(item, raw as Node, `${key}[${i}]`, ctx);
      if (v) { out.push(v); return; }
      const id = isMap(raw) ? field(raw, 'id') : undefined;
      if (isScalar(id)) unresolved.add(String(id.value));
    });
    return out;
  };
  const profile = {
    profile: name, vendor: '', model: '', kind: 'other', source: file,
    address_base: base,
    default_order: parsed(fieldSchema('default_order'), field(root, 'default_order'), 'default_order', ctx) ?? 'ABCD',
    sunspec_base: parsed<number>(fieldSchema('sunspec_base'), field(root, 'sunspec_base'), 'sunspec_base', ctx),
    sunspec_models: parsed<DeviceProfile['sunspec_models']>(fieldSchema('sunspec_models'), field(root, 'sunspec_models'), 'sunspec_models', ctx),
    quirks,
    points: items('points'),
    controls: items('controls'),
  } as DeviceProfile;
  // A sunspec_base that failed the schema is not checked again.
  if (profile.sunspec_base === undefined) delete profile.sunspec_base;
  if (profile.sunspec_models === undefined) delete profile.sunspec_models;
  ctx.origins.set(profile, { node: root, path: '' });
  return { profile, unresolved };
}
