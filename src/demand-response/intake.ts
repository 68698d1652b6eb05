// The gate every command passes before anything touches Modbus, in this order: retained flag, size,
// envelope, signature, fields, site, zone, validity window, replay. Cheap checks come first and the
// signature before anything that stores state, so unsigned garbage can never fill the replay store.
import type { KeyObject } from 'node:crypto';
import { CommandRejection, LIMITS, checkValidity, parseCommand, parseEnvelope, rememberUntil, type DrCommand } from './command.js';
import { verifyCommand } from './signing.js';
import type { DrStateStore } from './state-store.js';

export interface IntakeContext {
  siteId: string;
  keys: readonly KeyObject[];
  zones: ReadonlySet<string>;
  skewMs: number;
  store: DrStateStore;
  now: number;
}

export interface IncomingMessage {
  payload: Buffer;
  retained: boolean;
}

export interface AcceptedCommand {
  command: DrCommand;
  /** traceparent from the envelope or the signed command (MQTT v5 user properties are read by the caller). */
  traceparent?: string;
}

/**
 * The command id of a refused message, for correlating its rejection ack, but only when the
 * signature verifies: an unsigned message must not be able to publish a "rejected" answer under
 * the id of someone else's genuine command. Otherwise null (the ack goes to the `unknown` id).
 */
export function peekCommandId(payload: Buffer, keys: readonly KeyObject[]): string | null {
  if (payload.length > LIMITS.maxMessageBytes) return null;
  try {
    const env = JSON.parse(payload.toString('utf8')) as { command?: unknown; signature?: unknown };
    if (typeof env.command !== 'string' || typeof env.signature !== 'string') return null;
    if (!verifyCommand(env.command, env.signature, keys)) return null;
    const cmd = JSON.parse(env.command) as { command_id?: unknown };
    return typeof cmd.command_id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(cmd.command_id) ? cmd.command_id : null;
  } catch {
    return null;
  }
}

/** Returns the accepted command, having durably recorded its id; throws CommandRejection otherwise. */
export function admit(msg: IncomingMessage, ctx: IntakeContext): AcceptedCommand {
  // A retained DR command is refused whatever it says: a stale command replayed by the broker on
  // every reconnect is a real hazard (field notes, "MQTT").
  if (msg.retained) throw new CommandRejection('retained', 'retained messages are never acted on; publish DR commands with retain=false');
  const envelope = parseEnvelope(msg.payload);
  if (!verifyCommand(envelope.command, envelope.signature, ctx.keys)) {
    throw new CommandRejection('bad_signature', 'signature does not verify with any configured public key');
  }
  const command = parseCommand(envelope.command);
  if (command.site_id !== ctx.siteId) {
    throw new CommandRejection('wrong_site', `command is for site ${JSON.stringify(command.site_id)}, this gateway is ${JSON.stringify(ctx.siteId)}`);
  }
  if (!ctx.zones.has(command.zone)) {
    throw new CommandRejection('unknown_zone', `zone ${JSON.stringify(command.zone)} has no load controllers on this site`);
  }
  checkValidity(command, ctx.now, ctx.skewMs);
  if (ctx.store.hasSeen(command.command_id, ctx.now)) {
    throw new CommandRejection('replayed', `command id ${command.command_id} was already received`);
  }
  ctx.store.markSeen(command.command_id, rememberUntil(command, ctx.skewMs), ctx.now);
  const traceparent = command.traceparent ?? envelope.traceparent;
  return traceparent === undefined ? { command } : { command, traceparent };
}
