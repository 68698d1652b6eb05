// Loading a site: the site file and the profiles it names, validated in one pass; every problem
// (of the site file and of the profiles) at once in a ConfigError, before anything starts.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, sortProblems } from './errors.js';
import { packageRoot } from '../runtime/package-root.js';
import { listProfiles, readProfileWith, type ProfileChecks } from './profile-load.js';
import type { DeviceProfile } from './profile-types.js';
import { INVALID } from './schema-dsl.js';
import { checkLenientSite, checkSite } from './site-checks.js';
import { lenientSite } from './site-lenient.js';
import { siteSchema } from './site-schema.js';
import type { DeviceConfig, LoadedSite, SiteConfig } from './site-types.js';
import { isMap, isScalar, type Document } from 'yaml';
import { FileCtx, parseYaml, Problems, readConfigText } from './yaml-source.js';

export { ConfigError };

/** The package's devices/ folder. */
export const DEFAULT_DEVICES_DIR: string = join(packageRoot(), 'devices');

/** A warning on a device's `poll_interval`: its connection or serial line is too busy. */
export interface PollBudgetWarning { device: DeviceConfig; message: string }
/** The poll budget check (`pollBudgetWarnings` of src/modbus/poll-budget.ts, which this layer may not import). */
export type PollBudget = (devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>) => PollBudgetWarning[];

/**
 * What the layers above this one lend the loader. `metrics`, `pollBudget` and `profileChecks` go
 * together: a caller that loads a site to run, validate or simulate it passes the device metric
 * vocabulary, and with it must pass the poll budget check and the Modbus layer's profile checks, so
 * no such caller can leave a check out (the compiler refuses); the poll budget, which plans the
 * profiles' reads, comes with the profile checks too. The profile checks are required of every
 * caller, a test or a bench included: no loaded site holds a profile the Modbus layer has not
 * planned and made writable-control handles for.
 */
type LoadOptions = {
  env?: NodeJS.ProcessEnv;
  /** Profiles folder; a site's `profiles_dir:` wins over this, this wins over DEFAULT_DEVICES_DIR. */
  devicesDir?: string;
  /**
   * Refuses a profile whose reads cannot be planned or whose controls cannot be made into
   * writable-control handles, and makes those handles (`modbusProfileChecks` of
   * src/modbus/profile-load.ts).
   */
  profileChecks: ProfileChecks;
} & ({
  /**
   * The device metric vocabulary (name -> unit; `DEVICE_METRICS` of the telemetry layer, which
   * this layer may not import): every profile `metric:` must be one of these, in its unit.
   * The CLI always passes it; omitted, names are only checked against the pattern.
   */
  metrics: Readonly<Record<string, string>>;
  /** Warns on a connection or serial line whose polls need more than half its time. */
  pollBudget: PollBudget;
} | {
  metrics?: undefined;
  /** The poll budget plans every profile's reads: it comes with the check that they can be planned. */
  pollBudget?: PollBudget;
});

export async function loadSite(path: string, opts: LoadOptions): Promise<LoadedSite> {
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

  const raw = out === INVALID ? undefined : out;
  const dirSetting = raw ? raw.profiles_dir : topLevelString(src.doc, 'profiles_dir');
  const devicesDir = dirSetting !== undefined ? resolve(dirname(file), dirSetting) : resolve(opts.devicesDir ?? DEFAULT_DEVICES_DIR);
  if (raw?.profiles_dir !== undefined) {
    raw.profiles_dir = devicesDir;
    if (!existsSync(devicesDir)) ctx.errorAt(raw, 'profiles_dir', `folder ${JSON.stringify(raw.profiles_dir)} does not exist`);
  }
  const available = await listProfiles(devicesDir);
  const profiles = new Map<string, DeviceProfile>();
  // An invalid site still gets its valid sections checked (and their devices' profiles loaded), so
  // one run shows every problem; a check that needs an invalid part holds back (site-lenient.ts).
  const lenient = raw ? undefined : lenientSite(src.doc, ctx);
  const devices = raw?.devices ?? lenient?.devices ?? [];
  const named = [...devices.map((d) => d.profile), ...(lenient?.invalidDeviceProfiles ?? [])];
  const wanted = new Set(named.filter((p) => available.includes(p)));
  for (const name of [...wanted].sort()) {
    const p = await readProfileWith(join(devicesDir, `${name}.yaml`), problems, { checks: opts.profileChecks, metrics: opts.metrics });
    if (p) profiles.set(name, p);
  }
  // Site checks run even when a profile has errors.
  let site: SiteConfig | undefined;
  if (raw) site = checkSite(raw, file, profiles, available, ctx, opts.pollBudget);
  else if (lenient) checkLenientSite(lenient, profiles, available, ctx, opts.pollBudget);
  const sorted = sortProblems(problems.list);
  if (problems.errorCount > 0 || !site) throw new ConfigError(sorted);
  return { site, profiles, warnings: sorted.filter((p) => p.severity === 'warning') };
}

function topLevelString(doc: Document.Parsed, key: string): string | undefined {
  const root = doc.contents;
  const v = isMap(root) ? root.items.find((p) => isScalar(p.key) && p.key.value === key)?.value : undefined;
  return isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
}
