// A site file that failed validation, read section by section: what parses on its own is kept so
// the cross-checks that only need it still run (every problem at once, not schema errors first).
// Each section is parsed in a scratch context: its own problems were already reported by the full
// pass, so nothing here is reported twice.
import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import { INVALID, type Schema } from './schema-dsl.js';
import { isObjSchema } from './schema-object.js';
import { deviceSchema, siteSchema } from './site-schema.js';
import type { DemandResponseConfig, DeviceConfig, MeterIngestConfig, ParsedSite } from './site-types.js';
import type { FileCtx } from './yaml-source.js';

export interface LenientSite {
  /** The devices that validate on their own. */
  devices: DeviceConfig[];
  /** Ids spelled by devices that did not validate (a reference to one is not "unknown"). */
  invalidDeviceIds: Set<string>;
  /** Profiles named by devices that did not validate: loaded and checked all the same. */
  invalidDeviceProfiles: Set<string>;
  /** Whether some device did not validate (checks that need every device hold back). */
  devicesIncomplete: boolean;
  /** undefined: the section did not validate. */
  grid: ParsedSite['grid'] | undefined;
  /** null: the site has none; undefined: it did not validate. */
  meters: MeterIngestConfig | null | undefined;
  demandResponse: DemandResponseConfig | null | undefined;
  hasDelivery: boolean;
}

function entry(map: Node | null | undefined, key: string): Node | null | undefined {
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
  return pair === undefined ? undefined : (pair.value as Node | null);
}

function has(map: Node | null | undefined, key: string): boolean {
  return isMap(map) && map.items.some((p) => isScalar(p.key) && p.key.value === key);
}

/** One section parsed on its own; its defaults when absent; undefined when it does not validate. */
function section<T>(s: Schema<T>, parent: Node | null | undefined, key: string, path: string, ctx: FileCtx, defaults: boolean): T | null | undefined {
  const scratch = ctx.scratch();
  if (!has(parent, key)) {
    if (!defaults || !isObjSchema(s)) return null;
    const d = s.fromDefaults(path, scratch, parent ?? undefined);
    return d === INVALID ? undefined : d;
  }
  const v = s.parse(scratch.deref(entry(parent, key), path), path, scratch);
  return v === INVALID || scratch.problems.errorCount > 0 ? undefined : v;
}

export function lenientSite(doc: Document.Parsed, ctx: FileCtx): LenientSite {
  const root = ctx.deref(doc.contents, '');
  const f = siteSchema.fields;
  const devices: DeviceConfig[] = [];
  const invalidDeviceIds = new Set<string>();
  const invalidDeviceProfiles = new Set<string>();
  let devicesIncomplete = false;
  const seq = ctx.scratch().deref(entry(root, 'devices'), 'devices');
  if (isSeq(seq)) {
    seq.items.forEach((item, i) => {
      const scratch = ctx.scratch();
      const node = scratch.deref(item, `devices[${i}]`);
      const d = deviceSchema.parse(node, `devices[${i}]`, scratch);
      if (d !== INVALID && scratch.problems.errorCount === 0) { devices.push(d); return; }
      devicesIncomplete = true;
      const id = entry(node, 'id');
      if (isScalar(id) && typeof id.value === 'string') invalidDeviceIds.add(id.value);
      const profile = entry(node, 'profile');
      if (isScalar(profile) && typeof profile.value === 'string') invalidDeviceProfiles.add(profile.value);
    });
  } else if (has(root, 'devices')) devicesIncomplete = true;

  const mqttNode = ctx.scratch().deref(entry(root, 'mqtt'), 'mqtt');
  const sub = <T>(key: string, s: Schema<T>): T | null | undefined =>
    has(root, 'mqtt') ? section(s, mqttNode, key, `mqtt.${key}`, ctx, false) : null;
  const mqttFields = f.mqtt.s.fields;
  return {
    devices, invalidDeviceIds, invalidDeviceProfiles, devicesIncomplete,
    grid: section(f.grid.s, root, 'grid', 'grid', ctx, true) ?? undefined,
    meters: sub('meters', mqttFields.meters.s),
    demandResponse: sub('demand_response', mqttFields.demand_response.s),
    hasDelivery: has(root, 'delivery'),
  };
}
