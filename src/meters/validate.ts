// Payload parsing and per-reading validation: pure functions, no state. Every way a payload can be
// wrong maps to exactly one error_type, which becomes the `error_type` attribute of
// ems.meter.readings_dropped. Stateful checks (duplicate, kwh decreasing) live in meter-state.ts.
import { regionFromTopic } from '../mqtt/topics.js';
import type { OpenRegions } from './open-regions.js';
import { ReadingPool } from './reading-pool.js';
import { NUM_TIMESTAMP, NUM_VALUES, PayloadScanner, type MeterIdIndex, type ScannedReading } from './payload-scan.js';
import type { ValidReading } from './types.js';

/** Every reason a reading is dropped. Stable: dashboards and alerts group by these. */
export const METER_ERROR_TYPES = [
  'payload_too_large', // the MQTT payload is larger than max_payload_bytes (counted once, not parsed)
  'malformed_json',    // not valid JSON (also invalid UTF-8 that breaks JSON)
  'not_object',        // JSON, but the payload (or an array element) is not an object
  'empty_batch',       // an empty array: nothing to ingest, counted so the publisher's bug is visible
  'missing_field',     // a required field is absent or null
  'wrong_type',        // a field has the wrong JSON type (e.g. kwh as a string)
  'invalid_meter_id',  // meter_id empty, longer than 128 characters or with control characters
  'non_finite',        // a number overflowed to Infinity (e.g. 1e400)
  'out_of_range',      // voltage, current, power, kwh or power_factor outside its physical range
  'invalid_timestamp', // a timestamp string that is not RFC 3339, or a number <= 0 / beyond year 9999
  'future_timestamp',  // timestamp later than now + future_skew_ms
  'unknown_region',    // the region is not one of the site's regions (or not a plain name)
  'duplicate',         // same meter_id and timestamp as a reading accepted within dedupe_window_ms
  'kwh_decreasing',    // kwh lower than the meter's latest reading with an earlier timestamp
  'spool_evicted',     // evicted from a full delivery spool (policy drop_oldest) before every sink had it
] as const;
export type MeterErrorType = (typeof METER_ERROR_TYPES)[number];

/** Physical bounds; outside them a value is a publisher fault, not a measurement. */
const RANGES = {
  voltage: [0, 1_000_000],          // V
  current: [-100_000, 100_000],     // A (sign = direction for meters that report it that way)
  power_factor: [-1, 1],
  kwh: [0, 1e12],                   // kWh register, never negative
  power_w: [-1e10, 1e10],           // W
} as const satisfies Record<string, readonly [number, number]>;

/**
 * Numbers below this are epoch seconds, at or above it epoch milliseconds. 1e11 s is the year 5138
 * and 1e11 ms is March 1973: no real meter clock sits on the wrong side of either.
 */
const EPOCH_MS_THRESHOLD = 1e11;
const MAX_TIMESTAMP_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const REGION_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
export const UNKNOWN_REGION = 'unknown';

export interface Rejection {
  error_type: MeterErrorType;
  /** A known region (payload or topic) or `unknown`: safe as a metric attribute. */
  region: string;
  meter_id?: string;
  /**
   * What was wrong, quoting the field: for the rate-limited log line and the sampled reading span.
   * Built only when one of them uses it (a function then), so a flood of bad readings costs no
   * string formatting (describeRejection).
   */
  detail: string | (() => string);
}

/** A rejection of one message's reading, with the monotonic ms its message arrived. */
export interface DroppedReading extends Rejection {
  arrived_at: number;
}

/** The rejection's detail text (built now when it was deferred). */
export function describeRejection(r: Pick<Rejection, 'detail'>): string {
  return typeof r.detail === 'string' ? r.detail : r.detail();
}

