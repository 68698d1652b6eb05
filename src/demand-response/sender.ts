// The EMS side of the protocol, for the operator CLI (`ems-gateway dr send`), tests and the bench:
// build a command, sign it, publish it, and collect the gateway's (signed) acks until the final one.
import { randomUUID, type KeyObject } from 'node:crypto';
import mqtt, { type IClientPublishOptions } from 'mqtt';
import type { DemandResponseConfig, MqttConfig } from '../config/site-types.js';
import { mqttClientOptions } from '../mqtt/options.js';
import { ackTopicFor, formatTopic } from '../mqtt/topics.js';
import { readAck, type DrAck } from './ack.js';
import type { CommandType, DrCommand, DrEnvelope } from './command.js';
import { signCommand } from './signing.js';

interface CommandSpec {
  siteId: string;
  zone: string;
  type: CommandType;
  reductionMw?: number;
  durationMinutes?: number;
  commandId?: string;
  targetCommandId?: string;
  /** How long the command may wait in transit before the gateway must refuse it; default 60 s. */
  validForMs?: number;
  nowMs?: number;
  traceparent?: string;
}

export function buildCommand(spec: CommandSpec): DrCommand {
  const now = spec.nowMs ?? Date.now();
  const cmd: DrCommand = {
    v: 1,
    command_id: spec.commandId ?? randomUUID(),
    type: spec.type,
    site_id: spec.siteId,
    zone: spec.zone,
    reduction_mw: spec.type === 'curtail' ? (spec.reductionMw ?? 0) : 0,
    duration_minutes: spec.type === 'curtail' ? (spec.durationMinutes ?? 0) : 0,
    issued_at: new Date(now).toISOString(),
    expires_at: new Date(now + (spec.validForMs ?? 60_000)).toISOString(),
  };
  if (spec.targetCommandId !== undefined) cmd.target_command_id = spec.targetCommandId;
  if (spec.traceparent !== undefined) cmd.traceparent = spec.traceparent;
  return cmd;
}

/** The message body: the command's JSON text, signed as is, inside the envelope. */
export function signedMessage(cmd: DrCommand | Record<string, unknown>, key: KeyObject, extra: Partial<DrEnvelope> = {}): string {
  const text = JSON.stringify(cmd);
  const envelope: DrEnvelope = { command: text, signature: signCommand(text, key), ...extra };
  return JSON.stringify(envelope);
}

interface SendOptions {
  mqtt: MqttConfig;
  dr: DemandResponseConfig;
  siteId: string;
  commandId: string;
  message: string;
  traceparent?: string;
  timeoutMs: number;
  /** The gateway's public keys: only acks signed by one of them count. Omitted: acks cannot be verified. */
  gatewayKeys?: readonly KeyObject[];
  onAck?: (ack: DrAck) => void;
  /** A message on the ack topic that was not taken as an answer to this command, and why. */
  onIgnored?: (why: string, ack?: DrAck) => void;
  /** Wait for the final ack (rejected / completed); false: publish and return. */
  wait?: boolean;
}

interface SendResult {
  acks: DrAck[];
  final?: DrAck;
  timedOut: boolean;
  /** `rejected: replayed` answers seen for this id: copies of it, not the answer to it. */
  replays: DrAck[];
}

/**
 * Which acks answer the command one sent. Only acks for its id (signed by the gateway, when its
 * keys are given) count, in the order the gateway sends them for one command: `accepted` then
 * `completed`, or a single `rejected` about an authenticated message. A rejection of an
 * unauthenticated message naming this id (anyone can send one), a `replayed` answer (about a copy
 * of this command: the answer to this one comes separately) and anything out of order (a
 * `rejected` after `accepted`) are ignored, so a replay or a `{}` on a shared ack topic can never
 * turn a command that ran into "rejected".
 */
export class AckTracker {
  readonly acks: DrAck[] = [];
  readonly replays: DrAck[] = [];
  private state: 'waiting' | 'accepted' | 'final' = 'waiting';
  final: DrAck | undefined;

