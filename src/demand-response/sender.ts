// The EMS side of the protocol, for the operator CLI (`ems-gateway dr send`), tests and the bench:
// build a command, sign it, publish it, and collect the gateway's acks until the final one.
import { randomUUID, type KeyObject } from 'node:crypto';
import mqtt, { type IClientPublishOptions } from 'mqtt';
import type { DemandResponseConfig, MqttConfig } from '../config/site-types.js';
import { mqttClientOptions } from '../mqtt/options.js';
import { ackTopicFor, formatTopic } from '../mqtt/topics.js';
import type { DrAck } from './ack.js';
import type { CommandType, DrCommand, DrEnvelope } from './command.js';
import { signCommand } from './signing.js';

export interface CommandSpec {
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

export interface SendOptions {
  mqtt: MqttConfig;
  dr: DemandResponseConfig;
  siteId: string;
  commandId: string;
  message: string;
  traceparent?: string;
  timeoutMs: number;
  onAck?: (ack: DrAck) => void;
  /** Wait for the final ack (rejected / completed); false: publish and return. */
  wait?: boolean;
}

export interface SendResult {
  acks: DrAck[];
  final?: DrAck;
  timedOut: boolean;
}

function isFinal(ack: DrAck): boolean {
  return ack.status === 'rejected' || ack.status === 'completed';
}

/** Publishes one signed command (QoS 1, not retained) and collects its acks. */
export async function sendCommand(opts: SendOptions): Promise<SendResult> {
  const options = mqttClientOptions(opts.mqtt, { clientIdSuffix: `-cli-${randomUUID().slice(0, 8)}`, clean: true });
  options.connectTimeout = Math.min(opts.timeoutMs, 10_000);
  const client = mqtt.connect(opts.mqtt.url, options);
  const acks: DrAck[] = [];
  let finalAck: DrAck | undefined;
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
        let ack: DrAck;
        try {
          ack = JSON.parse(payload.toString('utf8')) as DrAck;
        } catch {
          return;
        }
        if (ack.command_id !== opts.commandId && !(ack.status === 'rejected' && ack.command_id === null)) return;
        acks.push(ack);
        opts.onAck?.(ack);
        if (isFinal(ack)) {
          finalAck = ack;
          resolve(true);
        }
      });
    });
    if (wait) await client.subscribeAsync(ackTopic, { qos: 1 });
    const publishOpts: IClientPublishOptions = { qos: 1, retain: false };
    if (opts.mqtt.protocol_version === 5 && opts.traceparent !== undefined) {
      publishOpts.properties = { userProperties: { traceparent: opts.traceparent } };
    }
    await client.publishAsync(formatTopic(opts.dr.command_topic, { site: opts.siteId }), opts.message, publishOpts);
    if (!wait) return { acks, timedOut: false };
    const ok = await done;
    return finalAck ? { acks, final: finalAck, timedOut: !ok } : { acks, timedOut: !ok };
  } finally {
    clearTimeout(timer);
    await client.endAsync(true).catch(() => undefined);
  }
}
