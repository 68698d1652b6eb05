// The device profile model: a register map kept as data in devices/<vendor>-<model>.yaml.
// YAML keys are snake_case and mirror these types one to one. These are the *validated* shapes
// the rest of the gateway works with; src/config/profile-schema.ts is the single source of truth
// that validates raw YAML into them (and generates the JSON Schema in schemas/).

/** Modbus tables. Coils and discrete inputs are single bits; holding and input are 16-bit registers. */
export type RegisterTable = 'holding' | 'input' | 'coil' | 'discrete';

/**
 * Word/byte order of multi-byte values, named by where bytes A (most significant) .. D land:
 * ABCD big-endian (Modbus standard), CDAB word-swapped (common for float32 on BMS/meters),
 * BADC byte-swapped within words, DCBA little-endian. For 64-bit types the same pattern
 * extends over 8 bytes (ABCD = ABCDEFGH, CDAB = GHEFCDAB word-reversed, BADC = BADCFEHG, DCBA = HGFEDCBA).
 */
export type WordOrder = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';

export type PointType =
  | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'float32' | 'float64'
  | 'string'   // `length` registers of two ASCII bytes each, NUL/space padding trimmed
  | 'bool'     // a coil / discrete input, or a register that is 0 (false) / non-zero (true)
  | 'bit';     // one bit (`bit: 0..15`) of a 16-bit register

/** What a point means to the grid state (src/grid). */
export type PointRole =
  | 'generation'        // active power produced (inverter AC power, battery discharge when positive)
  | 'load'              // active power consumed
  | 'battery_power'     // positive = discharge (counts as generation), negative = charge (counts as load)
  | 'grid_import'       // power drawn from the upstream grid
  | 'grid_export'       // power fed to the upstream grid
  | 'frequency'
  | 'state_of_charge'
  | 'voltage'
  | 'current'
  | 'energy'
  | 'temperature'
  | 'status'
  | 'alarm'
  | 'setpoint'
  | 'scale_factor'      // a SunSpec scale-factor register: read with its values, never a metric
  | 'identity'          // model / serial / SunS marker: read at start-up, never a metric
  | 'other';

/** Sentinels: raw values that mean "not implemented" and must never be reported as numbers. */
export type SentinelSpec =
  | 'default'           // per-type SunSpec defaults: int16 0x8000, uint16 0xFFFF, int32 0x80000000,
                        // uint32 0xFFFFFFFF, int64 0x8000..., uint64 0xFFFF..., float NaN, sf -32768
  | 'none'
  | { values: number[] }; // raw (pre-scale) integer values, or NaN for floats

export interface PointDef {
  id: string;                    // snake_case, unique within the profile (points and controls)
  name?: string;                 // the datasheet's name (e.g. SunSpec "W")
  table: RegisterTable;
  address: number;               // as written in the datasheet, in the profile's address_base; for a
                                 // `sunspec` point: its place in the profile's reference chain (filled at load)
  /** A point of a SunSpec model, placed by discovery: block start of `model` on the device + `offset`. */
  sunspec?: SunSpecRef;
  type: PointType;
  length?: number;               // registers, for type string (required there)
  bit?: number;                  // 0..15, for type bit
  order?: WordOrder;             // overrides the profile's default_order
  scale?: number;                // value = raw * scale + offset   (then * 10^sf when scale_factor is set)
  offset?: number;
  scale_factor?: string;         // id of an int16 point holding a SunSpec scale factor (value = raw * 10^sf)
  sentinel?: SentinelSpec;       // default 'default'
  unit?: string;                 // UCUM-ish unit of the *scaled* value: W, kW, MW, V, A, Hz, %, Cel, Wh, kWh
  /** [min, max] of a plausible value (scaled units, from the datasheet); outside: withheld as implausible. */
  valid_range?: [number, number];
  metric?: string;               // the gauge this point feeds, e.g. ems.device.ac_power; omitted: not exported
  role?: PointRole;
  enum?: Record<string, string>; // raw value -> label, for status words
  bits?: Record<string, string>; // bit number -> flag name, for alarm/bit-field words
  description?: string;
  /** How the simulators (simulators/modbus) animate this point; ignored by the gateway. */
  simulate?: SimBehaviour;
}

