// The read planner: a device profile's points compiled into the fewest reads (telegraf's
// approach), each at most quirks.max_registers_per_request registers (2000 bits for coils and
// discrete inputs), merged across gaps of at most quirks.max_gap_registers unused registers,
// one read per point when the device wants it, and a value always in the same read as its
// SunSpec scale-factor register (evcc#2162: a value and a scale factor from two different
// moments give a wrong number). The plan is per profile: unit ids do not change it.

import type { DeviceProfile, PointDef, RegisterTable } from '../config/profile-types.js';
import { pointWidth, wireAddress } from '../config/profile-types.js';

export interface PlannedRead {
  table: RegisterTable;
  address: number; // wire address (0-based)
  count: number;   // registers, or bits for coil/discrete
  points: PointDef[]; // sorted by address then id; scale-factor points included
}

export interface ReadPlan {
  requests: PlannedRead[];
}

type PlanErrorCode =
  | 'scale_factor_unknown'     // scale_factor names no point of the profile
  | 'scale_factor_other_table' // the scale factor lives in another table: no single read covers both
  | 'scale_factor_too_far'     // value and scale factor further apart than one read allows
  | 'point_too_wide';          // a point wider than one read (e.g. a string longer than 125 registers)

/** A profile that cannot be planned; the config validator reports it with the point named. */
export class PlanError extends Error {
  readonly code: PlanErrorCode;
  readonly profile: string;
  readonly point: string;
  constructor(code: PlanErrorCode, profile: string, point: string, message: string) {
    super(`profile ${profile}: point ${JSON.stringify(point)}: ${message}`);
    this.name = 'PlanError';
    this.code = code;
    this.profile = profile;
    this.point = point;
  }
}

/** Modbus limits: FC3/FC4 read at most 125 registers, FC1/FC2 at most 2000 bits. */
const MAX_REGISTERS_PER_READ = 125;
const MAX_BITS_PER_READ = 2000;

const TABLE_ORDER: readonly RegisterTable[] = ['holding', 'input', 'coil', 'discrete'];

type PlanProfile = Pick<DeviceProfile, 'profile' | 'address_base' | 'quirks' | 'points' | 'controls'>;

/** The cyclic plan: every point except identity points (read once at start-up). */
export function planReads(profile: PlanProfile): ReadPlan {
  return planPoints(profile, profile.points.filter((p) => p.role !== 'identity'));
}

/** Identity points (model, serial, SunS marker): read at start-up, not every cycle. */
export function planIdentityReads(profile: PlanProfile): ReadPlan {
  return planPoints(profile, profile.points.filter((p) => p.role === 'identity'));
}

/** The limit for one read of `table` on this device. */
function maxPerRead(profile: Pick<DeviceProfile, 'quirks'>, table: RegisterTable): number {
  if (table === 'coil' || table === 'discrete') return MAX_BITS_PER_READ;
  const q = profile.quirks.max_registers_per_request;
  return Number.isInteger(q) && q > 0 ? Math.min(q, MAX_REGISTERS_PER_READ) : MAX_REGISTERS_PER_READ;
}

interface Cluster {
  table: RegisterTable;
  start: number;
  end: number; // exclusive
  points: PointDef[];
}

/**
 * Plan reads for any subset of the profile's points and controls (the demand-response read-back
 * plans a control with its scale factor this way). Scale-factor points referenced by the subset
 * are added. Deterministic: same input, same plan.
 */
export function planPoints(profile: PlanProfile, selected: readonly PointDef[]): ReadPlan {
  const byId = new Map<string, PointDef>();
  for (const p of [...profile.points, ...profile.controls]) if (!byId.has(p.id)) byId.set(p.id, p);

  const clusters = profile.quirks.one_request_per_point
    ? onePerPoint(profile, selected, byId)
    : sharedScaleFactorClusters(profile, selected, byId);

  const requests: PlannedRead[] = [];
  for (const table of TABLE_ORDER) {
    const limit = maxPerRead(profile, table);
    const mine = clusters.filter((c) => c.table === table).sort((a, b) => a.start - b.start || a.end - b.end);
    if (profile.quirks.one_request_per_point) {
      for (const c of mine) requests.push(toRead(c));
      continue;
    }
    const gap = Math.max(0, profile.quirks.max_gap_registers | 0);
    let cur: Cluster | undefined;
    for (const c of mine) {
      if (cur && c.start - cur.end <= gap && Math.max(cur.end, c.end) - cur.start <= limit) {
        cur.end = Math.max(cur.end, c.end);
        cur.points.push(...c.points);
        continue;
      }
      if (cur) requests.push(toRead(cur));
      cur = { ...c, points: [...c.points] };
    }
    if (cur) requests.push(toRead(cur));
  }
  return { requests };
}

