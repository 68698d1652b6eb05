// Cross-section checks of a site: devices against profiles, unique ids and addresses, the grid
// frequency source, demand-response zones, the poll budget, and derived defaults.
import { hint } from './did-you-mean.js';
import { drExclusion, drSetpointControl, drSpansPerController } from './dr-targets.js';
import { endpointKey } from './endpoint-key.js';
import type { PollBudget } from './load.js';
import type { DeviceProfile } from './profile-types.js';
import type { LenientSite } from './site-lenient.js';
import type { DemandResponseConfig, DeviceConfig, MeterIngestConfig, ParsedSite, SiteConfig } from './site-types.js';
import type { FileCtx } from './yaml-source.js';
import { envPositiveInt } from './env-values.js';

/** The cross-section checks of a valid site; returns it with the derived defaults set. */
export function checkSite(
  site: ParsedSite, source: string, profiles: ReadonlyMap<string, DeviceProfile>, available: readonly string[], ctx: FileCtx, pollBudget: PollBudget | undefined,
): SiteConfig {
  checkDevices(site.devices, available, ctx);
  checkFrequencySource(site.grid, site.devices, profiles, ctx);
  const driven = checkDemandResponse(site.mqtt?.demand_response, site.devices, profiles, ctx, false);
  if (site.mqtt?.demand_response) checkDrSpanQueue(site.mqtt.demand_response, site.telemetry, driven, profiles, ctx);
  checkDrProtocol(site.mqtt, ctx);
  if (site.mqtt?.meters) checkMeters(site.mqtt.meters, ctx);
  checkDelivery(site.delivery !== undefined, site.devices, ctx);
  checkPollBudget(site.devices, profiles, ctx, pollBudget);
  return withDerivedDefaults(site, source, profiles);
}

/**
 * The same checks on a site that failed validation, as far as its valid sections allow: a check
 * whose answer could depend on an invalid device or section holds back rather than guess.
 */
export function checkLenientSite(
  site: LenientSite, profiles: ReadonlyMap<string, DeviceProfile>, available: readonly string[], ctx: FileCtx, pollBudget: PollBudget | undefined,
): void {
  checkDevices(site.devices, available, ctx);
  if (site.grid) checkFrequencySource(site.grid, site.devices, profiles, ctx, site.invalidDeviceIds);
  if (site.demandResponse !== undefined) checkDemandResponse(site.demandResponse ?? undefined, site.devices, profiles, ctx, site.devicesIncomplete);
  if (site.meters) checkMeters(site.meters, ctx);
  checkDelivery(site.hasDelivery, site.devices, ctx);
  checkPollBudget(site.devices, profiles, ctx, pollBudget);
}

/** Unique ids and addresses, one transport per line, known profiles: also run on the valid devices of an invalid site. */
function checkDevices(devices: readonly DeviceConfig[], available: readonly string[], ctx: FileCtx): void {
  const ids = new Map<string, string>();
  const addresses = new Map<string, string>();
  const lines = new Map<string, DeviceConfig>();
  for (const d of devices) {
    if (ids.has(d.id)) ctx.errorAt(d, 'id', `duplicate device id ${JSON.stringify(d.id)}`);
    ids.set(d.id, d.id);
    const key = endpointKey(d);
    const addr = `${key} unit ${d.unit_id}`;
    const other = addresses.get(addr);
    if (other !== undefined && d.enabled) {
      const at = ['unit_id', 'port', 'host'].find((k) => ctx.hasKey(d, k)) ?? (d.transport === 'rtu' ? 'serial' : 'host');
      ctx.errorAt(d, at, `${addr} is also device ${JSON.stringify(other)}`);
    }
    if (d.enabled) addresses.set(addr, d.id);
    const first = lines.get(key);
    if (first === undefined) lines.set(key, d);
    else checkSameLine(d, first, key, ctx);
    if (!available.includes(d.profile)) {
      ctx.errorAt(d, 'profile', `unknown profile ${JSON.stringify(d.profile)}${hint(d.profile, available)}`);
    }
  }
}

const LINE_KEYS = ['baud', 'parity', 'stop_bits', 'data_bits', 'turnaround_ms'] as const;

/** Devices on one connection or serial line share its transport and its serial settings. */
function checkSameLine(d: DeviceConfig, first: DeviceConfig, key: string, ctx: FileCtx): void {
  const t = d.transport ?? 'tcp';
  const ft = first.transport ?? 'tcp';
  if (t !== ft) {
    ctx.errorAt(d, 'transport', `${key} is also device ${JSON.stringify(first.id)} with transport ${ft}: one endpoint, one transport`);
    return;
  }
  const s = d.serial;
  const fs = first.serial;
  if (s === undefined || fs === undefined) return;
  for (const k of LINE_KEYS) {
    if (s[k] === fs[k]) continue;
    const name = k === 'turnaround_ms' ? 'turnaround' : k;
    ctx.errorAt(s, name, `serial.${name} ${String(s[k])} differs from device ${JSON.stringify(first.id)} on the same line ${key} (${String(fs[k])}): one line, one setting`);
  }
}

