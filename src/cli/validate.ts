// `ems-gateway validate <site.yaml>`: validate a site and the profiles it names, print every
// problem at once (exit 1), or a summary with the compiled Modbus read plan (exit 0).
import { ConfigError, formatProblem } from '../config/errors.js';
import { formatDuration } from '../config/duration.js';
import { drExclusion } from '../config/dr-targets.js';
import { loadSite } from '../config/load.js';
import type { DeviceProfile } from '../config/profile-types.js';
import type { LoadedSite } from '../config/site-types.js';
import { planIdentityReads, planReads, type ReadPlan } from '../modbus/read-plan.js';
import { endpointKey } from '../config/endpoint-key.js';
import { describeLink } from '../modbus/transport.js';
import { defineCommand, parseCommandArgs } from './args.js';
import { LOAD_CHECKS } from './load-checks.js';

const USAGE = 'usage: ems-gateway validate <site.yaml> [--devices <dir>] [--quiet]\n';

const ARGS = defineCommand({
  command: 'validate',
  usage: USAGE,
  options: { devices: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 1, max: 1, missing: 'a site file is required' },
});

export async function run(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, ARGS);
  if (typeof parsed === 'number') return parsed;
  const file = parsed.positionals[0] ?? '';
  const devicesDir = parsed.values.devices;
  const quiet = parsed.values.quiet === true;
  const cwd = process.cwd();
  try {
    const loaded = await loadSite(file, { ...LOAD_CHECKS, ...(devicesDir === undefined ? {} : { devicesDir }) });
    if (!quiet) process.stdout.write(summary(loaded, cwd));
    for (const w of loaded.warnings) process.stderr.write(`${formatProblem(w, cwd)}\n`);
    process.stdout.write(`${file}: OK${loaded.warnings.length ? ` (${loaded.warnings.length} warning${loaded.warnings.length === 1 ? '' : 's'})` : ''}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p, cwd)}\n`);
    const n = err.problems.filter((p) => p.severity === 'error').length;
    const w = err.problems.length - n;
    process.stderr.write(`${file}: ${n} error${n === 1 ? '' : 's'}${w > 0 ? `, ${w} warning${w === 1 ? '' : 's'}` : ''}\n`);
    return 1;
  }
}

function planLines(plan: ReadPlan, profile: DeviceProfile, indent: string): string[] {
  return plan.requests.map((r) => {
    const first = r.address + profile.address_base;
    const unit = r.table === 'coil' || r.table === 'discrete' ? 'bits' : 'registers';
    return `${indent}${r.table} ${first}..${first + r.count - 1} (wire ${r.address}, ${r.count} ${unit}, ${r.points.length} points)`;
  });
}

