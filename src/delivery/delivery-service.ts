// The delivery part of the gateway: the spool, one forwarder per configured sink, and the seam to
// the meter ingest (a ReadingSink whose write() resolves after the durable commit, so the QoS 1
// PUBACKs wait for it) and to the pollers (device samples). Started before the meter ingest and
// stopped after it, so every reading handed off before the stop is committed.
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Meter } from '@opentelemetry/api';
import type { DeliveryConfig, SiteConfig } from '../config/site-types.js';
import { encodeJournal } from '../meters/dedupe-journal.js';
import type { ReadingSink, ValidReading } from '../meters/types.js';
import type { MeterErrorType, Rejection } from '../meters/validate.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { CumulativeProducer } from '../telemetry/cumulative-producer.js';
import { DeliveryTelemetry, resumeCounters } from './delivery-telemetry.js';
import { SinkForwarder, type ForwarderStatus } from './forwarder.js';
import type { MeterRecord, SpoolRecord } from './records.js';
import { InfluxSink } from './sinks/influx.js';
import { OtlpLogsSink } from './sinks/otlp-logs.js';
import { PostgresSink } from './sinks/postgres.js';
import type { DeliverySink } from './sinks/sink.js';
import { Spool, type SpoolState } from './spool.js';
import { LmdbSpoolStore, type SpoolStore } from './spool-store.js';
import type { IngestDelta, SpoolTotals } from './totals.js';

/** error_type of ems.meter.readings_dropped for readings evicted from a full spool (drop_oldest). */
const SPOOL_EVICTED: MeterErrorType = 'spool_evicted';

interface DeliveryDeps {
  config: DeliveryConfig;
  site: SiteConfig;
  env: NodeJS.ProcessEnv;
  meter: Meter;
  /**
   * The cumulative producer the committed counts are exported from (the telemetry's; the meter
   * ingest's must be the same one). Without it they are kept in one no reader exports (tests).
   */
  producer?: CumulativeProducer;
  clock: Clock;
  logger: Logger;
  /** Resource attributes of the log records (the telemetry settings' resource). */
  resourceAttributes?: Record<string, string>;
  /** Tests: another store (fault injection) or sinks of their own. */
  store?: () => SpoolStore;
  sinks?: DeliverySink[];
  random?: () => number;
}

export interface DeliveryStatus {
  spool: SpoolState & { directory: string; max_bytes: number; policy: string };
  sinks: ForwarderStatus[];
}

function buildSinks(config: DeliveryConfig, site: SiteConfig, env: NodeJS.ProcessEnv, resourceAttributes: Record<string, string>): DeliverySink[] {
  const out: DeliverySink[] = [];
  const s = config.sinks;
  if (s.otlp_logs) out.push(new OtlpLogsSink(s.otlp_logs, site.telemetry, env, resourceFromAttributes(resourceAttributes)));
  if (s.influx) out.push(new InfluxSink(s.influx, site.site.id));
  if (s.postgres) out.push(new PostgresSink(s.postgres, site.site.id));
  return out;
}

export class DeliveryService implements ReadingSink {
  readonly name = 'delivery';
  // LMDB commits every write issued while the previous commit's fsync runs in one transaction:
  // batches in flight together share one fsync (docs/delivery.md, bench:delivery). Up to 16 full
  // batches may be in flight: with the hand-off's bound in readings (GROUP_BACKLOG_READINGS), a
  // commit under load carries several thousand readings.
  readonly concurrentWrites = 16;
  /** write() turns the readings into spool records before its first await and keeps no reference to them. */
  readonly copiesReadings = true;
  private spool: Spool | undefined;
  private forwarders: SinkForwarder[] = [];
  private telemetry: DeliveryTelemetry | undefined;
  private readonly sinks: DeliverySink[];
  private readonly log: Logger;

  constructor(private readonly deps: DeliveryDeps) {
    this.log = deps.logger.child({ component: 'delivery' });
    this.sinks = deps.sinks ?? buildSinks(deps.config, deps.site, deps.env, deps.resourceAttributes ?? { 'service.name': deps.site.telemetry.service_name });
  }