/** The poll budget is estimated from the read plans and line timing of src/modbus (LoadOptions.pollBudget). */
function checkPollBudget(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>, ctx: FileCtx, pollBudget: PollBudget | undefined): void {
  for (const w of pollBudget?.(devices, profiles) ?? []) ctx.warnAt(w.device, 'poll_interval', w.message);
}

/** `invalid`: ids of devices that did not validate (a lenient pass): not reported as unknown. */
function checkFrequencySource(
  grid: Pick<ParsedSite['grid'], 'frequency_source'>, devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>, ctx: FileCtx, invalid: ReadonlySet<string> = new Set(),
): void {
  const src = grid.frequency_source;
  if (src === undefined || invalid.has(src)) return;
  const d = devices.find((x) => x.id === src);
  if (!d) { ctx.errorAt(grid, 'frequency_source', `unknown device ${JSON.stringify(src)}${hint(src, [...devices.map((x) => x.id), ...invalid])}`); return; }
  const p = profiles.get(d.profile);
  if (p && !p.points.some((pt) => pt.role === 'frequency')) {
    ctx.errorAt(grid, 'frequency_source', `device ${JSON.stringify(src)} (profile ${p.profile}) has no point with role "frequency"`);
  }
}

/** Said by validate (a warning at mqtt.protocol_version) and logged by the DR service at start-up (docs/demand-response.md). */
export const DR_OVER_MQTT311_WARNING = 'demand response over MQTT 3.1.1: a command published retained while the gateway is connected arrives without its retain flag and cannot be refused as retained (MQTT v5 can: set protocol_version: 5, or have the broker refuse retain on the command topic)';

function checkDrProtocol(mqtt: { protocol_version: 4 | 5; demand_response?: unknown } | undefined, ctx: FileCtx): void {
  if (mqtt?.demand_response && mqtt.protocol_version === 4) ctx.warnAt(mqtt, 'protocol_version', DR_OVER_MQTT311_WARNING);
}

/**
 * A command (it addresses one zone) ends its spans within a fraction of a second, faster than one
 * export drains them: past the span queue the rest would be dropped (counted, but the trace of what
 * was written is gone). Warned for the zone that makes the most, where the queue is set, or at the
 * DR section. OTEL_BSP_MAX_QUEUE_SIZE wins over the key at run time, so it does here.
 */
function checkDrSpanQueue(
  dr: DemandResponseConfig, telemetry: ParsedSite['telemetry'], driven: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>, ctx: FileCtx,
): void {
  const perZone = new Map<string, { controllers: number; spans: number }>();
  for (const d of driven) {
    const p = profiles.get(d.profile);
    const z = perZone.get(d.zone) ?? { controllers: 0, spans: 1 };
    z.controllers++;
    z.spans += p === undefined ? 0 : drSpansPerController(p);
    perZone.set(d.zone, z);
  }
  const [zone, worst] = [...perZone].sort((a, b) => b[1].spans - a[1].spans || a[0].localeCompare(b[0]))[0] ?? [];
  const env = envPositiveInt(ctx.env['OTEL_BSP_MAX_QUEUE_SIZE']);
  const fromEnv = env !== undefined;
  const queue = env ?? telemetry.span_queue_size;
  if (worst === undefined || zone === undefined || worst.spans <= queue) return;
  const set = fromEnv ? `OTEL_BSP_MAX_QUEUE_SIZE ${queue}` : `telemetry.span_queue_size ${queue}`;
  const where = !fromEnv && ctx.hasKey(telemetry, 'span_queue_size') ? { obj: telemetry, key: 'span_queue_size' } : { obj: dr, key: undefined };
  ctx.warnAt(where.obj, where.key, `a demand-response command to zone ${JSON.stringify(zone)} (${worst.controllers} load controllers) makes up to ${worst.spans} spans, more than ${set} holds: set it to at least ${worst.spans}, or that command's spans past it are dropped (counted in ems.telemetry.spans_dropped)`);
}

/**
 * `incomplete`: some devices did not validate, so zone-wide conclusions are held back. Returns the
 * load controllers demand response drives (none when it is not configured or held back).
 */
