// Keeps a client's subscriptions alive across reconnects: after every CONNACK it subscribes again
// (whatever the session-present flag says), checks the SUBACK's granted QoS, and proves that
// messages flow by publishing a probe to a topic of its own and waiting for it to come back.
// Some clients silently stop receiving after a broker restart (telegraf#16293); this notices.
import type { IPublishPacket } from 'mqtt';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { AckToken, MqttConnection } from './connection.js';
import { subscribeConfirmed } from './subscriptions.js';
import { assertPublishTopic } from './topics.js';

export const PROBE_TIMEOUT_MS = 5000;
/** Probes that may fail in a row before the keeper stops reconnecting for that reason (an ACL refusing the probe topic). */
const MAX_PROBE_RECONNECTS = 3;

export interface SubscriptionKeeperDeps {
  connection: MqttConnection;
  filters: readonly string[];
  qos: 0 | 1;
  clock: Clock;
  logger: Logger;
  /** The client id the probe topic is named after. */
  clientId: string;
}

/** The probe topic of a client: `ems-gateway/probe/<client id with / + # replaced>`. */
export function probeTopicFor(clientId: string): string {
  return assertPublishTopic(`ems-gateway/probe/${clientId.replace(/[/+#]/g, '_')}`);
}

export class SubscriptionKeeper {
  readonly probeTopic: string;
  private probeTimer: ClockTimer | undefined;
  private probeFailures = 0;
  private active = false;
  private isSubscribed = false;
  private flowOk = false;

  constructor(private readonly deps: SubscriptionKeeperDeps) {
    this.probeTopic = probeTopicFor(deps.clientId);
  }

  get subscribed(): boolean { return this.isSubscribed && this.deps.connection.connected; }
  get flowConfirmed(): boolean { return this.flowOk && this.deps.connection.connected; }

  /** Registers on the connection; call before `connection.start()`. */
  start(): void {
    this.active = true;
    this.deps.connection.onConnect((ev) => { void this.confirm(ev.generation, ev.sessionPresent); });
  }

  stop(): void {
    this.active = false;
    if (this.probeTimer !== undefined) this.deps.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  /** Consumes the probe message (acknowledged at once); false for any other message. */
  handleProbe(packet: IPublishPacket, token: AckToken | undefined, next: () => void): boolean {
    if (packet.topic !== this.probeTopic) return false;
    this.flowOk = true;
    this.probeFailures = 0;
    if (this.probeTimer !== undefined) this.deps.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    if (token) this.deps.connection.ack(token);
    next();
    return true;
  }

  private async confirm(generation: number, sessionPresent: boolean): Promise<void> {
    const { connection, logger: log, clock } = this.deps;
    const client = connection.mqttClient;
    if (!client || !this.active) return;
    this.isSubscribed = false;
    this.flowOk = false;
    try {
      const result = await subscribeConfirmed(client, [...this.deps.filters, this.probeTopic], this.deps.qos);
      if (generation !== connection.generation) return;
      this.isSubscribed = true;
      if (result.downgraded.length > 0) log.warn({ topics: result.downgraded }, 'broker granted QoS 0: messages on these topics are at-most-once');
      log.info({ topics: this.deps.filters, session_present: sessionPresent }, 'subscribed');
      client.publish(this.probeTopic, JSON.stringify({ probe: generation }), { qos: this.deps.qos });
      if (this.probeTimer !== undefined) clock.clearTimeout(this.probeTimer);
      this.probeTimer = clock.setTimeout(() => {
        this.probeTimer = undefined;
        if (generation !== connection.generation || !this.active) return;
        this.probeFailures++;
        const retry = this.probeFailures <= MAX_PROBE_RECONNECTS;
        log.warn({ probe_topic: this.probeTopic, reconnecting: retry }, 'no message flow confirmed after (re)subscribe');
        if (retry) connection.dropConnection();
      }, PROBE_TIMEOUT_MS);
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, 'subscription failed: reconnecting');
      if (generation === connection.generation && this.active) connection.dropConnection();
    }
  }
}
