// What `ems-gateway sunspec scan` reads from a device and the profile it writes: the chain found
// by the gateway's own discovery (src/modbus/sunspec-discovery.ts), every model the gateway knows
// by name read whole and decoded with the gateway's codec, and a profile (points by model and
// SunSpec point name, units, scale factors, sentinels, simulate blocks with the values read, model
// 123 controls) that `validate` accepts. Reads only: nothing here can write to the device.
import type { PointDef, PointType, SentinelSpec } from '../config/profile-types.js';
import { INVERTER_EVT1, INVERTER_STATES, sunspecModel, type SunSpecModel, type SunSpecPoint, type SunSpecType } from '../config/sunspec-models.js';
import { decodePoint, numericValue, type DecodedValue } from '../modbus/codec.js';
import { discoverChain } from '../modbus/sunspec-discovery.js';
import type { SunSpecChain } from '../modbus/sunspec-layout.js';
import { ModbusError, type RegisterReader } from '../modbus/types.js';
import { deviceMetric } from '../telemetry/semconv.js';

interface ScannedModel {
  id: number;
  start: number;
  length: number;
  /** Decoded values by SunSpec point name, for the models the gateway knows (else empty). */
  values: Map<string, DecodedValue>;
}

export interface ScanResult {
  chain: SunSpecChain;
  models: ScannedModel[];
  identity: { Mn?: string; Md?: string; Vr?: string; SN?: string };
  /** WMax (model 121) or else WRtg (model 120), in W, when readable. */
  wmax?: { watts: number; from: string };
}

const ORDER = { default_order: 'ABCD' as const };

function pointType(t: SunSpecType): PointType {
  switch (t) {
    case 'int16': case 'sunssf': return 'int16';
    case 'uint16': case 'acc16': case 'enum16': case 'bitfield16': case 'count': case 'pad': return 'uint16';
    case 'uint32': case 'acc32': case 'enum32': case 'bitfield32': return 'uint32';
    case 'int32': return 'int32';
    case 'float32': return 'float32';
    case 'acc64': return 'uint64';
    case 'int64': return 'int64';
    case 'string': return 'string';
  }
}

/** SunSpec's "not implemented" for the type: accumulators 0, bitfields none (every bit pattern is a mask), else the per-type default. */
function sentinelOf(t: SunSpecType): SentinelSpec | undefined {
  if (t === 'acc32' || t === 'acc64' || t === 'acc16') return { values: [0] };
  if (t === 'bitfield16' || t === 'bitfield32' || t === 'string') return 'none';
  return undefined;
}

function catalogPoint(sp: SunSpecPoint, address: number): PointDef {
  const p: PointDef = { id: sp.name.toLowerCase(), table: 'holding', address, type: pointType(sp.type) };
  if (sp.type === 'string') p.length = sp.size;
  if (sp.sf !== undefined) p.scale_factor = sp.sf.toLowerCase();
  const s = sentinelOf(sp.type);
  if (s !== undefined) p.sentinel = s;
  return p;
}

function decodeModel(def: SunSpecModel, block: Uint16Array, length: number): Map<string, DecodedValue> {
  const out = new Map<string, DecodedValue>();
  const inBlock = (sp: SunSpecPoint): boolean => sp.offset + sp.size <= length + 2 && sp.offset + sp.size <= block.length;
  const sf = new Map<string, number>();
  for (const sp of def.points) {
    if (sp.type !== 'sunssf' || !inBlock(sp)) continue;
    const d = decodePoint(ORDER, { ...catalogPoint(sp, 0), sentinel: { values: [-32768] } }, block, sp.offset);
    out.set(sp.name, d);
    const v = numericValue(d);
    if (v !== undefined) sf.set(sp.name, v);
  }
  for (const sp of def.points) {
    if (sp.type === 'sunssf' || sp.type === 'pad' || !inBlock(sp)) continue;
    if (sp.sf !== undefined && !sf.has(sp.sf)) {
      out.set(sp.name, { ok: false, reason: 'scale_factor_not_implemented' });
      continue;
    }
    out.set(sp.name, decodePoint(ORDER, catalogPoint(sp, 0), block, sp.offset, sp.sf === undefined ? undefined : sf.get(sp.sf)));
  }
  return out;
}

interface ScanTarget {
  /** A read-only view (readOnly()): nothing here can write to the device. */
  endpoint: RegisterReader;
  unitId: number;
  timeoutMs: number;
}

