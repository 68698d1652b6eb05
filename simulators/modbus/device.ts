// A simulated Modbus device built from a device profile (the same devices/*.yaml the gateway
// reads): a register image encoded with the gateway's own codec, points animated by their
// `simulate:` behaviours, writes accepted only on the profile's controls, and a reboot that
// forgets every command (evcc#33459: the gateway must re-assert).

import type { ControlDef, DeviceProfile, PointDef, RegisterTable } from '../../src/config/profile-types.js';
import { pointWidth, wireAddress } from '../../src/config/profile-types.js';
import { CodecError, decodePoint, encodePoint, encodeRaw, type DecodedValue } from '../../src/modbus/codec.js';
import { isNumericType } from '../../src/modbus/codec-words.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { followSetpoint, seededRandom, sineAt, socStep, solarAt, walkStep } from './behaviours.js';
import { allPoints, createImage, inImage, type RegisterImage } from './image.js';
import { servedProfile, type SunSpecLayout } from './sunspec.js';

export interface SimulatedDeviceOptions {
  clock?: Clock;
  seed?: number;
  /** Animated points are recomputed at most this often, lazily on a read (default 100 ms). */
  tickMs?: number;
  /**
   * Per-device values for points whose profile behaviour is `constant` (point id -> value): two
   * devices of one profile differ in what makes them distinct, such as serial number and address.
   */
  constants?: Readonly<Record<string, number | string>>;
  /** A SunSpec profile served in another model chain than its own (sunspec.ts). */
  sunspecLayout?: SunSpecLayout;
}

/** Modbus exception codes the device itself raises. */
export const EX_ILLEGAL_FUNCTION = 1;
export const EX_ILLEGAL_ADDRESS = 2;
export const EX_ILLEGAL_VALUE = 3;

const DEFAULT_SENTINEL_RAW: Record<string, number | bigint> = {
  int16: -0x8000, uint16: 0xffff, int32: -0x80000000, uint32: 0xffffffff,
  int64: -(1n << 63n), uint64: (1n << 64n) - 1n, float32: NaN, float64: NaN,
};

export class SimulatedDevice {
  readonly profile: DeviceProfile;
  private readonly clock: Clock;
  private readonly tickMs: number;
  private readonly random: () => number;
  private readonly byId = new Map<string, PointDef>();
  private readonly writable: Partial<Record<RegisterTable, Map<number, ControlDef>>> = {};
  private image: RegisterImage;
  private readonly pinned = new Set<string>();
  private readonly state = new Map<string, number>(); // random walk / soc state, scaled units
  private readonly revertAt = new Map<string, number>(); // control id -> epoch ms
  private lastTick: number | undefined;
  /** Points that move, derived kinds (soc, sum) after the ones they read; constants are set once. */
  private readonly animated: PointDef[];
  private readonly constants: Readonly<Record<string, number | string>>;

  constructor(source: DeviceProfile, opts: SimulatedDeviceOptions = {}) {
    // A SunSpec profile is served with its marker, model headers and end marker, in its own chain or opts.sunspecLayout.
    const profile = servedProfile(source, opts.sunspecLayout);
    this.profile = profile;
    this.clock = opts.clock ?? systemClock;
    this.tickMs = opts.tickMs ?? 100;
    this.constants = opts.constants ?? {};
    this.random = seededRandom(opts.seed ?? 1);
    for (const p of allPoints(profile)) if (!this.byId.has(p.id)) this.byId.set(p.id, p);
    for (const c of profile.controls) this.markWritable(c, c);
    // Revert timers and enable flags named by a control are written with it.
    for (const c of profile.controls) {
      for (const id of [c.revert_timer?.point, c.enable?.point]) {
        const p = id === undefined ? undefined : this.byId.get(id);
        if (p) this.markWritable(p, c);
      }
    }
    const rank = (p: PointDef): number => (p.simulate?.kind === 'soc' ? 1 : p.simulate?.kind === 'sum' ? 2 : 0);
    this.animated = profile.points
      .filter((p) => p.simulate !== undefined && p.simulate.kind !== 'constant' && p.simulate.kind !== 'ack')
      .sort((a, b) => rank(a) - rank(b));
    this.image = createImage(profile);
    this.reset();
  }

  private markWritable(p: PointDef, owner: ControlDef): void {
    const m = (this.writable[p.table] ??= new Map());
    const start = wireAddress(this.profile, p);
    for (let a = start; a < start + pointWidth(p); a++) if (!m.has(a)) m.set(a, owner);
  }

