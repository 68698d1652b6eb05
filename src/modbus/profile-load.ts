// Loading a device profile to poll and write it. src/config reads and checks the file (schema,
// cross-point checks); the checks that need this layer finish it: its reads must compile to a read
// plan (read-plan.ts), and its controls become the writable-control handles (write-controls.ts),
// made here once per loaded profile. The site loader, which may not import this layer, is lent the
// same checks (LoadOptions.profileChecks), as it is the poll budget (poll-budget.ts).
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, sortProblems } from '../config/errors.js';
import { parseProfileWith, readProfileWith, type ProfileProblem } from '../config/profile-load.js';
import type { DeviceProfile } from '../config/profile-types.js';
import { Problems } from '../config/yaml-source.js';
import { PlanError, planReads } from './read-plan.js';
import { ControlDefinitionError, profileControls } from './write-controls.js';

/**
 * The Modbus layer's checks of a profile free of other errors, lent to src/config's loader: a
 * profile whose reads cannot be planned is refused (on the point the planner names), then its
 * writable-control handles are made, and a control that cannot be written safely refuses it.
 */
export function modbusProfileChecks(profile: DeviceProfile): ProfileProblem[] {
  try {
    planReads(profile);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    const pt = [...profile.points, ...profile.controls].find((p) => p.id === err.point);
    if (!pt) return [{ key: '', message: err.message }];
    const key = err.code.startsWith('scale_factor') ? 'scale_factor' : 'id';
    return [{ at: pt, key, message: `read plan: ${err.message.replace(/^profile [^:]+: point "[^"]*": /, '')}` }];
  }
  // The writable-control handles are made here, once: the only way anything gets written later.
  try {
    profileControls(profile);
  } catch (err) {
    if (!(err instanceof ControlDefinitionError)) throw err;
    return err.problems.map((p) => ({ at: p.control, key: p.key, message: p.message }));
  }
  return [];
}

/** Parses and checks one profile from text; problems go to `problems`. */
export function parseProfile(text: string, file: string, problems: Problems): DeviceProfile | undefined {
  return parseProfileWith(text, file, problems, { checks: modbusProfileChecks });
}

/** One profile, or a ConfigError with every problem. */
export async function loadProfile(path: string): Promise<DeviceProfile> {
  const problems = new Problems();
  const p = await readProfileWith(resolve(path), problems, { checks: modbusProfileChecks });
  if (!p || problems.errorCount > 0) throw new ConfigError(sortProblems(problems.list));
  return p;
}

/** Every profile of a folder, keyed by name; a ConfigError lists the problems of all of them. */
export async function loadProfiles(dir: string): Promise<Map<string, DeviceProfile>> {
  const problems = new Problems();
  const out = new Map<string, DeviceProfile>();
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  for (const f of files) {
    const p = await readProfileWith(join(resolve(dir), f), problems, { checks: modbusProfileChecks });
    if (p) out.set(p.profile, p);
  }
  if (problems.errorCount > 0) throw new ConfigError(sortProblems(problems.list));
  return out;
}
