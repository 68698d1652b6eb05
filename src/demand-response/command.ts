// The DR command: its wire envelope, its fields, and the checks that need no key or clock.
// A command arrives as a signed envelope (docs/demand-response.md):
//   { "command": "<JSON text of the command>", "signature": "<base64 Ed25519>", "traceparent"?: "00-..." }
// The signature covers the exact bytes of `command` (see signing.ts), so no JSON canonicalisation
// is needed on either side: what was signed is what is parsed. Both texts are read strictly
// (strict-json.ts): valid UTF-8, no duplicate keys, canonical numbers, real calendar dates, so a
// signed command cannot mean one thing to the gateway and another to an auditor's parser.
import { parseStrictJson, StrictJsonError, type StrictParse } from './strict-json.js';

/** Reason codes of rejected commands: stable, documented, also the `result` metric attribute. */
export type RejectReason =
  | 'oversized'
  | 'retained'
  | 'qos0'
  | 'malformed_json'
  | 'duplicate_key'
  | 'non_canonical_number'
  | 'invalid_envelope'
  | 'missing_signature'
  | 'bad_signature'
  | 'invalid_command'
  | 'unsupported_version'
  | 'unknown_type'
  | 'invalid_reduction'
  | 'invalid_duration'
  | 'invalid_time'
  | 'validity_too_long'
  | 'wrong_site'
  | 'unknown_zone'
  | 'expired'
  | 'not_yet_valid'
  | 'replayed'
  | 'internal_error';

/** What the gateway answered for a command id: recorded for every authenticated one (state-store.ts). */
export type Verdict = 'accepted' | RejectReason;

export const COMMAND_TYPES = ['curtail', 'restore'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export interface DrCommand {
  v: 1;
  command_id: string;
  type: CommandType;
  site_id: string;
  zone: string;
  reduction_mw: number;       // curtail: > 0; restore: 0
  duration_minutes: number;   // curtail: > 0; restore: 0
  issued_at: string;          // RFC 3339 UTC
  expires_at: string;         // RFC 3339 UTC: the command must be *received* before this
  /** restore only: the curtailment to end; omitted = every active curtailment of the zone. */
  target_command_id?: string;
  traceparent?: string;
}

export interface DrEnvelope {
  command: string;
  signature: string;
  traceparent?: string;
}

/** Limits that keep a hostile command from costing memory or planning an absurd curtailment. */
export const LIMITS = {
  maxMessageBytes: 16 * 1024,
  maxCommandIdLength: 128,
  maxReductionMw: 10_000,
  maxDurationMinutes: 24 * 60,
  /** expires_at - issued_at: bounds how long a command id must be remembered against replay. */
  maxValidityMs: 24 * 60 * 60 * 1000,
} as const;

export class CommandRejection extends Error {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string) {
    super(message);
    this.name = 'CommandRejection';
    this.reason = reason;
  }
}

const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT_RE = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
// RFC 3339 with an explicit zone: a zone-less time would be read in the gateway's local zone.
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function quote(v: unknown): string {
  const s = typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Reads `text` strictly: a syntax error is `malformed_json`, a duplicate key `duplicate_key`, a
 * number not written canonically `non_canonical_number` (`what` names the text in messages).
 */
function strict(text: string, what: string): Record<string, unknown> | unknown[] | string | number | boolean | null {
  let parsed: StrictParse;
  try {
    parsed = parseStrictJson(text);
  } catch (err) {
    if (err instanceof StrictJsonError) throw new CommandRejection('malformed_json', `${what} is not JSON: ${err.message}`);
    throw err;
  }
  const dup = parsed.issues.find((i) => i.kind === 'duplicate_key');
  if (dup) throw new CommandRejection('duplicate_key', `${what}: ${dup.message}: a key must appear once`);
  const num = parsed.issues.find((i) => i.kind === 'non_canonical_number');
  if (num) throw new CommandRejection('non_canonical_number', `${what}: ${num.message}`);
  return parsed.value as Record<string, unknown>;
}

/** Step 1: the outer envelope. Signature verification follows before the command is parsed. */
export function parseEnvelope(payload: Buffer | string): DrEnvelope {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > LIMITS.maxMessageBytes) {
    throw new CommandRejection('oversized', `message of ${size} bytes exceeds ${LIMITS.maxMessageBytes}`);
  }
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : UTF8.decode(payload);
  } catch {
    throw new CommandRejection('malformed_json', 'message is not valid UTF-8');
  }
  const raw = strict(text, 'message');
  if (!isRecord(raw)) throw new CommandRejection('invalid_envelope', 'message is not a JSON object');
  const { command, signature, traceparent } = raw;
  if (typeof command !== 'string' || command.length === 0) {
    throw new CommandRejection('invalid_envelope', `"command" must be the command's JSON text, got ${quote(command)}`);
  }
  if (signature === undefined || signature === null || signature === '') {
    throw new CommandRejection('missing_signature', 'message has no "signature"');
  }
  if (typeof signature !== 'string') {
    throw new CommandRejection('invalid_envelope', `"signature" must be a base64 string, got ${quote(signature)}`);
  }
  const env: DrEnvelope = { command, signature };
  if (typeof traceparent === 'string' && TRACEPARENT_RE.test(traceparent)) env.traceparent = traceparent;
  return env;
}

