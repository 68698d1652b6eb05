// `ems-gateway probe`: one live read of one device through the gateway's own connection code (the
// endpoint pool: same framing, timeouts and profile quirks as the pollers), printing every point's
// raw registers, decoded value and unit, and the verdict the gateway would reach (ok, sentinel,
// implausible, exception). `--raw START COUNT` reads registers without a profile and shows them
// decoded every way (`decode`'s table per register pair, and as text). It only ever reads: the code
// below holds a read-only view of the endpoint (RegisterReader), so no write is reachable.
import { resolve } from 'node:path';
import { ConfigError, formatProblem } from '../config/errors.js';
import { DEFAULT_DEVICES_DIR, loadSite } from '../config/load.js';
import type { DeviceProfile, RegisterTable } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { wordsToString } from '../modbus/codec-words.js';
import { EndpointPool } from '../modbus/endpoint-pool.js';
import { emptyReads, readPoints, type LastRead, type PointReadout } from '../modbus/live-values.js';
import { planIdentityReads, planReads, type PlannedRead } from '../modbus/read-plan.js';
import { discoverChain } from '../modbus/sunspec-discovery.js';
import { absentModels, describeChain, placeOnDevice } from '../modbus/sunspec-layout.js';
import { describeLink } from '../modbus/transport.js';
import { isSunSpecProfile } from '../config/profile-sunspec.js';
import { ModbusError, readOnly, type RegisterReader } from '../modbus/types.js';
import { systemClock } from '../runtime/clock.js';
import { silentLogger } from '../runtime/logger.js';
import { loadProfile } from '../modbus/profile-load.js';
import { defineCommand, parseCommandArgs, usageFailure, type OptionValues } from './args.js';
import { decodeTable } from './decode.js';
import { LOAD_CHECKS } from './load-checks.js';

const USAGE = `usage: ems-gateway probe --config <site.yaml> --device <id> [--raw <start> <count>] [options]
       ems-gateway probe --host <host> [--port 502] [--unit 1] --profile <name|file.yaml> [options]
       ems-gateway probe --host <host> [--port 502] [--unit 1] --raw <start> <count> [--table holding|input]
  One live read through the gateway's own Modbus code; reads only, never writes.
  Prints every point's raw registers, value, unit and verdict (ok, sentinel, implausible, exception).
  --raw <start> <count>   read <count> registers from wire address <start> (0-based, as sent) without a
                          profile and show them decoded every way (int16/uint16, 32-bit in four orders, float32, text)
  --table <table>         holding (default) or input, for --raw
  --devices <dir>         profiles folder (default: the shipped devices/)
  --timeout <ms>          per-request timeout (default: the profile's quirks.timeout, 1000 for --raw)
  exit: 0 every value ok or "not implemented", 1 a read failed or a value is implausible, 2 usage or config error
`;

class ProbeUsage extends Error {}

interface Target {
  device: Pick<DeviceConfig, 'id' | 'transport' | 'host' | 'port' | 'serial' | 'unit_id'>;
  profile: DeviceProfile | undefined;
}

// --port, --unit, --timeout and --raw's numbers are checked here (hex allowed, probe's own ranges).
const ARGS = defineCommand({
  command: 'probe',
  usage: USAGE,
  options: {
    config: { type: 'string' }, device: { type: 'string' }, devices: { type: 'string' },
    host: { type: 'string' }, port: { type: 'string' }, unit: { type: 'string' }, profile: { type: 'string' },
    raw: { type: 'string' }, table: { type: 'string' }, timeout: { type: 'string' },
  },
  // `--raw <start> <count>`: <start> is the option's value, <count> the one positional.
  positionals: { max: 1 },
});

type ProbeArgs = OptionValues<typeof ARGS.options>;

