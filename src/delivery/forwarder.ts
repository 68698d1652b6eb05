// One sink's forwarder: reads from the sink's own position in the spool, sends a batch, confirms
// it, and goes on. A failure is retried with exponential backoff and full jitter; after an outage
// the backlog drains at most at `max_rate` readings/s (a day's backlog must not flatten the
// upstream). A batch the upstream refuses for its content is split in halves until the one bad
// reading is found; that reading is dropped with its error_type and counted, the rest delivered.
import type { SinkCommonConfig } from '../config/site-types.js';
import { backoffDelay, type Clock, type ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { DeliveryTelemetry } from './delivery-telemetry.js';
import type { Sequenced } from './records.js';
import { SinkError, type DeliverySink } from './sinks/sink.js';
import type { Spool } from './spool.js';

type ForwarderState = 'starting' | 'idle' | 'sending' | 'retrying' | 'stopped';

export interface ForwarderStatus {
  name: string;
  target: string;
  state: ForwarderState;
  pending: number;
  /** Seconds since the oldest unconfirmed reading arrived; 0 when none. */
  oldest_pending_age_s: number;
  delivered_total: number;
  rejected_total: number;
  evicted_total: number;
  /** Readings confirmed per second over the last 10 s. */
  rate_per_s: number;
  /** Seconds to drain the backlog at that rate; null when nothing drains (or nothing is pending). */
  drain_estimate_s: number | null;
  last_error?: string;
  consecutive_failures: number;
}

interface ForwarderDeps {
  sink: DeliverySink;
  name: string;
  config: SinkCommonConfig;
  spool: Spool;
  telemetry: DeliveryTelemetry;
  clock: Clock;
  logger: Logger;
  random?: () => number;
}

const RATE_WINDOW_S = 10;
const IDLE_POLL_MS = 1000;

export class SinkForwarder {
  private state: ForwarderState = 'starting';
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private idleWait = false;
  private timer: ClockTimer | undefined;
  private attempt = 0;
  private prepared = false;
  private lastError: string | undefined;
  private tokens: number;
  private tokensAt: number;
  private readonly buckets: Array<{ second: number; n: number }> = [];
  /** The next sequence number to send: ahead of the spool position while a confirm commits. */
  private cursor = 0;
  /** The confirm in flight: the next batch is sent while it commits, confirms stay in order. */
  private confirming: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ForwarderDeps) {
    this.tokens = deps.config.max_rate;
    this.tokensAt = deps.clock.monotonic();
  }

  get name(): string { return this.deps.name; }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((err: unknown) => {
      this.deps.logger.error({ err, sink: this.name }, 'sink forwarder stopped by a bug');
      this.state = 'stopped';
    });
  }

  /** New readings were committed: an idle forwarder looks at once (a backoff or a rate wait is not cut short). */
  notify(): void { if (this.idleWait) this.wake(); }

  /** Stops after the batch in flight (bounded by the sink's request timeout). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    await this.confirming;
    this.state = 'stopped';
  }

  status(): ForwarderStatus {
    const { spool, clock } = this.deps;
    const pending = spool.pending(this.name);
    const t = spool.sinkTotals(this.name);
    const oldest = spool.oldestPendingArrivedMs(this.name);
    const rate = this.rate();
    return {
      name: this.name, target: this.deps.sink.target, state: this.state, pending,
      oldest_pending_age_s: oldest === undefined ? 0 : Math.max(0, (clock.now() - oldest) / 1000),
      delivered_total: t?.delivered ?? 0,
      rejected_total: t ? Object.values(t.rejected).reduce((a, b) => a + b, 0) : 0,
      evicted_total: t?.evicted ?? 0,
      rate_per_s: rate,
      drain_estimate_s: pending === 0 || rate <= 0 ? null : pending / rate,
      ...(this.lastError !== undefined && this.state === 'retrying' ? { last_error: this.lastError } : {}),
      consecutive_failures: this.attempt,
    };
  }

  private async run(): Promise<void> {
    const { spool, sink, config } = this.deps;
    while (this.running) {
      if (!this.prepared) {
        try {
          await sink.prepare();
          this.prepared = true;
        } catch (err) {
          await this.failed(err);
          continue;
        }
      }
      this.cursor = Math.max(this.cursor, spool.position(this.name));
      let batch = spool.readFrom(this.cursor, config.batch_max_size);
      if (batch.next === this.cursor) {
        await this.confirming;
        this.state = 'idle';
        this.idleWait = true;
        await this.sleep(IDLE_POLL_MS);
        this.idleWait = false;
        continue;
      }
      // A partial batch waits a little for more (fewer, larger requests), unless it is old already.
      const first = batch.records[0]?.record.arrived_ms;
      if (batch.next - this.cursor < config.batch_max_size && first !== undefined) {
        const wait = first + config.batch_max_wait_ms - this.deps.clock.now();
        if (wait > 0) {
          await this.sleep(wait);
          if (!this.running) break;
          batch = spool.readFrom(this.cursor, config.batch_max_size);
        }
      }
      const from = this.cursor;
      await this.throttle(batch.next - from);
      if (!this.running) break;
      this.state = 'sending';
      let rejected: Map<number, string>;
      try {
        rejected = await this.deliver(batch.records);
      } catch (err) {
        await this.confirming;
        this.cursor = spool.position(this.name);
        await this.failed(err);
        continue;
      }
      for (const seq of batch.corrupt) rejected.set(seq, 'spool_corrupt');
      // The previous confirm has (nearly always) committed by now; this one commits while the
      // next batch is read and sent.
      await this.confirming;
      // The previous confirm failed and moved the cursor back: this batch is sent again from there.
      if (this.cursor !== from) continue;
      this.cursor = batch.next;
      const records = batch.records;
      this.confirming = spool.confirm(this.name, from, batch.next, rejected).then(
        (delivered) => this.confirmed(records, rejected, delivered),
        (err: unknown) => {
          // Not committed: the position stays, the batch is sent again (at-least-once).
          this.cursor = spool.position(this.name);
          this.deps.logger.warn({ sink: this.name, err: { message: (err as Error).message } }, 'sink position not committed; resending from the last committed position');
        },
      );
    }
  }

  /** Sends `records`; on a poison answer, halves until the bad readings are alone. Returns those (seq -> error_type). */
  private async deliver(records: readonly Sequenced[]): Promise<Map<number, string>> {
    if (records.length === 0) return new Map();
    try {
      await this.deps.sink.send(records);
      return new Map();
    } catch (err) {
      if (!(err instanceof SinkError) || err.kind === 'retry') throw err;
      this.deps.telemetry.recordFailure(this.name, err.errorType);
      if (records.length === 1) {
        const r = records[0] as Sequenced;
        this.deps.logger.warn({ sink: this.name, seq: r.seq, error_type: err.errorType, err: { message: err.message }, reading: describe(r) }, 'upstream refused one reading: dropped (counted in ems.delivery.rejected)');
        return new Map([[r.seq, err.errorType]]);
      }
      const mid = records.length >> 1;
      const left = await this.deliver(records.slice(0, mid));
      const right = await this.deliver(records.slice(mid));
      for (const [k, v] of right) left.set(k, v);
      return left;
    }
  }

  private confirmed(records: readonly Sequenced[], rejected: ReadonlyMap<number, string>, delivered: number): void {
    const now = this.deps.clock.now();
    const latencies: number[] = [];
    for (const r of records) if (!rejected.has(r.seq)) latencies.push(Math.max(0, now - r.record.arrived_ms));
    if (delivered > 0) this.deps.telemetry.recordLatencies(this.name, latencies);
    // delivered and rejected as committed with the position (spool.confirm), so a restart resumes them exactly.
    this.deps.telemetry.syncTotals(this.name, this.deps.spool.sinkTotals(this.name));
    if (this.attempt > 0) this.deps.logger.info({ sink: this.name, after_failures: this.attempt }, 'sink delivering again');
    this.attempt = 0;
    this.lastError = undefined;
    this.state = 'idle';
    const second = Math.floor(this.deps.clock.monotonic() / 1000);
    const b = this.buckets[this.buckets.length - 1];
    if (b !== undefined && b.second === second) b.n += delivered;
    else {
      this.buckets.push({ second, n: delivered });
      while (this.buckets.length > RATE_WINDOW_S + 1) this.buckets.shift();
    }
  }

  private rate(): number {
    const now = Math.floor(this.deps.clock.monotonic() / 1000);
    let n = 0;
    for (const b of this.buckets) if (b.second > now - RATE_WINDOW_S && b.second <= now) n += b.n;
    return n / RATE_WINDOW_S;
  }

  private async failed(err: unknown): Promise<void> {
    const { config, logger, telemetry } = this.deps;
    const type = err instanceof SinkError ? err.errorType : 'internal';
    telemetry.recordFailure(this.name, type);
    const delay = Math.max(config.retry_min_ms / 2, backoffDelay(this.attempt, config.retry_min_ms, config.retry_max_ms, this.deps.random));
    const message = err instanceof Error ? err.message : String(err);
    // One line when a sink starts failing and then every tenth retry: an outage of a day is not 10k lines.
    if (this.attempt === 0 || this.attempt % 10 === 0) logger.warn({ sink: this.name, error_type: type, err: { message }, retry_in_ms: delay, attempt: this.attempt }, 'sink delivery failed; retrying (readings stay in the spool)');
    this.attempt++;
    this.lastError = `${type}: ${message}`;
    this.state = 'retrying';
    await this.sleep(delay);
  }

  /** Token bucket of max_rate readings/s with one second of burst; 0 = unlimited. */
  private async throttle(n: number): Promise<void> {
    const rate = this.deps.config.max_rate;
    if (rate <= 0) return;
    const now = this.deps.clock.monotonic();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    if (this.tokens < n) await this.sleep(((n - this.tokens) / rate) * 1000);
    const after = this.deps.clock.monotonic();
    this.tokens = Math.min(rate, this.tokens + ((after - this.tokensAt) / 1000) * rate) - n;
    this.tokensAt = after;
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      this.timer = this.deps.clock.setTimeout(() => this.wake(), ms);
    });
  }

  private wake(): void {
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }
}

function describe(r: Sequenced): string {
  const x = r.record;
  return x.kind === 'meter' ? `meter ${x.meter_id} at ${new Date(x.timestamp_ms).toISOString()}` : `device ${x.device_id} at ${new Date(x.timestamp_ms).toISOString()}`;
}
