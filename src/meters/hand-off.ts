// The batch pipeline between validation and the sink: group commit with deferred PUBACKs.
//
// mqtt.js parses the next inbound packet only after the previous one's handleMessage callback and
// sends the PUBACK from that callback. MqttConnection lets the pump continue at once while the
// PUBACK is held back; here the PUBACKs of a batch are sent, in arrival order, after the sink's
// write() for that batch resolved. A batch closes when it reaches batch_max_size, when the inbound
// packets already received are parsed and no hand-off is in flight, or after batch_max_wait_ms.
// PUBACKs go out in order (MQTT 3.1.1 §4.6): a batch is acknowledged only once it and every batch
// before it were handed off. A sink that commits in groups (the delivery spool: one fsync for
// every write issued meanwhile) says how many writes it takes at once (`concurrentWrites`); others
// get one at a time. Group commit: while a write to such a sink is in flight, the readings that
// arrive meanwhile ride along in the open batch until it is full or a write completes, so each
// fsync carries what arrived during the previous one; idle, a batch closes at once. The backlog
// is bounded in readings: BACKLOG_BATCHES batches' worth, and for a group-committing sink at least
// GROUP_BACKLOG_READINGS (larger groups under load); beyond it the inbound pump is paused:
// backpressure reaches the broker.
import type { AckToken, MqttConnection } from '../mqtt/connection.js';
import { backoffDelay, type Clock, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { IngestStats } from './ingest-stats.js';
import type { IngestTelemetry, SealedBatch } from './ingest-telemetry.js';
import type { MeterPowerTable } from './power-table.js';
import type { ReadingPool } from './reading-pool.js';
import type { ReadingSink } from './types.js';

/** Batches' worth of readings that may wait for hand-off before the inbound pump is paused. */
const BACKLOG_BATCHES = 4;
/**
 * Readings a group-committing sink may have waiting or in flight before the pump is paused: the
 * durable commit rate is (readings in flight) / (fsync time), so a few batches' worth would cap it.
 */
export const GROUP_BACKLOG_READINGS = 8192;

interface OpenBatch extends SealedBatch {
  acks: AckToken[];
  size: number;
  /** Per reading, its meter's slot when the dedupe state accepted it (a hint for the power table, checked there). */
  slots: number[];
}

interface HandOffDeps {
  sink: ReadingSink;
  powerTable: MeterPowerTable;
  connection: Pick<MqttConnection, 'ackMany'>;
  telemetry: IngestTelemetry;
  stats: IngestStats;
  clock: Clock;
  logger: Logger;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  random?: () => number;
  /** Where the records of a handed-off batch go back, when the sink copies them (ReadingSink.copiesReadings). */
  readingPool?: ReadingPool;
}

interface InFlight {
  batch: OpenBatch;
  done: boolean;
}

export class HandOffPipeline {
  private current: OpenBatch | undefined;
  private readonly queue: OpenBatch[] = [];
  /** Batches being written, in arrival order; acknowledged from the front once done. */
  private readonly inflight: InFlight[] = [];
  private retrying: InFlight | undefined;
  private paused: Array<() => void> = [];
  private timer: ClockTimer | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: ClockTimer | undefined;
  private retryAttempt = 0;
  private drainWaiters: Array<() => void> = [];

  private readonly maxInFlight: number;
  /** Readings received and not yet acknowledged beyond which the inbound pump is paused. */
  private readonly backlogReadings: number;

  constructor(private readonly deps: HandOffDeps) {
    this.maxInFlight = Math.max(1, Math.floor(deps.sink.concurrentWrites ?? 1));
    const batches = BACKLOG_BATCHES * deps.batchMaxSize;
    this.backlogReadings = this.maxInFlight > 1 ? Math.max(batches, GROUP_BACKLOG_READINGS) : batches;
  }

  private get writing(): boolean { return this.inflight.length > 0; }
  /** Every write slot taken (or a retry pending): nothing more can be handed off now. */
  private get full(): boolean { return this.retrying !== undefined || this.inflight.length >= this.maxInFlight; }
  /**
   * Readings ride along in the open batch (it closes when full, when a write completes or after
   * batch_max_wait): every slot is taken, or a write is in flight (group commit).
   */
  private get busy(): boolean { return this.full || this.writing; }

  /** Readings received but not yet handed off (their messages are not acknowledged yet). */
  get queued(): number {
    let n = this.current?.size ?? 0;
    for (const b of this.queue) n += b.size;
    for (const f of this.inflight) n += f.batch.size;
    return n;
  }

  /**
   * The open batch one message's readings and rejections go into (pushed by the caller, no copy),
   * opened at `nowWall` when none is. End the message with messageAdded().
   */
  batchFor(nowWall: number): OpenBatch {
    return this.openBatch(nowWall);
  }

  /**
   * Ends one message: `n` readings and rejections were pushed into batchFor()'s batch. `next` lets
   * mqtt.js parse the next packet: called now, or later when the backlog is too long.
   */
  messageAdded(n: number, token: AckToken | undefined, next: () => void): void {
    const batch = this.current;
    if (batch === undefined) throw new Error('HandOffPipeline: messageAdded() without batchFor()');
    batch.size += n;
    if (token) batch.acks.push(token);
    if (batch.size >= this.deps.batchMaxSize) this.seal();
    else this.scheduleSeal();
    if (this.queued >= this.backlogReadings) this.paused.push(next);
    else next();
  }

  /** Closes the open batch and starts its hand-off when none is in flight. */
  seal(): void {
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.current;
    this.current = undefined;
    if (b !== undefined && b.size + b.acks.length > 0) this.queue.push(b);
    this.pump();
  }

  /** True when nothing is waiting for, or in, a sink write. */
  get isDrained(): boolean {
    return !this.writing && this.queue.length === 0;
  }

  /** Resolves when every sealed batch was handed off, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void> {
    if (this.isDrained) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = this.deps.clock.setTimeout(resolve, timeoutMs);
      this.drainWaiters.push(() => { this.deps.clock.clearTimeout(t); resolve(); });
    });
  }

  /** Stops the timers and lets a paused pump go (used by stop(), after the drain). */
  close(): void {
    for (const t of [this.timer, this.retryTimer]) if (t !== undefined) this.deps.clock.clearTimeout(t);
    this.timer = this.retryTimer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.releasePaused();
  }

  /** A crash: everything pending is forgotten, neither handed off nor acknowledged. */
  discard(): void {
    this.current = undefined;
    this.queue.length = 0;
    this.inflight.length = 0;
    this.retrying = undefined;
    this.paused = [];
    this.close();
  }

  private openBatch(now: number): OpenBatch {
    if (this.current === undefined) {
      this.current = { readings: [], rejections: [], acks: [], size: 0, openedAtWall: now, slots: [] };
      this.timer = this.deps.clock.setTimeout(() => { this.timer = undefined; this.seal(); }, this.deps.batchMaxWaitMs);
    }
    return this.current;
  }

  private scheduleSeal(): void {
    // Close the batch once the packets already received are parsed (setImmediate runs after the
    // pump's nextTick chain), unless every write slot is taken: then more readings ride along.
    if (this.immediate !== undefined || this.busy) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      if (!this.busy) this.seal();
    });
  }

  private pump(): void {
    while (this.retrying === undefined && this.inflight.length < this.maxInFlight) {
      const batch = this.queue.shift();
      if (batch === undefined) break;
      const slot: InFlight = { batch, done: false };
      this.inflight.push(slot);
      this.write(slot);
    }
    if (this.inflight.length === 0 && this.queue.length === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private write(slot: InFlight): void {
    const { batch } = slot;
    let write: Promise<void>;
    try {
      write = batch.readings.length > 0 || batch.rejections.length > 0 ? this.deps.sink.write(batch.readings, batch.rejections) : Promise.resolve();
    } catch (err) {
      write = Promise.reject(err); // a sink that throws instead of rejecting must not break the pump
    }
    write.then(() => { slot.done = true; this.ackFront(); }, (err: unknown) => this.handOffFailed(slot, err)).catch((err: unknown) => {
      // A bug after the hand-off must not stall the pipeline: log it and go on with the next batch.
      this.deps.logger.error({ err }, 'meter hand-off bookkeeping failed');
      const i = this.inflight.indexOf(slot);
      if (i >= 0) this.inflight.splice(i, 1);
      this.pump();
    });
  }

  /** Acknowledges the done batches at the front, in order; a later batch waits for an earlier one. */
  private ackFront(): void {
    while (this.inflight[0]?.done === true) {
      const slot = this.inflight.shift() as InFlight;
      this.handedOff(slot.batch);
    }
    if (this.queued < this.backlogReadings - this.deps.batchMaxSize) this.releasePaused();
    // Readings that arrived during the hand-off form the next batch right away (the next commit's group).
    if (this.queue.length === 0 && this.current !== undefined && !this.full) this.seal();
    else this.pump();
  }

  private handedOff(batch: OpenBatch): void {
    const { clock, logger } = this.deps;
    this.retryAttempt = 0;
    const mono = clock.monotonic();
    const now = clock.now();
    // The grid's meter load comes from the power table whatever the sink is (in memory, synchronous).
    if (this.deps.sink !== this.deps.powerTable) this.deps.powerTable.writeHinted(batch.readings, batch.slots);
    try {
      this.deps.telemetry.record(batch, mono, now);
    } catch (err) {
      logger.error({ err }, 'meter telemetry failed');
    }
    const stale = this.deps.connection.ackMany(batch.acks);
    this.deps.stats.batch(batch.readings, batch.rejections, stale);
    if (stale > 0) logger.info({ stale_acks: stale }, 'connection changed before hand-off: the broker redelivers these messages (counted as duplicates)');
    // Everything above read the records synchronously; the sink kept none (it says so): reuse them.
    if (this.deps.sink.copiesReadings === true) this.deps.readingPool?.giveAll(batch.readings);
  }

  /** The failed batch is written again after a backoff; nothing new starts meanwhile (acks stay in order). */
  private handOffFailed(slot: InFlight, err: unknown): void {
    this.deps.stats.sinkError();
    const delay = backoffDelay(this.retryAttempt++, 100, 5000, this.deps.random);
    this.deps.logger.warn({ err, retry_in_ms: delay }, 'reading hand-off failed; retrying (messages stay unacknowledged)');
    this.retrying = slot;
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.retrying = undefined;
      if (this.inflight.includes(slot)) this.write(slot);
      this.pump();
    }, delay);
  }

  private releasePaused(): void {
    const waiting = this.paused;
    this.paused = [];
    for (const next of waiting) next();
  }
}
