// Decode every point of one planned read, resolving each value's scale factor from the same
// read (the planner guarantees it is there). The poller's one call per response.

import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import { decodePoint, type DecodedValue } from './codec.js';
import type { PlannedRead } from './read-plan.js';

/**
 * Point id -> decoded value for every point of `read`, given the registers (or bits) it returned.
 * Scale-factor points are decoded too (their value is the exponent). A short response yields
 * `malformed` for the points it does not cover; nothing throws.
 */
export function decodeRead(
  profile: Pick<DeviceProfile, 'default_order' | 'address_base'>,
  read: Pick<PlannedRead, 'address' | 'points'>,
  words: Uint16Array | Uint8Array,
): Map<string, DecodedValue> {
  const out = new Map<string, DecodedValue>();
  const inRead = new Map<string, PointDef>();
  for (const p of read.points) inRead.set(p.id, p);
  const sfValue = (id: string): number | undefined => {
    const sfPoint = inRead.get(id);
    if (!sfPoint) return undefined;
    let got = out.get(id);
    if (!got) {
      got = decodePoint(profile, sfPoint, words, sfPoint.address - profile.address_base - read.address);
      out.set(id, got);
    }
    return got.ok && typeof got.value === 'number' ? got.value : undefined;
  };
  for (const p of read.points) {
    if (out.has(p.id)) continue;
    const offset = p.address - profile.address_base - read.address;
    const sf = p.scale_factor === undefined ? undefined : sfValue(p.scale_factor);
    out.set(p.id, decodePoint(profile, p, words, offset, sf));
  }
  return out;
}
