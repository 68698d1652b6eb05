// The gate every command passes before anything touches Modbus, in this order: size, envelope
// (strict JSON), signature; then, for an authenticated message: a command id already answered
// (replayed), the transport (retained, QoS 0), the command's fields, site, zone, validity window.
// Cheap checks come first and the signature before anything that stores state, so unsigned garbage
// can never fill the store; from the signature on, every verdict is recorded with its command id
// (state-store.ts) before the caller acknowledges the message, so an id never runs later, whatever
// it was answered: a retained or QoS 0 copy, a not-yet-valid command re-sent inside its window.
import type { KeyObject } from 'node:crypto';
import {
  CommandRejection, LIMITS, checkValidity, parseCommand, parseEnvelope, readCommandId, readEnvelopeCommandId, rememberUntil,
  type DrCommand, type DrEnvelope,
} from './command.js';
import { verifyCommand } from './signing.js';
import type { DrStateStore, SeenRecord } from './state-store.js';

export interface IntakeContext {
  siteId: string;
  keys: readonly KeyObject[];
  zones: ReadonlySet<string>;
  skewMs: number;
  store: DrStateStore;
  now: number;
}

interface IncomingMessage {
  payload: Buffer;
  /** The RETAIN flag as delivered (MQTT v5 with retain-as-published: as published). */
  retained: boolean;
  /** QoS as delivered; default 1 (a message handed in directly, not by a broker). */
  qos?: 0 | 1 | 2;
}

export type Admission =
  | { ok: true; command: DrCommand; traceparent?: string }
  | {
    ok: false;
    rejection: CommandRejection;
    /** The message's command id whenever it can be read (even unauthenticated); null otherwise. */
    commandId: string | null;
    /** Whether the signature verified: only then is the rejection the gateway's verdict on that command id. */
    authenticated: boolean;
    /** Set when the id had already been answered: this message is a copy (replay, redelivery, retained copy). */
    known?: SeenRecord;
  };

function refused(err: unknown, commandId: string | null, authenticated: boolean, known?: SeenRecord): Admission {
  const rejection = err instanceof CommandRejection ? err : new CommandRejection('internal_error', err instanceof Error ? err.message : String(err));
  return { ok: false, rejection, commandId, authenticated, ...(known ? { known } : {}) };
}

/** Judges one message; an accepted command (and every authenticated verdict) is durably recorded when this returns. */
export function admit(msg: IncomingMessage, ctx: IntakeContext): Admission {
  let envelope: DrEnvelope;
  try {
    envelope = parseEnvelope(msg.payload);
  } catch (err) {
    return refused(err, readEnvelopeCommandId(msg.payload), false);
  }
  if (!verifyCommand(envelope.command, envelope.signature, ctx.keys)) {
    return refused(new CommandRejection('bad_signature', 'signature does not verify with any configured public key'), readCommandId(envelope.command), false);
  }
  // Authenticated from here on.
  const commandId = readCommandId(envelope.command);
  const known = commandId === null ? undefined : ctx.store.verdictOf(commandId, ctx.now);
  if (known) {
    return refused(new CommandRejection('replayed', `command id ${commandId} was already received (answered ${known.verdict})`), commandId, true, known);
  }
  let command: DrCommand | undefined;
  let verdict: CommandRejection | undefined;
  try {
    // A retained command is refused whatever it says: a stale command replayed by the broker on
    // every reconnect is a real hazard (field notes, "MQTT").
    if (msg.retained) throw new CommandRejection('retained', 'retained messages are never acted on; publish DR commands with retain=false');
    if (msg.qos === 0) throw new CommandRejection('qos0', 'a DR command must be published with QoS 1 (QoS 0 can be lost without anyone knowing)');
    command = parseCommand(envelope.command);
    if (command.site_id !== ctx.siteId) {
      throw new CommandRejection('wrong_site', `command is for site ${JSON.stringify(command.site_id)}, this gateway is ${JSON.stringify(ctx.siteId)}`);
    }
    if (!ctx.zones.has(command.zone)) {
      throw new CommandRejection('unknown_zone', `zone ${JSON.stringify(command.zone)} has no load controllers on this site`);
    }
    checkValidity(command, ctx.now, ctx.skewMs);
  } catch (err) {
    if (!(err instanceof CommandRejection)) return refused(err, commandId, true);
    verdict = err;
  }
  if (commandId !== null) {
    // Remembered as long as any command could still be valid under this id: its own window when
    // its times parsed, else the longest window a command may have.
    const until = command !== undefined ? rememberUntil(command, ctx.skewMs) : ctx.now + LIMITS.maxValidityMs + 2 * ctx.skewMs;
    try {
      ctx.store.record(commandId, verdict?.reason ?? 'accepted', until, ctx.now);
    } catch (err) {
      // Not recorded: never acted on (a later copy would not be recognised).
      return refused(new CommandRejection('internal_error', `cannot record command id ${commandId}: ${(err as Error).message}`), commandId, true);
    }
  }
  if (verdict !== undefined || command === undefined) return refused(verdict, commandId, true);
  const traceparent = command.traceparent ?? envelope.traceparent;
  return traceparent === undefined ? { ok: true, command } : { ok: true, command, traceparent };
}
