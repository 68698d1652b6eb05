// The hostile command table: each entry builds one message that must be rejected with `reason`
// before anything touches Modbus. `original` is a valid, already accepted command (for replays).
import type { KeyObject } from 'node:crypto';
import type { RejectReason } from '../../src/demand-response/command.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { signCommand } from '../../src/demand-response/signing.js';
import { KEYS, SITE_ID } from './fixtures.js';

export interface HostileCase {
  name: string;
  reason: RejectReason;
  message: (now: number, original: string) => { payload: Buffer; retained?: boolean; qos?: 0 | 1 };
  /** Whether the message's signature verifies; default: by reason (see `authenticated()`). */
  signed?: boolean;
}

const UNSIGNED_REASONS: readonly RejectReason[] = ['bad_signature', 'missing_signature', 'malformed_json', 'invalid_envelope', 'oversized'];

/** Whether the gateway can tell the message is the EMS's (its rejection is then the verdict on its command id). */
export function authenticated(h: HostileCase): boolean {
  return h.signed ?? !UNSIGNED_REASONS.includes(h.reason);
}

function cmd(now: number, over: Record<string, unknown> = {}, key: KeyObject = KEYS.privateKey): Buffer {
  const base = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 15, nowMs: now });
  return Buffer.from(signedMessage({ ...base, ...over }, key));
}

function signedText(text: string): Buffer {
  return Buffer.from(JSON.stringify({ command: text, signature: signCommand(text, KEYS.privateKey) }));
}

/** A valid command's JSON text, to edit before signing (for what JSON.stringify cannot write). */
function text(now: number, over: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 15, nowMs: now }), ...over });
}

