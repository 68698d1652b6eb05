// `ems-gateway sunspec scan --host H [--port P] [--unit U] [--write devices/<vendor>-<model>.yaml]`:
// finds the 'SunS' marker and walks the model chain exactly as the gateway does at connect,
// prints the chain (id, name, start, length) and the common model's identity, and with --write
// writes a profile for the device that `validate` accepts (sunspec-scan.ts). It only reads.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parseDuration } from '../config/duration.js';
import { formatProblems } from '../config/errors.js';
import { PROFILE_NAME_PATTERN } from '../config/profile-schema.js';
import { sunspecModelName } from '../config/sunspec-models.js';
import { Problems } from '../config/yaml-source.js';
import { EndpointPool } from '../modbus/endpoint-pool.js';
import { parseProfile } from '../modbus/profile-load.js';
import { readOnly } from '../modbus/types.js';
import { systemClock } from '../runtime/clock.js';
import { silentLogger } from '../runtime/logger.js';
import { defineCommand, parseCommandArgs, runSubcommand, usageFailure } from './args.js';
import { isScanError, scanDevice, scanProfile, suggestedName, type ScanResult } from './sunspec-scan.js';

const USAGE = `usage: ems-gateway sunspec scan --host <host> [--port 502] [--unit 1] [--timeout 1s] [--write devices/<vendor>-<model>.yaml [--force]]
  Finds the SunSpec marker ('SunS' at 40000, 50000 or 0) over Modbus TCP, walks the model chain and
  prints each model (id, name, start, length) and the common model's identity (Mn, Md, Vr, SN).
  --write   also writes a device profile for it (points by model, scale factors, sentinels, the
            model 123 power limit controls); refuses to replace a file unless --force.
  Only reads: nothing is written to the device.
`;

const END_TEXT: Record<string, string> = {
  end_marker: '0xFFFF end marker',
  refused: 'the device refused the read after the last model (no end marker)',
  model_limit: 'stopped: too many models',
  address_space: 'the end of the register space',
};

function fail(message: string, code = 2): number {
  process.stderr.write(`ems-gateway sunspec scan: ${message}\n`);
  return code;
}

/** The chain and identity as `sunspec scan` prints them. */
function describeScan(scan: ScanResult, where: string): string {
  const out = [`SunSpec device at ${where}: 'SunS' at ${scan.chain.base}`];
  for (const k of ['Mn', 'Md', 'Vr', 'SN'] as const) out.push(`  ${k.padEnd(3)} ${scan.identity[k] ?? '(not readable)'}`);
  out.push(`models (${scan.chain.models.length}):`);
  out.push(`  ${'id'.padEnd(6)} ${'name'.padEnd(28)} ${'start'.padEnd(6)} length`);
  for (const m of scan.chain.models) out.push(`  ${String(m.id).padEnd(6)} ${sunspecModelName(m.id).padEnd(28)} ${String(m.start).padEnd(6)} ${m.length}`);
  out.push(`end: ${END_TEXT[scan.chain.end] ?? scan.chain.end}`);
  if (scan.wmax !== undefined) out.push(`${scan.wmax.from}: ${scan.wmax.watts} W (site file: capacity_kw: ${scan.wmax.watts / 1000})`);
  return `${out.join('\n')}\n`;
}

const SCAN_ARGS = defineCommand({
  command: 'sunspec scan',
  usage: USAGE,
  options: {
    host: { type: 'string', required: true },
    port: { type: 'string', kind: 'port' },
    unit: { type: 'string', kind: 'number' },
    timeout: { type: 'string' },
    write: { type: 'string' },
    force: { type: 'boolean' },
  },
});

export function run(args: string[]): Promise<number> {
  return runSubcommand(args, { command: 'sunspec', usage: USAGE, subcommands: { scan } });
}

async function scan(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, SCAN_ARGS);
  if (typeof parsed === 'number') return parsed;
  const values = parsed.values;
  const port = values.port ?? 502;
  if (port < 1) return usageFailure(SCAN_ARGS, `--port must be 1-65535, got ${port}`);
  const unit = values.unit ?? 1;
  if (!Number.isInteger(unit) || unit < 1 || unit > 247) return usageFailure(SCAN_ARGS, `--unit ${JSON.stringify(String(unit))} is not a unit id (1..247; 0 is broadcast, never read)`);
  const timeoutMs = values.timeout === undefined ? 1000 : parseDuration(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) return usageFailure(SCAN_ARGS, `--timeout ${JSON.stringify(values.timeout)} is not a duration (e.g. 1s, 500ms)`);
  let file: string | undefined;
  if (values.write !== undefined) {
    file = resolve(values.write);
    const name = basename(file).replace(/\.ya?ml$/, '');
    if (!/\.ya?ml$/.test(file) || !new RegExp(PROFILE_NAME_PATTERN).test(name)) {
      return usageFailure(SCAN_ARGS, `--write ${JSON.stringify(values.write)}: a profile file is <kebab-case-name>.yaml (e.g. devices/fronius-symo-10.yaml)`);
    }
    if (existsSync(file) && values.force !== true) return usageFailure(SCAN_ARGS, `--write: ${values.write} exists; add --force to replace it`);
  }
  const where = `${values.host}:${port} unit ${unit}`;
  const pool = new EndpointPool({ clock: systemClock, logger: silentLogger() }, { reconnectBaseMs: 100, reconnectMaxMs: 500 });
  let result: ScanResult;
  try {
    result = await scanDevice({ endpoint: readOnly(pool.get(values.host, port)), unitId: unit, timeoutMs });
  } catch (e) {
    if (!isScanError(e)) throw e;
    return fail(`${where}: ${e.code}: ${e.message}`, 1);
  } finally {
    await pool.close();
  }
  process.stdout.write(describeScan(result, where));
  if (file === undefined) {
    process.stdout.write(`write a profile: --write devices/${suggestedName(result.identity)}.yaml\n`);
    return 0;
  }
  const text = scanProfile(result, `${values.host}:${port} unit ${unit}`);
  // The same loader `validate` uses: a profile it would refuse is never written.
  const problems = new Problems();
  const profile = parseProfile(text, file, problems);
  if (profile === undefined || problems.errorCount > 0) return fail(`the profile for this device does not validate (a bug):\n${formatProblems(problems.list)}`, 1);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, text);
  process.stdout.write(`wrote ${values.write} (${profile.points.length} points, ${profile.controls.length} controls)\n`);
  return 0;
}
