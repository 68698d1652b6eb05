// DemandResponseService: the composition of the DR path. Its own MQTT connection (client id suffix
// `-dr`, so a meter flood never delays a command), the intake gate, the coordinator of active
// curtailments, acks on the ack topic, metrics. A QoS 1 command is PUBACKed only after its id is
// durably recorded; anything the broker or a sender sends is answered, never thrown.
import type { KeyObject } from 'node:crypto';
import { ROOT_CONTEXT, SpanStatusCode, type Context, type Counter, type Meter, type Tracer } from '@opentelemetry/api';
import mqtt, { type IPublishPacket } from 'mqtt';
import type { DeviceProfile } from '../config/profile-types.js';
import type { DemandResponseConfig, MqttConfig, SiteConfig } from '../config/site-types.js';
import { MqttConnection } from '../mqtt/connection.js';
import type { SessionStatus } from '../mqtt/session-continuity.js';
import { ackTopicFor, commandTopicFilter } from '../mqtt/topics.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { rateLimitedLogger, type RateLimitedLogger } from '../runtime/rate-limit.js';
import { METRIC_ATTRS, METRIC_UNITS, METRICS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import type { DrAck } from './ack.js';
import { CommandRejection, LIMITS, type DrCommand } from './command.js';
import { DrCoordinator } from './coordinator.js';
import { ControllerExecutor, type EndpointLookup } from './executor.js';
import { admit, peekCommandId } from './intake.js';
import { zoneControllers, type LoadProvider } from './planner.js';
import { parsePublicKey } from './signing.js';
import { DrStateStore, type ActiveCommandRecord } from './state-store.js';
import { contextFromTraceparent, userProperty } from './trace-context.js';

/** Commands above LIMITS.maxMessageBytes are answered `oversized`; far above it they are not even delivered. */
const MAX_PACKET_BYTES = 4 * LIMITS.maxMessageBytes;

export interface DemandResponseDeps {
  config: DemandResponseConfig;
  /** The site's broker; omitted: no MQTT (commands arrive through `handleMessage`, acks through `onAck`). */
  mqtt?: MqttConfig;
  site: SiteConfig;
  profiles: ReadonlyMap<string, DeviceProfile>;
  /** The shared per-host:port Modbus endpoint of a device (EndpointPool), undefined when none. */
  endpoints: EndpointLookup;
  meter: Meter;
  tracer: Tracer;
  clock: Clock;
  logger: Logger;
  /** Current load per device in kW (latest poll), for planning; default: capacity_kw. */
  loadKw?: LoadProvider;
  /** Also called with every ack (tests, status page). */
  onAck?: (ack: DrAck) => void;
  onStartActive?: 'reassert' | 'restore';
  /** Early-reversion check interval; default 30 s, 0 disables. */
  checkIntervalMs?: number;
}

export interface DemandResponseStatus {
  dry_run: boolean;
  connected: boolean;
  /** The command subscription's broker session (absent without MQTT). */
  session?: SessionStatus;
  active: Array<Pick<ActiveCommandRecord, 'command_id' | 'zone' | 'reduction_mw' | 'restore_pending'> & { ends_at: string; controllers: number }>;
}

export class DemandResponseService {
  private readonly deps: DemandResponseDeps;
  private keys: KeyObject[] = [];
  private zones = new Set<string>();
  private store: DrStateStore | undefined;
  private coordinator: DrCoordinator | undefined;
  private connection: MqttConnection | undefined;
  private stopping = false;
  private commands: Counter | undefined;
  private audit: Logger | undefined;
  private noiseLog: RateLimitedLogger | undefined;
  private subscribedOnce: (() => void) | undefined;
  private readonly subscribed = new Promise<void>((resolve) => { this.subscribedOnce = resolve; });

  constructor(deps: DemandResponseDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    const { deps } = this;
    const log = deps.logger.child({ component: 'demand-response' });
    this.stopping = false;
    this.audit = log;
    this.noiseLog = rateLimitedLogger(log, deps.clock, { intervalMs: 10_000, maxKeys: 100 });
    this.keys = deps.config.public_keys.map((k, i) => parsePublicKey(k, `mqtt.demand_response.public_keys[${i}]`));
    if (this.keys.length === 0) throw new Error('mqtt.demand_response.public_keys: at least one Ed25519 public key is required');
    this.zones = new Set(zoneControllers(deps.site.devices, deps.profiles).map((c) => c.device.zone));
    this.commands = deps.meter.createCounter(METRICS.drCommands, { unit: METRIC_UNITS.drCommands, description: 'DR commands received, by type and result (accepted or the rejection reason)' });
    const controllerCommands = deps.meter.createCounter(METRICS.drControllerCommands, {
      unit: METRIC_UNITS.drControllerCommands,
      description: 'DR controller commands by outcome; ack rate = outcome="acknowledged" / all outcomes except "dry_run"',
    });
    const stateRefused = deps.meter.createCounter(METRICS.drStateRefused, {
      unit: METRIC_UNITS.drStateRefused, description: 'stored DR controller records refused: their device or control is no longer in the site / profile',
    });
    const store = new DrStateStore(deps.config.state_file);
    store.load();
    this.store = store;
    const executor = new ControllerExecutor({
      endpoints: deps.endpoints, clock: deps.clock, audit: log, tracer: deps.tracer, controllerCommands, dryRun: deps.config.dry_run,
    });
    this.coordinator = new DrCoordinator({
      site: deps.site, profiles: deps.profiles, config: deps.config, executor, endpoints: deps.endpoints, store,
      clock: deps.clock, logger: log, tracer: deps.tracer, publish: (ack) => this.publish(ack), stateRefused,
      onStartActive: deps.onStartActive ?? 'reassert', checkIntervalMs: deps.checkIntervalMs ?? 30_000,
      ...(deps.loadKw ? { loadKw: deps.loadKw } : {}),
    });
    if (deps.mqtt) this.startMqtt(deps.mqtt, log);
    const coordinator = this.coordinator;
    await coordinator.enqueue('resume', () => coordinator.resume());
    coordinator.watch();
  }

  async stop(): Promise<void> {
    // From here on a command is neither admitted nor acknowledged: the broker keeps it for the
    // next session (its end timer could not be scheduled on a coordinator that is stopping).
    this.stopping = true;
    this.coordinator?.stop();
    await this.coordinator?.idle();
    await this.connection?.stop();
    this.connection = undefined;
  }

  /** Resolves once every command received so far has been fully handled. */
  idle(): Promise<void> {
    return this.coordinator?.idle() ?? Promise.resolve();
  }

  /** Resolves after the first successful subscription to the command topic (or after `timeoutMs`). */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    const ok = await Promise.race([this.subscribed.then(() => true), timeout]);
    clearTimeout(timer);
    return ok;
  }

  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  status(): DemandResponseStatus {
    const session = this.connection?.session.status();
    return {
      dry_run: this.deps.config.dry_run,
      connected: this.connected,
      ...(session ? { session } : {}),
      active: (this.coordinator?.status() ?? []).map((r) => ({
        command_id: r.command_id, zone: r.zone, reduction_mw: r.reduction_mw, ends_at: new Date(r.ends_at).toISOString(),
        controllers: r.controllers.length, ...(r.restore_pending ? { restore_pending: true } : {}),
      })),
    };
  }

  /**
   * One command message. Admission is synchronous (the id is on disk when this returns), the
   * Modbus work is queued; the returned promise resolves when the command has been fully handled.
   */
  handleMessage(payload: Buffer, meta: { retained: boolean; dup?: boolean; traceparent?: string }): Promise<void> {
    const { deps } = this;
    const coordinator = this.coordinator;
    const store = this.store;
    if (!coordinator || !store) return Promise.resolve();
    let command: DrCommand;
    let parent: Context;
    try {
      const accepted = admit({ payload, retained: meta.retained }, {
        siteId: deps.site.site.id, keys: this.keys, zones: this.zones, skewMs: deps.config.max_clock_skew_ms, store, now: deps.clock.now(),
      });
      command = accepted.command;
      // The transport's trace context (MQTT v5 user property) wins over the one in the body.
      const tp = meta.traceparent ?? accepted.traceparent;
      if (tp !== undefined && command.traceparent === undefined) command.traceparent = tp;
      parent = contextFromTraceparent(tp) ?? ROOT_CONTEXT;
    } catch (err) {
      this.reject(payload, meta, err);
      return Promise.resolve();
    }
    this.commands?.add(1, { [METRIC_ATTRS.commandType]: command.type, [METRIC_ATTRS.result]: 'accepted' });
    this.audit?.info({ command_id: command.command_id, type: command.type, zone: command.zone, reduction_mw: command.reduction_mw, duration_minutes: command.duration_minutes }, 'DR command accepted');
    return coordinator.enqueue(command.command_id, () => command.type === 'curtail' ? coordinator.curtail(command, parent) : coordinator.restore(command, parent));
  }

  private reject(payload: Buffer, meta: { retained: boolean; dup?: boolean; traceparent?: string }, err: unknown): void {
    const rejection = err instanceof CommandRejection ? err : new CommandRejection('internal_error', err instanceof Error ? err.message : String(err));
    if (!(err instanceof CommandRejection)) this.deps.logger.error({ err }, 'DR intake failed');
    const commandId = peekCommandId(payload, this.keys);
    this.commands?.add(1, { [METRIC_ATTRS.commandType]: 'unknown', [METRIC_ATTRS.result]: rejection.reason });
    // A rejected command still leaves a span in the caller's trace, so the EMS sees why.
    const span = this.deps.tracer.startSpan(SPANS.drSend, { attributes: { [SPAN_ATTRS.drControllerCount]: 0, [SPAN_ATTRS.drAckCount]: 0, 'ems.dr.reject_reason': rejection.reason } }, contextFromTraceparent(meta.traceparent) ?? ROOT_CONTEXT);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `rejected: ${rejection.reason}` });
    span.end();
    const line = { command_id: commandId, reason: rejection.reason, detail: rejection.message, retained: meta.retained };
    // A signed command's rejection is always logged; unauthenticated traffic once per reason per 10 s.
    if (commandId !== null) this.audit?.warn(line, 'DR command rejected');
    else this.noiseLog?.warn(`reject:${rejection.reason}`, line, 'DR command rejected');
    // The broker redelivering (DUP) a command that is running (admitted, answered, then the connection
    // dropped before the PUBACK) is not the EMS replaying it: a 'rejected' ack would contradict the
    // 'accepted' one. Any other replay, e.g. after a crash before the first answer, is answered.
    if (rejection.reason === 'replayed' && meta.dup === true && commandId !== null
      && (this.coordinator?.status() ?? []).some((r) => r.command_id === commandId)) return;
    this.publish({
      v: 1, command_id: commandId, site_id: this.deps.site.site.id, status: 'rejected', at: new Date(this.deps.clock.now()).toISOString(),
      reason: rejection.reason, detail: rejection.message,
    });
  }

  private publish(ack: DrAck): void {
    this.deps.onAck?.(ack);
    const client = this.connection?.mqttClient;
    if (!client) return;
    let topic: string;
    try {
      topic = ackTopicFor(this.deps.config.ack_topic, { command_id: ack.command_id ?? 'unknown', site: this.deps.site.site.id });
    } catch (err) {
      this.deps.logger.error({ err, command_id: ack.command_id }, 'DR ack topic cannot be built');
      return;
    }
    // QoS 1, never retained: an ack is an event, not a state a late subscriber should see as current.
    client.publish(topic, JSON.stringify(ack), { qos: 1, retain: false }, (err) => {
      if (err) this.deps.logger.warn({ err, command_id: ack.command_id, status: ack.status }, 'DR ack publish failed');
    });
  }

  private startMqtt(cfg: MqttConfig, log: Logger): void {
    const filter = commandTopicFilter(this.deps.config.command_topic, { site: this.deps.site.site.id });
    const connection = new MqttConnection({
      cfg, clock: this.deps.clock, logger: log.child({ mqtt: 'dr' }), clientIdSuffix: '-dr',
      client: 'dr', sessionAtRisk: 'DR commands', meter: this.deps.meter,
      // MQTT v5: the broker must not even send us a packet far above a command's size limit, so a
      // hostile publisher cannot make the gateway buffer megabytes (mqtt.js accepts up to 256 MB).
      createClient: (url, options) => mqtt.connect(url, cfg.protocol_version === 5
        ? { ...options, properties: { ...options.properties, maximumPacketSize: MAX_PACKET_BYTES } }
        : options),
    });
    this.connection = connection;
    connection.setMessageHandler((packet: IPublishPacket, token, next) => {
      if (this.stopping) {
        next();
        return;
      }
      const tp = userProperty(packet.properties?.userProperties, 'traceparent');
      const meta = { retained: packet.retain, dup: packet.dup, ...(tp !== undefined ? { traceparent: tp } : {}) };
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      // Admission (and the durable replay record) happens inside handleMessage before it returns:
      // only then is the PUBACK sent. The Modbus work continues in the background.
      void this.handleMessage(payload, meta);
      if (token) connection.ack(token);
      next();
    });
    // Subscribed on every connect: a broker that lost our session must not leave us deaf (telegraf#16293).
    connection.onConnect(() => {
      connection.mqttClient?.subscribe(filter, { qos: 1 }, (err) => {
        if (err) log.error({ err, filter }, 'DR command subscription failed');
        else {
          log.info({ filter }, 'DR subscribed to commands');
          this.subscribedOnce?.();
        }
      });
    });
    connection.start();
  }
}