  /** Reboot: every register back to its initial value; commands and acknowledgements forgotten. */
  reset(): void {
    this.image = createImage(this.profile);
    this.revertAt.clear();
    // Scale factors first: scaled values are encoded with them.
    const ordered = [...allPoints(this.profile)].sort((a, b) => Number(b.role === 'scale_factor') - Number(a.role === 'scale_factor'));
    for (const p of ordered) {
      if (this.pinned.has(p.id)) continue;
      const init = this.initialValue(p);
      if (init !== undefined) this.store(p, init);
    }
    this.lastTick = undefined;
    this.tick();
  }

  private initialValue(p: PointDef): number | string | undefined {
    const b = p.simulate;
    if (b?.kind === 'constant') return Object.hasOwn(this.constants, p.id) ? this.constants[p.id] : b.value;
    if (b?.kind === 'random_walk') return this.state.get(p.id) ?? b.start;
    if (b?.kind === 'soc') return this.state.get(p.id) ?? b.start_pct;
    if (b?.kind === 'ack') return 0;
    if ('min' in p && 'max' in p) {
      const c = p as ControlDef;
      return c.restore === 'min' ? c.min : typeof c.restore === 'number' ? c.restore : c.max;
    }
    return undefined;
  }

  /** Recompute animated points if the last tick is older than tickMs (or `force`). */
  tick(force = false): void {
    const now = this.clock.now();
    if (!force && this.lastTick !== undefined && now - this.lastTick < this.tickMs) return;
    const dt = this.lastTick === undefined ? 0 : now - this.lastTick;
    this.lastTick = now;
    for (const [id, at] of this.revertAt) {
      if (now < at) continue;
      this.revertAt.delete(id);
      // The device forgets the command: the limit and its enable flag go back to their defaults.
      const c = this.byId.get(id) as ControlDef | undefined;
      for (const target of [c, c?.enable ? this.byId.get(c.enable.point) : undefined]) {
        const init = target ? this.initialValue(target) : undefined;
        if (target && init !== undefined) this.store(target, init);
      }
    }
    for (const p of this.animated) {
      if (this.pinned.has(p.id) || !p.simulate) continue;
      const v = this.animate(p, p.simulate, now, dt);
      if (v !== undefined) this.store(p, v);
    }
  }

  private animate(p: PointDef, b: NonNullable<PointDef['simulate']>, now: number, dt: number): number | undefined {
    switch (b.kind) {
      case 'constant': case 'ack': return undefined; // written at reset / on the control's write
      case 'sine': return sineAt(now, b);
      case 'solar': return solarAt(now, b.peak);
      case 'random_walk': {
        const v = dt === 0 ? (this.state.get(p.id) ?? b.start) : walkStep(this.state.get(p.id) ?? b.start, b, this.random);
        this.state.set(p.id, v);
        return v;
      }
      case 'soc': {
        const power = this.numberOf(b.power_point) ?? 0;
        const v = socStep(this.state.get(p.id) ?? b.start_pct, power, dt, b.capacity_kwh);
        this.state.set(p.id, v);
        return v;
      }
      case 'follow_setpoint': {
        const enabled = b.enable === undefined ? true : this.enabled(b.enable, b.setpoint);
        return followSetpoint(b.base, this.numberOf(b.setpoint), enabled);
      }
      case 'sum': return b.points.reduce((s, id) => s + (this.numberOf(id) ?? 0), 0);
    }
  }

  private enabled(enableId: string, setpointId: string): boolean {
    const v = this.numberOf(enableId);
    const sp = this.byId.get(setpointId) as ControlDef | undefined;
    const want = sp?.enable?.point === enableId ? sp.enable.value : undefined;
    return v !== undefined && (want === undefined ? v !== 0 : v === want);
  }

  /** Scaled numeric value of a point as the gateway would decode it now. */
  numberOf(id: string): number | undefined {
    const d = this.get(id);
    if (!d.ok) return undefined;
    return typeof d.value === 'number' ? d.value : typeof d.value === 'boolean' ? Number(d.value) : undefined;
  }

  /** Decode a point from the image, exactly as the gateway's codec does. */
  get(id: string): DecodedValue {
    const p = this.byId.get(id);
    const t = p ? this.image[p.table] : undefined;
    if (!p || !t) return { ok: false, reason: 'malformed' };
    const sf = p.scale_factor === undefined ? undefined : this.numberOf(p.scale_factor);
    return decodePoint(this.profile, p, t.data, wireAddress(this.profile, p) - t.base, sf);
  }

