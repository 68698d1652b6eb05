// Loading a site: the site file and the profiles it names, validated in one pass; every problem
// (of the site file and of the profiles) at once in a ConfigError, before anything starts.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, sortProblems } from './errors.js';
import { packageRoot } from './package-root.js';
import { listProfiles, loadProfile, loadProfiles, readProfile } from './profile-load.js';
import type { DeviceProfile } from './profile-types.js';
import { INVALID } from './schema-dsl.js';
import { checkSite } from './site-checks.js';
import { siteSchema } from './site-schema.js';
import type { LoadedSite, SiteConfig } from './site-types.js';
import { FileCtx, parseYaml, Problems, readConfigText } from './yaml-source.js';

export { ConfigError, loadProfile, loadProfiles };

/** The package's devices/ folder. */
export const DEFAULT_DEVICES_DIR: string = join(packageRoot(), 'devices');

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Profiles folder; a site's `profiles_dir:` wins over this, this wins over DEFAULT_DEVICES_DIR. */
  devicesDir?: string;
}

export async function loadSite(path: string, opts: LoadOptions = {}): Promise<LoadedSite> {
  const file = resolve(path);
  const problems = new Problems();
  const text = await readConfigText(file, problems);
  if (text === undefined) throw new ConfigError(problems.list);
  return loadSiteFromString(text, { ...opts, file });
}

/** Validates site YAML given as text; `file` names it in messages and anchors relative paths. */
export async function loadSiteFromString(text: string, opts: LoadOptions & { file: string }): Promise<LoadedSite> {
  const file = resolve(opts.file);
  const problems = new Problems();
  const src = parseYaml(text, file, problems);
  if (!src.doc) throw new ConfigError(sortProblems(problems.list));
  const ctx = new FileCtx(src, problems, opts.env ?? process.env, dirname(file));
  const out = siteSchema.parse(ctx.deref(src.doc.contents, ''), '', ctx);

  // Profiles are checked even when the site has errors, so one run shows everything.
  const raw = out === INVALID ? undefined : (out as unknown as SiteConfig & { profiles_dir?: string });
  const devicesDir = raw?.profiles_dir !== undefined ? resolve(dirname(file), raw.profiles_dir) : resolve(opts.devicesDir ?? DEFAULT_DEVICES_DIR);
  if (raw?.profiles_dir !== undefined) {
    raw.profiles_dir = devicesDir;
    if (!existsSync(devicesDir)) ctx.errorAt(raw, 'profiles_dir', `folder ${JSON.stringify(raw.profiles_dir)} does not exist`);
  }
  const available = await listProfiles(devicesDir);
  const profiles = new Map<string, DeviceProfile>();
  const wanted = new Set((raw?.devices ?? []).map((d) => d.profile).filter((p) => available.includes(p)));
  for (const name of [...wanted].sort()) {
    const p = await readProfile(join(devicesDir, `${name}.yaml`), problems);
    if (p) profiles.set(name, p);
  }
  // Site checks run even when a profile has errors, so one run shows everything.
  if (raw) {
    raw.source = file;
    checkSite(raw, profiles, available, ctx);
  }
  const sorted = sortProblems(problems.list);
  if (problems.errorCount > 0 || !raw) throw new ConfigError(sorted);
  return { site: raw, profiles, warnings: sorted.filter((p) => p.severity === 'warning') };
}
