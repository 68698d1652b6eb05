// The latest decoded value of every point of every polled device, with the time it was read.
// Pollers write it; device gauges, the grid state and the status page read it, so a metric
// collection never triggers Modbus I/O. A value that could not be read in the last cycle is
// removed, not kept: stale is never reported as fresh (TB-GW#2065), absent beats wrong (HA#51103).
//
// A device's values are kept by the index of the point in its profile (the profile's index is
// shared by its devices), numbers and read times in typed arrays: no object and no map entry per
// point. 5,000 devices of 60 points held 300,000 value objects, their map tables and boxed numbers
// (about 25 MB of heap, bench:modbus RSS) this way. Pollers and gauges address a point by its slot
// (slotOf); everything else by point id.
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { GridRole, GridSample, GridSampleSource } from '../grid/sources.js';
import { slabFloat64, slabUint8 } from './typed-slab.js';

interface PointValue {
  value: number | string | boolean;
  /** Wall-clock epoch ms when the response carrying it arrived. */
  readAtMs: number;
}

const GRID_ROLES: ReadonlySet<string> = new Set<GridRole>(['generation', 'load', 'battery_power', 'grid_import', 'grid_export', 'frequency']);

/** What a slot holds: nothing, a number (in `num`), or a string or boolean (in `other`). */
const ABSENT = 0;
const NUMBER = 1;
const OTHER = 2;

/** Point id -> slot, shared by the devices of one profile. */
const indexes = new WeakMap<DeviceProfile, Map<string, number>>();

function profileIndex(profile: DeviceProfile): Map<string, number> {
  let index = indexes.get(profile);
  if (index === undefined) {
    index = new Map();
    for (const p of profile.points) if (!index.has(p.id)) index.set(p.id, index.size);
    indexes.set(profile, index);
  }
  return index;
}

/** One device's values by slot. */
export class DeviceValues {
  /** Slot -> point id (the index's keys in slot order). */
  private ids: string[];
  private num: Float64Array;
  private readAt: Float64Array;
  private kind: Uint8Array;
  private other: Array<string | boolean> | undefined;
  /** Shared with the profile's other devices until a point outside the profile is set (copied then). */
  private shared = true;

  constructor(readonly device: DeviceConfig, readonly profile: DeviceProfile, private index: Map<string, number>, readonly gridPoints: PointDef[]) {
    this.ids = [...index.keys()];
    const n = this.ids.length;
    this.num = slabFloat64(n);
    this.readAt = slabFloat64(n);
    this.kind = slabUint8(n);
  }

  /** The slot of a point (a point outside the profile gets one of this device's own). */
  slotOf(pointId: string): number {
    const known = this.index.get(pointId);
    if (known !== undefined) return known;
    if (this.shared) {
      this.index = new Map(this.index);
      this.shared = false;
    }
    const slot = this.ids.length;
    this.index.set(pointId, slot);
    this.ids.push(pointId);
    const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(slot + 1);
      b.set(a);
      return b;
    };
    this.num = grow(this.num, (n) => new Float64Array(n));
    this.readAt = grow(this.readAt, (n) => new Float64Array(n));
    this.kind = grow(this.kind, (n) => new Uint8Array(n));
    return slot;
  }

  /** A point's slot without giving it one (reading or deleting a point never set is a no-op). */
  slotIfKnown(pointId: string): number | undefined {
    return this.index.get(pointId);
  }

  set(slot: number, value: number | string | boolean, readAtMs: number): void {
    if (typeof value === 'number') {
      this.kind[slot] = NUMBER;
      this.num[slot] = value;
    } else {
      this.kind[slot] = OTHER;
      (this.other ??= [])[slot] = value;
    }
    this.readAt[slot] = readAtMs;
  }

  delete(slot: number): void {
    if ((this.kind[slot] ?? ABSENT) === ABSENT) return;
    this.kind[slot] = ABSENT;
    if (this.other !== undefined) this.other[slot] = '';
  }

  clear(): void {
    this.kind.fill(ABSENT);
    this.other = undefined;
  }

  /** The value of a slot (undefined: absent); see numberAt for reading without an object. */
  at(slot: number): PointValue | undefined {
    const k = this.kind[slot] ?? ABSENT;
    if (k === ABSENT) return undefined;
    const value = k === NUMBER ? (this.num[slot] as number) : ((this.other as Array<string | boolean>)[slot] as string | boolean);
    return { value, readAtMs: this.readAt[slot] as number };
  }

  /** A present number or boolean as a number (true 1, false 0); undefined for absent and strings. */
  numberAt(slot: number): number | undefined {
    const k = this.kind[slot];
    if (k === NUMBER) return this.num[slot];
    if (k === OTHER) {
      const v = this.other?.[slot];
      if (typeof v === 'boolean') return v ? 1 : 0;
    }
    return undefined;
  }

  /** Epoch ms of the slot's value (meaningful when present). */
  readAtMs(slot: number): number {
    return this.readAt[slot] ?? 0;
  }

  /** Every present value, in the profile's point order, without a copy. */
  forEach(fn: (pointId: string, value: number | string | boolean, readAtMs: number) => void): void {
    for (let i = 0; i < this.ids.length; i++) {
      const k = this.kind[i];
      if (k === NUMBER) fn(this.ids[i] as string, this.num[i] as number, this.readAt[i] as number);
      else if (k === OTHER) fn(this.ids[i] as string, (this.other as Array<string | boolean>)[i] as string | boolean, this.readAt[i] as number);
    }
  }

  /** Point id -> value, in the profile's point order (a copy). */
  toMap(): Map<string, PointValue> {
    const out = new Map<string, PointValue>();
    for (let i = 0; i < this.ids.length; i++) {
      const v = this.at(i);
      if (v !== undefined) out.set(this.ids[i] as string, v);
    }
    return out;
  }
}