  /** Test hook: pin a point to a scaled value (NaN: the "not implemented" sentinel). */
  set(id: string, value: number | string): void {
    const p = this.point(id);
    this.pinned.add(id);
    this.store(p, value);
  }

  /** Test hook: pin a point to a raw register value (sentinels included). */
  setRaw(id: string, raw: number | bigint | string | boolean): void {
    const p = this.point(id);
    this.pinned.add(id);
    this.put(p, encodeRaw(this.profile, p, raw));
  }

  /** Undo set()/setRaw(): the point animates again. */
  unpin(id: string): void {
    this.pinned.delete(id);
  }

  private point(id: string): PointDef {
    const p = this.byId.get(id);
    if (!p) throw new Error(`simulated ${this.profile.profile}: no point ${JSON.stringify(id)}`);
    return p;
  }

  private store(p: PointDef, value: number | string): void {
    let words: Uint16Array;
    try {
      words = this.encodeValue(p, value);
    } catch (err) {
      // A behaviour outside the type's range (or without its scale factor, or a text for a
      // number) keeps the last value: a profile's simulate block never breaks the server.
      if (err instanceof CodecError) return;
      throw err;
    }
    this.put(p, words);
  }

  private encodeValue(p: PointDef, value: number | string): Uint16Array {
    if (typeof value === 'string') return encodeRaw(this.profile, p, p.type === 'string' ? value : Number(value));
    if (Number.isNaN(value) && isNumericType(p.type)) {
      const spec = p.sentinel;
      const raw = typeof spec === 'object' && spec.values[0] !== undefined ? spec.values[0] : DEFAULT_SENTINEL_RAW[p.type] ?? 0;
      return encodeRaw(this.profile, p, raw);
    }
    const sf = p.scale_factor === undefined ? undefined : this.numberOf(p.scale_factor);
    return encodePoint(this.profile, p, value, sf);
  }

  private put(p: PointDef, words: Uint16Array): void {
    const t = this.image[p.table];
    if (!t) return;
    const at = wireAddress(this.profile, p) - t.base;
    for (let i = 0; i < words.length && at + i < t.data.length; i++) t.data[at + i] = words[i] ?? 0;
  }

  /** Registers (or bits) for a read, or an exception code. Animates lazily first. */
  read(table: RegisterTable, address: number, count: number): Uint16Array | Uint8Array | number {
    const t = inImage(this.image, table, address, count);
    if (!t) return EX_ILLEGAL_ADDRESS;
    this.tick();
    return t.data.subarray(address - t.base, address - t.base + count);
  }

  /**
   * Apply a write (registers, or bits 0/1 for coils), or return exception 2 when any register is
   * not part of a control. Acknowledge registers and revert timers react at once.
   */
  write(table: 'holding' | 'coil', address: number, values: ArrayLike<number>): number {
    const owners = this.writable[table];
    const t = inImage(this.image, table, address, values.length);
    if (!owners || !t) return EX_ILLEGAL_ADDRESS;
    const touched = new Set<ControlDef>();
    for (let i = 0; i < values.length; i++) {
      const owner = owners.get(address + i);
      if (!owner) return EX_ILLEGAL_ADDRESS;
      touched.add(owner);
    }
    for (let i = 0; i < values.length; i++) t.data[address - t.base + i] = values[i] ?? 0;
    for (const c of touched) this.onControlWritten(c);
    return 0;
  }

  private onControlWritten(c: ControlDef): void {
    for (const p of this.profile.points) {
      if (p.simulate?.kind === 'ack' && p.simulate.control === c.id && !this.pinned.has(p.id)) this.store(p, p.simulate.value);
    }
    // SunSpec WMaxLimPct_RvrtTms: writing the limit or its timer (in either order) arms the
    // reversion; a timer of 0 disarms it.
    for (const target of this.profile.controls) {
      const timer = target.revert_timer;
      if (!timer || (target !== c && timer.point !== c.id)) continue;
      const ms = (this.numberOf(timer.point) ?? 0) * (timer.seconds_per_unit ?? 1) * 1000;
      if (ms > 0) this.revertAt.set(target.id, this.clock.now() + ms);
      else this.revertAt.delete(target.id);
    }
    this.tick(true);
  }
}

export function createSimulatedDevice(profile: DeviceProfile, opts: SimulatedDeviceOptions = {}): SimulatedDevice {
  return new SimulatedDevice(profile, opts);
}
