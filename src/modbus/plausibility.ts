// Plausibility: a decoded value outside its point's `valid_range` (the datasheet's physical range)
// is withheld, never exported: a wrong word order or address base decodes to numbers that look
// like data (a state of charge of 2.39e-41 %). This is a separate step after decoding; the codec
// itself stays a pure function of the registers.
import type { DeviceProfile, PointDef, WordOrder } from '../config/profile-types.js';
import { decodePointAllOrders, pointOrder } from './codec.js';
import { WORD_ORDERS, isNumericType, numericWidth } from './codec-words.js';

/** The smallest normal float32. Below it (and not 0) a float is denormal: no meter or sensor sends one. */
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

const isFloat = (point: Pick<PointDef, 'type'>): boolean => point.type === 'float32' || point.type === 'float64';

/** Whether the point's values go through the check at all (the poller skips it for the others). */
export function checksPlausibility(point: Pick<PointDef, 'valid_range' | 'type'>): boolean {
  return point.valid_range !== undefined || isFloat(point);
}

/**
 * Whether a decoded value is implausible: outside the point's valid_range, or, for a float point, a
 * denormal number (a float whose low word was read as its high word: SoC 62 % in CDAB read as
 * ABCD is 2.39e-41, which any range that includes 0 would let through).
 */
export function outOfRange(point: Pick<PointDef, 'valid_range' | 'type'>, value: number | string | boolean): boolean {
  if (typeof value !== 'number') return false;
  if (isFloat(point) && value !== 0 && Math.abs(value) < FLOAT32_MIN_NORMAL) return true;
  const r = point.valid_range;
  return r !== undefined && !(value >= r[0] && value <= r[1]);
}

/** What is wrong with an implausible value, for the log line and the status page. */
export function implausibleWhy(point: Pick<PointDef, 'valid_range' | 'type'>, value: number): string {
  const r = point.valid_range;
  if (r !== undefined && !(value >= r[0] && value <= r[1])) return `${value} outside valid_range [${r[0]}, ${r[1]}]`;
  return `${value} is a denormal float (never a measurement)`;
}

/** Whether the point spans several registers whose order matters (32/64-bit numbers). */
export function isMultiRegister(point: Pick<PointDef, 'type' | 'table'>): boolean {
  return point.table !== 'coil' && point.table !== 'discrete' && isNumericType(point.type) && numericWidth(point.type) > 1;
}

/**
 * The other word orders under which the same registers decode to a value inside the point's
 * valid_range: the likely fix of a profile whose order is wrong. Empty for single registers.
 */
export function ordersInRange(
  profile: Pick<DeviceProfile, 'default_order'>, point: PointDef, words: Uint16Array | Uint8Array, offset: number, scaleFactor?: number,
): WordOrder[] {
  if (!isMultiRegister(point)) return [];
  const own = pointOrder(profile, point);
  const all = decodePointAllOrders(profile, point, words, offset, scaleFactor);
  return WORD_ORDERS.filter((o) => {
    const d = all[o];
    return o !== own && d.ok && !outOfRange(point, d.value);
  });
}

/** "did you mean CDAB?" / "no other word order is in range either" for the implausible log line. */
export function orderHint(orders: readonly WordOrder[], multiRegister: boolean): string {
  if (!multiRegister) return 'check the address, the scale and the valid_range';
  if (orders.length === 0) return 'no other word order is in range either: check the address, the type and the scale';
  return `did you mean ${orders.join(' or ')}?`;
}
