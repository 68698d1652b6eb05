// Loading device profiles: read (size-capped), parse with positions, validate against
// profile-schema.ts, run the cross-point checks and the read planner, return DeviceProfile.
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PlanError, planReads } from '../modbus/read-plan.js';
import { ConfigError, sortProblems } from './errors.js';
import { checkProfile } from './profile-checks.js';
import { ControlDefinitionError, profileControls } from '../modbus/write-controls.js';
import { lenientProfile } from './profile-lenient.js';
import { profileSchema } from './profile-schema.js';
import { placeSunSpecPoints } from './profile-sunspec.js';
import type { DeviceProfile, UnplacedProfile } from './profile-types.js';
import { INVALID } from './schema-dsl.js';
import { FileCtx, parseYaml, Problems, readConfigText } from './yaml-source.js';

/** Parses and checks one profile from text; problems go to `problems`. */
export function parseProfile(
  text: string, file: string, problems: Problems, metrics?: Readonly<Record<string, string>>,
): DeviceProfile | undefined {
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
  try {
    planReads(profile);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    const pt = [...profile.points, ...profile.controls].find((p) => p.id === err.point);
    if (pt) ctx.errorAt(pt, err.code.startsWith('scale_factor') ? 'scale_factor' : 'id', `read plan: ${err.message.replace(/^profile [^:]+: point "[^"]*": /, '')}`);
    else ctx.error(undefined, '', err.message);
    return undefined;
  }
  // The writable-control handles are made here, once: the only way anything gets written later.
  try {
    profileControls(profile);
  } catch (err) {
    if (!(err instanceof ControlDefinitionError)) throw err;
    for (const p of err.problems) ctx.errorAt(p.control, p.key, p.message);
    return undefined;
  }
  return profile;
}

/** Reads one profile file into `problems`; undefined when it has errors. */
export async function readProfile(
  file: string, problems: Problems, metrics?: Readonly<Record<string, string>>,
): Promise<DeviceProfile | undefined> {
  const text = await readConfigText(file, problems);
  return text === undefined ? undefined : parseProfile(text, file, problems, metrics);
}

/** One profile, or a ConfigError with every problem. */
export async function loadProfile(path: string): Promise<DeviceProfile> {
  const problems = new Problems();
  const p = await readProfile(resolve(path), problems);
  if (!p || problems.errorCount > 0) throw new ConfigError(sortProblems(problems.list));
  return p;
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

/** Every profile of a folder, keyed by name; a ConfigError lists the problems of all of them. */
export async function loadProfiles(dir: string): Promise<Map<string, DeviceProfile>> {
  const problems = new Problems();
  const out = new Map<string, DeviceProfile>();
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  for (const f of files) {
    const p = await readProfile(join(resolve(dir), f), problems);
    if (p) out.set(p.profile, p);
  }
  if (problems.errorCount > 0) throw new ConfigError(sortProblems(problems.list));
  return out;
}
