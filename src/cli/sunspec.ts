// `ems-gateway sunspec scan --host H [--port P] [--unit U] [--write devices/<vendor>-<model>.yaml]`:
// finds the 'SunS' marker and walks the model chain exactly as the gateway does at connect,
// prints the chain (id, name, start, length) and the common model's identity, and with --write
// writes a profile for the device that `validate` accepts (sunspec-scan.ts). It only reads.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/duration.js';
import { formatProblems } from '../config/errors.js';
import { parseProfile } from '../config/profile-load.js';
import { PROFILE_NAME_PATTERN } from '../config/profile-schema.js';
import { sunspecModelName } from '../config/sunspec-models.js';
import { Problems } from '../config/yaml-source.js';
import { EndpointPool } from '../modbus/endpoint-pool.js';
import { readOnly } from '../modbus/types.js';
import { systemClock } from '../runtime/clock.js';
import { silentLogger } from '../runtime/logger.js';
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
  process.stderr.write(`ems-gateway sunspec: ${message}\n`);
  return code;
}

/** The chain and identity as `sunspec scan` prints them. */
export function describeScan(scan: ScanResult, where: string): string {
  const out = [`SunSpec device at ${where}: 'SunS' at ${scan.chain.base}`];
  for (const k of ['Mn', 'Md', 'Vr', 'SN'] as const) out.push(`  ${k.padEnd(3)} ${scan.identity[k] ?? '(not readable)'}`);
  out.push(`models (${scan.chain.models.length}):`);
  out.push(`  ${'id'.padEnd(6)} ${'name'.padEnd(28)} ${'start'.padEnd(6)} length`);
  for (const m of scan.chain.models) out.push(`  ${String(m.id).padEnd(6)} ${sunspecModelName(m.id).padEnd(28)} ${String(m.start).padEnd(6)} ${m.length}`);
  out.push(`end: ${END_TEXT[scan.chain.end] ?? scan.chain.end}`);
  if (scan.wmax !== undefined) out.push(`${scan.wmax.from}: ${scan.wmax.watts} W (site file: capacity_kw: ${scan.wmax.watts / 1000})`);
  return `${out.join('\n')}\n`;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (sub !== 'scan') return fail(`${sub === undefined ? 'no subcommand' : `unknown subcommand ${JSON.stringify(sub)}`}\n${USAGE}`);
  let values: { host?: string; port?: string; unit?: string; timeout?: string; write?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest, strict: true, allowPositionals: false,
      options: { host: { type: 'string' }, port: { type: 'string' }, unit: { type: 'string' }, timeout: { type: 'string' }, write: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    return fail(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.host === undefined || values.host === '') return fail(`--host is required\n${USAGE}`);
  const port = Number(values.port ?? '502');
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail(`--port ${JSON.stringify(values.port)} is not a TCP port (1..65535)`);
  const unit = Number(values.unit ?? '1');
  if (!Number.isInteger(unit) || unit < 1 || unit > 247) return fail(`--unit ${JSON.stringify(values.unit)} is not a unit id (1..247; 0 is broadcast, never read)`);
  const timeoutMs = values.timeout === undefined ? 1000 : parseDuration(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) return fail(`--timeout ${JSON.stringify(values.timeout)} is not a duration (e.g. 1s, 500ms)`);
  let file: string | undefined;
  if (values.write !== undefined) {
    file = resolve(values.write);
    const name = basename(file).replace(/\.ya?ml$/, '');
    if (!/\.ya?ml$/.test(file) || !new RegExp(PROFILE_NAME_PATTERN).test(name)) {
      return fail(`--write ${JSON.stringify(values.write)}: a profile file is <kebab-case-name>.yaml (e.g. devices/fronius-symo-10.yaml)`);
    }
    if (existsSync(file) && values.force !== true) return fail(`--write: ${values.write} exists; add --force to replace it`);
  }
  const where = `${values.host}:${port} unit ${unit}`;
  const pool = new EndpointPool({ clock: systemClock, logger: silentLogger() }, { reconnectBaseMs: 100, reconnectMaxMs: 500 });
  let scan: ScanResult;
  try {
    scan = await scanDevice({ endpoint: readOnly(pool.get(values.host, port)), unitId: unit, timeoutMs });
  } catch (e) {
    if (!isScanError(e)) throw e;
    return fail(`${where}: ${e.code}: ${e.message}`, 1);
  } finally {
    await pool.close();
  }
  process.stdout.write(describeScan(scan, where));
  if (file === undefined) {
    process.stdout.write(`write a profile: --write devices/${suggestedName(scan.identity)}.yaml\n`);
    return 0;
  }
  const text = scanProfile(scan, `${values.host}:${port} unit ${unit}`);
  // The same loader `validate` uses: a profile it would refuse is never written.
  const problems = new Problems();
  const profile = parseProfile(text, file, problems);
  if (profile === undefined || problems.errorCount > 0) return fail(`the profile for this device does not validate (a bug):\n${formatProblems(problems.list)}`, 1);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, text);
  process.stdout.write(`wrote ${values.write} (${profile.points.length} points, ${profile.controls.length} controls)\n`);
  return 0;
}