function checkDemandResponse(
  dr: DemandResponseConfig | undefined, devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>, ctx: FileCtx, incomplete: boolean,
): DeviceConfig[] {
  const controllers = devices.filter((d) => d.enabled && profiles.get(d.profile)?.kind === 'load_controller');
  for (const d of controllers) {
    const p = profiles.get(d.profile);
    if (p && p.controls.length === 0) ctx.errorAt(d, 'profile', `load controller profile ${p.profile} has no control to drive`);
    const unit = p === undefined ? undefined : drSetpointControl(p)?.unit;
    if (unit === '%' && d.capacity_kw === undefined) ctx.warnAt(d, 'id', 'a load controller with a % setpoint needs capacity_kw to turn kW reductions into %');
  }
  if (!dr) return [];
  // What DR will drive at run time (src/config/dr-targets.ts): the others are said here, by name.
  const leftOut = new Map<string, string[]>();
  const driven = controllers.filter((d) => {
    const p = profiles.get(d.profile);
    const why = p === undefined ? undefined : drExclusion(p);
    if (why === undefined) return true;
    ctx.warnAt(d, 'profile', `load controller ${d.id} is left out of demand response: ${why}`);
    leftOut.set(d.zone, [...(leftOut.get(d.zone) ?? []), d.id]);
    return false;
  });
  if (incomplete) return [];
  if (driven.length === 0) {
    ctx.errorAt(dr, undefined, controllers.length === 0
      ? 'demand_response is configured but no enabled device has a load_controller profile: no zone can act on a command'
      : `demand_response is configured but every enabled load controller is left out of it (${controllers.map((d) => d.id).join(', ')}): no zone can act on a command`);
    return [];
  }
  const zones = new Set(driven.map((d) => d.zone));
  for (const d of devices) {
    if (!d.enabled || zones.has(d.zone) || d.zone === 'default') continue;
    const out = leftOut.get(d.zone);
    ctx.warnAt(d, 'zone', out === undefined
      ? `zone ${JSON.stringify(d.zone)} has no load controller: demand-response commands for it cannot act`
      : `zone ${JSON.stringify(d.zone)} has no load controller demand response drives (left out: ${out.join(', ')}): demand-response commands for it cannot act`);
    zones.add(d.zone); // once per zone
  }
  for (const d of driven) {
    if (d.zone === 'default') ctx.warnAt(d, 'id', 'load controller has no zone: demand-response commands address zones (set zone:)');
  }
  return driven;
}

function checkMeters(m: MeterIngestConfig, ctx: FileCtx): void {
  if (m.region_topic_level === undefined) return;
  m.topics.forEach((t, i) => {
    const levels = t.replace(/^\$share\/[^/]+\//, '').split('/');
    const lvl = m.region_topic_level ?? 0;
    const multi = levels.indexOf('#');
    if (lvl >= levels.length && (multi === -1 || multi > lvl)) {
      ctx.errorAt(m.topics, String(i), `region_topic_level ${lvl} is beyond the ${levels.length} levels of ${JSON.stringify(t)}`);
    } else if (multi !== -1 && multi <= lvl) {
      // `#` covers the region level: fine.
    } else if (levels[lvl] !== '+' && m.regions !== undefined && !m.regions.includes(levels[lvl] ?? '')) {
      ctx.warnAt(m.topics, String(i), `level ${lvl} of ${JSON.stringify(t)} is ${JSON.stringify(levels[lvl])}, not a listed region`);
    }
  });
}

function checkDelivery(hasDelivery: boolean, devices: readonly DeviceConfig[], ctx: FileCtx): void {
  if (hasDelivery) return;
  for (const d of devices) {
    if (d.record === true) ctx.errorAt(d, 'record', 'record: true needs a delivery: section (a spool and at least one sink)');
  }
}

function withDerivedDefaults(site: ParsedSite, source: string, profiles: ReadonlyMap<string, DeviceProfile>): SiteConfig {
  for (const d of site.devices) {
    const kind = profiles.get(d.profile)?.kind;
    if (d.role === undefined && kind !== undefined) d.role = kind;
    if (site.delivery?.record_devices === true) d.record = true;
  }
  const slowest = Math.max(0, ...site.devices.filter((d) => d.enabled && profiles.has(d.profile)).map((d) => d.poll_interval_ms));
  const grid = { ...site.grid, stale_after_ms: site.grid.stale_after_ms ?? Math.max(10_000, 3 * slowest) };
  const { mqtt, ...rest } = site;
  if (mqtt === undefined) return { ...rest, grid, source };
  return { ...site, grid, mqtt: { ...mqtt, client_id: mqtt.client_id ?? `ems-gateway-${site.site.id}` }, source };
}