/** The human summary printed on success. */
function summary(loaded: LoadedSite, _cwd: string): string {
  const { site, profiles } = loaded;
  const out: string[] = [];
  out.push(`site ${site.site.id} (region ${site.site.region}, ${site.site.nominal_frequency_hz} Hz)`);
  out.push(`devices: ${site.devices.length}`);
  for (const d of site.devices) {
    const p = profiles.get(d.profile);
    out.push(`  ${d.id}: ${d.profile} at ${describeLink(d)} unit ${d.unit_id}, zone ${d.zone}, every ${formatDuration(d.poll_interval_ms)}${d.enabled ? '' : ' (disabled)'}`);
    if (!p) continue;
    const plan = planReads(p);
    const regs = plan.requests.reduce((n, r) => n + r.count, 0);
    out.push(`    read plan: ${plan.requests.length} request${plan.requests.length === 1 ? '' : 's'}, ${regs} registers per poll`);
    out.push(...planLines(plan, p, '      '));
    if (p.sunspec_models !== undefined) {
      out.push(`    SunSpec: placed per device at connect ('SunS' at 40000, 50000 or 0, models ${p.sunspec_models.map((m) => m.id).join(', ')}); the addresses above are the profile's own chain from ${p.sunspec_base ?? '?'}`);
    }
    const ident = planIdentityReads(p);
    if (ident.requests.length) out.push(`    at start-up: ${ident.requests.length} identity request${ident.requests.length === 1 ? '' : 's'}`);
    if (p.controls.length) out.push(`    controls: ${p.controls.map((c) => `${c.id} [${c.min}..${c.max}${c.unit ? ` ${c.unit}` : ''}]`).join(', ')}`);
  }
  const endpoints = new Map<string, { serial: boolean; ids: string[] }>();
  for (const d of site.devices) {
    const e = endpoints.get(endpointKey(d)) ?? { serial: d.transport === 'rtu', ids: [] };
    e.ids.push(d.id);
    endpoints.set(endpointKey(d), e);
  }
  for (const [ep, e] of endpoints) if (e.ids.length > 1) out.push(`shared ${e.serial ? 'serial line' : 'connection'} ${ep}: ${e.ids.join(', ')}`);
  const m = site.mqtt;
  if (m) {
    out.push(`mqtt: ${m.url} as ${m.client_id} (MQTT ${m.protocol_version === 5 ? '5' : '3.1.1'})`);
    if (m.meters) {
      const regions = m.meters.regions !== undefined ? `, regions ${m.meters.regions.join(', ')}` : ', any region';
      out.push(`meter topics: ${m.meters.topics.join(', ')} (qos ${m.meters.qos}${m.meters.region_topic_level !== undefined ? `, region at level ${m.meters.region_topic_level}` : ''}${regions})`);
    }
    const dr = m.demand_response;
    if (dr) {
      out.push(`demand response: commands ${dr.command_topic}, acks ${dr.ack_topic}, ${dr.public_keys.length} public key${dr.public_keys.length === 1 ? '' : 's'}${dr.dry_run ? ', DRY RUN' : ''}`);
      const zones = new Map<string, string[]>();
      const leftOut: Array<[string, string]> = [];
      for (const d of site.devices) {
        const p = profiles.get(d.profile);
        if (!d.enabled || p?.kind !== 'load_controller') continue;
        // Listed as DR will drive them: a controller it leaves out is named apart (and warned about).
        const why = drExclusion(p);
        if (why !== undefined) { leftOut.push([d.id, why]); continue; }
        zones.set(d.zone, [...(zones.get(d.zone) ?? []), `${d.id}${d.capacity_kw !== undefined ? ` (${d.capacity_kw} kW)` : ''}`]);
      }
      for (const [z, ids] of [...zones].sort()) out.push(`  DR zone ${z}: ${ids.join(', ')}`);
      for (const [id, why] of leftOut) out.push(`  left out of DR: ${id}: ${why}`);
    }
  }
  const dl = site.delivery;
  if (dl) {
    out.push(`delivery spool: ${dl.spool.directory} (at most ${dl.spool.max_size_mb} MiB, ${formatDuration(dl.spool.max_age_ms)}, when full: ${dl.spool.policy})`);
    const s = dl.sinks;
    if (s.otlp_logs) out.push(`  sink otlp_logs: ${s.otlp_logs.endpoint ?? 'OTLP endpoint + /v1/logs (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT wins)'}`);
    if (s.influx) out.push(`  sink influx: ${s.influx.url} (api ${s.influx.api}, ${s.influx.api === 'v1' ? `database ${s.influx.database ?? ''}` : `org ${s.influx.org ?? ''}, bucket ${s.influx.bucket ?? ''}`}, measurement ${s.influx.measurement})`);
    if (s.postgres) out.push(`  sink postgres: ${s.postgres.url ?? `${s.postgres.user}@${s.postgres.host}:${s.postgres.port}/${s.postgres.database}`} (table ${s.postgres.table})`);
    const recorded = site.devices.filter((d) => d.enabled && d.record === true).map((d) => d.id);
    if (recorded.length) out.push(`  device samples recorded: ${recorded.join(', ')}`);
  }
  if (site.grid.frequency_source) out.push(`grid frequency from ${site.grid.frequency_source}`);
  out.push(`status page: ${site.status.enabled ? `http://${site.status.host}:${site.status.port}/` : 'off'}`);
  return `${out.join('\n')}\n`;
}
