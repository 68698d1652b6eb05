// MeterIngest: subscribes to the meter topics, validates every reading, hands readings on in
// batches (hand-off.ts) and acknowledges each QoS 1 message only after its readings were handed
// off. The composition: MqttConnection (reconnects, deferred PUBACKs), SubscriptionKeeper
// (resubscribe + flow probe), validation and per-meter state, HandOffPipeline, telemetry.
import type { Meter, Tracer } from '@opentelemetry/api';
import { CumulativeProducer } from '../telemetry/cumulative-producer.js';
import type { IPublishPacket } from 'mqtt';
import type { MeterIngestConfig, MqttConfig } from '../config/site-types.js';
import type { GridRole, GridSample, GridSampleSource } from '../grid/sources.js';
import { MqttConnection, type AckToken } from '../mqtt/connection.js';
import { SubscriptionKeeper } from '../mqtt/subscription-keeper.js';
import { parseTopicFilter } from '../mqtt/topics.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { decodeJournal } from './dedupe-journal.js';
import { DropLog } from './drop-log.js';
import { HandOffPipeline } from './hand-off.js';
import { IngestTelemetry } from './ingest-telemetry.js';
import { IngestStats, type MeterIngestStatus } from './ingest-stats.js';
import { MeterStateTable } from './meter-state.js';
import { OpenRegions } from './open-regions.js';
import { loadMeterState, saveMeterState } from './state-file.js';
import { MeterPowerTable } from './power-table.js';
import { ReadingPool } from './reading-pool.js';
import { SlotTable } from './slot-table.js';
import { StateBound } from './state-bound.js';
import type { ReadingSink, ValidReading } from './types.js';
import { parsePayload, UNKNOWN_REGION, type DroppedReading, type ValidationContext } from './validate.js';

export type { MeterIngestStatus } from './ingest-stats.js';

interface MeterIngestDeps {
  /** The site's `mqtt:` section; `mqtt.meters` must be set. */
  mqtt: MqttConfig;
  clock: Clock;
  logger: Logger;
  meter: Meter;
  tracer: Tracer;
  /**
   * Where the ems.meter.* counters and histograms are aggregated and exported from (the
   * telemetry's cumulativeProducer; a reader must have it registered to see them). Without it they
   * are counted in a producer of their own that no reader exports (benchmarks).
   */
  producer?: CumulativeProducer;
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
  /** Distinct regions taken while `mqtt.meters.regions` is unset (default MAX_OPEN_REGIONS; tests). */
  maxOpenRegions?: number;
  /** Flow check timing (SubscriptionKeeper); defaults 60 s idle, 5 s probe timeout. */
  idleProbeMs?: number;
  probeTimeoutMs?: number;
}

export class MeterIngest implements GridSampleSource {
  readonly powerTable: MeterPowerTable;
  private readonly cfg: MeterIngestConfig;
  private readonly connection: MqttConnection;
  private readonly state: MeterStateTable;
  private readonly dropLog: DropLog;
  private readonly stats: IngestStats;
  private readonly ctx: ValidationContext;
  private readonly filters: string[];
  private readonly keeper: SubscriptionKeeper;
  private readonly pipeline: HandOffPipeline;
  private readonly telemetry: IngestTelemetry;
  private readonly bound: StateBound;
  private running = false;
  private started = false;
  /** Records of valid readings, reused once handed off to a sink that copies them (reading-pool.ts). */
  private readonly readingPool = new ReadingPool();

