// The device profile model: a register map kept as data in devices/<vendor>-<model>.yaml.
// YAML keys are snake_case and mirror these types one to one. These are the *validated* shapes
// the rest of the gateway works with, inferred from src/config/profile-schema.ts (the single
// source of truth that validates raw YAML into them and generates the JSON Schema in schemas/):
// a key is added to the schema, never here; here are only the values the loader fills in after
// checking (`source`, `profile`, a SunSpec point's `address` and `offset`).

import type { profileSchema } from './profile-schema.js';
import type { Infer } from './schema-dsl.js';
import type { Omissible } from './schema-object.js';

/** What the profile schema yields; the loader adds `source` and sets `profile` to the file name. */
type ParsedProfile = Infer<typeof profileSchema>;
type ParsedPoint = ParsedProfile['points'][number];
type ParsedControl = ParsedProfile['controls'][number];

/** Modbus tables. Coils and discrete inputs are single bits; holding and input are 16-bit registers. */
export type RegisterTable = ParsedPoint['table'];

/**
 * Word/byte order of multi-byte values, named by where bytes A (most significant) .. D land:
 * ABCD big-endian (Modbus standard), CDAB word-swapped (common for float32 on BMS/meters),
 * BADC byte-swapped within words, DCBA little-endian. For 64-bit types the same pattern
 * extends over 8 bytes (ABCD = ABCDEFGH, CDAB = GHEFCDAB word-reversed, BADC = BADCFEHG, DCBA = HGFEDCBA).
 */
export type WordOrder = ParsedProfile['default_order'];

/**
 * How the raw registers decode: int16 .. float64; `string`: `length` registers of two ASCII bytes
 * each, NUL/space padding trimmed; `bool`: a coil / discrete input, or a register that is 0 (false)
 * / non-zero (true); `bit`: one bit (`bit: 0..15`) of a 16-bit register.
 */
export type PointType = ParsedPoint['type'];

/**
 * What a point means to the grid state (src/grid): generation (active power produced; battery
 * discharge when positive), load (consumed), battery_power (+ = discharge counts as generation,
 * - = charge as load), grid_import / grid_export (drawn from / fed to the upstream grid), ...;
 * scale_factor (a SunSpec scale-factor register: read with its values, never a metric) and
 * identity (model / serial / SunS marker: read at start-up, never a metric).
 */
export type PointRole = NonNullable<ParsedPoint['role']>;

/**
 * Sentinels: raw values that mean "not implemented" and must never be reported as numbers.
 * 'default': the per-type SunSpec values (int16 0x8000, uint16 0xFFFF, int32 0x80000000, uint32
 * 0xFFFFFFFF, int64 0x8000..., uint64 0xFFFF..., float NaN, sf -32768); or raw (pre-scale) values.
 */
export type SentinelSpec = ParsedPoint['sentinel'];

/** Simulator behaviours (simulators/modbus), in scaled units of the point; ignored by the gateway. */
export type SimBehaviour = NonNullable<ParsedPoint['simulate']>;

/**
 * A point named by SunSpec model and offset from the model's ID register (ID = 0, L = 1, first
 * point = 2), or by SunSpec point name (resolved in src/config/sunspec-models.ts): the loader fills
 * `offset` from the model definition when only `point` is given.
 */
type SunSpecRef = Omit<NonNullable<ParsedPoint['sunspec']>, 'offset'> & { offset: number };

/**
 * What the loader fills in after checking (src/config/profile-sunspec.ts), where the schema has it
 * optional: `address` is as written in the datasheet, in the profile's address_base; for a
 * `sunspec` point (which gives no `address`) it is its place in the profile's reference chain
 * (`sunspec_models` from `sunspec_base`), filled at load. The gateway does not poll there: it
 * places such points per device, at the block start of `model` in the chain found at connect
 * (src/modbus/sunspec-discovery.ts) + `offset`.
 */
type Placed<P extends { address?: number; sunspec?: object }> = Omit<P, 'address' | 'sunspec'> & { address: number; sunspec?: SunSpecRef };

/** A point as the schema yields it, before its `sunspec` place is filled in. */
export type UnplacedPoint = Omissible<ParsedPoint, 'sentinel'>;

/** A register (or bit) read every poll; `sentinel` ('default') may be left out in code. */
export type PointDef = Placed<UnplacedPoint>;

/** One model of a profile's reference chain: the layout it was written for (and the simulators serve). */
export type SunSpecModelRef = NonNullable<ParsedProfile['sunspec_models']>[number];

/** Read-back check after a write; its defaults may be left out in code. */
type VerifySpec = Partial<ParsedControl['verify']>;

/** A control as the schema yields it (defaulted keys may be left out in code), before it is placed. */
type UnplacedControl = Omissible<Omit<ParsedControl, 'verify'>, 'sentinel' | 'restore' | 'rate_limit_ms'> & { verify: VerifySpec };

/** A writable point; its defaulted keys may be left out in code. */
export type ControlDef = Placed<UnplacedControl>;

export type DeviceQuirks = ParsedProfile['quirks'];

/** A validated profile: `profile` is the file name without .yaml, `source` the file's absolute path. */
export type DeviceProfile = Omit<ParsedProfile, 'profile' | 'points' | 'controls'> & {
  profile: string;
  points: PointDef[];
  controls: ControlDef[];
  /** Absolute path of the YAML file it came from (for messages). */
  source: string;
};

/** A profile before its `sunspec` points are placed (what the schema and the lenient pass yield). */
export type UnplacedProfile = Omit<DeviceProfile, 'points' | 'controls'> & { points: UnplacedPoint[]; controls: UnplacedControl[] };

/** Wire address of a point (0-based, as it goes in the PDU). */
export function wireAddress(profile: Pick<DeviceProfile, 'address_base'>, point: Pick<PointDef, 'address'>): number {
  return point.address - profile.address_base;
}

/** Registers (or bits, for coil/discrete) a point occupies. */
export function pointWidth(point: Pick<PointDef, 'type' | 'length' | 'table'>): number {
  if (point.table === 'coil' || point.table === 'discrete') return 1;
  switch (point.type) {
    case 'int16': case 'uint16': case 'bool': case 'bit': return 1;
    case 'int32': case 'uint32': case 'float32': return 2;
    case 'int64': case 'uint64': case 'float64': return 4;
    case 'string': return point.length ?? 1;
  }
}
