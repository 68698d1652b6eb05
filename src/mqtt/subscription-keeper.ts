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

const PROBE_TIMEOUT_MS = 5000;
/** Probes that may fail in a row before the keeper stops reconnecting for that reason (an ACL refusing the probe topic). */
const MAX_PROBE_RECONNECTS = 3;

interface SubscriptionKeeperDeps {
  connection: MqttConnection;
  filters: readonly string[];
  qos: 0 | 1;
  clock: Clock;
  logger: Logger;
  /** The client id the probe topic is named after. */
  clientId: string;
  /**
   * While connected, when no message arrived for this long, probe again (a subscription can also
   * vanish mid-connection, e.g. a broker failover without session state). Default 60 s; 0 = off.
   */
  idleProbeMs?: number;
  /** How long a probe may take to come back (default PROBE_TIMEOUT_MS). */
  probeTimeoutMs?: number;
  /** Wall-clock ms of the latest message received, for the idle probe. */
  lastMessageAt?: () => number | undefined;
}

/** The probe topic of a client: `ems-gateway/probe/<client id with / + # replaced>`. */
function probeTopicFor(clientId: string): string {
  return assertPublishTopic(`ems-gateway/probe/${clientId.replace(/[/+#]/g, '_')}`);
}

export class SubscriptionKeeper {
  readonly probeTopic: string;
  private probeTimer: ClockTimer | undefined;
  private probeFailures = 0;
  private active = false;
  private isSubscribed = false;
  private flowOk = false;
  private idleTimer: ClockTimer | undefined;
  private lastProbeAt = 0;

  constructor(private readonly deps: SubscriptionKeeperDeps) {
    this.probeTopic = probeTopicFor(deps.clientId);
  }

  get subscribed(): boolean { return this.isSubscribed && this.deps.connection.connected; }
  get flowConfirmed(): boolean { return this.flowOk && this.deps.connection.connected; }

  /** Registers on the connection; call before `connection.start()`. */
  start(): void {
    this.active = true;
    this.deps.connection.onConnect((ev) => { void this.confirm(ev.generation, ev.sessionPresent); });
    this.scheduleIdleCheck();
  }

  stop(): void {
    this.active = false;
    for (const t of [this.probeTimer, this.idleTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.probeTimer = this.idleTimer = undefined;
  }

  private scheduleIdleCheck(): void {
    const every = this.deps.idleProbeMs ?? 60_000;
    if (every <= 0 || !this.active) return;
    this.idleTimer = this.deps.clock.setTimeout(() => {
      this.idleTimer = undefined;
      const now = this.deps.clock.now();
      const last = Math.max(this.deps.lastMessageAt?.() ?? 0, this.lastProbeAt);
      if (this.isSubscribed && this.deps.connection.connected && this.probeTimer === undefined && now - last >= every) {
        this.probe(this.deps.connection.generation);
      }
      this.scheduleIdleCheck();
    }, every);
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

  /** Publishes a probe to our own topic and reconnects when it does not come back in time. */
  private probe(generation: number): void {
    const { connection, logger: log, clock } = this.deps;
    const client = connection.mqttClient;
    if (!client) return;
    this.lastProbeAt = clock.now();
    client.publish(this.probeTopic, JSON.stringify({ probe: generation }), { qos: this.deps.qos });
    if (this.probeTimer !== undefined) clock.clearTimeout(this.probeTimer);
    this.probeTimer = clock.setTimeout(() => {
      this.probeTimer = undefined;
      if (generation !== connection.generation || !this.active) return;
      this.flowOk = false;
      this.probeFailures++;
      const retry = this.probeFailures <= MAX_PROBE_RECONNECTS;
      log.warn({ probe_topic: this.probeTopic, reconnecting: retry }, 'no message flow confirmed: the probe did not come back');
      if (retry) connection.dropConnection();
    }, this.deps.probeTimeoutMs ?? PROBE_TIMEOUT_MS);
  }

  private async confirm(generation: number, sessionPresent: boolean): Promise<void> {
    const { connection, logger: log } = this.deps;
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
      this.probe(generation);
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, 'subscription failed: reconnecting');
      if (generation === connection.generation && this.active) connection.dropConnection();
    }
  }
}
