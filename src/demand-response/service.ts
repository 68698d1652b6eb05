// DemandResponseService: the composition of the DR path. Its own MQTT connection (client id suffix
// `-dr`, so a meter flood never delays a command), the intake gate, the coordinator of active
// curtailments, acks on the ack topic, metrics. A QoS 1 command is PUBACKed only after its id is
// durably recorded; anything the broker or a sender sends is answered, never thrown.
import type { KeyObject } from 'node:crypto';
import { ROOT_CONTEXT, SpanStatusCode, type Context, type Counter, type Meter, type Tracer } from '@opentelemetry/api';
import mqtt, { type IPublishPacket } from 'mqtt';
import type { DeviceProfile } from '../config/profile-types.js';
import { DR_OVER_MQTT311_WARNING } from '../config/site-checks.js';
import type { DemandResponseConfig, MqttConfig, SiteConfig } from '../config/site-types.js';
import { MqttConnection } from '../mqtt/connection.js';
import type { SessionStatus } from '../mqtt/session-continuity.js';
import { ackTopicFor, commandTopicFilter } from '../mqtt/topics.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { rateLimitedLogger, type RateLimitedLogger } from '../runtime/rate-limit.js';
import { METRIC_ATTRS, METRIC_UNITS, METRICS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import { ackMessage, type DrAck } from './ack.js';
import { LIMITS, type RejectReason } from './command.js';
import { DrCoordinator } from './coordinator.js';
import { ControllerExecutor, type EndpointLookup } from './executor.js';
import { admit, type Admission } from './intake.js';
import { leftOutControllers, zoneControllers, type LoadProvider } from './planner.js';
import { RejectAnswers, type Held } from './reject-answers.js';
import { parsePrivateKey, parsePublicKey } from '../runtime/ed25519-keys.js';
import { DrStateStore, type ActiveCommandRecord } from './state-store.js';
import { contextFromTraceparent, userProperty } from './trace-context.js';
import { warmUp } from './warm-up.js';

/** Commands above LIMITS.maxMessageBytes are answered `oversized`; far above it they are not even delivered. */
const MAX_PACKET_BYTES = 4 * LIMITS.maxMessageBytes;
/** At most one answer per interval to messages anyone can send (reject-answers.ts). */
const NOISE_ANSWER_INTERVAL_MS = 1000;

/** How a message was delivered, as far as the gate cares. */
interface DeliveryMeta {
  /** RETAIN as delivered (MQTT v5 subscriptions ask for retain-as-published). */
  retained: boolean;
  /** MQTT DUP: the broker redelivers a message it sent on an earlier connection. */
  dup?: boolean;
  /** QoS as delivered; default 1. */
  qos?: 0 | 1 | 2;
  traceparent?: string;
}

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
  /** At most one answer per this interval to unauthenticated messages and replays; default 1 s (0: answer each). */
  noiseAnswerIntervalMs?: number;
  /**
   * Rehearse the DR path at start-up against in-memory stand-ins (warm-up.ts: nothing reaches a
   * device, the broker, the state file or the telemetry), so the first command runs warm; default true.
   */
  warmUp?: boolean;
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
  /** The gateway's own key: every ack is signed with it (undefined: acks go unsigned). */
  private ackKey: KeyObject | undefined;
  private zones = new Set<string>();
  private store: DrStateStore | undefined;
  private coordinator: DrCoordinator | undefined;
  private connection: MqttConnection | undefined;
  private stopping = false;
  private commands: Counter | undefined;
  private audit: Logger | undefined;
  private noiseLog: RateLimitedLogger | undefined;
  private noise: RejectAnswers | undefined;
  private acksSuppressed: Counter | undefined;
  private subscribedOnce: (() => void) | undefined;
  private readonly subscribed = new Promise<void>((resolve) => { this.subscribedOnce = resolve; });

  constructor(deps: DemandResponseDeps) {
    this.deps = deps;
  }

  private get noiseIntervalMs(): number {
    return this.deps.noiseAnswerIntervalMs ?? NOISE_ANSWER_INTERVAL_MS;
  }

  async start(): Promise<void> {
    const { deps } = this;
    const log = deps.logger.child({ component: 'demand-response' });
    this.stopping = false;
    this.audit = log;
    this.noiseLog = rateLimitedLogger(log, deps.clock, { intervalMs: 10_000, maxKeys: 100 });
    this.noise = new RejectAnswers(deps.clock, this.noiseIntervalMs, (held) => this.publishHeld(held));
    this.keys = deps.config.public_keys.map((k, i) => parsePublicKey(k, `mqtt.demand_response.public_keys[${i}]`));
    if (this.keys.length === 0) throw new Error('mqtt.demand_response.public_keys: at least one Ed25519 public key is required');
    this.ackKey = deps.config.gateway_key === undefined ? undefined : parsePrivateKey(deps.config.gateway_key, 'mqtt.demand_response.gateway_key_file');
    if (this.ackKey === undefined) log.warn('DR acks are not signed (no mqtt.demand_response.gateway_key_file): anyone who may publish on the ack topic can answer in the gateway\'s name');
    this.zones = new Set(zoneControllers(deps.site.devices, deps.profiles).map((c) => c.device.zone));
    for (const l of leftOutControllers(deps.site.devices, deps.profiles)) log.warn({ device: l.device, reason: l.reason }, 'DR: load controller left out');
    this.commands = deps.meter.createCounter(METRICS.drCommands, { unit: METRIC_UNITS.drCommands, description: 'DR commands received, by type and result (accepted or the rejection reason)' });
    this.acksSuppressed = deps.meter.createCounter(METRICS.drAcksSuppressed, {
      unit: METRIC_UNITS.drAcksSuppressed, description: 'rejections of unauthenticated messages and replays not answered (one answer per second; the next carries the count)',
    });
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
    if (deps.mqtt?.protocol_version === 4) log.warn({ protocol_version: 4 }, DR_OVER_MQTT311_WARNING);
    // Before the subscription: no command waits behind the rehearsal.
    if (deps.warmUp ?? true) await this.rehearse(log);
    if (deps.mqtt) this.startMqtt(deps.mqtt, log);
    const coordinator = this.coordinator;
    await coordinator.enqueue('resume', () => coordinator.resume());
    coordinator.watch();
  }

  private async rehearse(log: Logger): Promise<void> {
    const { deps } = this;
    try {
      const r = await warmUp({
        site: deps.site, profiles: deps.profiles, config: deps.config, clock: deps.clock,
        ...(this.ackKey ? { ackKey: this.ackKey } : {}), ...(deps.loadKw ? { loadKw: deps.loadKw } : {}),
      });
      if (r.tasks > 0) log.info({ warm_up_ms: Math.round(r.ms), controller_commands: r.tasks, rounds: r.rounds }, 'DR path warmed up (rehearsed in memory: nothing written to any device)');
    } catch (err) {
      // Only speed is lost: the first command runs cold.
      log.warn({ err }, 'DR warm-up failed: the first command will run cold');
    }
  }

  async stop(): Promise<void> {
    // From here on a command is neither admitted nor acknowledged: the broker keeps it for the
    // next session (its end timer could not be scheduled on a coordinator that is stopping).
    this.stopping = true;
    this.noise?.stop();
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
   * One command message. Admission is synchronous (the id and its verdict are on disk when this
   * returns), the Modbus work is queued; the returned promise resolves when the command has been
   * fully handled.
   */
  handleMessage(payload: Buffer, meta: DeliveryMeta): Promise<void> {
    const { deps } = this;
    const coordinator = this.coordinator;
    const store = this.store;
    if (!coordinator || !store) return Promise.resolve();
    let admission: Admission;
    try {
      admission = admit({ payload, retained: meta.retained, qos: meta.qos ?? 1 }, {
        siteId: deps.site.site.id, keys: this.keys, zones: this.zones, skewMs: deps.config.max_clock_skew_ms, store, now: deps.clock.now(),
      });
    } catch (err) {
      // admit() answers every input itself; reaching here is a gateway bug. Nothing was written.
      this.deps.logger.error({ err }, 'DR intake failed');
      return Promise.resolve();
    }
    if (!admission.ok) {
      this.reject(admission, meta);
      return Promise.resolve();
    }
    const { command } = admission;
    // The transport's trace context (MQTT v5 user property) wins over the one in the body.
    const tp = meta.traceparent ?? admission.traceparent;
    if (tp !== undefined && command.traceparent === undefined) command.traceparent = tp;
    const parent: Context = contextFromTraceparent(tp) ?? ROOT_CONTEXT;
    this.commands?.add(1, { [METRIC_ATTRS.commandType]: command.type, [METRIC_ATTRS.result]: 'accepted' });
    this.audit?.info({ command_id: command.command_id, type: command.type, zone: command.zone, reduction_mw: command.reduction_mw, duration_minutes: command.duration_minutes }, 'DR command accepted');
    return coordinator.enqueue(command.command_id, () => command.type === 'curtail' ? coordinator.curtail(command, parent) : coordinator.restore(command, parent));
  }

  private reject(r: Extract<Admission, { ok: false }>, meta: DeliveryMeta): void {
    const { rejection, commandId, authenticated, known } = r;
    if (rejection.reason === 'internal_error') this.deps.logger.error({ command_id: commandId, detail: rejection.message }, 'DR intake failed');
    this.commands?.add(1, { [METRIC_ATTRS.commandType]: 'unknown', [METRIC_ATTRS.result]: rejection.reason });
    const line = { command_id: commandId, authenticated, reason: rejection.reason, detail: rejection.message, retained: meta.retained, ...(known ? { first_verdict: known.verdict } : {}) };
    // A signed command's rejection is always logged; unauthenticated traffic and replays once per reason per 10 s.
    if (authenticated && !known) this.audit?.warn(line, 'DR command rejected');
    else this.noiseLog?.warn(`reject:${rejection.reason}`, line, 'DR command rejected');
    if (known && this.isSameCommandAgain(known, meta, commandId)) return;
    // Anyone can send garbage or repeat a signed command: those answers are rate-limited, and so
    // are their error spans (one per answer).
    let held: Held | undefined;
    if (!authenticated || known) {
      held = this.noise?.answer(rejection.reason);
      if (held === undefined) {
        this.acksSuppressed?.add(1, { [METRIC_ATTRS.result]: rejection.reason });
        return;
      }
    }
    // A rejected command still leaves a span in the caller's trace, so the EMS sees why.
    const span = this.deps.tracer.startSpan(SPANS.drSend, {
      attributes: {
        [SPAN_ATTRS.drControllerCount]: 0, [SPAN_ATTRS.drAckCount]: 0, [SPAN_ATTRS.drRejectReason]: rejection.reason,
        ...(commandId !== null && authenticated ? { [SPAN_ATTRS.drCommandId]: commandId } : {}),
        ...(held && held.total > 0 ? { [SPAN_ATTRS.drSuppressed]: held.total } : {}),
      },
    }, contextFromTraceparent(meta.traceparent) ?? ROOT_CONTEXT);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `rejected: ${rejection.reason}` });
    span.end();
    this.publish({
      v: 1, command_id: commandId, site_id: this.deps.site.site.id, status: 'rejected', at: new Date(this.deps.clock.now()).toISOString(),
      reason: rejection.reason, detail: rejection.message, authenticated,
      ...(known ? { first_verdict: known.verdict } : {}),
      ...(held && held.total > 0 ? { suppressed: held.total, suppressed_reasons: held.byReason } : {}),
    });
  }

  /**
   * A copy of a command already answered that needs no second answer (each command id is answered
   * once, with the truth): the retained copy a broker sends on (re)subscribe after the session's
   * queued copy was answered, and a broker redelivery (DUP) of a command that is running.
   */
  private isSameCommandAgain(known: { verdict: string }, meta: DeliveryMeta, commandId: string | null): boolean {
    if (meta.retained) {
      // Only a delivery that could not show the retain flag (MQTT 3.1.1, or a broker without
      // retain-as-published) lets a retained command run before its retained copy arrives.
      if (known.verdict === 'accepted') this.audit?.error({ command_id: commandId }, 'DR command was published retained and ran before its retained copy showed it (the delivery carried no retain flag): use MQTT v5 and clear the retained message');
      return true;
    }
    return meta.dup === true && commandId !== null && (this.coordinator?.status() ?? []).some((r) => r.command_id === commandId);
  }

  /** The aggregate answer at the end of an interval in which rejections were held back. */
  private publishHeld(held: Held): void {
    const top = (Object.entries(held.byReason) as Array<[RejectReason, number]>).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'malformed_json';
    this.publish({
      v: 1, command_id: null, site_id: this.deps.site.site.id, status: 'rejected', at: new Date(this.deps.clock.now()).toISOString(),
      reason: top, detail: `${held.total} rejected messages (unauthenticated or replays) were not answered one by one (at most one answer per ${this.noiseIntervalMs} ms)`,
      authenticated: false, suppressed: held.total, suppressed_reasons: held.byReason, aggregate: true,
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
    client.publish(topic, ackMessage(ack, this.ackKey), { qos: 1, retain: false }, (err) => {
      if (err) this.deps.logger.warn({ err, command_id: ack.command_id, status: ack.status }, 'DR ack publish failed');
    });
  }

  private startMqtt(cfg: MqttConfig, log: Logger): void {
    const filter = commandTopicFilter(this.deps.config.command_topic, { site: this.deps.site.site.id });
    const v5 = cfg.protocol_version === 5;
    const connection = new MqttConnection({
      cfg, clock: this.deps.clock, logger: log.child({ mqtt: 'dr' }), clientIdSuffix: '-dr',
      client: 'dr', sessionAtRisk: 'DR commands', meter: this.deps.meter,
      // MQTT 3.1.1 delivers a message queued in a persistent session without its retain flag
      // (§3.3.1.3), so a command published retained while the gateway was away could not be told
      // from a fresh one: over 3.1.1 the DR session is clean and nothing is queued for it (the EMS
      // re-issues what got no answer). MQTT v5 keeps the session: retain-as-published flags the
      // queued copy too.
      clean: !v5,
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
      const meta: DeliveryMeta = { retained: packet.retain, dup: packet.dup, qos: packet.qos, ...(tp !== undefined ? { traceparent: tp } : {}) };
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      // Admission (and the durable replay record) happens inside handleMessage before it returns:
      // only then is the PUBACK sent. The Modbus work continues in the background.
      void this.handleMessage(payload, meta);
      if (token) connection.ack(token);
      next();
    });
    // Subscribed on every connect: a broker that lost our session must not leave us deaf (telegraf#16293).
    // MQTT v5 retain-as-published: a command published with retain=true keeps the flag on delivery,
    // live or queued while we were away (without it, MQTT v5 clears the flag like 3.1.1 does).
    const options = v5 ? { qos: 1 as const, rap: true } : { qos: 1 as const };
    connection.onConnect(() => {
      connection.mqttClient?.subscribe(filter, options, (err, granted) => {
        const refusedByBroker = granted?.some((g) => g.qos === 128) === true;
        if (err || refusedByBroker) log.error({ err, filter, granted }, 'DR command subscription failed (broker ACL?)');
        else {
          log.info({ filter }, 'DR subscribed to commands');
          this.subscribedOnce?.();
        }
      });
    });
    connection.start();
  }
}

