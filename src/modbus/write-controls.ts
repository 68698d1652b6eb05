// Writable-control handles: the only way a value reaches a Modbus write. Each control of a profile
// becomes one handle when the profile is loaded (profile-load.ts); nothing else can make one, so a
// read-only point, a register named in a stored record or an address computed elsewhere can never
// be written. A handle turns an engineering value into a CheckedWrite: encoded by the profile's
// codec, decoded back, and bounds / never_write checked on what the register will really hold
// (after rounding to its scale), failing closed on anything it cannot check. ModbusEndpoint.write
// accepts only a CheckedWrite, and verifies at run time that it was made here.
import type { ControlDef, DeviceProfile, PointDef, WordOrder } from '../config/profile-types.js';
import { wireAddress } from '../config/profile-types.js';
import { CodecError, decodePoint, encodePoint, numericValue } from './codec.js';
import type { WriteRequest } from './types.js';

/** Module-private: the constructors below refuse to run without it. */
const TOKEN: unique symbol = Symbol('write-controls');

/** Float noise allowance for bounds and never_write comparisons (values are in scaled units). */
const EPS = 1e-9;

const WRITABLE_TYPES = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'bool']);

type CheckResult = { ok: true; write: CheckedWrite } | { ok: false; problem: string };

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Why a value may not be written, judged on its own (finite, [min, max], never_write); undefined when it may. */
export function boundsProblem(control: Pick<ControlDef, 'min' | 'max' | 'never_write'>, value: number): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return `value ${String(value)} is not a finite number`;
  if (value < control.min - EPS || value > control.max + EPS) return `value ${value} outside [${control.min}, ${control.max}]`;
  if (control.never_write?.some((v) => Math.abs(v - value) <= EPS)) return `value ${value} is on the never_write list`;
  return undefined;
}

/** One value of one control, encoded and checked: what ModbusEndpoint.write accepts. */
export class CheckedWrite {
  readonly control: WritableControl;
  /** The engineering value asked for. */
  readonly requested: number;
  /** The value the register will hold: the encoding decoded back (after rounding to the register's step). */
  readonly value: number;
  readonly #words: Uint16Array;

  constructor(token: symbol, control: WritableControl, requested: number, value: number, words: Uint16Array) {
    if (token !== TOKEN) throw new TypeError('a CheckedWrite is made only by WritableControl.check()');
    this.control = control;
    this.requested = requested;
    this.value = value;
    this.#words = Uint16Array.from(words);
    Object.freeze(this);
  }

  /** True only for a CheckedWrite made by WritableControl.check() (a copy or a look-alike object is not one). */
  static isGenuine(x: unknown): x is CheckedWrite {
    return typeof x === 'object' && x !== null && #words in x;
  }

