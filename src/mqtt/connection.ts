// Connection supervision for every MQTT client of the gateway: connect, reconnect with full-jitter
// exponential backoff (mqtt.js only knows a fixed reconnectPeriod), a connection generation per
// CONNACK, and application-controlled QoS 1 acknowledgements that do not stall the packet pump.
import type { Meter } from '@opentelemetry/api';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type Store } from 'mqtt';
import type { MqttConfig } from '../config/site-types.js';
import { backoffDelay, type Clock, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { RepeatLimiter } from '../runtime/rate-limit.js';
import { mqttClientOptions, type MqttClientOptionOverrides } from './options.js';
import { SessionContinuity } from './session-continuity.js';

/** Identifies one received QoS 1 message on one network connection, for a later PUBACK. */
export interface AckToken {
  /** The connection generation when it arrived (see `link` for what decides where its PUBACK may go). */
  readonly generation: number;
  readonly messageId: number;
  /**
   * The network stream it arrived on: its PUBACK goes out on that stream only. The generation cannot
   * decide it: mqtt.js marks a new connection connected at its CONNACK but emits 'connect' (where
   * the generation moves on) only after resending its own unacknowledged publishes, and messages
   * arrive in between (mqtt.js drops the packets an old stream still had queued).
   */
  readonly link: object;
}

/**
 * Receives each PUBLISH. `token` is set for QoS 1: pass it to `MqttConnection.ack()` once the message
 * is handed on. `next()` lets mqtt.js parse the next packet: call it as soon as the message is
 * queued (or later, to apply backpressure). It must be called exactly once.
 */
type MessageHandler = (packet: IPublishPacket, token: AckToken | undefined, next: () => void) => void;

interface ConnectEvent {
  generation: number;
  sessionPresent: boolean;
  /** The broker no longer had the persistent session it had before (session-continuity.ts). */
  sessionLost: boolean;
  connack: IConnackPacket;
}

interface MqttConnectionDeps extends MqttClientOptionOverrides {
  cfg: MqttConfig;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** For tests: how the mqtt.js client is created (default `mqtt.connect`). */
  createClient?: (url: string, options: IClientOptions) => MqttClient;
  /** Names this client in a lost-session warning, ems.mqtt.session_lost{client} and status (default 'mqtt'). */
  client?: string;
  /** What a lost session loses, for its warning (default 'messages'): e.g. 'meter readings'. */
  sessionAtRisk?: string;
  /** Where a lost session is counted (ems.mqtt.session_lost). */
  meter?: Meter;
}

// mqtt.js sends the PUBACK from the callback of handleMessage, and handles the next inbound packet
// only after that. Calling the callback with an error skips the PUBACK but lets the pump go on
// (mqtt 5.16 handlers/publish.js); the PUBACK is then written later by ackMany (PUBACK_BYTES).
const SKIP_PUBACK = new Error('ems: PUBACK deferred until hand-off');

/** The link of a token made without a client: no stream is it, so its PUBACK is never written. */
const NO_LINK: object = Object.freeze({});

/**
 * A PUBACK with reason code 0 and no properties, as mqtt-packet encodes it for MQTT 3.1.1 and 5
 * alike (MQTT 5 §3.4.2.1: the reason code may be left out when it is 0): type 4, remaining length
 * 2, the packet identifier. The deferred PUBACKs are written as these bytes, a batch's in one
 * stream write: through mqtt.js each one took a packet object, a generate() with its own cork and
 * nextTick, and three stream writes.
 */
const PUBACK_BYTES = 4;
function putPuback(buf: Buffer, at: number, messageId: number): void {
  buf[at] = 0x40;
  buf[at + 1] = 0x02;
  buf[at + 2] = messageId >>> 8;
  buf[at + 3] = messageId & 0xff;
}

export class MqttConnection {
  private client: MqttClient | undefined;
  private generationCounter = 0;
  private attempt = 0;
  private reconnectTimer: ClockTimer | undefined;
  private stopping = false;
  private readonly connectListeners: Array<(ev: ConnectEvent) => void> = [];
  private messageHandler: MessageHandler | undefined;
  private readonly errorRepeats: RepeatLimiter;
  private connectedSinceMs: number | undefined;
  reconnects = 0;
  /** Lost broker sessions: detected at every CONNACK, counted, shown on /status. */
  readonly session: SessionContinuity;

  constructor(private readonly deps: MqttConnectionDeps) {
    this.errorRepeats = new RepeatLimiter(deps.clock, { intervalMs: 10_000, maxKeys: 1 });
    this.session = new SessionContinuity({
      client: deps.client ?? 'mqtt', atRisk: deps.sessionAtRisk ?? 'messages', clock: deps.clock, logger: deps.logger,
      ...(deps.meter ? { meter: deps.meter } : {}),
    });
  }

  get generation(): number { return this.generationCounter; }
  get connected(): boolean { return this.client?.connected === true; }
  get mqttClient(): MqttClient | undefined { return this.client; }
  /** Wall-clock ms of the current connection's CONNACK, undefined while disconnected. */
  get connectedSince(): number | undefined { return this.connectedSinceMs; }

  /** Called after every successful CONNACK (first connect and each reconnect). */
  onConnect(listener: (ev: ConnectEvent) => void): void { this.connectListeners.push(listener); }

  /** Replaces mqtt.js's inbound handling; set before start(). */
  setMessageHandler(handler: MessageHandler): void { this.messageHandler = handler; }

  start(): void {
    if (this.client) return;
    this.stopping = false;
    const { cfg } = this.deps;
    const options = mqttClientOptions(cfg, this.deps);
    this.session.expect(options.clean === true, cfg.protocol_version, options.properties?.sessionExpiryInterval);
    const create = this.deps.createClient ?? ((url: string, o: IClientOptions) => mqtt.connect(url, o));
    const client = create(cfg.url, options);
    this.client = client;
    client.handleMessage = (packet, callback) => this.dispatch(packet, callback);
    client.on('connect', (connack) => {
      this.generationCounter++;
      this.attempt = 0;
      this.connectedSinceMs = this.deps.clock.now();
      const sessionLost = this.session.connected(connack.sessionPresent);
      const ev: ConnectEvent = { generation: this.generationCounter, sessionPresent: connack.sessionPresent, sessionLost, connack };
      this.deps.logger.info({ generation: ev.generation, session_present: ev.sessionPresent }, 'mqtt connected');
      for (const l of this.connectListeners) {
        try { l(ev); } catch (err) { this.deps.logger.error({ err }, 'mqtt connect listener failed'); }
      }
    });
    client.on('close', () => {
      this.connectedSinceMs = undefined;
      this.session.disconnected();
      this.scheduleReconnect();
    });
    client.on('error', (err) => {
      // Rate-limited: a broker refusing us every backoff step must not flood the log.
      const suppressed = this.errorRepeats.hit('error');
      if (suppressed !== undefined) {
        this.deps.logger.warn({ err: { message: err.message, code: (err as { code?: unknown }).code }, ...(suppressed > 0 ? { suppressed } : {}) }, 'mqtt error');
      }
    });
  }

  /** Sends the PUBACK for `token`; false when its connection is gone (the broker will redeliver). */
  ack(token: AckToken): boolean {
    return this.ackMany([token]) === 0;
  }

  /**
   * Sends the PUBACKs of a handed-off batch, in order, in one stream write (PUBACK_BYTES each).
   * Returns how many were stale (their connection is gone; the broker redelivers those).
   */
  ackMany(tokens: readonly AckToken[]): number {
    const client = this.client;
    const stream = client?.stream;
    // A destroyed stream may still look connected until its 'close': what is written to it is lost.
    if (!client || !client.connected || !stream || stream.destroyed || !stream.writable) return tokens.length;
    let live = 0;
    for (const t of tokens) if (t.link === stream) live++;
    if (live > 0) {
      const buf = Buffer.allocUnsafe(live * PUBACK_BYTES);
      let at = 0;
      for (const t of tokens) {
        if (t.link !== stream) continue;
        putPuback(buf, at, t.messageId);
        at += PUBACK_BYTES;
      }
      // The same stream mqtt.js writes its packets to, whole packets at a time: the order holds.
      stream.write(buf);
    }
    return tokens.length - live;
  }

  /** Drops the network connection now (as a crash would) and reconnects with backoff. */
  dropConnection(): void {
    this.client?.stream?.destroy();
  }

  async stop(opts: { force?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer !== undefined) this.deps.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { client.end(true, () => resolve()); }, 2000);
      client.end(opts.force === true, () => { clearTimeout(t); resolve(); });
    });
  }

  private dispatch(packet: IPublishPacket, callback: (err?: Error) => void): void {
    const handler = this.messageHandler;
    if (!handler || packet.qos !== 1 || packet.messageId === undefined) {
      // QoS 0 (nothing to ack) and QoS 2 (never requested: subscriptions ask for QoS <= 1).
      if (handler) handler(packet, undefined, () => callback());
      else callback();
      return;
    }
    // The stream mqtt.js parsed this packet from: a superseded stream's queued packets are dropped
    // before they reach here (mqtt 5.16 client.js, `pump.isCurrent`).
    const token: AckToken = { generation: this.generationCounter, messageId: packet.messageId, link: this.client?.stream ?? NO_LINK };
    let called = false;
    handler(packet, token, () => {
      if (called) return;
      called = true;
      callback(SKIP_PUBACK);
    });
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== undefined || !this.client) return;
    const { cfg, clock, random } = this.deps;
    const span = Math.max(0, cfg.reconnect_max_ms - cfg.reconnect_min_ms);
    const delay = cfg.reconnect_min_ms + backoffDelay(this.attempt, cfg.reconnect_min_ms, span, random);
    this.attempt++;
    this.reconnectTimer = clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      const client = this.client;
      if (this.stopping || !client || client.connected) return;
      this.reconnects++;
      // Keep the stores: QoS 1 publishes of this client (e.g. DR acks) still in flight are resent.
      client.reconnect({ incomingStore: client.incomingStore as Store, outgoingStore: client.outgoingStore as Store });
    }, delay);
  }
}