  constructor(private readonly deps: MeterIngestDeps) {
    const cfg = deps.mqtt.meters;
    if (!cfg) throw new Error('MeterIngest: mqtt.meters is not configured');
    this.cfg = cfg;
    this.filters = cfg.topics.map((t) => parseTopicFilter(t).subscription);
    // One table of meters for the dedupe state and the power table (each meter's id stored once),
    // at most max_meters; a meter is forgotten once silent for the dedupe window, or until its
    // last reading can no longer be fresh when that is later (meter_stale_after + future_skew).
    const slots = new SlotTable({
      maxSize: cfg.max_meters, activeMs: cfg.dedupe_window_ms,
      forgetAfterMs: Math.max(cfg.dedupe_window_ms, cfg.meter_stale_after_ms + cfg.future_skew_ms),
    });
    this.powerTable = new MeterPowerTable(deps.clock, cfg.meter_stale_after_ms, { slots });
    this.bound = new StateBound(slots, deps.clock, deps.meter);
    const clientIdSuffix = deps.clientIdSuffix ?? '-meters';
    this.connection = new MqttConnection({
      cfg: deps.mqtt, clock: deps.clock, logger: deps.logger.child({ component: 'mqtt', client: 'meters' }), clientIdSuffix,
      client: 'meters', sessionAtRisk: 'meter readings', meter: deps.meter,
      ...(deps.random ? { random: deps.random } : {}),
    });
    this.state = new MeterStateTable(cfg.dedupe_window_ms, { slots });
    slots.allocateColumns(); // both column sets attached
    this.dropLog = new DropLog(deps.logger.child({ component: 'meters' }), deps.clock);
    this.telemetry = new IngestTelemetry(deps.producer ?? new CumulativeProducer({ name: 'ems-gateway' }), deps.tracer, cfg.reading_span_ratio);
    this.stats = new IngestStats(deps.clock);
    this.pipeline = new HandOffPipeline({
      sink: deps.sink ?? this.powerTable, powerTable: this.powerTable, connection: this.connection, readingPool: this.readingPool,
      telemetry: this.telemetry, stats: this.stats,
      clock: deps.clock, logger: deps.logger.child({ component: 'meters' }), batchMaxSize: cfg.batch_max_size,
      batchMaxWaitMs: cfg.batch_max_wait_ms, ...(deps.random ? { random: deps.random } : {}),
    });
    const regions = new Set(cfg.regions ?? []);
    this.ctx = {
      regions, regionTopicLevel: cfg.region_topic_level,
      maxPayloadBytes: cfg.max_payload_bytes, futureSkewMs: cfg.future_skew_ms, meterIds: slots, readingPool: this.readingPool,
      ...(regions.size === 0 ? {
        openRegions: new OpenRegions(deps.maxOpenRegions, (limit) => {
          deps.logger.warn({ limit }, 'distinct regions limit reached (mqtt.meters.regions unset): readings of new regions are dropped as unknown_region; configure mqtt.meters.regions');
        }),
      } : {}),
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
    this.admitCommittedRegions();
    this.replayJournal();
    this.bound.start();
    this.connection.setMessageHandler((packet, token, next) => this.onMessage(packet, token, next));
    this.keeper.start();
    this.connection.start();
  }

  /** Without configured regions: the ones the sink's committed counts name come first (open-regions.ts). */
  private admitCommittedRegions(): void {
    const open = this.ctx.openRegions;
    const committed = this.deps.sink?.committedRegions?.();
    if (open === undefined || committed === undefined) return;
    for (const r of committed) if (r !== UNKNOWN_REGION && !open.admit(r)) break;
  }

  /**
   * Feeds the sink's committed dedupe journal (the last batches it committed) into the dedupe
   * state, as if those readings had just arrived again: the broker's redeliveries of readings
   * committed before a crash (kill -9: no state file written) are then duplicates, not readings
   * ingested and counted twice. They count as heard now, not at their first arrival: the broker
   * redelivers whenever the gateway comes back, so an outage longer than the dedupe window must not
   * have aged them out of it (the window runs from the restart).
   */
  private replayJournal(): void {
    const sink = this.deps.sink;
    if (sink?.committedJournal === undefined) return;
    const started = performance.now();
    const now = this.deps.clock.now();
    let readings = 0;
    try {
      for (const entry of sink.committedJournal()) {
        readings += decodeJournal(entry, (id, ts, kwh) => { this.state.accept(id, ts, kwh, now); });
      }
    } catch (err) {
      this.deps.logger.warn({ err: { message: (err as Error).message } }, 'dedupe journal not replayed: redeliveries of committed readings will be ingested again');
      return;
    }
    this.deps.logger.info({ readings, ms: Math.round(performance.now() - started) }, 'dedupe journal replayed');
  }

  /** Hands off what was received, acknowledges it, then disconnects (the session stays on the broker). */
  async stop(opts: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.bound.stop();
    this.pipeline.seal();
    await this.pipeline.drained(opts.drainTimeoutMs ?? 5000);
    // The dedupe state records readings as they arrive. Readings still waiting for the sink stay
    // unacknowledged and come again from the broker: a state that already knows them would drop
    // those redeliveries as duplicates, so it is not saved (at-least-once over exactly-once).
    const complete = this.pipeline.isDrained;
    this.keeper.stop();
    await this.connection.stop();
    this.pipeline.close();
    if (this.deps.stateFile !== undefined && !complete) {
      this.deps.logger.warn({ file: this.deps.stateFile, queued_readings: this.pipeline.queued }, 'stopped before every reading was handed off: dedupe state not saved, redeliveries will be ingested');
    } else if (this.deps.stateFile !== undefined) {
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
    this.bound.stop();
    this.keeper.stop();
    this.pipeline.discard();
    await this.connection.stop({ force: true });
  }

  /** Drops the network connection (tests, and the flow check): reconnect with backoff follows. */
  dropConnection(): void { this.connection.dropConnection(); }

  gridSamples(): GridSample[] { return this.powerTable.gridSamples(); }

  /** The fleet's power is a load source from the start: load is absent, not 0, while no meter is fresh. */
  gridRoles(): GridRole[] { return ['load']; }

  status(): MeterIngestStatus {
    return this.stats.snapshot({
      connected: this.connection.connected, reconnects: this.connection.reconnects,
      subscribed: this.keeper.subscribed, flowConfirmed: this.keeper.flowConfirmed,
      queuedReadings: this.pipeline.queued,
      meters: this.state.size, session: this.connection.session.status(),
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
    // Parsed straight into the open batch (no per-message arrays), then deduplicated there in
    // place; a drop's detail text is built only if the drop log prints it or a sampled span carries it.
    const batch = this.pipeline.batchFor(now);
    const readings = batch.readings;
    const slots = batch.slots;
    const rejections = batch.rejections;
    const r0 = readings.length;
    const j0 = rejections.length;
    try {
      parsePayload(packet.payload as Buffer, packet.topic, this.ctx, now, arrived, batch); // (the batch is a ParseResult)
    } catch (err) {
      // parsePayload is written not to throw; this keeps a bug from stalling the pump, and what it
      // had added of this message from being handed off undeduplicated.
      if (readings.length > r0) { readings.length = r0; slots.length = r0; }
      if (rejections.length > j0) rejections.length = j0;
      rejections.push({ error_type: 'malformed_json', region: 'unknown', detail: `internal: ${(err as Error).message}`, arrived_at: arrived });
    }
    const parsed = rejections.length;
    for (let j = j0; j < parsed; j++) this.dropLog.note(rejections[j] as DroppedReading, packet.topic);
    let kept = r0;
    const end = readings.length;
    for (let k = r0; k < end; k++) {
      const r = readings[k] as ValidReading;
      const verdict = this.state.accept(r.meter_id, r.timestamp_ms, r.kwh, now, slots[k] ?? -1);
      if (verdict === undefined) {
        readings[kept] = r;
        slots[kept] = this.state.acceptedSlot;
        kept++;
      } else {
        const id = r.meter_id;
        const ts = r.timestamp_ms;
        rejections.push(this.noteDrop({ error_type: verdict, region: r.region, meter_id: id, detail: () => `meter ${id} timestamp ${ts}`, arrived_at: arrived }, packet.topic));
        this.readingPool.give(r); // refused: nothing refers to it once it is cut from the batch below
      }
    }
    // (setting an array's length is a runtime call: only when a reading was refused)
    if (kept < end) { readings.length = kept; slots.length = kept; }
    const n = (kept - r0) + (rejections.length - j0);
    this.stats.message(now);
    this.pipeline.messageAdded(n, token, next);
  }

  private noteDrop(d: DroppedReading, topic: string): DroppedReading {
    this.dropLog.note(d, topic);
    return d;
  }
}
