// The device profile schema (devices/<vendor>-<model>.yaml): the single source of truth that
// validates profile YAML into DeviceProfile (profile-types.ts) and generates
// schemas/device-profile.schema.json. Cross-point checks live in profile-checks.ts.
import { alt, arr, bool, duration, num, oneOf, str, type Schema } from './schema-dsl.js';
import { fields, obj, record, tagged } from './schema-object.js';

const ID_PATTERN = '^[a-z][a-z0-9_]*$';
export const PROFILE_NAME_PATTERN = '^[a-z0-9]+(-[a-z0-9]+)*$';
const METRIC_PATTERN = '^ems\\.[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$';

const TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const;
const POINT_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string', 'bool', 'bit'] as const;
const ROLES = ['generation', 'load', 'battery_power', 'grid_import', 'grid_export', 'frequency', 'state_of_charge',
  'voltage', 'current', 'energy', 'temperature', 'status', 'alarm', 'setpoint', 'scale_factor', 'identity', 'other'] as const;
const KINDS = ['inverter', 'bms', 'grid_meter', 'load_controller', 'other'] as const;
/** Units of scaled values (UCUM-ish); a closed list so `Kw` or `hz` is caught. */
const UNITS = ['W', 'kW', 'MW', 'VA', 'kVA', 'var', 'kvar', 'Wh', 'kWh', 'MWh', 'V', 'kV', 'A', 'Hz', '%', 'Cel',
  's', 'ms', 'h', '1'] as const;

const idRef = (doc: string): Schema<string> => str({ pattern: ID_PATTERN, patternHint: 'a snake_case point id', doc });

const sentinel = alt([
  oneOf(['default', 'none'] as const),
  obj({ values: { s: arr(num(), { minItems: 1 }), required: true, doc: 'raw (pre-scale) values that mean "not implemented"' } }),
], '"default", "none" or { values: [...] }', 'Raw values that mean "not implemented" (never reported as numbers). default: the SunSpec per-type sentinels.');

const simulate = tagged('kind', {
  constant: { value: { s: alt([num(), str()], 'a number or a string'), required: true } },
  sine: { mean: { s: num(), required: true }, amplitude: { s: num(), required: true }, period_s: { s: num({ exclusiveMin: 0 }), required: true } },
  solar: { peak: { s: num({ min: 0 }), required: true, doc: 'value at solar noon; 0 at night' } },
  random_walk: { start: { s: num(), required: true }, step: { s: num({ min: 0 }), required: true }, min: { s: num(), required: true }, max: { s: num(), required: true } },
  soc: { start_pct: { s: num({ min: 0, max: 100 }), required: true }, capacity_kwh: { s: num({ exclusiveMin: 0 }), required: true },
    power_point: { s: idRef('battery_power point integrated (kW, + = discharge)'), required: true } },
  follow_setpoint: { base: { s: num(), required: true }, setpoint: { s: idRef('control whose value caps the load'), required: true },
    enable: { s: idRef('control that must be non-zero for the setpoint to act') } },
  ack: { control: { s: idRef('the control whose write is acknowledged'), required: true }, value: { s: num(), required: true } },
  sum: { points: { s: arr(idRef('a point'), { minItems: 1 }), required: true } },
}, 'How the simulators animate this point (ignored by the gateway).');

const sunspecRef = obj({
  model: { s: num({ int: true, min: 1, max: 65534 }), required: true, doc: 'SunSpec model id (e.g. 103)' },
  offset: { s: num({ int: true, min: 2, max: 65535 }), doc: "registers from the model's ID register (ID = 0, L = 1, first point = 2)" },
  point: { s: str({ minLength: 1 }), doc: 'SunSpec point name (e.g. W), for the models the gateway knows (docs/device-profiles.md)' },
}, { doc: 'Where the point is within a SunSpec model; the model is found on the device at connect.' });

const sunspecModelRef = obj({
  id: { s: num({ int: true, min: 1, max: 65534 }), required: true, doc: 'model id' },
  length: { s: num({ int: true, min: 0, max: 65535 }), required: true, doc: 'registers after ID and L (the L register)' },
  or: { s: arr(num({ int: true, min: 1, max: 65534 }), { minItems: 1 }), doc: 'models of the same layout the device may have instead (e.g. [101, 102] for 103)' },
}, { doc: 'One model of the chain the profile was written for.' });

