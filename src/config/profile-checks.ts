// Cross-point checks of one device profile: what a schema cannot say on its own.
import type { ControlDef, DeviceProfile, PointDef, SimBehaviour } from './profile-types.js';
import { pointWidth, wireAddress } from './profile-types.js';
import { hint } from './did-you-mean.js';
import { isSunSpecProfile } from './profile-sunspec.js';
import type { FileCtx } from './yaml-source.js';

const REGISTER_TABLES = new Set(['holding', 'input']);
const MULTI_REGISTER = new Set(['int32', 'uint32', 'int64', 'uint64', 'float32', 'float64']);

/**
 * `unresolved`: ids of points that exist but failed the schema (a lenient pass over a broken
 * profile): references to them are not reported again as missing.
 */
export function checkProfile(
  p: DeviceProfile, ctx: FileCtx, unresolved: ReadonlySet<string> = new Set(), metrics?: Readonly<Record<string, string>>,
): void {
  const all: PointDef[] = [...p.points, ...p.controls];
  const byId = new Map<string, PointDef>();
  for (const pt of all) {
    if (byId.has(pt.id)) ctx.errorAt(pt, 'id', `duplicate point id ${JSON.stringify(pt.id)}`);
    else byId.set(pt.id, pt);
  }
  const controlIds = new Set(p.controls.map((c) => c.id));
  for (const pt of all) checkPointShape(p, pt, ctx);
  if (metrics) for (const pt of all) checkMetric(pt, metrics, ctx);
  checkOverlaps(p, p.points, ctx);
  checkOverlaps(p, p.controls, ctx);
  const known = (id: string): boolean => byId.has(id) || unresolved.has(id);
  const knownControl = (id: string): boolean => controlIds.has(id) || unresolved.has(id);
  for (const pt of all) checkScaleFactor(pt, byId, ctx, unresolved);
  for (const c of p.controls) checkControl(c, byId, controlIds, ctx, known, knownControl);
  for (const pt of all) if (pt.simulate) checkSimulate(pt, pt.simulate, byId, controlIds, ctx, known, knownControl);
  checkSunSpecMarker(p, ctx);
}

/** A SunSpec profile reads its 'SunS' marker at start-up: the map must have it where it says. */
function checkSunSpecMarker(p: DeviceProfile, ctx: FileCtx): void {
  // A profile placed by discovery finds the marker itself (at sunspec_base, 40000, 50000 or 0).
  if (p.sunspec_base === undefined || isSunSpecProfile(p)) return;
  const marker = p.points.find((pt) => pt.table === 'holding' && pt.address === p.sunspec_base);
  const ok = marker !== undefined && marker.role === 'identity' && ((marker.type === 'string' && marker.length === 2) || marker.type === 'uint32');
  if (!ok) {
    ctx.errorAt(p, 'sunspec_base', `sunspec_base ${p.sunspec_base} needs an identity point there: the 'SunS' marker (type string, length 2, or uint32)`);
  }
}

/** The device metric vocabulary is closed: a listed name, in its listed unit. */
function checkMetric(pt: PointDef, metrics: Readonly<Record<string, string>>, ctx: FileCtx): void {
  if (pt.metric === undefined) return;
  const unit = Object.hasOwn(metrics, pt.metric) ? metrics[pt.metric] : undefined;
  if (unit === undefined) {
    ctx.errorAt(pt, 'metric', `metric ${JSON.stringify(pt.metric)} is not a device metric (docs/device-profiles.md lists them)${hint(pt.metric, Object.keys(metrics))}`);
  } else if (pt.unit !== undefined && pt.unit !== unit) {
    ctx.errorAt(pt, 'unit', `metric ${JSON.stringify(pt.metric)} is in unit ${JSON.stringify(unit)}, not ${JSON.stringify(pt.unit)}`);
  }
}