export interface ValidationContext {
  /** Known regions; empty = any plain region name is accepted (up to `openRegions`' limit). */
  regions: ReadonlySet<string>;
  /** With `regions` empty: the distinct names admitted so far, bounded (open-regions.ts). */
  openRegions?: OpenRegions;
  regionTopicLevel: number | undefined;
  maxPayloadBytes: number;
  futureSkewMs: number;
  /** The meters known so far (the ingest's slot table): ids read from payload bytes are looked up there (MeterIdIndex). */
  meterIds?: MeterIdIndex;
  /** Where the records of valid readings come from (reused ones: reading-pool.ts); else each is new. */
  readingPool?: ReadingPool;
}

/** The records of a context without a pool: nothing is ever given back to it, so each is new. */
const FRESH_READINGS = new ReadingPool();

export interface ParseResult {
  readings: ValidReading[];
  rejections: DroppedReading[];
  /**
   * When set, one entry per reading: its meter's slot in `ctx.meterIds` when the id was found
   * there, else -1. A hint only (MeterStateTable.accept checks it).
   */
  slots?: number[];
}

function knownRegion(ctx: ValidationContext, region: unknown): string | undefined {
  if (typeof region !== 'string') return undefined;
  if (ctx.regions.size > 0) return ctx.regions.has(region) ? region : undefined;
  return REGION_NAME.test(region) && (ctx.openRegions?.admit(region) ?? true) ? region : undefined;
}

/** Parses a timestamp to epoch ms, or returns the error type. */
export function parseTimestamp(value: unknown): number | MeterErrorType {
  if (typeof value === 'number') return epochMs(value);
  if (typeof value === 'string') {
    if (!RFC3339.test(value)) return 'invalid_timestamp';
    const ms = Date.parse(value.includes(' ') ? value.replace(' ', 'T') : value);
    return Number.isFinite(ms) && ms > 0 ? ms : 'invalid_timestamp';
  }
  return value === undefined || value === null ? 'missing_field' : 'wrong_type';
}

/** A numeric timestamp (epoch s or ms) to epoch ms, or the error type. */
function epochMs(value: number): number | MeterErrorType {
  if (!Number.isFinite(value)) return 'non_finite';
  if (value <= 0) return 'invalid_timestamp';
  const ms = value < EPOCH_MS_THRESHOLD ? value * 1000 : value;
  return ms > MAX_TIMESTAMP_MS ? 'invalid_timestamp' : ms;
}

type NumberField = 'kwh' | 'voltage' | 'current' | 'power_factor';
const NUMBER_FIELDS: readonly NumberField[] = ['kwh', 'voltage', 'current', 'power_factor'];

function checkNumber(obj: Record<string, unknown>, field: keyof typeof RANGES, label: string = field): number | [MeterErrorType, () => string] {
  const v = obj[field];
  if (v === undefined || v === null) return ['missing_field', fixedDetail(`${label} is missing`)];
  if (typeof v !== 'number') return ['wrong_type', echoDetail(label, ' is ', v, ', not a number')];
  if (!Number.isFinite(v)) return ['non_finite', fixedDetail(`${label} is not finite`)];
  const [lo, hi] = RANGES[field];
  if (v < lo || v > hi) return ['out_of_range', rangeDetail(label, v, lo, hi)];
  return v;
}

// The deferred details below are built in functions of their own, whose closures capture nothing but
// their bounded arguments: a closure keeps its whole scope alive in V8, and a rejection can wait
// behind the spool's backpressure holding a parsed payload of up to max_payload_bytes.
function fixedDetail(text: string): () => string { return () => text; }
function rangeDetail(label: string, v: number, lo: number, hi: number): () => string { return () => `${label} ${v} outside [${lo}, ${hi}]`; }
function futureDetail(ts: number, skewMs: number): () => string { return () => `timestamp ${new Date(ts).toISOString()} is ahead of now by more than ${skewMs} ms`; }
function regionDetail(rawRegion: string, pastLimit: boolean): () => string {
  const shown = detached(rawRegion.slice(0, 80));
  return pastLimit
    ? () => `region ${JSON.stringify(shown)} is past the limit of distinct regions (mqtt.meters.regions unset)`
    : () => `region ${JSON.stringify(shown)} is not a site region`;
}