  /** The write for one unit id; a fresh copy each time, so the checked words cannot be changed after the check. */
  request(unitId: number): WriteRequest {
    const { table, address } = this.control;
    return table === 'coil'
      ? { unitId, table, address, values: [this.#words[0] !== 0] }
      : { unitId, table, address, values: Uint16Array.from(this.#words) };
  }
}

/** A control of a loaded profile that may be written: register, codec, bounds, never_write, verify, links. */
export class WritableControl {
  readonly id: string;
  readonly profile: string;
  readonly table: 'holding' | 'coil';
  /** Wire address (0-based). */
  readonly address: number;
  /** The control's definition, frozen: min, max, never_write, verify, restore, rate_limit_ms, unit, scale... */
  readonly def: Readonly<ControlDef>;
  /** The SunSpec scale-factor point to read before encoding, when the control has one. */
  readonly scaleFactor: Readonly<PointDef> | undefined;
  /** The point read back after a write: the control itself, or its verify.point. */
  readonly verifyPoint: Readonly<PointDef>;
  readonly enable: { readonly control: WritableControl; readonly value: number } | undefined;
  readonly revertTimer: { readonly control: WritableControl; readonly secondsPerUnit: number } | undefined;
  readonly #order: Pick<DeviceProfile, 'default_order'>;

  constructor(token: symbol, parts: {
    profile: DeviceProfile; def: ControlDef; scaleFactor: PointDef | undefined; verifyPoint: PointDef;
    enable?: { control: WritableControl; value: number }; revertTimer?: { control: WritableControl; secondsPerUnit: number };
  }) {
    if (token !== TOKEN) throw new TypeError('a WritableControl is made only when its profile is loaded (profileControls)');
    const def = deepFreeze(structuredClone(parts.def));
    this.id = def.id;
    this.profile = parts.profile.profile;
    this.table = def.table as 'holding' | 'coil';
    this.address = wireAddress(parts.profile, def);
    this.def = def;
    this.scaleFactor = parts.scaleFactor === undefined ? undefined : deepFreeze(structuredClone(parts.scaleFactor));
    this.verifyPoint = parts.verifyPoint === parts.def ? def : deepFreeze(structuredClone(parts.verifyPoint));
    this.enable = parts.enable === undefined ? undefined : Object.freeze({ ...parts.enable });
    this.revertTimer = parts.revertTimer === undefined ? undefined : Object.freeze({ ...parts.revertTimer });
    this.#order = Object.freeze({ default_order: parts.profile.default_order as WordOrder });
    Object.freeze(this);
  }

  static isGenuine(x: unknown): x is WritableControl {
    return typeof x === 'object' && x !== null && #order in x;
  }

  /** `profile control@address`, for messages. */
  get label(): string {
    return `${this.profile} ${this.id}@${this.address}`;
  }

  /**
   * Encodes `value` (engineering units; `sf` = the device's scale factor when the control has one),
   * decodes the result back and checks what the register would hold. Refuses (never clamps) a
   * value out of bounds or on never_write before or after rounding, a coil/bool value other than
   * 0 or 1, and anything the codec cannot encode or read back.
   */
  check(value: number, sf?: number): CheckResult {
    const before = boundsProblem(this.def, value);
    if (before !== undefined) return { ok: false, problem: before };
    const isBit = this.table === 'coil' || this.def.type === 'bool';
    if (isBit && value !== 0 && value !== 1) return { ok: false, problem: `value ${value} is not 0 or 1 (a ${this.table === 'coil' ? 'coil' : 'bool register'})` };
    let words: Uint16Array;
    try {
      words = encodePoint(this.#order, this.def, value, sf);
    } catch (err) {
      if (err instanceof CodecError) return { ok: false, problem: `${err.code}: ${err.message}` };
      throw err;
    }
    const back = decodePoint(this.#order, this.def, words, 0, sf);
    const wire = numericValue(back);
    if (wire === undefined) {
      return { ok: false, problem: `value ${value} cannot be read back from its encoding (${back.ok ? typeof back.value : back.reason}): refused, as it cannot be checked` };
    }
    const after = boundsProblem(this.def, wire);
    if (after !== undefined) return { ok: false, problem: `after rounding to the register, ${after} (asked ${value})` };
    return { ok: true, write: new CheckedWrite(TOKEN, this, value, wire, words) };
  }
}

/** The writable controls of one profile. */
interface ProfileControls {
  readonly profile: string;
  readonly list: readonly WritableControl[];
  get(id: string): WritableControl | undefined;
}

export class ControlDefinitionError extends Error {
  readonly code = 'EMS_PROFILE_CONTROL';
  /** Each problem with the control and the key it concerns, for file:line:col messages at load. */
  readonly problems: ReadonlyArray<{ control: ControlDef; key: string; message: string }>;
  constructor(profile: string, problems: ReadonlyArray<{ control: ControlDef; key: string; message: string }>) {
    super(`profile ${profile}: ${problems.map((p) => `control ${JSON.stringify(p.control.id)} ${p.key}: ${p.message}`).join('; ')}`);
    this.name = 'ControlDefinitionError';
    this.problems = problems;
  }
}

const built = new WeakMap<DeviceProfile, ProfileControls>();

/**
 * The handles of a profile's controls, built once per profile object (at load, by profile-load.ts; a
 * profile made in code, or loaded by a test without those checks, gets them on first use, e.g. when
 * DR starts). Throws ControlDefinitionError when a control cannot be written safely (table, type,
 * missing references, cycles).
 */
export function profileControls(profile: DeviceProfile): ProfileControls {
  const cached = built.get(profile);
  if (cached) return cached;
  const problems: Array<{ control: ControlDef; key: string; message: string }> = [];
  const defs = new Map(profile.controls.map((c) => [c.id, c]));
  const points = new Map<string, PointDef>([...profile.points, ...profile.controls].map((p) => [p.id, p]));
  const handles = new Map<string, WritableControl>();
  const building = new Set<string>();
  const failed = new Set<string>();

  const build = (def: ControlDef): WritableControl | undefined => {
    const done = handles.get(def.id);
    if (done || failed.has(def.id)) return done;
    if (building.has(def.id)) {
      problems.push({ control: def, key: 'enable', message: 'enable / revert_timer references form a cycle' });
      return undefined;
    }
    building.add(def.id);
    try {
      const before = problems.length;
      if (def.table !== 'holding' && def.table !== 'coil') problems.push({ control: def, key: 'table', message: `table ${def.table} is not writable` });
      if (!WRITABLE_TYPES.has(def.type)) problems.push({ control: def, key: 'type', message: `type ${def.type} cannot be written from a number` });
      if (!(Number.isFinite(def.min) && Number.isFinite(def.max) && def.min <= def.max)) problems.push({ control: def, key: 'min', message: `bounds [${def.min}, ${def.max}] are not a range` });
      const sf = def.scale_factor === undefined ? undefined : points.get(def.scale_factor);
      if (def.scale_factor !== undefined && sf === undefined) problems.push({ control: def, key: 'scale_factor', message: `no point ${JSON.stringify(def.scale_factor)}` });
      const verifyPoint = def.verify.point === undefined ? def : points.get(def.verify.point);
      if (verifyPoint === undefined) problems.push({ control: def, key: 'verify', message: `no point ${JSON.stringify(def.verify.point)} to read back` });
      const link = (key: 'enable' | 'revert_timer', id: string | undefined): WritableControl | undefined => {
        if (id === undefined) return undefined;
        const target = id === def.id ? undefined : defs.get(id);
        if (target === undefined) {
          problems.push({ control: def, key, message: `${JSON.stringify(id)} is not another control of this profile` });
          return undefined;
        }
        return build(target);
      };
      const enable = link('enable', def.enable?.point);
      const timer = link('revert_timer', def.revert_timer?.point);
      if (problems.length > before || verifyPoint === undefined) {
        failed.add(def.id);
        return undefined;
      }
      const handle = new WritableControl(TOKEN, {
        profile, def, scaleFactor: sf, verifyPoint,
        ...(enable && def.enable ? { enable: { control: enable, value: def.enable.value } } : {}),
        ...(timer && def.revert_timer ? { revertTimer: { control: timer, secondsPerUnit: def.revert_timer.seconds_per_unit ?? 1 } } : {}),
      });
      handles.set(def.id, handle);
      return handle;
    } finally {
      building.delete(def.id);
    }
  };

  for (const def of profile.controls) build(def);
  if (problems.length > 0) throw new ControlDefinitionError(profile.profile, problems);
  // Every control is checked above; one at a reference-chain address gets no handle (see unplacedControls).
  const unplaced = unplacedControls(profile, points);
  for (const id of unplaced) handles.delete(id);
  const list = Object.freeze(profile.controls.filter((c) => !unplaced.has(c.id)).map((c) => handles.get(c.id) as WritableControl));
  const controls: ProfileControls = Object.freeze({ profile: profile.profile, list, get: (id: string) => handles.get(id) });
  built.set(profile, controls);
  return controls;
}

/**
 * The controls of a profile that have no handle: a `sunspec` control still at its address in the
 * profile's reference chain (the profile as loaded; the device's own addresses are known only once
 * its chain is found, and the profile placed on it, src/modbus/sunspec-layout.ts, has no `sunspec`
 * point left), and a control that reads its scale factor or read-back point there or drives such a
 * control as its enable or revert timer. A write at a reference address would land on another
 * register of a device whose chain differs.
 */
function unplacedControls(profile: DeviceProfile, points: ReadonlyMap<string, PointDef>): Set<string> {
  const atReference = (id: string | undefined): boolean => id !== undefined && points.get(id)?.sunspec !== undefined;
  const out = new Set(profile.controls.filter((c) => c.sunspec !== undefined || atReference(c.scale_factor) || atReference(c.verify.point)).map((c) => c.id));
  for (let changed = out.size > 0; changed;) {
    changed = false;
    for (const c of profile.controls) {
      if (out.has(c.id)) continue;
      if ((c.enable !== undefined && out.has(c.enable.point)) || (c.revert_timer !== undefined && out.has(c.revert_timer.point))) {
        out.add(c.id);
        changed = true;
      }
    }
  }
  return out;
}