/** A point named by SunSpec model and offset from the model's ID register (ID = 0, L = 1, first point = 2). */
interface SunSpecRef {
  model: number;
  offset: number;                // filled from the model definition when only `point` is given
  point?: string;                // the SunSpec point name (e.g. "W"), resolved in src/config/sunspec-models.ts
}

/** One model of a profile's reference chain: the layout it was written for (and the simulators serve). */
export interface SunSpecModelRef {
  id: number;
  length: number;                // registers after ID and L, as the device reports in L
  /** Models of the same layout the device may have in its place (e.g. 101, 102 for 103): the first found is used. */
  or?: number[];
}

/** Simulator behaviours, in scaled units of the point. Kept in the profile so one file drives both sides. */
export type SimBehaviour =
  | { kind: 'constant'; value: number | string }
  | { kind: 'sine'; mean: number; amplitude: number; period_s: number }
  | { kind: 'solar'; peak: number }                                  // daily bell curve by wall-clock hour, 0 at night
  | { kind: 'random_walk'; start: number; step: number; min: number; max: number }
  | { kind: 'soc'; start_pct: number; capacity_kwh: number; power_point: string } // integrates a battery_power point (kW, + = discharge)
  | { kind: 'follow_setpoint'; base: number; setpoint: string; enable?: string }  // load = min(base, setpoint) while enabled
  | { kind: 'ack'; control: string; value: number }                  // set to `value` when `control` is written
  | { kind: 'sum'; points: string[] };                               // e.g. total power = sum of phases

export interface VerifySpec {
  point?: string;                // the point to read back; omitted: the control's own register
  equals?: number;               // for an acknowledge/status register: the value that means "accepted"
  tolerance?: number;            // |read - written| <= tolerance (in scaled units); default 0
  delay_ms?: number;             // wait before reading back; default 0
  timeout_ms?: number;           // keep re-reading until this passes; default 2000
}

export interface ControlDef extends PointDef {
  min: number;                   // bounds in scaled units; values outside are rejected, never clamped
  max: number;
  never_write?: number[];        // values that must never reach the device (e.g. 0 % -> inverter standby)
  verify: VerifySpec;
  restore?: number | 'max' | 'min'; // value written when a command ends; default 'max'
  /** Device-side reversion timer (SunSpec WMaxLimPct_RvrtTms): written with every command. */
  revert_timer?: { point: string; seconds_per_unit?: number };
  enable?: { point: string; value: number }; // a control that must be set to `value` for the setpoint to act
  rate_limit_ms?: number;        // minimum time between writes to this control; default 1000
}

export interface DeviceQuirks {
  max_registers_per_request: number; // default 125 (coils/discretes: max_bits_per_request 2000)
  max_gap_registers: number;         // merge reads across gaps of at most this many unused registers; default 0
  request_gap_ms: number;            // pause between two requests to this device; default 0
  connect_delay_ms: number;          // pause after TCP connect before the first request; default 0
  one_request_per_point: boolean;    // default false
  timeout_ms: number;                // per-request timeout; default 1000
  max_connections: number;           // informational: what the device accepts; the gateway uses 1
}

export type DeviceKind = 'inverter' | 'bms' | 'grid_meter' | 'load_controller' | 'other';

export interface DeviceProfile {
  profile: string;               // = file name without .yaml, e.g. sunspec-inverter-3ph
  vendor: string;
  model: string;
  kind: DeviceKind;
  address_base: 0 | 1;           // 1: datasheet address 40001 is wire address 40000
  default_order: WordOrder;      // default ABCD
  quirks: DeviceQuirks;
  points: PointDef[];
  controls: ControlDef[];
  /** For SunSpec devices: where the 'SunS' marker is expected (checked at connect). */
  sunspec_base?: number;
  /**
   * The model chain the profile's `sunspec` points were written for, in order. With it the points
   * are placed per device from the chain found at connect (src/modbus/sunspec-discovery.ts), not
   * at fixed addresses; the addresses filled at load are this chain's, from sunspec_base.
   */
  sunspec_models?: SunSpecModelRef[];
  description?: string;
  /** Absolute path of the YAML file it came from (for messages). */
  source: string;
}

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