function int(text: string | undefined, name: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = /^(0x[0-9a-f]+|[0-9]+)$/i.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ProbeUsage(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(text)}`);
  return n;
}

async function resolveTarget(v: ProbeArgs, raw: boolean): Promise<Target> {
  if (v.config !== undefined) {
    if (v.host !== undefined || v.port !== undefined || v.unit !== undefined || v.profile !== undefined) {
      throw new ProbeUsage('--config takes the device from the site file: drop --host/--port/--unit/--profile');
    }
    if (v.device === undefined) throw new ProbeUsage('--config needs --device <id>');
    // Loaded as `run` and `validate` load it (the device metric vocabulary, the environment), so
    // probe accepts exactly the sites the gateway runs.
    const loaded = await loadSite(v.config, { env: process.env, ...LOAD_CHECKS, ...(v.devices === undefined ? {} : { devicesDir: v.devices }) });
    const device = loaded.site.devices.find((d) => d.id === v.device);
    if (device === undefined) {
      throw new ProbeUsage(`no device ${JSON.stringify(v.device)} in ${v.config} (devices: ${loaded.site.devices.map((d) => d.id).join(', ') || 'none'})`);
    }
    return { device, profile: loaded.profiles.get(device.profile) };
  }
  if (v.device !== undefined) throw new ProbeUsage('--device needs --config <site.yaml>');
  if (v.host === undefined) throw new ProbeUsage('say which device: --config <site.yaml> --device <id>, or --host <host> with --profile or --raw');
  if (v.profile === undefined && !raw) throw new ProbeUsage('--host needs --profile <name|file.yaml> (or --raw <start> <count>)');
  const port = int(v.port, '--port', 1, 65535) ?? 502;
  const unit = int(v.unit, '--unit', 0, 255) ?? 1;
  let profile: DeviceProfile | undefined;
  if (v.profile !== undefined) {
    const file = /\.ya?ml$/.test(v.profile) ? resolve(v.profile) : resolve(v.devices ?? DEFAULT_DEVICES_DIR, `${v.profile}.yaml`);
    profile = await loadProfile(file);
  }
  return { device: { id: `${v.host}:${port}/${unit}`, transport: 'tcp', host: v.host, port, unit_id: unit }, profile };
}

/** Every planned read once, in order; a failure is kept as the read's outcome, never thrown. */
async function readAll(reader: RegisterReader, plan: readonly PlannedRead[], unitId: number, timeoutMs: number): Promise<LastRead[]> {
  const reads = emptyReads(plan.length);
  for (let i = 0; i < plan.length; i++) {
    const r = plan[i] as PlannedRead;
    const last = reads[i] as LastRead;
    try {
      last.words = await reader.read({ unitId, table: r.table, address: r.address, count: r.count }, { timeoutMs });
    } catch (e) {
      const err = e instanceof ModbusError ? e : new ModbusError('exception_other', String(e));
      last.error = { code: err.code, message: err.message };
    }
    last.atMs = Date.now();
  }
  return reads;
}

const hex = (w: number): string => `0x${w.toString(16).padStart(4, '0')}`;

function verdict(r: PointReadout): string {
  switch (r.state) {
    case 'ok': return 'ok';
    case 'failed_read': return r.reason?.startsWith('exception_') ? 'exception' : 'failed';
    default: return r.state;
  }
}

function valueText(r: PointReadout): string {
  if (r.state !== 'ok') return '-';
  let t = String(r.value);
  if (r.label !== undefined) t += ` ${r.label}`;
  if (r.flags !== undefined) t += r.flags.length ? `: ${r.flags.join(', ')}` : ' (no flags)';
  return t;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd());
}

/** The report of a profile read: each request's outcome, then one line per point. */
export function formatProbe(where: string, profile: DeviceProfile, plan: readonly PlannedRead[], reads: readonly LastRead[]): { text: string; problems: number } {
  const out = [`probe ${where}, profile ${profile.profile} (address_base ${profile.address_base}, default order ${profile.default_order})`];
  plan.forEach((r, i) => {
    const last = reads[i];
    const first = r.address + profile.address_base;
    out.push(`  read ${r.table} ${first}..${first + r.count - 1} (wire ${r.address}, ${r.count}): ${last?.error ? `${last.error.code}: ${last.error.message}` : 'ok'}`);
  });
  const points = readPoints(profile, plan, reads, true);
  const rows = [['point', 'address', 'registers', 'value', 'unit', 'verdict']];
  const notes: string[] = [];
  let problems = 0;
  for (const r of points) {
    const p = profile.points.find((x) => x.id === r.id);
    const v = verdict(r);
    if (v !== 'ok' && v !== 'sentinel') problems += 1;
    rows.push([
      r.id, String(p?.address ?? ''), (r.registers ?? []).map(hex).join(' ') || '-', valueText(r), r.unit ?? '',
      r.state === 'ok' ? v : `${v}${r.reason ? ` (${r.reason})` : ''}`,
    ]);
    if (r.state === 'implausible' && r.orders !== undefined) {
      notes.push(`${r.id} in the four word orders: ${Object.entries(r.orders).map(([o, x]) => `${o} ${x === null ? '-' : String(x)}`).join(', ')}`);
    }
  }
  out.push('', ...table(rows));
  if (notes.length > 0) out.push('', ...notes);
  if (profile.sunspec_base !== undefined) {
    const marker = points.find((r) => r.id === profile.points.find((p) => p.table === 'holding' && p.address === profile.sunspec_base)?.id);
    if (marker !== undefined && marker.value !== 'SunS' && marker.value !== 0x53756e53) {
      problems += 1;
      out.push('', `SunSpec marker: 'SunS' expected at ${profile.sunspec_base}, read ${(marker.registers ?? []).map(hex).join(' ') || 'nothing'}: check address_base (0 vs 1) and sunspec_base`);
    }
  }
  out.push('', `${points.length} points, ${problems === 0 ? 'no problems' : `${problems} problem${problems === 1 ? '' : 's'}`}`);
  return { text: `${out.join('\n')}\n`, problems };
}

/** --raw: the registers one by one, each pair decoded every way (decode's table), and as text. */
function formatRaw(where: string, table: RegisterTable, start: number, words: Uint16Array): string {
  const out = [`probe ${where}: raw read of ${table} registers ${start}..${start + words.length - 1} (wire addresses)`];
  for (let i = 0; i < words.length; i++) {
    const pair = [words[i] ?? 0, ...(i + 1 < words.length ? [words[i + 1] ?? 0] : [])];
    const decoded = decodeTable(pair.map(String));
    out.push('', `@${start + i}${pair.length === 2 ? ` and @${start + i + 1}` : ''}`, ...(typeof decoded === 'string' ? decoded.trimEnd().split('\n') : [decoded.error]));
  }
  out.push('', `as text (ABCD): ${JSON.stringify(wordsToString(words, 0, words.length, 'ABCD'))}`, `as text (BADC): ${JSON.stringify(wordsToString(words, 0, words.length, 'BADC'))}`);
  return `${out.join('\n')}\n`;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, ARGS);
  if (typeof parsed === 'number') return parsed;
  const { values: v, positionals } = parsed;
  let pool: EndpointPool | undefined;
  try {
    const raw = v.raw !== undefined;
    if (positionals.length !== (raw ? 1 : 0)) {
      throw new ProbeUsage(raw ? '--raw needs <start> <count>' : `unexpected argument ${JSON.stringify(positionals[0])}`);
    }
    if (v.table !== undefined && !raw) throw new ProbeUsage('--table is for --raw');
    const table = v.table ?? 'holding';
    if (table !== 'holding' && table !== 'input') throw new ProbeUsage(`--table must be holding or input, got ${JSON.stringify(table)}`);
    const start = raw ? int(v.raw, '<start>', 0, 65535) as number : 0;
    const count = raw ? int(positionals[0], '<count>', 1, 125) as number : 0;
    if (start + count > 65536) throw new ProbeUsage(`registers ${start}..${start + count - 1} run past 65535`);
    const timeoutArg = int(v.timeout, '--timeout', 1, 600_000);
    const target = await resolveTarget(v, raw);
    const where = `${target.device.id} at ${describeLink(target.device)} unit ${target.device.unit_id}`;
    if (!raw && target.profile === undefined) throw new ProbeUsage(`profile of ${target.device.id} not loaded`);
    const quirks = target.profile?.quirks ?? { timeout_ms: 1000, request_gap_ms: 0, connect_delay_ms: 0 } as DeviceProfile['quirks'];
    const timeoutMs = timeoutArg ?? quirks.timeout_ms;
    pool = new EndpointPool({ clock: systemClock, logger: silentLogger() }, { connectTimeoutMs: Math.max(timeoutMs, 1000), reconnectMaxMs: 1000 });
    const reader = readOnly(pool.forDevice(target.device, { quirks: { ...quirks, timeout_ms: timeoutMs } }));
    if (raw) {
      const [last] = await readAll(reader, [{ table, address: start, count, points: [] }], target.device.unit_id, timeoutMs);
      if (last?.words === undefined) {
        process.stdout.write(`probe ${where}: raw read of ${table} ${start}+${count} failed: ${last?.error?.code ?? 'error'}: ${last?.error?.message ?? ''}\n`);
        return 1;
      }
      process.stdout.write(formatRaw(where, table, start, Uint16Array.from(last.words)));
      return 0;
    }
    let profile = target.profile as DeviceProfile;
    let chainText = '';
    if (isSunSpecProfile(profile)) {
      // A SunSpec profile is read where this device has each model, as the gateway does at connect.
      const preferred = profile.sunspec_base === undefined ? undefined : profile.sunspec_base - profile.address_base;
      const found = await discoverChain({ deviceId: target.device.id, unitId: target.device.unit_id, endpoint: reader, timeoutMs }, preferred);
      if (found.status !== 'ok') {
        process.stdout.write(`probe ${where}: SunSpec discovery failed: ${found.error.code}: ${found.error.message}\n`);
        return 1;
      }
      const layout = placeOnDevice(profile, found.chain);
      profile = layout.profile;
      chainText = [`SunSpec chain ('SunS' at ${found.chain.base}): ${describeChain(found.chain)}`,
        ...absentModels(layout).map((a) => `not read: ${a.points.join(', ')}: ${a.reason}`),
        ...layout.lengthMismatches.map((m) => `model ${m.model}: length ${m.device} on the device, ${m.profile} in the profile`)].join('\n') + '\n';
    }
    const plan = [...planIdentityReads(profile).requests, ...planReads(profile).requests];
    const reads = await readAll(reader, plan, target.device.unit_id, timeoutMs);
    const report = formatProbe(where, profile, plan, reads);
    process.stdout.write(chainText + report.text);
    return report.problems === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p, process.cwd())}\n`);
      return 2;
    }
    if (err instanceof ProbeUsage) return usageFailure(ARGS, err.message);
    throw err;
  } finally {
    await pool?.close();
  }
}
