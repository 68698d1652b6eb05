// The answers the gateway publishes on the ack topic (docs/demand-response.md). Every command gets
// `accepted` or `rejected` first; an accepted one then gets `completed` with each controller's
// outcome and the achieved reduction. A curtailment's end gets `ended`; a re-assertion `reasserted`.
// On the wire an ack is an envelope like a command's: {"ack": "<the ack's JSON text>", "signature":
// "<base64 Ed25519 of ACK_SIGNING_PREFIX + that text, by the gateway's own key>"}.
import type { KeyObject } from 'node:crypto';
import type { CommandType, RejectReason, Verdict } from './command.js';
import type { ControllerResult } from './executor.js';
import { signAck, verifyAck } from './signing.js';
import { parseStrictJson } from './strict-json.js';

type AckStatus = 'accepted' | 'rejected' | 'completed' | 'ended' | 'reasserted';

export type EndReason = 'duration_ended' | 'restore_command' | 'superseded' | 'ended_while_down' | 'restored_on_start';

interface AckBase {
  v: 1;
  command_id: string | null;
  site_id: string;
  status: AckStatus;
  at: string;                        // RFC 3339 UTC, gateway clock
}

export interface RejectedAck extends AckBase {
  status: 'rejected';
  reason: RejectReason;
  detail: string;
  /**
   * True when the message's signature verified: only then is this the gateway's verdict on
   * `command_id`. Otherwise `command_id` is just what the (unauthenticated) message claimed.
   */
  authenticated: boolean;
  /** `replayed`: what the gateway answered the first time it received this command id. */
  first_verdict?: Verdict;
  /** Rejections of unauthenticated messages and replays held back (rate limit) since the last one answered. */
  suppressed?: number;
  suppressed_reasons?: Partial<Record<RejectReason, number>>;
  /** True on the answer that closes a burst: it stands for the `suppressed` messages only, not for one of its own. */
  aggregate?: true;
}

export interface AcceptedAck extends AckBase {
  status: 'accepted';
  command_type: CommandType;
  zone: string;
  dry_run: boolean;
  requested_mw: number;
  planned_mw: number;
  partial: boolean;
  controller_count: number;
  ends_at?: string;                  // curtail: when the gateway reverts it
}

export interface ResultAck extends AckBase {
  status: 'completed' | 'ended' | 'reasserted';
  command_type: CommandType;
  zone: string;
  dry_run: boolean;
  reason?: EndReason;                // ended only
  requested_mw: number;
  planned_mw: number;
  /** Sum of the planned reductions of acknowledged controllers (curtail); 0 for restores. */
  achieved_mw: number;
  partial: boolean;
  controller_count: number;
  ack_count: number;
  ack_rate: number;                  // ack_count / controller_count; 1 when there are no controllers
  controllers: ControllerResult[];
  ended_command_ids?: string[];      // restore: the curtailments it ended
}

export type DrAck = RejectedAck | AcceptedAck | ResultAck;

export function ackRate(results: readonly ControllerResult[]): { ack_count: number; ack_rate: number } {
  const ack = results.filter((r) => r.outcome === 'acknowledged').length;
  return { ack_count: ack, ack_rate: results.length === 0 ? 1 : Number((ack / results.length).toFixed(4)) };
}

export function achievedMw(results: readonly ControllerResult[]): number {
  return Number((results.reduce((s, r) => s + r.reduction_kw, 0) / 1000).toFixed(6));
}

/** The MQTT payload of an ack: signed when the gateway has its key (gateway_key_file). */
export function ackMessage(ack: DrAck, key: KeyObject | undefined): string {
  const text = JSON.stringify(ack);
  return JSON.stringify(key === undefined ? { ack: text } : { ack: text, signature: signAck(text, key) });
}

type ReadAck = { ok: true; ack: DrAck; signed: boolean } | { ok: false; problem: string };

/**
 * Reads an ack message. With `keys`, only an ack signed by one of them is read (anything unsigned
 * or signed otherwise is refused); without, a signature cannot be checked and `signed` is false.
 * Strict JSON (no duplicate keys), like commands.
 */
export function readAck(payload: Buffer | string, keys: readonly KeyObject[] | undefined): ReadAck {
  let env: unknown;
  try {
    const parsed = parseStrictJson(typeof payload === 'string' ? payload : payload.toString('utf8'));
    if (parsed.issues.length > 0) return { ok: false, problem: parsed.issues[0]?.message ?? 'not strict JSON' };
    env = parsed.value;
  } catch (err) {
    return { ok: false, problem: `not JSON: ${(err as Error).message}` };
  }
  const e = env as { ack?: unknown; signature?: unknown } | null;
  if (typeof e !== 'object' || e === null || typeof e.ack !== 'string') return { ok: false, problem: 'not an ack envelope {"ack": "...", "signature": "..."}' };
  let signed = false;
  if (keys !== undefined) {
    if (typeof e.signature !== 'string') return { ok: false, problem: 'unsigned' };
    if (!verifyAck(e.ack, e.signature, keys)) return { ok: false, problem: 'signature does not verify with the gateway key' };
    signed = true;
  }
  let ack: unknown;
  try {
    const parsed = parseStrictJson(e.ack);
    if (parsed.issues.length > 0) return { ok: false, problem: parsed.issues[0]?.message ?? 'not strict JSON' };
    ack = parsed.value;
  } catch (err) {
    return { ok: false, problem: `ack text is not JSON: ${(err as Error).message}` };
  }
  const a = ack as Partial<DrAck> | null;
  if (typeof a !== 'object' || a === null || typeof a.status !== 'string' || !(typeof a.command_id === 'string' || a.command_id === null)) {
    return { ok: false, problem: 'not an ack (status, command_id)' };
  }
  return { ok: true, ack: a as DrAck, signed };
}