/** A deferred `${label}${middle}${echo(v)}${after}` that keeps of `v` only a bounded copy (a short string or number as is, else its echo). */
function echoDetail(label: string, middle: string, v: unknown, after: string): () => string {
  // `v` itself is never captured (a closure here referring to it would keep it for them all).
  const kept = v === undefined || v === null || typeof v === 'number' || typeof v === 'boolean' ? v
    : typeof v === 'string' && v.length <= ECHO_MAX_CHARS ? detached(v) : undefined;
  const echoed = kept === undefined && v !== undefined ? detached(echo(v)) : undefined;
  return () => `${label}${middle}${echoed ?? echo(kept)}${after}`;
}

/**
 * A copy of a (short) string that shares no memory with its source: a slice of a string is, in V8,
 * a view that keeps the whole parent alive. The UTF-16 round trip is lossless (lone surrogates too).
 */
function detached(s: string): string {
  return Buffer.from(s, 'utf16le').toString('utf16le');
}

const [KWH_LO, KWH_HI] = RANGES.kwh;
const [V_LO, V_HI] = RANGES.voltage;
const [I_LO, I_HI] = RANGES.current;
const [PF_LO, PF_HI] = RANGES.power_factor;

/**
 * Validates one decoded reading object. The common case (a well-formed reading without a power
 * field) is checked without allocating (acceptFields); anything else goes to diagnoseReading, which
 * names the exact reason.
 */
export function validateReading(
  value: unknown, topicRegion: string | undefined, ctx: ValidationContext, nowMs: number, arrivedAt: number,
): ValidReading | DroppedReading {
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    const mid = o['meter_id'];
    const kwh = o['kwh'];
    const v = o['voltage'];
    const c = o['current'];
    const pf = o['power_factor'];
    if (typeof mid === 'string' && typeof kwh === 'number' && typeof v === 'number' && typeof c === 'number' && typeof pf === 'number'
      && o['power_w'] === undefined && o['power'] === undefined) {
      const ts = parseTimestamp(o['timestamp']);
      const ok = acceptFields(mid, kwh, v, c, pf, o['region'] ?? topicRegion, typeof ts === 'number' ? ts : NaN, ctx, nowMs, arrivedAt);
      if (ok !== undefined) return ok;
    }
  }
  return diagnoseReading(value, topicRegion, ctx, nowMs, arrivedAt);
}

/**
 * The fast path of validation, for a reading whose meter_id is a string, whose four values are
 * numbers and which has no power field: the reading when every other check passes, else undefined
 * (then diagnoseReading decides). `ts`: the parsed timestamp, NaN when it is not valid.
 * Comparisons are false for NaN and the range bounds exclude +-Infinity, so this accepts exactly
 * what diagnoseReading accepts, provided that `printableId` (skip the control-character check)
 * is only passed for an id known to hold printable ASCII only: one payload-scan.ts read.
 */
function acceptFields(
  mid: string, kwh: number, v: number, c: number, pf: number, rawRegion: unknown, ts: number,
  ctx: ValidationContext, nowMs: number, arrivedAt: number, printableId = false,
): ValidReading | undefined {
  if (mid.length > 0 && mid.length <= 128
    && kwh >= KWH_LO && kwh <= KWH_HI && v >= V_LO && v <= V_HI && c >= I_LO && c <= I_HI && pf >= PF_LO && pf <= PF_HI
    && ts <= nowMs + ctx.futureSkewMs && (printableId || !CONTROL_CHARS.test(mid))) {
    const region = knownRegion(ctx, rawRegion);
    if (region !== undefined) return (ctx.readingPool ?? FRESH_READINGS).take(mid, region, ts, kwh, v, c, pf, v * c * pf, arrivedAt);
  }
  return undefined;
}