/** The command id inside a message whose envelope was refused, when it can be read unambiguously (see readCommandId). */
export function readEnvelopeCommandId(payload: Buffer): string | null {
  if (payload.length > LIMITS.maxMessageBytes) return null;
  try {
    const { value, issues } = parseStrictJson(UTF8.decode(payload));
    if (!isRecord(value) || issues.some((i) => i.kind === 'duplicate_key' && i.path === 'command')) return null;
    return typeof value['command'] === 'string' ? readCommandId(value['command']) : null;
  } catch {
    return null;
  }
}

/**
 * The command id of a command text when it can be read unambiguously (valid JSON object, the key
 * once, a well-formed id), whatever else is wrong with it; null otherwise. For correlating a
 * rejection ack, never for acting.
 */
export function readCommandId(text: string): string | null {
  try {
    const { value, issues } = parseStrictJson(text);
    if (!isRecord(value) || issues.some((i) => i.kind === 'duplicate_key' && i.path === 'command_id')) return null;
    const id = value['command_id'];
    return typeof id === 'string' && ID_RE.test(id) ? id : null;
  } catch {
    return null;
  }
}

function field<T>(obj: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = obj[key];
  if (v === undefined) throw new CommandRejection('invalid_command', `missing field "${key}"`);
  if (!check(v)) throw new CommandRejection('invalid_command', `"${key}" must be ${what}, got ${quote(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';

function daysIn(year: number, month: number): number {
  return month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * An RFC 3339 time with a zone, as epoch ms. Every field must exist on the calendar and the clock:
 * Date.parse would roll 2026-11-31 over to December 1st; that is refused, as are hour 24, second 60
 * (leap seconds) and offsets beyond +-23:59. Digits below the millisecond are dropped.
 */
export function parseTime(key: string, v: string): number {
  const bad = (why: string): CommandRejection => new CommandRejection('invalid_time', `"${key}" must be an RFC 3339 time with a zone, got ${quote(v)}${why}`);
  const m = RFC3339_RE.exec(v);
  if (!m) throw bad('');
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (y < 1970) throw bad(': year before 1970');
  if (mo < 1 || mo > 12) throw bad(`: there is no month ${mo}`);
  if (d < 1 || d > daysIn(y, mo)) throw bad(`: ${y}-${String(mo).padStart(2, '0')} has no day ${d}`);
  if (h > 23 || mi > 59 || sec > 59) throw bad(': no such time of day');
  const oh = Number(m[9] ?? 0);
  const om = Number(m[10] ?? 0);
  if (oh > 23 || om > 59) throw bad(': no such zone offset');
  const ms = m[7] === undefined ? 0 : Number(`${m[7].slice(1)}00`.slice(0, 3));
  const offsetMs = (m[8] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMs;
}

/** Step 2 (after the signature checked out): the command's own fields, independent of site and clock. */
export function parseCommand(text: string): DrCommand {
  const raw = strict(text, 'signed command');
  if (!isRecord(raw)) throw new CommandRejection('invalid_command', 'signed command is not a JSON object');
  if (raw['v'] !== 1) throw new CommandRejection('unsupported_version', `"v" must be 1, got ${quote(raw['v'])}`);
  const commandId = field(raw, 'command_id', isString, 'a string');
  if (!ID_RE.test(commandId)) {
    throw new CommandRejection('invalid_command', `"command_id" must be 1-${LIMITS.maxCommandIdLength} of [A-Za-z0-9._:-], got ${quote(commandId)}`);
  }
  const type = field(raw, 'type', isString, 'a string');
  if (!(COMMAND_TYPES as readonly string[]).includes(type)) {
    throw new CommandRejection('unknown_type', `"type" must be one of ${COMMAND_TYPES.join(', ')}, got ${quote(type)}`);
  }
  const cmd: DrCommand = {
    v: 1,
    command_id: commandId,
    type: type as CommandType,
    site_id: field(raw, 'site_id', isString, 'a string'),
    zone: field(raw, 'zone', isString, 'a string'),
    reduction_mw: 0,
    duration_minutes: 0,
    issued_at: field(raw, 'issued_at', isString, 'an RFC 3339 time'),
    expires_at: field(raw, 'expires_at', isString, 'an RFC 3339 time'),
  };
  if (cmd.type === 'curtail') {
    // JSON cannot carry NaN/Infinity, but a hand-made parser upstream might send them as strings.
    const r = raw['reduction_mw'];
    if (r === undefined) throw new CommandRejection('invalid_command', 'missing field "reduction_mw"');
    if (typeof r !== 'number' || !Number.isFinite(r) || r <= 0 || r > LIMITS.maxReductionMw) {
      throw new CommandRejection('invalid_reduction', `"reduction_mw" must be > 0 and <= ${LIMITS.maxReductionMw}, got ${quote(r)}`);
    }
    const d = raw['duration_minutes'];
    if (d === undefined) throw new CommandRejection('invalid_command', 'missing field "duration_minutes"');
    if (typeof d !== 'number' || !Number.isFinite(d) || d <= 0 || d > LIMITS.maxDurationMinutes) {
      throw new CommandRejection('invalid_duration', `"duration_minutes" must be > 0 and <= ${LIMITS.maxDurationMinutes}, got ${quote(d)}`);
    }
    cmd.reduction_mw = r;
    cmd.duration_minutes = d;
  } else {
    const target = raw['target_command_id'];
    if (target !== undefined) {
      if (typeof target !== 'string' || !ID_RE.test(target)) {
        throw new CommandRejection('invalid_command', `"target_command_id" must be a command id, got ${quote(target)}`);
      }
      cmd.target_command_id = target;
    }
  }
  const issued = parseTime('issued_at', cmd.issued_at);
  const expires = parseTime('expires_at', cmd.expires_at);
  if (expires <= issued) throw new CommandRejection('invalid_time', `"expires_at" ${cmd.expires_at} is not after "issued_at" ${cmd.issued_at}`);
  if (expires - issued > LIMITS.maxValidityMs) {
    throw new CommandRejection('validity_too_long', `a command may be valid for at most ${LIMITS.maxValidityMs / 3_600_000} h, got ${((expires - issued) / 3_600_000).toFixed(1)} h`);
  }
  const tp = raw['traceparent'];
  if (typeof tp === 'string' && TRACEPARENT_RE.test(tp)) cmd.traceparent = tp;
  return cmd;
}

/** Step 3: the clock. A command is valid from issued_at - skew until expires_at + skew. */
export function checkValidity(cmd: DrCommand, nowMs: number, skewMs: number): void {
  const issued = parseTime('issued_at', cmd.issued_at);
  const expires = parseTime('expires_at', cmd.expires_at);
  if (nowMs + skewMs < issued) {
    throw new CommandRejection('not_yet_valid', `issued_at ${cmd.issued_at} is ${Math.round((issued - nowMs) / 1000)} s in the future (skew allowed ${skewMs / 1000} s)`);
  }
  if (nowMs - skewMs > expires) {
    throw new CommandRejection('expired', `expired at ${cmd.expires_at}, ${Math.round((nowMs - expires) / 1000)} s ago`);
  }
}

/** How long a command id must be remembered so a replay can never be valid again. */
export function rememberUntil(cmd: DrCommand, skewMs: number): number {
  return parseTime('expires_at', cmd.expires_at) + skewMs;
}