/** Discovery and a read of every known model; a ModbusError when the device cannot be scanned. */
export async function scanDevice(t: ScanTarget): Promise<ScanResult> {
  const found = await discoverChain({ deviceId: 'scan', unitId: t.unitId, endpoint: t.endpoint, timeoutMs: t.timeoutMs });
  if (found.status !== 'ok') throw found.error;
  const models: ScannedModel[] = [];
  for (const b of found.chain.models) {
    const def = sunspecModel(b.id);
    const values = new Map<string, DecodedValue>();
    if (def !== undefined) {
      const count = Math.min(b.length + 2, def.length + 2);
      const block = new Uint16Array(count);
      for (let at = 0; at < count; at += 125) {
        const n = Math.min(125, count - at);
        const words = await t.endpoint.read({ unitId: t.unitId, table: 'holding', address: b.start + at, count: n }, { deviceId: 'scan', timeoutMs: t.timeoutMs });
        block.set(words.subarray(0, n), at);
      }
      for (const [k, v] of decodeModel(def, block, b.length)) values.set(k, v);
    }
    models.push({ id: b.id, start: b.start, length: b.length, values });
  }
  const common = models.find((m) => m.id === 1)?.values;
  const str = (n: string): string | undefined => {
    const d = common?.get(n);
    return d?.ok && typeof d.value === 'string' && d.value !== '' ? d.value : undefined;
  };
  const identity: ScanResult['identity'] = {};
  for (const k of ['Mn', 'Md', 'Vr', 'SN'] as const) {
    const v = str(k);
    if (v !== undefined) identity[k] = v;
  }
  const num = (model: number, n: string): number | undefined => {
    const d = models.find((m) => m.id === model)?.values.get(n);
    return d === undefined ? undefined : numericValue(d);
  };
  const wmax121 = num(121, 'WMax');
  const wrtg = num(120, 'WRtg');
  const out: ScanResult = { chain: found.chain, models, identity };
  if (wmax121 !== undefined && wmax121 > 0) out.wmax = { watts: wmax121, from: 'WMax (model 121)' };
  else if (wrtg !== undefined && wrtg > 0) out.wmax = { watts: wrtg, from: 'WRtg (model 120)' };
  return out;
}

export function isScanError(e: unknown): e is ModbusError {
  return e instanceof ModbusError;
}

// ---- the profile ----

interface Meaning { id: string; metric?: string; role: NonNullable<PointDef['role']>; unit?: NonNullable<PointDef['unit']>; scale?: number; range?: [number, number] }

const AMPS: [number, number] = [0, 2000];
const VOLTS: [number, number] = [0, 1000];
const WATTS: [number, number] = [-1_000_000, 1_000_000];

/** The inverter model points a written profile reads, with the gateway's metric names. */
const INVERTER_POINTS: Readonly<Record<string, Meaning>> = {
  A: { id: 'ac_current', metric: deviceMetric('ac_current'), role: 'current', unit: 'A', range: AMPS },
  AphA: { id: 'ac_current_a', metric: deviceMetric('ac_current_phase'), role: 'current', unit: 'A', range: AMPS },
  AphB: { id: 'ac_current_b', metric: deviceMetric('ac_current_phase'), role: 'current', unit: 'A', range: AMPS },
  AphC: { id: 'ac_current_c', metric: deviceMetric('ac_current_phase'), role: 'current', unit: 'A', range: AMPS },
  PhVphA: { id: 'ac_voltage_a', metric: deviceMetric('ac_voltage'), role: 'voltage', unit: 'V', range: VOLTS },
  PhVphB: { id: 'ac_voltage_b', metric: deviceMetric('ac_voltage'), role: 'voltage', unit: 'V', range: VOLTS },
  PhVphC: { id: 'ac_voltage_c', metric: deviceMetric('ac_voltage'), role: 'voltage', unit: 'V', range: VOLTS },
  W: { id: 'ac_power', metric: deviceMetric('ac_power'), role: 'generation', unit: 'W', range: WATTS },
  Hz: { id: 'ac_frequency', metric: deviceMetric('ac_frequency'), role: 'frequency', unit: 'Hz', range: [45, 65] },
  VA: { id: 'apparent_power', metric: deviceMetric('apparent_power'), role: 'other', unit: 'VA', range: WATTS },
  VAr: { id: 'reactive_power', metric: deviceMetric('reactive_power'), role: 'other', unit: 'var', range: WATTS },
  PF: { id: 'power_factor', metric: deviceMetric('power_factor'), role: 'other', unit: '1', scale: 0.01, range: [-1, 1] }, // SunSpec Pct -> -1..1
  WH: { id: 'energy_produced', metric: deviceMetric('energy_produced'), role: 'energy', unit: 'Wh', range: [0, 1e15] },
  DCA: { id: 'dc_current', metric: deviceMetric('dc_current'), role: 'other', unit: 'A', range: AMPS },
  DCV: { id: 'dc_voltage', metric: deviceMetric('dc_voltage'), role: 'other', unit: 'V', range: [0, 2000] },
  DCW: { id: 'dc_power', metric: deviceMetric('dc_power'), role: 'other', unit: 'W', range: WATTS },
  TmpCab: { id: 'cabinet_temperature', metric: deviceMetric('temperature'), role: 'temperature', unit: 'Cel', range: [-40, 120] },
  St: { id: 'operating_state', metric: deviceMetric('operating_state'), role: 'status', unit: '1' },
  Evt1: { id: 'events', metric: deviceMetric('alarm_flags'), role: 'alarm', unit: '1' },
};

