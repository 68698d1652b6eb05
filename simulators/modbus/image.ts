// The register image of one simulated device: per table, a dense array over the wire addresses
// its profile declares (first..last register). Reads inside that span are served (unused
// registers read 0, as on most devices); reads outside it get exception 2, like a real device.

import type { DeviceProfile, PointDef, RegisterTable } from '../../src/config/profile-types.js';
import { pointWidth, wireAddress } from '../../src/config/profile-types.js';

export interface TableImage {
  readonly base: number;                 // wire address of data[0]
  readonly data: Uint16Array | Uint8Array; // registers, or bits 0/1 for coil/discrete
}

export type RegisterImage = Partial<Record<RegisterTable, TableImage>>;

const isBitTable = (t: RegisterTable): boolean => t === 'coil' || t === 'discrete';

export function allPoints(profile: Pick<DeviceProfile, 'points' | 'controls'>): PointDef[] {
  return [...profile.points, ...profile.controls];
}

export function createImage(profile: Pick<DeviceProfile, 'points' | 'controls' | 'address_base'>): RegisterImage {
  const spans = new Map<RegisterTable, { lo: number; hi: number }>();
  for (const p of allPoints(profile)) {
    const lo = wireAddress(profile, p);
    const hi = lo + pointWidth(p);
    const s = spans.get(p.table);
    spans.set(p.table, s ? { lo: Math.min(s.lo, lo), hi: Math.max(s.hi, hi) } : { lo, hi });
  }
  const image: RegisterImage = {};
  for (const [table, { lo, hi }] of spans) {
    const size = Math.max(0, Math.min(hi, 0x10000) - Math.max(lo, 0));
    image[table] = { base: Math.max(lo, 0), data: isBitTable(table) ? new Uint8Array(size) : new Uint16Array(size) };
  }
  return image;
}

/** Whether [address, address + count) lies inside the table's image. */
export function inImage(image: RegisterImage, table: RegisterTable, address: number, count: number): TableImage | undefined {
  const t = image[table];
  if (!t || address < t.base || address + count > t.base + t.data.length) return undefined;
  return t;
}
