// The DR command: its wire envelope, its fields, and the checks that need no key or clock.
// A command arrives as a signed envelope (docs/demand-response.md):
//   { "command": "<JSON text of the command>", "signature": "<base64 Ed25519>", "traceparent"?: "00-..." }
// The signature covers the exact bytes of `command` (see signing.ts), so no JSON canonicalisation
// is needed on either side: what was signed is what is parsed.

/** Reason codes of rejected commands: stable, documented, also the `result` metric attribute. */
export type RejectReason =
  | 'oversized'
  | 'retained'
  | 'malformed_json'
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
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function quote(v: unknown): string {
  const s = typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Step 1: the outer envelope. Signature verification follows before the command is parsed. */
export function parseEnvelope(payload: Buffer | string): DrEnvelope {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > LIMITS.maxMessageBytes) {
    throw new CommandRejection('oversized', `message of ${size} bytes exceeds ${LIMITS.maxMessageBytes}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    throw new CommandRejection('malformed_json', `message is not JSON: ${(err as Error).message}`);
  }
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

function field<T>(obj: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = obj[key];
  if (v === undefined) throw new CommandRejection('invalid_command', `missing field "${key}"`);
  if (!check(v)) throw new CommandRejection('invalid_command', `"${key}" must be ${what}, got ${quote(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';

export function parseTime(key: string, v: string): number {
  const ms = RFC3339_RE.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new CommandRejection('invalid_time', `"${key}" must be an RFC 3339 time with a zone, got ${quote(v)}`);
  return ms;
}

/** Step 2 (after the signature checked out): the command's own fields, independent of site and clock. */
export function parseCommand(text: string): DrCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CommandRejection('malformed_json', `signed command is not JSON: ${(err as Error).message}`);
  }
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