/** The timestamp of a scanned reading as epoch ms, NaN when it is not a valid one (parseTimestamp's verdicts). */
function scannedTimestamp(r: ScannedReading): number {
  let t: number | MeterErrorType;
  if ((r.numbers & NUM_TIMESTAMP) !== 0) t = epochMs(r.tsN);
  else if (!Number.isNaN(r.tsMs)) return r.tsMs > 0 ? r.tsMs : NaN; // a string's Date.parse result counts when > 0
  else t = parseTimestamp(r.timestamp);
  return typeof t === 'number' ? t : NaN;
}

/** The slow path of validateReading: the first failing check, in a fixed order, as a Rejection. */
export function diagnoseReading(
  value: unknown, topicRegion: string | undefined, ctx: ValidationContext, nowMs: number, arrivedAt: number,
): ValidReading | DroppedReading {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error_type: 'not_object', region: knownRegion(ctx, topicRegion) ?? UNKNOWN_REGION, detail: 'reading is not a JSON object', arrived_at: arrivedAt };
  }
  const obj = value as Record<string, unknown>;
  // Region first: every later rejection is attributed to it when it is a known one.
  const rawRegion = obj['region'] ?? topicRegion;
  const region = knownRegion(ctx, rawRegion);
  const attrRegion = region ?? knownRegion(ctx, topicRegion) ?? UNKNOWN_REGION;
  const mid = obj['meter_id'];
  const meterId = typeof mid === 'string' ? mid : undefined;
  const reject = (error_type: MeterErrorType, detail: string | (() => string)): DroppedReading =>
    meterId !== undefined
      ? { error_type, region: attrRegion, meter_id: detached(clip(meterId)), detail, arrived_at: arrivedAt }
      : { error_type, region: attrRegion, detail, arrived_at: arrivedAt };

  if (mid === undefined || mid === null) return reject('missing_field', 'meter_id is missing');
  if (meterId === undefined) return reject('wrong_type', echoDetail('meter_id', ' is ', mid, ', not a string'));
  if (meterId.length === 0 || meterId.length > 128 || CONTROL_CHARS.test(meterId)) {
    return reject('invalid_meter_id', echoDetail('meter_id', ' ', meterId, ' is empty, too long or has control characters'));
  }
  const ts = parseTimestamp(obj['timestamp']);
  if (typeof ts === 'string') return reject(ts, echoDetail('timestamp', ' ', obj['timestamp'], `: ${ts}`));
  const nums: Record<NumberField, number> = { kwh: 0, voltage: 0, current: 0, power_factor: 0 };
  for (const f of NUMBER_FIELDS) {
    const r = checkNumber(obj, f);
    if (typeof r !== 'number') return reject(r[0], r[1]);
    nums[f] = r;
  }
  let power = nums.voltage * nums.current * nums.power_factor;
  const powerField = obj['power_w'] !== undefined ? 'power_w' : obj['power'] !== undefined ? 'power' : undefined;
  if (powerField !== undefined && obj[powerField] !== null) {
    const r = checkNumber({ power_w: obj[powerField] }, 'power_w', powerField);
    if (typeof r !== 'number') return reject(r[0], r[1]);
    power = r;
  }
  if (rawRegion === undefined || rawRegion === null) return reject('missing_field', 'region is missing (payload and topic)');
  if (typeof rawRegion !== 'string') return reject('wrong_type', echoDetail('region', ' is ', rawRegion, ', not a string'));
  if (region === undefined) return reject('unknown_region', regionDetail(rawRegion, ctx.regions.size === 0 && REGION_NAME.test(rawRegion)));
  if (ts > nowMs + ctx.futureSkewMs) return reject('future_timestamp', futureDetail(ts, ctx.futureSkewMs));
  return {
    meter_id: meterId, region, timestamp_ms: ts, kwh: nums.kwh, voltage: nums.voltage, current: nums.current,
    power_factor: nums.power_factor, power_w: power, arrived_at: arrivedAt,
  };
}

