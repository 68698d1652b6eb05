// A profile with schema errors still gets its cross-point checks on the points that are valid,
// so one run shows every problem (overlaps, scale factors, references) and not only the first
// layer. Schema problems were reported by the full pass; this pass only feeds checkProfile.
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { profileSchema } from './profile-schema.js';
import type { UnplacedProfile } from './profile-types.js';
import { INVALID, type ArrSchema, type Schema } from './schema-dsl.js';
import type { FileCtx } from './yaml-source.js';

interface LenientProfile { profile: UnplacedProfile; unresolved: Set<string> }

function field(root: Node, key: string): Node | null | undefined {
  if (!isMap(root)) return undefined;
  return root.items.find((p) => isScalar(p.key) && p.key.value === key)?.value as Node | null | undefined;
}

function parsed<T>(s: Schema<T>, node: Node | null | undefined, path: string, ctx: FileCtx): T | undefined {
  if (node === undefined || node === null) return undefined;
  const scratch = ctx.scratch();
  const v = s.parse(scratch.deref(node, path), path, scratch);
  return v === INVALID || scratch.problems.errorCount > 0 ? undefined : v;
}

/** The valid parts of a broken profile, or undefined when too little is valid to check anything. */
export function lenientProfile(root: Node | null | undefined, file: string, name: string, ctx: FileCtx): LenientProfile | undefined {
  if (!root || !isMap(root)) return undefined;
  const f = profileSchema.fields;
  const base = parsed(f.address_base.s, field(root, 'address_base'), 'address_base', ctx);
  if (base === undefined) return undefined;
  const defaults = f.quirks.s.fromDefaults('quirks', ctx.scratch(), root);
  const quirks = parsed(f.quirks.s, field(root, 'quirks'), 'quirks', ctx) ?? (defaults === INVALID ? undefined : defaults);
  if (!quirks) return undefined;
  const unresolved = new Set<string>();
  const items = <T>(key: 'points' | 'controls', list: ArrSchema<T>): T[] => {
    const seq = field(root, key);
    if (!isSeq(seq)) return [];
    const out: T[] = [];
    seq.items.forEach((raw, i) => {
      const v = parsed(list.item, raw as Node, `${key}[${i}]`, ctx);
      if (v) { out.push(v); return; }
      const id = isMap(raw) ? field(raw, 'id') : undefined;
      if (isScalar(id)) unresolved.add(String(id.value));
    });
    return out;
  };
  const profile: UnplacedProfile = {
    profile: name, vendor: '', model: '', kind: 'other', source: file,
    address_base: base,
    default_order: parsed(f.default_order.s, field(root, 'default_order'), 'default_order', ctx) ?? 'ABCD',
    sunspec_base: parsed(f.sunspec_base.s, field(root, 'sunspec_base'), 'sunspec_base', ctx),
    sunspec_models: parsed(f.sunspec_models.s, field(root, 'sunspec_models'), 'sunspec_models', ctx),
    quirks,
    points: items('points', f.points.s),
    controls: items('controls', f.controls.s),
  };
  // A sunspec_base that failed the schema is not checked again.
  if (profile.sunspec_base === undefined) delete profile.sunspec_base;
  if (profile.sunspec_models === undefined) delete profile.sunspec_models;
  ctx.origins.set(profile, { node: root, path: '' });
  return { profile, unresolved };
}