const COMMON_POINTS: Readonly<Record<string, string>> = { Mn: 'manufacturer', Md: 'model_name', Vr: 'version', SN: 'serial_number' };
const INVERTER_MODELS = [103, 102, 101, 113, 112, 111];

/** A kebab-case profile name from vendor and model (`fronius-symo-10-0-3-m`). */
export function suggestedName(identity: ScanResult['identity']): string {
  const slug = (s: string | undefined): string => (s ?? '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const name = [slug(identity.Mn), slug(identity.Md)].filter((s) => s !== '').join('-');
  return name === '' ? 'sunspec-device' : name;
}

const q = (s: string): string => JSON.stringify(s);
const flow = (o: Record<string, unknown>): string => `{ ${Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ')} }`;
function fmt(v: unknown): string {
  if (typeof v === 'string') return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(v) && !['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n'].includes(v.toLowerCase()) ? v : q(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '.nan';
  if (Array.isArray(v)) return `[${v.map(fmt).join(', ')}]`;
  if (typeof v === 'object' && v !== null) return flow(v as Record<string, unknown>);
  return String(v);
}

/** The simulate block: the value read at the scan, so the simulators serve what this device showed. */
function simulated(d: DecodedValue | undefined, scale = 1): Record<string, unknown> | undefined {
  if (d === undefined || !d.ok) return undefined;
  if (typeof d.value === 'string') return d.value === '' ? undefined : { kind: 'constant', value: d.value };
  const n = numericValue(d);
  return n === undefined ? undefined : { kind: 'constant', value: Number((n * scale).toPrecision(12)) };
}

/** The YAML text of a profile for the scanned device (checked by the caller with the profile loader). */
export function scanProfile(scan: ScanResult, host: string): string {
  const inv = scan.models.find((m) => INVERTER_MODELS.includes(m.id) && m.values.size > 0);
  const common = scan.models.find((m) => m.id === 1);
  const controls = scan.models.find((m) => m.id === 123 && m.values.size > 0);
  const lines: string[] = [];
  const chainText = scan.chain.models.map((m) => `${m.id}`).join(', ');
  lines.push('# yaml-language-server: $schema=../schemas/device-profile.schema.json');
  lines.push(`# Written by \`ems-gateway sunspec scan\` from ${host}: SunSpec models ${chainText}, 'SunS' at ${scan.chain.base}.`);
  lines.push('# Points are placed by model (SunSpec discovery at connect); simulate blocks hold the values read at the scan.');
  lines.push(`vendor: ${q(scan.identity.Mn ?? 'unknown')}`);
  lines.push(`model: ${q(scan.identity.Md ?? 'unknown')}`);
  lines.push(`kind: ${inv ? 'inverter' : 'other'}`);
  lines.push('address_base: 0');
  lines.push('default_order: ABCD');
  lines.push(`sunspec_base: ${scan.chain.base}`);
  // A profile places each model once, at the device's first copy of it (src/modbus/sunspec-layout.ts):
  // a repeated model (two MPPT 160s, several 203s) is listed once, its later copies noted.
  lines.push('sunspec_models:               # the chain found at the scan, each model once (and what the simulators serve)');
  const listed = new Set<number>();
  for (const m of scan.chain.models) {
    if (listed.has(m.id)) {
      lines.push(`  # model ${m.id} again at ${m.start} (length ${m.length}): not listed, a profile places each model at its first copy`);
      continue;
    }
    listed.add(m.id);
    lines.push(`  - { id: ${m.id}, length: ${m.length} }`);
  }
  lines.push('quirks:');
  lines.push('  max_registers_per_request: 125');
  lines.push('  max_gap_registers: 8');
  lines.push('  timeout: 1s');
  lines.push('points:');
  const pointLine = (o: Record<string, unknown>): void => { lines.push(`  - ${flow(o)}`); };
  if (common) {
    for (const [name, id] of Object.entries(COMMON_POINTS)) {
      const sp = sunspecModel(1)?.points.find((p) => p.name === name);
      if (!sp || !common.values.has(name)) continue;
      pointLine({ id, name, table: 'holding', sunspec: { model: 1, point: name }, type: 'string', length: sp.size, role: 'identity', sentinel: 'none', simulate: simulated(common.values.get(name)) });
    }
  }
  const sfPoints = (m: ScannedModel, def: SunSpecModel, names: readonly string[]): void => {
    const wanted = new Set(names.map((n) => def.points.find((p) => p.name === n)?.sf).filter((x): x is string => x !== undefined));
    for (const sf of def.points.filter((p) => wanted.has(p.name))) {
      pointLine({ id: sf.name.toLowerCase(), name: sf.name, table: 'holding', sunspec: { model: m.id, point: sf.name }, type: 'int16', role: 'scale_factor', simulate: simulated(m.values.get(sf.name)) });
    }
  };
  if (inv) {
    const def = sunspecModel(inv.id) as SunSpecModel;
    const fits = (n: string | undefined): boolean => n === undefined || def.points.some((p) => p.name === n && p.offset + p.size <= inv.length + 2);
    const names = Object.keys(INVERTER_POINTS).filter((n) => fits(n) && fits(def.points.find((p) => p.name === n)?.sf));
    for (const n of names) {
      const sp = def.points.find((p) => p.name === n) as SunSpecPoint;
      const m = INVERTER_POINTS[n] as Meaning;
      const o: Record<string, unknown> = { id: m.id, name: n, table: 'holding', sunspec: { model: inv.id, point: n }, type: pointType(sp.type) };
      if (sp.sf !== undefined) o['scale_factor'] = sp.sf.toLowerCase();
      if (m.scale !== undefined) o['scale'] = m.scale;
      o['unit'] = m.unit;
      o['metric'] = m.metric;
      o['role'] = m.role;
      const s = sentinelOf(sp.type);
      if (s !== undefined) o['sentinel'] = s;
      // Outside it a value is implausible and not exported (a word order or scale gone wrong).
      if (m.range !== undefined) o['valid_range'] = m.range;
      if (n === 'St') o['enum'] = INVERTER_STATES;
      if (n === 'Evt1') o['bits'] = INVERTER_EVT1;
      o['simulate'] = simulated(inv.values.get(n), m.scale);
      pointLine(o);
    }
    sfPoints(inv, def, names);
  }
  const wmaxNote = scan.wmax === undefined ? 'WMax not readable at the scan' : `100 % = ${scan.wmax.from} ${scan.wmax.watts} W at the scan`;
  if (controls) {
    pointLine({ id: 'power_limit_pct', name: 'WMaxLimPct', table: 'holding', sunspec: { model: 123, point: 'WMaxLimPct' }, type: 'uint16', scale_factor: 'wmaxlimpct_sf',
      unit: '%', metric: deviceMetric('power_limit'), role: 'setpoint', valid_range: [0, 100], simulate: simulated(controls.values.get('WMaxLimPct')) });
    pointLine({ id: 'wmaxlimpct_sf', name: 'WMaxLimPct_SF', table: 'holding', sunspec: { model: 123, point: 'WMaxLimPct_SF' }, type: 'int16', role: 'scale_factor',
      simulate: simulated(controls.values.get('WMaxLimPct_SF')) });
    lines.push('controls:');
    lines.push(`  - id: set_power_limit_pct      # WMaxLimPct: active power limit in % of WMax (${wmaxNote})`);
    lines.push('    name: WMaxLimPct');
    lines.push('    table: holding');
    lines.push('    sunspec: { model: 123, point: WMaxLimPct }');
    lines.push('    type: uint16');
    lines.push('    scale_factor: wmaxlimpct_sf');
    lines.push("    unit: '%'");
    lines.push('    role: setpoint');
    lines.push(`    description: ${q(`active power limit, % of WMax; ${wmaxNote}`)}`);
    lines.push('    min: 5                       # some inverters go to standby at 0 %: never command below 5 %');
    lines.push('    max: 100');
    lines.push('    never_write: [0]');
    lines.push('    verify: { point: power_limit_pct, tolerance: 0.5, delay: 200ms, timeout: 2s }');
    lines.push('    restore: max');
    lines.push('    revert_timer: { point: set_power_limit_revert_s, seconds_per_unit: 1 }');
    lines.push('    enable: { point: set_power_limit_enable, value: 1 }');
    lines.push('    rate_limit: 1s');
    lines.push('  - { id: set_power_limit_revert_s, name: WMaxLimPct_RvrtTms, table: holding, sunspec: { model: 123, point: WMaxLimPct_RvrtTms }, type: uint16, unit: s, min: 0, max: 65534, restore: 0, verify: { tolerance: 0 } }');
    lines.push('  - { id: set_power_limit_enable, name: WMaxLim_Ena, table: holding, sunspec: { model: 123, point: WMaxLim_Ena }, type: uint16, enum: { 0: DISABLED, 1: ENABLED }, min: 0, max: 1, restore: 0, verify: { tolerance: 0 } }');
  }
  return `${lines.join('\n')}\n`;
}