function toRead(c: Cluster): PlannedRead {
  const seen = new Set<string>();
  const points = c.points.filter((p) => (seen.has(p.id) ? false : (seen.add(p.id), true)));
  points.sort((a, b) => a.address - b.address || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { table: c.table, address: c.start, count: c.end - c.start, points };
}

function span(profile: PlanProfile, p: PointDef): { start: number; end: number } {
  const start = wireAddress(profile, p);
  return { start, end: start + pointWidth(p) };
}

function scaleFactorOf(profile: PlanProfile, p: PointDef, byId: Map<string, PointDef>): PointDef | undefined {
  if (p.scale_factor === undefined) return undefined;
  const sf = byId.get(p.scale_factor);
  if (!sf) throw new PlanError('scale_factor_unknown', profile.profile, p.id, `scale_factor ${JSON.stringify(p.scale_factor)} is not a point of this profile`);
  if (sf.table !== p.table) {
    throw new PlanError('scale_factor_other_table', profile.profile, p.id,
      `scale factor ${JSON.stringify(sf.id)} is in the ${sf.table} table, the value in ${p.table}: one read cannot cover both`);
  }
  return sf;
}

function checkFits(profile: PlanProfile, c: Cluster, culprit: PointDef): void {
  const limit = maxPerRead(profile, c.table);
  if (c.end - c.start <= limit) return;
  if (c.points.length === 1) {
    throw new PlanError('point_too_wide', profile.profile, culprit.id, `${c.end - c.start} registers, more than one read of ${limit}`);
  }
  throw new PlanError('scale_factor_too_far', profile.profile, culprit.id,
    `value and scale factor ${JSON.stringify(culprit.scale_factor)} span ${c.end - c.start} registers (wire ${c.start}..${c.end - 1}), more than one read of ${limit}`);
}

// One read per point (device quirk), still with the point's scale factor inside it.
function onePerPoint(profile: PlanProfile, selected: readonly PointDef[], byId: Map<string, PointDef>): Cluster[] {
  const withSf = new Set(selected.map((p) => p.scale_factor).filter((id): id is string => id !== undefined));
  const out: Cluster[] = [];
  for (const p of selected) {
    const sf = scaleFactorOf(profile, p, byId);
    // A scale-factor point read with its values needs no read of its own.
    if (!sf && withSf.has(p.id) && p.role === 'scale_factor') continue;
    const members = sf ? [p, sf] : [p];
    const spans = members.map((m) => span(profile, m));
    const c: Cluster = {
      table: p.table, start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)), points: members,
    };
    checkFits(profile, c, p);
    out.push(c);
  }
  return out;
}

// Values that share a scale factor, and the scale factor itself, form one cluster that must fit
// one read (union-find over the scale_factor relation).
function sharedScaleFactorClusters(profile: PlanProfile, selected: readonly PointDef[], byId: Map<string, PointDef>): Cluster[] {
  const groups = new Map<string, PointDef[]>(); // key: the scale factor id, or the point's own id
  const culprit = new Map<string, PointDef>();
  for (const p of selected) {
    const sf = scaleFactorOf(profile, p, byId);
    const key = sf ? sf.id : p.id;
    const g = groups.get(key) ?? [];
    if (sf && g.length === 0 && !selected.includes(sf)) g.push(sf);
    g.push(p);
    groups.set(key, g);
    if (sf) culprit.set(key, culprit.get(key) ?? p);
  }
  const out: Cluster[] = [];
  for (const [key, members] of groups) {
    const spans = members.map((m) => span(profile, m));
    const c: Cluster = {
      table: members[0]?.table ?? 'holding',
      start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)), points: members,
    };
    // Name the value furthest from its scale factor: that is the one to move or drop.
    const sfAddress = byId.get(key)?.address ?? 0;
    const far = culprit.has(key)
      ? members.reduce((a, b) => (Math.abs(b.address - sfAddress) > Math.abs(a.address - sfAddress) ? b : a))
      : (members[0] as PointDef);
    checkFits(profile, c, far);
    out.push(c);
  }
  return out;
}

/** One line per read, for `validate` and logs: `holding 40069+50 (12 points: w, w_sf, ...)`. */
export function describePlan(plan: ReadPlan): string[] {
  return plan.requests.map((r) =>
    `${r.table} ${r.address}+${r.count} (${r.points.length} point${r.points.length === 1 ? '' : 's'}: ${r.points.map((p) => p.id).join(', ')})`);
}