/** Longest piece of an untrusted value echoed into a log line or span attribute. */
const ECHO_MAX_CHARS = 128;

/** A string cut to ECHO_MAX_CHARS, saying how long it was: a 600,000-character id is no 600 KB log line. */
function clip(s: string): string {
  return s.length <= ECHO_MAX_CHARS ? s : `${s.slice(0, ECHO_MAX_CHARS)}…(${s.length} chars)`;
}

/** An untrusted value as JSON for a message, cut like clip(). */
function echo(v: unknown): string {
  return clip(JSON.stringify(v) ?? String(v));
}

/** Scratch for parsePayload's fast path (synchronous, so one is enough). */
const scanner = new PayloadScanner();

/**
 * Parses one MQTT payload (one reading or an array of readings) into readings and rejections.
 * Payloads in the plain subset payload-scan.ts reads are read from their bytes; the others go
 * through JSON.parse: both reach the same verdicts.
 */
export function parsePayload(
  payload: Buffer, topic: string, ctx: ValidationContext, nowMs: number, arrivedAt: number, out: ParseResult,
): void {
  const topicRegionRaw = regionFromTopic(topic, ctx.regionTopicLevel);
  const topicRegion = knownRegion(ctx, topicRegionRaw);
  if (payload.length > ctx.maxPayloadBytes) {
    const bytes = payload.length;
    out.rejections.push({ error_type: 'payload_too_large', region: topicRegion ?? UNKNOWN_REGION, detail: () => `payload of ${bytes} bytes exceeds ${ctx.maxPayloadBytes}`, arrived_at: arrivedAt });
    return;
  }
  // A topic region that is not a known one still counts as given: the payload may not override it
  // with nothing, and validateReading reports it as unknown_region.
  const fallbackRegion = topicRegion ?? topicRegionRaw;
  if (scanner.scan(payload, ctx.meterIds)) {
    try {
      const n = scanner.count;
      for (let k = 0; k < n; k++) {
        const r = scanner.readings[k] as ScannedReading;
        const mid = r.meter_id;
        const ok = typeof mid === 'string' && (r.numbers & NUM_VALUES) === NUM_VALUES && r.power_w === undefined && r.power === undefined
          // (a scanned string is printable ASCII: the id needs no control character check)
          ? acceptFields(mid, r.kwhN, r.voltageN, r.currentN, r.pfN, r.region ?? fallbackRegion, scannedTimestamp(r), ctx, nowMs, arrivedAt, true)
          : undefined;
        // A reading that fails a check is diagnosed as the object JSON.parse would have made of it.
        if (ok !== undefined) {
          out.readings.push(ok);
          out.slots?.push(r.slot);
        } else {
          push(out, diagnoseReading(r.materialize(payload), fallbackRegion, ctx, nowMs, arrivedAt));
        }
      }
    } finally {
      scanner.release();
    }
    return;
  }
  scanner.release();
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    // The parser's message may quote the payload: a bounded copy, not the error (nor a slice of it).
    out.rejections.push({ error_type: 'malformed_json', region: topicRegion ?? UNKNOWN_REGION, detail: detached((err as Error).message.slice(0, 200)), arrived_at: arrivedAt });
    return;
  }
  if (Array.isArray(doc)) {
    if (doc.length === 0) {
      out.rejections.push({ error_type: 'empty_batch', region: topicRegion ?? UNKNOWN_REGION, detail: 'empty array of readings', arrived_at: arrivedAt });
      return;
    }
    for (const item of doc) push(out, validateReading(item, fallbackRegion, ctx, nowMs, arrivedAt));
    return;
  }
  push(out, validateReading(doc, fallbackRegion, ctx, nowMs, arrivedAt));
}

function push(out: ParseResult, r: ValidReading | DroppedReading): void {
  if ('error_type' in r) {
    out.rejections.push(r);
  } else {
    out.readings.push(r);
    out.slots?.push(-1);
  }
}
