// Loading device profiles: read (size-capped), parse with positions, validate against
// profile-schema.ts, run the cross-point checks, then the checks the Modbus layer lends (its read
// plan and writable-control handles: src/modbus/profile-load.ts, which this layer may not import;
// the loaders of a profile on its own live there), return DeviceProfile.
import { readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { checkProfile } from './profile-checks.js';
import { lenientProfile } from './profile-lenient.js';
import { profileSchema } from './profile-schema.js';
import { placeSunSpecPoints } from './profile-sunspec.js';
import type { ControlDef, DeviceProfile, PointDef, UnplacedProfile } from './profile-types.js';
import { INVALID } from './schema-dsl.js';
import { FileCtx, parseYaml, Problems, readConfigText } from './yaml-source.js';

/** A problem a lent check found: at `key` of the point or control `at`, or (no `at`) on the profile as a whole. */
export interface ProfileProblem { at?: PointDef | ControlDef; key: string; message: string }

/**
 * The Modbus layer's checks of a profile free of other errors (`modbusProfileChecks` of
 * src/modbus/profile-load.ts): its reads compile to a read plan, and its controls become the
 * writable-control handles, made there once per profile. Any problem refuses the profile.
 */
export type ProfileChecks = (profile: DeviceProfile) => readonly ProfileProblem[];

/** What the layers above lend the profile loader. */
interface ProfileLoadOptions {
  /** The Modbus layer's checks, required of every caller. */
  checks: ProfileChecks;
  /** The device metric vocabulary (name -> unit); omitted, `metric:` names are only checked against the pattern. */
  metrics?: Readonly<Record<string, string>> | undefined;
}

/** Parses and checks one profile from text, with the checks lent; problems go to `problems`. */
export function parseProfileWith(text: string, file: string, problems: Problems, lent: ProfileLoadOptions): DeviceProfile | undefined {
  const { checks, metrics } = lent;
  const src = parseYaml(text, file, problems);
  if (!src.doc) return undefined;
  const ctx = new FileCtx(src, problems, {}, dirname(file));
  const before = problems.errorCount;
  const root = ctx.deref(src.doc.contents, '');
  const out = profileSchema.parse(root, '', ctx);
  const name = basename(file).replace(/\.ya?ml$/, '');
  if (out === INVALID || problems.errorCount > before) {
    const lenient = lenientProfile(root, file, name, ctx);
    // Points that could not be placed are left out: nothing more to check on them.
    if (lenient) checkProfile(placeSunSpecPoints(lenient.profile, ctx), ctx, lenient.unresolved, metrics);
    return undefined;
  }
  if (out['profile'] !== undefined && out['profile'] !== name) {
    ctx.errorAt(out, 'profile', `profile ${JSON.stringify(out['profile'])} must equal the file name ${JSON.stringify(name)}`);
  }
  const parsed: UnplacedProfile = { ...out, profile: name, source: file };
  ctx.origins.set(parsed, { node: src.doc.contents ?? src.doc.createNode(null), path: '' });
  const placing = problems.errorCount;
  const profile = placeSunSpecPoints(parsed, ctx);
  if (problems.errorCount > placing) return undefined;
  checkProfile(profile, ctx, new Set(), metrics);
  if (problems.errorCount > before) return undefined;
  const lentProblems = checks(profile);
  for (const p of lentProblems) {
    if (p.at) ctx.errorAt(p.at, p.key, p.message);
    else ctx.error(undefined, p.key, p.message);
  }
  if (lentProblems.length > 0) return undefined;
  return profile;
}

/** Reads one profile file into `problems`, with the checks lent; undefined when it has errors. */
export async function readProfileWith(file: string, problems: Problems, lent: ProfileLoadOptions): Promise<DeviceProfile | undefined> {
  const text = await readConfigText(file, problems);
  return text === undefined ? undefined : parseProfileWith(text, file, problems, lent);
}

/** Names of the profiles in a folder (file names without .yaml), sorted. */
export async function listProfiles(dir: string): Promise<string[]> {
  try {
    const files = await readdir(dir);
    return files.filter((f) => /\.ya?ml$/.test(f)).map((f) => f.replace(/\.ya?ml$/, '')).sort();
  } catch {
    return [];
  }
}