export class DeviceSnapshot implements GridSampleSource {
  private readonly devices = new Map<string, DeviceValues>();

  register(device: DeviceConfig, profile: DeviceProfile): void {
    const gridPoints = profile.points.filter((p) => p.role !== undefined && GRID_ROLES.has(p.role));
    this.devices.set(device.id, new DeviceValues(device, profile, profileIndex(profile), gridPoints));
  }

  /** A registered device's values, for writing and reading by slot (pollers, gauges). */
  device(deviceId: string): DeviceValues | undefined {
    return this.devices.get(deviceId);
  }

  set(deviceId: string, pointId: string, value: number | string | boolean, readAtMs: number): void {
    const e = this.devices.get(deviceId);
    if (e === undefined) return;
    e.set(e.slotOf(pointId), value, readAtMs);
  }

  delete(deviceId: string, pointId: string): void {
    const e = this.devices.get(deviceId);
    const slot = e?.slotIfKnown(pointId);
    if (slot !== undefined) e?.delete(slot);
  }

  /** Forget every value of a device (it went down, or its poller stopped). */
  clear(deviceId: string): void {
    this.devices.get(deviceId)?.clear();
  }

  get(deviceId: string, pointId: string): PointValue | undefined {
    const e = this.devices.get(deviceId);
    const slot = e?.slotIfKnown(pointId);
    return slot === undefined ? undefined : e?.at(slot);
  }

  /** Point id -> value of one device, in its profile's point order (a copy; for the status page and tests). */
  values(deviceId: string): ReadonlyMap<string, PointValue> {
    return this.devices.get(deviceId)?.toMap() ?? new Map();
  }

  /** Every present value of one device, in its profile's point order, without a copy (per-cycle readers). */
  forEachValue(deviceId: string, fn: (pointId: string, value: number | string | boolean, readAtMs: number) => void): void {
    this.devices.get(deviceId)?.forEach(fn);
  }

  deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  /** The grid roles of every registered device's points, read or not (src/grid: absent until read, not 0). */
  gridRoles(): Set<GridRole> {
    const out = new Set<GridRole>();
    for (const e of this.devices.values()) for (const p of e.gridPoints) out.add(p.role as GridRole);
    return out;
  }

  /** Samples for src/grid: every fresh numeric value of a point whose role the grid uses. */
  gridSamples(): GridSample[] {
    const out: GridSample[] = [];
    for (const [id, e] of this.devices) {
      for (const p of e.gridPoints) {
        const v = this.get(id, p.id);
        if (v === undefined || typeof v.value !== 'number' || !Number.isFinite(v.value)) continue;
        out.push({ source: id, point: p.id, role: p.role as GridRole, value: v.value, unit: p.unit ?? '', observedAtMs: v.readAtMs });
      }
    }
    return out;
  }
}
