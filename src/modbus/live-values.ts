// A device's live values as a technician reads them off the device's own display: every cyclic
// point with its value, unit, enum label or active flags, or the reason it has none (sentinel,
// failed read, implausible, malformed, not read yet). Built from the registers of the last read of
// each planned request, through the same codec and plausibility step as the poller, so the status
// page (/status, /status/devices/<id>) and `ems-gateway probe` say exactly what the gateway exports.
import type { DeviceProfile, PointDef, WordOrder } from '../config/profile-types.js';
import { pointWidth } from '../config/profile-types.js';
import { activeFlags, decodePointAllOrders, enumLabel, pointOrder, type DecodedValue } from './codec.js';
import { decodeRead } from './codec-read.js';
import { WORD_ORDERS } from './codec-words.js';
import { checksPlausibility, implausibleWhy, isMultiRegister, orderHint, ordersInRange, outOfRange } from './plausibility.js';
import type { PlannedRead } from './read-plan.js';
import type { ReadResult } from './types.js';

/** The outcome of the last attempt at one planned read (kept by the poller, made by `probe`). */
export interface LastRead {
  /** Epoch ms of the answer or the failure; 0: never attempted. */
  atMs: number;
  /** The registers (or bits) of the last answer; undefined when the last attempt failed. */
  words: ReadResult | undefined;
  error: { code: string; message: string } | undefined;
}

type PointState = 'ok' | 'sentinel' | 'implausible' | 'failed_read' | 'malformed' | 'not_read';

export interface PointReadout {
  id: string;
  /** The datasheet's name (SunSpec "St"). */
  name?: string;
  unit?: string;
  state: PointState;
  /** Present only when state is ok: the exported value. */
  value?: number | string | boolean;
  /** Enum label of the raw value (SunSpec St 4 = MPPT). */
  label?: string;
  /** Names of the set bits of a bit-field word, lowest first. */
  flags?: string[];
  /** Epoch ms of the read the state comes from. */
  read_at_ms?: number;
  /** Why there is no value (the sentinel, the error, the range and the likely order). */
  reason?: string;
  valid_range?: [number, number];
  /** The point's raw registers (or bit) in the last answer: detail view and probe only. */
  registers?: number[];
  /** Word order the profile uses (multi-register points, detail view). */
  order?: WordOrder;
  /** The value as each of the four orders would decode it (multi-register numbers, detail view); null: no value. */
  orders?: Record<WordOrder, number | null>;
}

export interface ReadBlockReadout {
  table: PlannedRead['table'];
  address: number;
  count: number;
  read_at_ms?: number;
  /** The registers (bits: 0/1) of the last answer, in wire order; null when the last attempt failed. */
  registers: number[] | null;
  error?: string;
}

const hex = (w: number): string => `0x${w.toString(16).padStart(4, '0')}`;

/** A fresh LastRead per planned read (never attempted). */
export function emptyReads(n: number): LastRead[] {
  return Array.from({ length: n }, () => ({ atMs: 0, words: undefined, error: undefined }));
}

function sentinelReason(p: PointDef, d: Extract<DecodedValue, { ok: false }>, regs: number[]): string {
  if (d.reason === 'scale_factor_not_implemented') return `scale factor ${JSON.stringify(p.scale_factor)} is "not implemented"`;
  return `${regs.map(hex).join(' ')} means "not implemented"`;
}

/**
 * Every point of the profile that `plan` reads (the poller's cyclic plan leaves identity points
 * out: the status shows them apart; `probe` reads them too), in profile order, from the last read
 * of each planned request. `withRegisters` adds each point's raw registers and, for
 * 32/64-bit points, its value in all four orders.
 */
