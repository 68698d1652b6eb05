// MeterIngest: subscribes to the meter topics, validates every reading, hands readings on in
// batches and acknowledges each QoS 1 message only after its readings were handed off.
//
// Throughput and the guarantee together: mqtt.js parses the next inbound packet only after the
// previous one's handleMessage callback, and sends the PUBACK from that callback. MqttConnection
// lets the pump continue at once while the PUBACK is held back; the PUBACKs of a batch are sent,
// in arrival order, after the sink's write() for that batch resolved (group commit). A batch closes
// when it reaches batch_max_size, when the inbound queue has drained and no hand-off is in flight,
// or after batch_max_wait_ms. One hand-off at a time keeps PUBACKs in order (MQTT 3.1.1 §4.6).
// When more than BACKLOG_BATCHES batches wait, the pump is paused (backpressure to the broker).
import type { Meter, Tracer } from '@opentelemetry/api';
import type { IPublishPacket } from 'mqtt';
import type { MeterIngestConfig, MqttConfig } from '../config/site-types.js';
import type { GridSample, GridSampleSource } from '../grid/sources.js';
import { MqttConnection, type AckToken } from '../mqtt/connection.js';
import { SubscriptionKeeper } from '../mqtt/subscription-keeper.js';
import { parseTopicFilter } from '../mqtt/topics.js';
import { backoffDelay, type Clock, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { DropLog } from './drop-log.js';
import { IngestTelemetry, type DroppedReading, type SealedBatch } from './ingest-telemetry.js';
import { IngestStats, type MeterIngestStatus } from './ingest-stats.js';
import { MeterStateTable } from './meter-state.js';
import { loadMeterState, saveMeterState } from './state-file.js';
import { MeterPowerTable } from './power-table.js';
import type { ReadingSink } from './types.js';
import { parsePayload, type ParseResult, type ValidationContext } from './validate.js';

export type { MeterIngestStatus } from './ingest-stats.js';

/** Batches that may wait for hand-off before the inbound pump is paused. */
const BACKLOG_BATCHES = 4;

export interface MeterIngestDeps {
  /** The site's `mqtt:` section; `mqtt.meters` must be set. */
  mqtt: MqttConfig;
  clock: Clock;
  logger: Logger;
  meter: Meter;
  tracer: Tracer;
  /** Where readings are handed off; default the MeterPowerTable (the grid source, which is kept up to date in any case). */
  sink?: ReadingSink;
  /** Appended to the client id (default `-meters`), so DR and ingest keep separate sessions. */
  clientIdSuffix?: string;
  random?: () => number;
  /**
   * Where the dedupe state (recent timestamps and latest kwh per meter) is kept across restarts:
   * read by start(), written by stop(). Without it, duplicates across a restart are not recognised.
   */
  stateFile?: string;
  /** Flow check timing (SubscriptionKeeper); defaults 60 s idle, 5 s probe timeout. */
  idleProbeMs?: number;
  probeTimeoutMs?: number;
}

interface OpenBatch extends SealedBatch {
  acks: AckToken[];
  size: number;
}

export class MeterIngest implements GridSampleSource {
  readonly powerTable: MeterPowerTable;
  private readonly cfg: MeterIngestConfig;
  private readonly sink: ReadingSink;
  private readonly connection: MqttConnection;
  private readonly telemetry: IngestTelemetry;
  private readonly state: MeterStateTable;
  private readonly dropLog: DropLog;
  private readonly stats: IngestStats;
  private readonly ctx: ValidationContext;
  private readonly filters: string[];
  private readonly keeper: SubscriptionKeeper;
  private current: OpenBatch | undefined;
  private readonly queue: OpenBatch[] = [];
  private writing = false;
  private paused: Array<() => void> = [];
  private timer: ClockTimer | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: ClockTimer | undefined;
  private retryAttempt = 0;
  private running = false;
  private started = false;
  private drainWaiters: Array<() => void> = [];
  private readonly scratch: ParseResult = { readings: [], rejections: [] };

  constructor(private readonly deps: MeterIngestDeps) {
    const cfg = deps.mqtt.meters;
    if (!cfg) throw new Error('MeterIngest: mqtt.meters is not configured');
    this.cfg = cfg;
    this.filters = cfg.topics.map((t) => parseTopicFilter(t).subscription);
    this.powerTable = new MeterPowerTable(deps.clock, cfg.meter_stale_after_ms);
    this.sink = deps.sink ?? this.powerTable;
    const clientIdSuffix = deps.clientIdSuffix ?? '-meters';
    this.connection = new MqttConnection({
      cfg: deps.mqtt, clock: deps.clock, logger: deps.logger.child({ component: 'mqtt', client: 'meters' }), clientIdSuffix,
      ...(deps.random ? { random: deps.random } : {}),
    });
    this.telemetry = new IngestTelemetry(deps.meter, deps.tracer, cfg.reading_span_ratio);
    this.state = new MeterStateTable(cfg.dedupe_window_ms);
    this.dropLog = new DropLog(deps.logger.child({ component: 'meters' }), deps.clock);
    this.stats = new IngestStats(deps.clock);
    this.ctx = {
      regions: new Set(cfg.regions ?? []), regionTopicLevel: cfg.region_topic_level,
      maxPayloadBytes: cfg.max_payload_bytes, futureSkewMs: cfg.future_skew_ms,
    };
    this.keeper = new SubscriptionKeeper({
      connection: this.connection, filters: this.filters, qos: cfg.qos, clock: deps.clock,
      logger: deps.logger.child({ component: 'meters' }), clientId: deps.mqtt.client_id + clientIdSuffix,
      lastMessageAt: () => this.stats.lastMessageAt,
      ...(deps.idleProbeMs !== undefined ? { idleProbeMs: deps.idleProbeMs } : {}),
      ...(deps.probeTimeoutMs !== undefined ? { probeTimeoutMs: deps.probeTimeoutMs } : {}),
    });
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('MeterIngest: start() once per instance (after stop(), make a new one)');
    this.started = true;
    this.running = true;
    if (this.deps.stateFile !== undefined) {
      try {
        const restored = this.state.restore(await loadMeterState(this.deps.stateFile), this.deps.clock.now());
        this.deps.logger.info({ meters: restored, file: this.deps.stateFile }, 'meter dedupe state restored');
      } catch (err) {
        // A bad state file costs duplicate detection across this restart, never the start.
        this.deps.logger.warn({ err: { message: (err as Error).message } }, 'meter dedupe state not restored');
      }
    }
    this.connection.setMessageHandler((packet, token, next) => this.onMessage(packet, token, next));
    this.keeper.start();
    this.connection.start();
  }

  /** Hands off what was received, acknowledges it, then disconnects (the session stays on the broker). */
  async stop(opts: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.sealCurrent();
    await this.drained(opts.drainTimeoutMs ?? 5000);
    this.clearTimers();
    await this.connection.stop();
    this.releasePaused();
    if (this.deps.stateFile !== undefined) {
      try {
        await saveMeterState(this.deps.stateFile, this.state.snapshot(this.deps.clock.now()));
      } catch (err) {
        this.deps.logger.warn({ err: { message: (err as Error).message }, file: this.deps.stateFile }, 'meter dedupe state not saved');
      }
    }
  }

  /** Simulates a crash (tests): drops the connection at once; nothing pending is handed off or acknowledged. */
  async abort(): Promise<void> {
    this.running = false;
    this.clearTimers();
    this.current = undefined;
    this.queue.length = 0;
    await this.connection.stop({ force: true });
    this.paused = [];
  }

  /** Drops the network connection (tests, and the flow check): reconnect with backoff follows. */
  dropConnection(): void { this.connection.dropConnection(); }

  gridSamples(): GridSample[] { return this.powerTable.gridSamples(); }

  status(): MeterIngestStatus {
    return this.stats.snapshot({
      connected: this.connection.connected, reconnects: this.connection.reconnects,
      subscribed: this.keeper.subscribed, flowConfirmed: this.keeper.flowConfirmed,
      queuedReadings: this.queue.reduce((n, b) => n + b.size, 0) + (this.current?.size ?? 0),
      meters: this.state.size,
    });
  }

  private onMessage(packet: IPublishPacket, token: AckToken | undefined, next: () => void): void {
    if (this.keeper.handleProbe(packet, token, next)) return;
    if (!this.running) {
      // Stopping: not handed off, not acknowledged, so the broker redelivers it to the next session.
      next();
      return;
    }
    const arrived = this.deps.clock.monotonic();
    const now = this.deps.clock.now();
    const out = this.scratch;
    out.readings.length = 0;
    out.rejections.length = 0;
    try {
      parsePayload(packet.payload as Buffer, packet.topic, this.ctx, now, arrived, out);
    } catch (err) {
      // parsePayload is written not to throw; this keeps a bug from stalling the pump.
      out.rejections.push({ error_type: 'malformed_json', region: 'unknown', detail: `internal: ${(err as Error).message}` });
    }
    const batch = this.openBatch(now);
    for (const r of out.readings) {
      const verdict = this.state.accept(r.meter_id, r.timestamp_ms, r.kwh, now);
      if (verdict === undefined) batch.readings.push(r);
      else batch.rejections.push(this.dropped({ error_type: verdict, region: r.region, meter_id: r.meter_id, detail: `meter ${r.meter_id} timestamp ${r.timestamp_ms}` }, arrived, packet.topic));
    }
    for (const d of out.rejections) batch.rejections.push(this.dropped(d, arrived, packet.topic));
    batch.size += out.readings.length + out.rejections.length;
    if (token) batch.acks.push(token);
    this.stats.message(now);
    if (batch.size >= this.cfg.batch_max_size) this.sealCurrent();
    else this.scheduleSeal();
    if (this.backlog() >= BACKLOG_BATCHES * this.cfg.batch_max_size) this.paused.push(next);
    else next();
  }

  private dropped(d: Omit<DroppedReading, 'arrived_at'>, arrived: number, topic: string): DroppedReading {
    this.dropLog.note(d, topic);
    return { ...d, arrived_at: arrived };
  }

  private openBatch(now: number): OpenBatch {
    if (this.current === undefined) {
      this.current = { readings: [], rejections: [], acks: [], size: 0, openedAtWall: now };
      this.timer = this.deps.clock.setTimeout(() => { this.timer = undefined; this.sealCurrent(); }, this.cfg.batch_max_wait_ms);
    }
    return this.current;
  }

  private scheduleSeal(): void {
    // Close the batch once the packets already received are parsed (setImmediate runs after the
    // pump's nextTick chain), unless a hand-off is in flight: then more readings ride along.
    if (this.immediate !== undefined || this.writing) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      if (!this.writing) this.sealCurrent();
    });
  }

  private backlog(): number {
    let n = this.current?.size ?? 0;
    for (const b of this.queue) n += b.size;
    return n;
  }

  private sealCurrent(): void {
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.current;
    this.current = undefined;
    if (b !== undefined && b.size + b.acks.length > 0) this.queue.push(b);
    this.pump();
  }

  private pump(): void {
    if (this.writing) return;
    const batch = this.queue[0];
    if (batch === undefined) {
      for (const w of this.drainWaiters.splice(0)) w();
      return;
    }
    this.writing = true;
    let write: Promise<void>;
    try {
      write = batch.readings.length > 0 ? this.sink.write(batch.readings) : Promise.resolve();
    } catch (err) {
      write = Promise.reject(err); // a sink that throws instead of rejecting must not break the pump
    }
    write.then(() => this.handedOff(batch), (err: unknown) => this.handOffFailed(err)).catch((err: unknown) => {
      // A bug after the hand-off must not stall the pipeline: log it and go on with the next batch.
      this.deps.logger.error({ err }, 'meter hand-off bookkeeping failed');
      this.writing = false;
      this.pump();
    });
  }

  private handedOff(batch: OpenBatch): void {
    this.queue.shift();
    this.retryAttempt = 0;
    const mono = this.deps.clock.monotonic();
    const now = this.deps.clock.now();
    // The grid's meter load comes from the power table whatever the sink is (in memory, synchronous).
    if (this.sink !== this.powerTable) void this.powerTable.write(batch.readings);
    try {
      this.telemetry.record(batch, mono, now);
    } catch (err) {
      this.deps.logger.error({ err }, 'meter telemetry failed');
    }
    const stale = this.connection.ackMany(batch.acks);
    this.stats.batch(batch.readings, batch.rejections, stale);
    if (stale > 0) this.deps.logger.info({ stale_acks: stale }, 'connection changed before hand-off: the broker redelivers these messages (counted as duplicates)');
    this.writing = false;
    if (this.backlog() < (BACKLOG_BATCHES - 1) * this.cfg.batch_max_size) this.releasePaused();
    // Readings that arrived during the hand-off form the next batch right away.
    if (this.queue.length === 0 && this.current !== undefined) this.sealCurrent();
    else this.pump();
  }

  private handOffFailed(err: unknown): void {
    this.stats.sinkError();
    const delay = backoffDelay(this.retryAttempt++, 100, 5000, this.deps.random);
    this.deps.logger.warn({ err, retry_in_ms: delay }, 'reading hand-off failed; retrying (messages stay unacknowledged)');
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.writing = false;
      this.pump();
    }, delay);
  }

  private releasePaused(): void {
    const waiting = this.paused;
    this.paused = [];
    for (const next of waiting) next();
  }

  private drained(timeoutMs: number): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = this.deps.clock.setTimeout(resolve, timeoutMs);
      this.drainWaiters.push(() => { this.deps.clock.clearTimeout(t); resolve(); });
    });
  }

  private clearTimers(): void {
    for (const t of [this.timer, this.retryTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.timer = this.retryTimer = undefined;
    this.keeper.stop();
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
  }
}