const pointFields = fields({
  id: { s: idRef('unique within the profile (points and controls)'), required: true },
  name: { s: str(), doc: "the datasheet's name, e.g. SunSpec \"W\"" },
  table: { s: oneOf(TABLES), required: true, doc: 'holding/input registers (16 bit), coil/discrete (1 bit)' },
  address: { s: num({ int: true, min: 0, max: 65536 }), required: true, requiredUnless: { key: 'sunspec' }, doc: "as in the datasheet, in the profile's address_base (65536 only with address_base 1); not with `sunspec`" },
  sunspec: { s: sunspecRef, doc: 'a SunSpec model point, placed by discovery: { model, offset } or { model, point }' },
  type: { s: oneOf(POINT_TYPES), required: true, doc: 'how the raw registers decode' },
  length: { s: num({ int: true, min: 1, max: 125 }), doc: 'registers, for type string' },
  bit: { s: num({ int: true, min: 0, max: 15 }), doc: 'for type bit' },
  order: { s: oneOf(ORDERS), doc: "word/byte order; default: the profile's default_order" },
  scale: { s: num(), doc: 'value = raw * scale + offset' },
  offset: { s: num(), doc: 'added after scale' },
  scale_factor: { s: idRef('id of an int16 point holding a SunSpec scale factor (value * 10^sf)') },
  sentinel: { s: sentinel, default: 'default' },
  unit: { s: oneOf(UNITS), doc: 'unit of the scaled value' },
  valid_range: { s: arr(num(), { minItems: 2, maxItems: 2 }), doc: '[min, max] a real value lies in (scaled units, from the datasheet); outside: not exported, counted as implausible' },
  metric: { s: str({ pattern: METRIC_PATTERN, patternHint: 'a metric name like "ems.device.ac_power"' }), doc: 'the gauge this point feeds; omitted: not exported' },
  role: { s: oneOf(ROLES), doc: 'what the point means to the grid state' },
  enum: { s: record(str(), { keyPattern: '^-?[0-9]+$', keyHint: 'an integer raw value' }), doc: 'raw value -> label' },
  bits: { s: record(str(), { keyPattern: '^[0-9]+$', keyHint: 'a bit number' }), doc: 'bit number -> flag name' },
  description: { s: str(), doc: 'free text' },
  simulate: { s: simulate },
});

const verify = obj({
  point: { s: idRef('point to read back; omitted: the control itself') },
  equals: { s: num(), doc: 'for an acknowledge/status register: the value that means accepted' },
  tolerance: { s: num({ min: 0 }), default: 0, doc: '|read - written| allowed, scaled units' },
  delay: { s: duration(), default: 0, doc: 'wait before reading back' },
  timeout: { s: duration({ min_ms: 1 }), default: 2000, doc: 'keep re-reading until this passes' },
}, { doc: 'Read-back check after a write.' });

const controlFields = fields({
  ...pointFields,
  min: { s: num(), required: true, why: 'a control needs bounds (values outside [min, max] are rejected)', doc: 'lowest value accepted, scaled units (out of bounds is rejected, never clamped)' },
  max: { s: num(), required: true, why: 'a control needs bounds (values outside [min, max] are rejected)', doc: 'highest value accepted, scaled units' },
  never_write: { s: arr(num()), doc: 'values that must never reach the device' },
  verify: { s: verify, defaults: true },
  restore: { s: alt([num(), oneOf(['max', 'min'] as const)], 'a number, "max" or "min"'), default: 'max', doc: 'written when a command ends' },
  revert_timer: { s: obj({ point: { s: idRef('control holding the timer'), required: true }, seconds_per_unit: { s: num({ exclusiveMin: 0 }), doc: 'timer register resolution; default 1' } }),
    doc: 'device-side reversion timer written with every command (SunSpec WMaxLimPct_RvrtTms)' },
  enable: { s: obj({ point: { s: idRef('control to set'), required: true }, value: { s: num(), required: true, doc: 'the value that enables' } }),
    doc: 'a control that must hold `value` for the setpoint to act' },
  rate_limit: { s: duration(), default: 1000, doc: 'minimum time between writes' },
});

const quirks = obj({
  max_registers_per_request: { s: num({ int: true, min: 1, max: 125 }), default: 125, doc: 'fewer than 125 for devices that refuse large reads' },
  max_gap_registers: { s: num({ int: true, min: 0, max: 124 }), default: 0, doc: 'merge reads across gaps of at most this many unused registers' },
  request_gap: { s: duration(), default: 0, doc: 'pause between two requests to this device' },
  connect_delay: { s: duration(), default: 0, doc: 'pause after TCP connect before the first request' },
  one_request_per_point: { s: bool(), default: false, doc: 'never merge points into one read' },
  timeout: { s: duration({ min_ms: 1 }), default: 1000, doc: 'per-request timeout' },
  max_connections: { s: num({ int: true, min: 1 }), default: 1, doc: 'informational: what the device accepts; the gateway uses 1' },
}, { doc: 'Device quirks: per-profile settings, not code.' });

export const profileSchema = obj({
  profile: { s: str({ pattern: PROFILE_NAME_PATTERN, patternHint: 'a kebab-case name' }), doc: 'must equal the file name without .yaml (default)' },
  vendor: { s: str({ minLength: 1 }), required: true, doc: 'manufacturer' },
  model: { s: str({ minLength: 1 }), required: true, doc: 'model or family the map fits' },
  kind: { s: oneOf(KINDS), required: true, doc: 'what the device is; load_controller devices take DR commands' },
  address_base: { s: oneOf([0, 1] as const), required: true, doc: '1: datasheet address 40001 is wire address 40000' },
  default_order: { s: oneOf(ORDERS), default: 'ABCD', doc: 'word/byte order of multi-register points unless a point says otherwise' },
  sunspec_base: { s: num({ int: true, min: 0, max: 65535 }), doc: "where the 'SunS' marker is expected (40000, 0 or 50000)" },
  sunspec_models: { s: arr(sunspecModelRef, { minItems: 1 }), doc: 'the model chain the `sunspec` points were written for; with it, points are placed by discovery at connect' },
  description: { s: str(), doc: 'free text' },
  quirks: { s: quirks, defaults: true },
  points: { s: arr(obj(pointFields, { doc: 'A register (or bit) read every poll.' }), { minItems: 1 }), required: true, doc: 'what is read' },
  controls: { s: arr(obj(controlFields, { doc: 'A writable point.' })), default: [], doc: 'what may be written (demand response)' },
}, { doc: 'EMS gateway device profile: a register map as data.' });