export function readPoints(
  profile: Pick<DeviceProfile, 'default_order' | 'address_base' | 'points'>,
  plan: readonly PlannedRead[],
  reads: readonly LastRead[],
  withRegisters: boolean,
): PointReadout[] {
  const where = new Map<string, number>();
  plan.forEach((r, i) => { for (const p of r.points) if (!where.has(p.id)) where.set(p.id, i); });
  const decoded = plan.map((r, i) => {
    const w = reads[i]?.words;
    return w === undefined ? undefined : decodeRead(profile, r, w);
  });
  const out: PointReadout[] = [];
  for (const p of profile.points) {
    const i = where.get(p.id);
    if (i === undefined) continue;
    // Plain assignments, no spreads: /status builds this for every point of every device.
    const r: PointReadout = { id: p.id, state: 'not_read' };
    if (p.name !== undefined) r.name = p.name;
    if (p.unit !== undefined) r.unit = p.unit;
    if (p.valid_range !== undefined) r.valid_range = p.valid_range;
    out.push(r);
    const read = plan[i];
    const last = reads[i];
    const words = last?.words;
    const d = decoded[i]?.get(p.id);
    if (read === undefined || last === undefined || last.atMs === 0) {
      r.reason = 'not read yet';
      continue;
    }
    r.read_at_ms = last.atMs;
    if (words === undefined || d === undefined) {
      r.state = 'failed_read';
      r.reason = last.error === undefined ? 'no answer' : `${last.error.code}: ${last.error.message}`;
      continue;
    }
    const offset = p.address - profile.address_base - read.address;
    const regs = (): number[] => Array.from(words.subarray(Math.max(0, offset), Math.max(0, offset + pointWidth(p))));
    const sfPoint = p.scale_factor === undefined ? undefined : decoded[i]?.get(p.scale_factor);
    const sf = sfPoint?.ok === true && typeof sfPoint.value === 'number' ? sfPoint.value : undefined;
    if (withRegisters) {
      r.registers = regs();
      if (isMultiRegister(p)) {
        r.order = pointOrder(profile, p);
        const all = decodePointAllOrders(profile, p, words, offset, sf);
        const orders = {} as Record<WordOrder, number | null>;
        for (const o of WORD_ORDERS) {
          const v = all[o];
          orders[o] = v.ok && typeof v.value === 'number' ? v.value : null;
        }
        r.orders = orders;
      }
    }
    if (!d.ok) {
      r.state = d.reason === 'malformed' ? 'malformed' : 'sentinel';
      r.reason = d.reason !== 'malformed' ? sentinelReason(p, d, regs())
        : sf !== undefined && !(Number.isInteger(sf) && sf >= -10 && sf <= 10) ? `scale factor ${JSON.stringify(p.scale_factor)} = ${sf}, outside -10..10`
          : `registers ${regs().map(hex).join(' ')} do not decode as ${p.type}`;
    } else if (checksPlausibility(p) && outOfRange(p, d.value)) {
      r.state = 'implausible';
      r.reason = `${implausibleWhy(p, d.value as number)}; ${orderHint(ordersInRange(profile, p, words, offset, sf), isMultiRegister(p))}`;
    } else {
      r.state = 'ok';
      r.value = d.value;
      const raw = d.raw;
      if (p.enum !== undefined && (typeof raw === 'number' || typeof raw === 'bigint')) {
        const label = enumLabel(p, raw);
        if (label !== undefined) r.label = label;
      }
      if (p.bits !== undefined && (typeof raw === 'number' || typeof raw === 'bigint')) r.flags = activeFlags(p, raw);
    }
  }
  return out;
}

/** The planned reads with the registers of their last answer (or the error). */
export function readBlocks(plan: readonly PlannedRead[], reads: readonly LastRead[]): ReadBlockReadout[] {
  return plan.map((r, i) => {
    const last = reads[i];
    const b: ReadBlockReadout = { table: r.table, address: r.address, count: r.count, registers: last?.words === undefined ? null : Array.from(last.words) };
    if (last !== undefined && last.atMs > 0) b.read_at_ms = last.atMs;
    if (last?.error !== undefined && last.words === undefined) b.error = `${last.error.code}: ${last.error.message}`;
    return b;
  });
}