export const HOSTILE: HostileCase[] = [
  { name: 'forged signature (random bytes)', reason: 'bad_signature', message: (now) => {
    const env = JSON.parse(cmd(now).toString()) as { command: string; signature: string };
    return { payload: Buffer.from(JSON.stringify({ ...env, signature: Buffer.alloc(64, 7).toString('base64') })) };
  } },
  { name: 'signed with a key the site does not hold', reason: 'bad_signature', message: (now) => ({ payload: cmd(now, {}, KEYS.otherPrivateKey) }) },
  { name: 'tampered after signing (reduction raised)', reason: 'bad_signature', message: (now) => {
    const env = JSON.parse(cmd(now).toString()) as { command: string; signature: string };
    return { payload: Buffer.from(JSON.stringify({ ...env, command: env.command.replace('"reduction_mw":0.01', '"reduction_mw":9') })) };
  } },
  { name: 'unsigned', reason: 'missing_signature', message: (now) => {
    const env = JSON.parse(cmd(now).toString()) as { command: string };
    return { payload: Buffer.from(JSON.stringify({ command: env.command })) };
  } },
  { name: 'replay of an accepted command', reason: 'replayed', message: (_now, original) => ({ payload: Buffer.from(original) }) },
  { name: 'expired', reason: 'expired', message: (now) => ({ payload: cmd(now - 3_600_000) }) },
  { name: 'issued in the future', reason: 'not_yet_valid', message: (now) => ({ payload: cmd(now + 600_000) }) },
  { name: 'retained', reason: 'retained', message: (now) => ({ payload: cmd(now), retained: true }) },
  { name: 'oversized', reason: 'oversized', message: (now) => ({ payload: cmd(now, { padding: 'x'.repeat(20_000) }) }) },
  { name: 'unknown zone', reason: 'unknown_zone', message: (now) => ({ payload: cmd(now, { zone: 'zone-nowhere' }) }) },
  { name: 'wrong site', reason: 'wrong_site', message: (now) => ({ payload: cmd(now, { site_id: 'other-site' }) }) },
  { name: 'reduction negative', reason: 'invalid_reduction', message: (now) => ({ payload: cmd(now, { reduction_mw: -1 }) }) },
  { name: 'reduction NaN (as a string)', reason: 'invalid_reduction', message: (now) => ({ payload: cmd(now, { reduction_mw: 'NaN' }) }) },
  { name: 'reduction huge', reason: 'invalid_reduction', message: (now) => ({ payload: cmd(now, { reduction_mw: 1e9 }) }) },
  { name: 'duration zero', reason: 'invalid_duration', message: (now) => ({ payload: cmd(now, { duration_minutes: 0 }) }) },
  { name: 'unknown type', reason: 'unknown_type', message: (now) => ({ payload: cmd(now, { type: 'shutdown' }) }) },
  { name: 'missing zone', reason: 'invalid_command', message: (now) => ({ payload: cmd(now, { zone: undefined }) }) },
  { name: 'unsupported version', reason: 'unsupported_version', message: (now) => ({ payload: cmd(now, { v: 2 }) }) },
  { name: 'valid for two days', reason: 'validity_too_long', message: (now) => ({ payload: cmd(now, { expires_at: new Date(now + 48 * 3_600_000).toISOString() }) }) },
  { name: 'time without a zone', reason: 'invalid_time', message: (now) => ({ payload: cmd(now, { issued_at: new Date(now).toISOString().replace('Z', '') }) }) },
  { name: 'malformed JSON', reason: 'malformed_json', message: () => ({ payload: Buffer.from('{"command": "x", "signature": ') }) },
  { name: 'signed text is not JSON', reason: 'malformed_json', signed: true, message: () => ({ payload: signedText('curtail zone-a 5 MW please') }) },
  { name: 'envelope is an array', reason: 'invalid_envelope', message: () => ({ payload: Buffer.from('[1,2,3]') }) },
  { name: 'command is an object, not signed text', reason: 'invalid_envelope', message: () => ({ payload: Buffer.from(JSON.stringify({ command: { type: 'curtail' }, signature: 'AAAA' })) }) },
  // Strict parse of what is signed: one meaning for every parser.
  { name: 'duplicate key: site_id twice (JSON.parse keeps the last, other parsers the first)', reason: 'duplicate_key',
    message: (now) => ({ payload: signedText(text(now).replace('{', '{"site_id":"other-site",')) }) },
  { name: 'duplicate key spelled with an escape (site\u005fid)', reason: 'duplicate_key',
    message: (now) => ({ payload: signedText(text(now).replace('{', '{"site\\u005fid":"other-site",')) }) },
  { name: 'duplicate "command" in the envelope', reason: 'duplicate_key', signed: false, message: (now) => {
    const env = JSON.parse(cmd(now).toString()) as { command: string; signature: string };
    const decoy = text(now, { zone: 'zone-b', reduction_mw: 9 });
    return { payload: Buffer.from(`{"command":${JSON.stringify(decoy)},"command":${JSON.stringify(env.command)},"signature":${JSON.stringify(env.signature)}}`) };
  } },
  { name: 'impossible date (2026-11-31 rolls over to December 1st in Date.parse)', reason: 'invalid_time', message: (now) => ({ payload: cmd(now, { issued_at: '2026-11-31T12:00:00.000Z' }) }) },
  { name: 'leap second 23:59:60', reason: 'invalid_time', message: (now) => ({ payload: cmd(now, { expires_at: new Date(now + 60_000).toISOString().replace(/T.*/, 'T23:59:60Z') }) }) },
  { name: 'non-canonical number (0.010)', reason: 'non_canonical_number', message: (now) => ({ payload: signedText(text(now).replace('"reduction_mw":0.01', '"reduction_mw":0.010')) }) },
  { name: 'number beyond the precision of a double (15.000000000000001)', reason: 'non_canonical_number',
    message: (now) => ({ payload: signedText(text(now).replace('"duration_minutes":15', '"duration_minutes":15.000000000000001')) }) },
  { name: 'version written 1e0', reason: 'non_canonical_number', message: (now) => ({ payload: signedText(text(now).replace('"v":1', '"v":1e0')) }) },
  { name: 'lone surrogate in the signed text', reason: 'malformed_json', signed: true, message: (now) => ({ payload: signedText(text(now).replace('"zone":"zone-a"', '"zone":"zone-a\\ud800"')) }) },
  { name: 'not UTF-8', reason: 'malformed_json', message: () => ({ payload: Buffer.concat([Buffer.from('{"command":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","signature":"AAAA"}')]) }) },
  { name: 'QoS 0 (no one would know it was lost)', reason: 'qos0', message: (now) => ({ payload: cmd(now), qos: 0 }) },
];