  async start(): Promise<void> {
    const { config, clock } = this.deps;
    const maxBytes = config.spool.max_size_mb * 1024 * 1024;
    const store = this.deps.store?.() ?? new LmdbSpoolStore(config.spool.directory);
    const spool = Spool.open(store, {
      maxBytes, maxAgeMs: config.spool.max_age_ms, policy: config.spool.policy, sinks: this.sinks.map((s) => s.type), clock, logger: this.log,
      onEvicted: (byRegion, bySink) => {
        this.telemetry?.recordSpoolEvicted(byRegion, SPOOL_EVICTED);
        for (const sink of bySink.keys()) this.telemetry?.syncTotals(sink, this.spool?.sinkTotals(sink));
      },
    });
    this.spool = spool;
    const producer = this.deps.producer ?? new CumulativeProducer({ name: 'ems-gateway' });
    // The exported counters go on from what was committed: a restart (kill -9 included) neither
    // loses increments nor starts the series again from 0 (docs/telemetry.md).
    resumeCounters(producer, spool.totalsSnapshot());
    this.telemetry = new DeliveryTelemetry(this.deps.meter, {
      sinks: () => this.forwarders.map((f) => { const s = f.status(); return { name: s.name, pending: s.pending, oldestAgeS: s.oldest_pending_age_s }; }),
      spool: () => { const st = spool.state(); return { bytes: st.bytes, readings: st.readings }; },
    }, producer, () => clock.now());
    const telemetry = this.telemetry;
    this.forwarders = this.sinks.map((sink) => new SinkForwarder({
      sink, name: sink.type, config: sinkCommon(config, sink.type), spool, telemetry, clock, logger: this.log,
      ...(this.deps.random ? { random: this.deps.random } : {}),
    }));
    for (const f of this.forwarders) f.start();
    const st = spool.state();
    this.log.info({
      directory: config.spool.directory, spool_readings: st.readings, spool_bytes: st.bytes, policy: config.spool.policy,
      sinks: this.sinks.map((s) => `${s.type} -> ${s.target}`),
    }, 'delivery started');
  }

  async stop(): Promise<void> {
    await Promise.all(this.forwarders.map((f) => f.stop()));
    await Promise.all(this.sinks.map((s) => s.close().catch(() => undefined)));
    this.telemetry?.close();
    await this.spool?.close();
    this.spool = undefined;
  }

  /** The meter ingest's hand-off: resolves once the batch and its counts are committed and fsynced. */
  async write(batch: readonly ValidReading[], dropped: readonly Pick<Rejection, 'region' | 'error_type'>[] = []): Promise<void> {
    const spool = this.requireSpool();
    const offset = this.deps.clock.now() - this.deps.clock.monotonic();
    const records: MeterRecord[] = batch.map((r) => ({
      kind: 'meter', meter_id: r.meter_id, region: r.region, timestamp_ms: r.timestamp_ms, kwh: r.kwh, voltage: r.voltage,
      current: r.current, power_factor: r.power_factor, power_w: r.power_w, arrived_ms: r.arrived_at + offset,
    }));
    const delta: IngestDelta = { ingested: new Map(), dropped: new Map() };
    for (const r of batch) delta.ingested.set(r.region, (delta.ingested.get(r.region) ?? 0) + 1);
    for (const d of dropped) {
      let m = delta.dropped.get(d.region);
      if (m === undefined) delta.dropped.set(d.region, (m = new Map()));
      m.set(d.error_type, (m.get(d.error_type) ?? 0) + 1);
    }
    // The batch's dedupe journal entry commits with it (the ingest replays the journal after a crash).
    await spool.append(records, delta, batch.length > 0 ? encodeJournal(batch, offset) : undefined);
    this.notify();
  }

  /** The dedupe journal as committed, oldest first (ReadingSink.committedJournal). */
  committedJournal(): Uint8Array[] { return this.spool?.journalEntries() ?? []; }

  /** The regions of the committed ingest counts, first committed first (ReadingSink.committedRegions). */
  committedRegions(): string[] {
    const t = this.spool?.totalsSnapshot();
    return t === undefined ? [] : [...new Set([...Object.keys(t.ingested), ...Object.keys(t.dropped)])];
  }

  /** Device samples (and anything else not acknowledged to a broker): committed like readings. */
  async append(records: readonly SpoolRecord[]): Promise<void> {
    await this.requireSpool().append(records);
    this.notify();
  }

  /** The totals committed with the spool (cumulative ingested/dropped and per-sink delivery). */
  totals(): SpoolTotals | undefined { return this.spool?.totalsSnapshot(); }

  status(): DeliveryStatus | undefined {
    const spool = this.spool;
    if (!spool) return undefined;
    const cfg = this.deps.config.spool;
    return {
      spool: { ...spool.state(), directory: cfg.directory, max_bytes: cfg.max_size_mb * 1024 * 1024, policy: cfg.policy },
      sinks: this.forwarders.map((f) => f.status()),
    };
  }

  /** For tests and the benchmark: the spool itself. */
  get spoolForTests(): Spool | undefined { return this.spool; }

  private notify(): void { for (const f of this.forwarders) f.notify(); }

  private requireSpool(): Spool {
    if (!this.spool) throw new Error('delivery: the spool is not open (started?)');
    return this.spool;
  }
}

function sinkCommon(config: DeliveryConfig, type: DeliverySink['type']) {
  const c = config.sinks[type];
  if (c === undefined) throw new Error(`delivery: no configuration for sink ${type}`);
  return c;
}