function checkPointShape(p: DeviceProfile, pt: PointDef, ctx: FileCtx): void {
  const bitTable = pt.table === 'coil' || pt.table === 'discrete';
  if (bitTable && pt.type !== 'bool') ctx.errorAt(pt, 'type', `a ${pt.table} is a single bit: type must be "bool", got ${JSON.stringify(pt.type)}`);
  if (pt.type === 'string' && pt.length === undefined) ctx.errorAt(pt, 'type', 'type "string" needs `length` (registers)');
  if (pt.type !== 'string' && pt.length !== undefined) ctx.errorAt(pt, 'length', `\`length\` is only for type "string", not ${JSON.stringify(pt.type)}`);
  if (pt.type === 'bit' && pt.bit === undefined) ctx.errorAt(pt, 'type', 'type "bit" needs `bit` (0..15)');
  if (pt.type !== 'bit' && pt.bit !== undefined) ctx.errorAt(pt, 'bit', `\`bit\` is only for type "bit", not ${JSON.stringify(pt.type)}`);
  if (pt.order !== undefined && !MULTI_REGISTER.has(pt.type) && pt.type !== 'string') {
    ctx.errorAt(pt, 'order', `word order ${JSON.stringify(pt.order)} has no meaning for a single-register ${pt.type}`);
  }
  const wire = wireAddress(p, pt);
  const end = wire + pointWidth(pt) - 1;
  if (wire < 0) ctx.errorAt(pt, 'address', `address ${pt.address} is below address_base ${p.address_base}`);
  else if (end > 65535) ctx.errorAt(pt, 'address', `address ${pt.address} + ${pointWidth(pt)} registers runs past 65535`);
  if (pt.metric !== undefined && pt.unit === undefined && pt.enum === undefined && pt.bits === undefined) {
    ctx.errorAt(pt, 'metric', `metric ${JSON.stringify(pt.metric)} needs a \`unit\` (use "1" for a plain count)`);
  }
  if (pt.role === 'scale_factor' && pt.type !== 'int16') ctx.errorAt(pt, 'type', `a scale_factor point must be int16, got ${JSON.stringify(pt.type)}`);
  if ((pt.role === 'scale_factor' || pt.role === 'identity') && pt.metric !== undefined) {
    ctx.errorAt(pt, 'metric', `a ${pt.role} point is never a metric`);
  }
  if (pt.bits) {
    const width = pointWidth(pt) * 16;
    for (const b of Object.keys(pt.bits)) if (Number(b) >= width) ctx.errorAt(pt.bits, b, `bit ${b} is outside a ${width}-bit ${pt.type}`);
  }
  const sent = pt.sentinel;
  if (typeof sent === 'object' && pt.type === 'string') ctx.errorAt(pt, 'sentinel', 'sentinel values do not apply to strings');
  checkValidRange(pt, bitTable, ctx);
}

/** valid_range: [min, max] in scaled units, for numbers only (a string or a flag has no range). */
function checkValidRange(pt: PointDef, bitTable: boolean, ctx: FileCtx): void {
  const r = pt.valid_range;
  if (r === undefined) return;
  if (bitTable || pt.type === 'string' || pt.type === 'bool' || pt.type === 'bit') {
    ctx.errorAt(pt, 'valid_range', `valid_range applies to numbers, not to a ${bitTable ? pt.table : pt.type} point`);
    return;
  }
  const [min, max] = r;
  if (min > max) ctx.errorAt(pt, 'valid_range', `valid_range [${min}, ${max}]: min is greater than max`);
}

/** Two points may not share a register, except bits of the same 16-bit register. */
function checkOverlaps(p: DeviceProfile, points: readonly PointDef[], ctx: FileCtx): void {
  const sorted = [...points].sort((a, b) => a.table.localeCompare(b.table) || wireAddress(p, a) - wireAddress(p, b));
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i];
    if (!a) continue;
    const aEnd = wireAddress(p, a) + pointWidth(a);
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j];
      if (!b || b.table !== a.table || wireAddress(p, b) >= aEnd) break;
      const sameBitRegister = a.type === 'bit' && b.type === 'bit' && a.address === b.address;
      if (sameBitRegister && a.bit === b.bit) ctx.errorAt(b, 'bit', `bit ${b.bit} of ${a.table} ${a.address} is also point ${JSON.stringify(a.id)}`);
      if (!sameBitRegister) {
        ctx.errorAt(b, 'address', `${b.table} ${b.address} (${pointWidth(b)} reg) overlaps point ${JSON.stringify(a.id)} at ${a.address} (${pointWidth(a)} reg)`);
      }
    }
  }
}