  constructor(private readonly commandId: string, private readonly siteId: string, private readonly gatewayKeys: readonly KeyObject[] | undefined) {}

  get done(): boolean {
    return this.state === 'final';
  }

  /** Takes one message from the ack topic; returns why it was ignored, or undefined when it was taken. */
  take(payload: Buffer | string): { ignored: string; ack?: DrAck } | { taken: DrAck } {
    const read = readAck(payload, this.gatewayKeys);
    if (!read.ok) return { ignored: read.problem };
    const { ack } = read;
    if (ack.command_id !== this.commandId) return { ignored: 'for another command id', ack };
    if (ack.site_id !== this.siteId) return { ignored: `from site ${JSON.stringify(ack.site_id)}`, ack };
    if (this.state === 'final') return { ignored: 'after the final answer', ack };
    if (ack.status === 'rejected') {
      if (ack.authenticated !== true) return { ignored: `a rejection of an unauthenticated message naming this id (${ack.reason})`, ack };
      if (ack.reason === 'replayed') {
        this.replays.push(ack);
        return { ignored: `a copy of this command was sent again (first answered ${ack.first_verdict ?? 'unknown'})`, ack };
      }
      if (this.state !== 'waiting') return { ignored: 'a rejection after the command was accepted (out of order)', ack };
      return this.finish(ack);
    }
    if (ack.status === 'accepted') {
      if (this.state !== 'waiting') return { ignored: 'accepted twice', ack };
      this.state = 'accepted';
      this.acks.push(ack);
      return { taken: ack };
    }
    if (ack.status === 'completed' && this.state === 'accepted') return this.finish(ack);
    if (this.state === 'waiting') return { ignored: `${ack.status} before accepted (out of order)`, ack };
    // ended / reasserted come later in a curtailment's life (reversion, restart); dr send waits for completed.
    return { ignored: `${ack.status} after accepted, before completed (not the answer dr send waits for)`, ack };
  }

  private finish(ack: DrAck): { taken: DrAck } {
    this.state = 'final';
    this.final = ack;
    this.acks.push(ack);
    return { taken: ack };
  }
}

/** Publishes one signed command (QoS 1, not retained) and collects its acks. */
export async function sendCommand(opts: SendOptions): Promise<SendResult> {
  const options = mqttClientOptions(opts.mqtt, { clientIdSuffix: `-cli-${randomUUID().slice(0, 8)}`, clean: true });
  options.connectTimeout = Math.min(opts.timeoutMs, 10_000);
  const client = mqtt.connect(opts.mqtt.url, options);
  const tracker = new AckTracker(opts.commandId, opts.siteId, opts.gatewayKeys);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      timer = setTimeout(() => reject(new Error(`no connection to ${opts.mqtt.url} within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    });
    clearTimeout(timer);
    const wait = opts.wait ?? true;
    const ackTopic = ackTopicFor(opts.dr.ack_topic, { command_id: opts.commandId, site: opts.siteId });
    const done = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), opts.timeoutMs);
      client.on('message', (topic, payload) => {
        if (topic !== ackTopic) return;
        const r = tracker.take(payload);
        if ('ignored' in r) {
          opts.onIgnored?.(r.ignored, r.ack);
          return;
        }
        opts.onAck?.(r.taken);
        if (tracker.done) resolve(true);
      });
    });
    if (wait) await client.subscribeAsync(ackTopic, { qos: 1 });
    const publishOpts: IClientPublishOptions = { qos: 1, retain: false };
    if (opts.mqtt.protocol_version === 5 && opts.traceparent !== undefined) {
      publishOpts.properties = { userProperties: { traceparent: opts.traceparent } };
    }
    await client.publishAsync(formatTopic(opts.dr.command_topic, { site: opts.siteId }), opts.message, publishOpts);
    const result = (timedOut: boolean): SendResult => ({ acks: tracker.acks, timedOut, replays: tracker.replays, ...(tracker.final ? { final: tracker.final } : {}) });
    if (!wait) return result(false);
    return result(!(await done));
  } finally {
    clearTimeout(timer);
    await client.endAsync(true).catch(() => undefined);
  }
}