function checkScaleFactor(pt: PointDef, byId: ReadonlyMap<string, PointDef>, ctx: FileCtx, unresolved: ReadonlySet<string>): void {
  if (pt.scale_factor === undefined || unresolved.has(pt.scale_factor)) return;
  const sf = byId.get(pt.scale_factor);
  if (!sf) {
    ctx.errorAt(pt, 'scale_factor', `scale factor ${JSON.stringify(pt.scale_factor)} is not a point of this profile${hint(pt.scale_factor, byId.keys())}`);
    return;
  }
  if (sf.type !== 'int16') ctx.errorAt(pt, 'scale_factor', `scale factor ${JSON.stringify(sf.id)} must be int16, is ${sf.type}`);
  if (sf.table !== pt.table || !REGISTER_TABLES.has(sf.table)) {
    ctx.errorAt(pt, 'scale_factor', `scale factor ${JSON.stringify(sf.id)} is in the ${sf.table} table, the point in ${pt.table}: they must be read together`);
  }
}

function ref(ctx: FileCtx, owner: object, key: string, id: string, pool: Iterable<string>, has: (id: string) => boolean, what: string): void {
  if (!has(id)) ctx.errorAt(owner, key, `${JSON.stringify(id)} is not ${what} of this profile${hint(id, pool)}`);
}

type Known = (id: string) => boolean;

function checkControl(c: ControlDef, byId: ReadonlyMap<string, PointDef>, controlIds: ReadonlySet<string>, ctx: FileCtx, known: Known, knownControl: Known): void {
  if (c.table !== 'holding' && c.table !== 'coil') ctx.errorAt(c, 'table', `a control must be writable (holding or coil), got ${JSON.stringify(c.table)}`);
  if (c.type === 'bit' || c.type === 'string') ctx.errorAt(c, 'type', `a control is written from a number: type ${JSON.stringify(c.type)} cannot be (a bit would need a read-modify-write of its register)`);
  if (c.min > c.max) ctx.errorAt(c, 'min', `min ${c.min} is greater than max ${c.max}`);
  // never_write values outside [min, max] are allowed on purpose: belt and braces if bounds change.
  if (typeof c.restore === 'number' && (c.restore < c.min || c.restore > c.max || (c.never_write ?? []).includes(c.restore))) {
    ctx.errorAt(c, 'restore', `restore value ${c.restore} is not a writable value (bounds [${c.min}, ${c.max}], never_write)`);
  }
  const bound = c.restore === 'max' ? c.max : c.restore === 'min' ? c.min : undefined;
  if (bound !== undefined && (c.never_write ?? []).includes(bound)) ctx.errorAt(c, 'restore', `restore "${String(c.restore)}" = ${bound} is a never_write value`);
  if (c.verify.point !== undefined) ref(ctx, c.verify, 'point', c.verify.point, byId.keys(), known, 'a point');
  if (c.verify.point !== undefined && c.verify.equals === undefined && c.verify.point !== c.id) {
    const vp = byId.get(c.verify.point);
    if (vp && vp.unit !== c.unit) ctx.warnAt(c.verify, 'point', `read-back point ${JSON.stringify(vp.id)} has unit ${JSON.stringify(vp.unit)}, the control ${JSON.stringify(c.unit)}: compare with \`equals\` for an acknowledge register`);
  }
  const others = [...controlIds].filter((id) => id !== c.id);
  const other = (id: string): boolean => id !== c.id && (others.includes(id) || knownControl(id));
  if (c.revert_timer) ref(ctx, c.revert_timer, 'point', c.revert_timer.point, others, other, 'another control');
  if (c.enable) ref(ctx, c.enable, 'point', c.enable.point, others, other, 'another control');
}

function checkSimulate(pt: PointDef, s: SimBehaviour, byId: ReadonlyMap<string, PointDef>, controlIds: ReadonlySet<string>, ctx: FileCtx, points: Known, controls: Known): void {
  switch (s.kind) {
    case 'soc': ref(ctx, s, 'power_point', s.power_point, byId.keys(), points, 'a point'); break;
    case 'follow_setpoint':
      ref(ctx, s, 'setpoint', s.setpoint, controlIds, controls, 'a control');
      if (s.enable !== undefined) ref(ctx, s, 'enable', s.enable, controlIds, controls, 'a control');
      break;
    case 'ack': ref(ctx, s, 'control', s.control, controlIds, controls, 'a control'); break;
    case 'sum':
      for (const id of s.points) if (!points(id) || id === pt.id) ctx.errorAt(s, 'points', `${JSON.stringify(id)} is not another point of this profile${hint(id, byId.keys())}`);
      break;
    case 'random_walk':
      if (s.min > s.max) ctx.errorAt(s, 'min', `min ${s.min} is greater than max ${s.max}`);
      break;
    case 'constant': case 'sine': case 'solar': break;
  }
}
