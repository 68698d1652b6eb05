// The ems.delivery.* and ems.spool.* instruments, created once; gauges are read at collection
// from the forwarders and the spool (no I/O beyond one mmap read per sink for the oldest age).
// The counts the spool commits (delivered, rejected, evicted per sink; the meter ingest's ingested
// and dropped) are cumulative streams of the CumulativeProducer that follow the committed totals:
// a restarted process resumes them where the last commit left them (resumeCounters), kill -9
// included. Failed requests and the latency histogram are not committed: they start at 0 with
// each process (docs/telemetry.md, "Counters across a restart").
import { ROOT_CONTEXT, type Attributes, type BatchObservableResult, type Counter, type Histogram, type Meter, type ObservableGauge } from '@opentelemetry/api';
import { dropSeries, meterStreams } from '../meters/ingest-telemetry.js';
import type { CumulativeProducer, CumulativeSum } from '../telemetry/cumulative-producer.js';
import { BUCKETS, METRIC_ATTRS, METRICS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { SinkTotals, SpoolTotals } from './totals.js';

interface GaugeSource {
  sinks(): Array<{ name: string; pending: number; oldestAgeS: number }>;
  spool(): { bytes: number; readings: number };
}

/**
 * Resumes the committed cumulative streams from the spool's totals: ems.meter.readings_ingested
 * and readings_dropped per region (and error_type), ems.delivery.delivered, rejected and evicted
 * per sink, each at its committed value and with the totals' start time (series opened later
 * too). Call at start, before the meter ingest records into them.
 */
export function resumeCounters(producer: CumulativeProducer, totals: SpoolTotals): void {
  const meter = meterStreams(producer);
  const since = totals.since_ms;
  meter.ingested.resumeFrom(since);
  meter.dropped.resumeFrom(since);
  // raiseTo, not add: a second start on the same producer (a service restarted in one process)
  // finds its streams already at these totals and leaves them there.
  for (const [region, n] of Object.entries(totals.ingested)) meter.ingested.raiseTo(meter.ingested.series(region, { [METRIC_ATTRS.region]: region }, since), n);
  for (const [region, types] of Object.entries(totals.dropped)) {
    for (const [type, n] of Object.entries(types)) meter.dropped.raiseTo(dropSeries(meter.dropped, region, type, since), n);
  }
  const d = deliveryStreams(producer);
  for (const s of [d.delivered, d.rejected, d.evicted]) s.resumeFrom(since);
  for (const [sink, t] of Object.entries(totals.sinks)) syncSink(d, sink, t, since);
}

interface DeliveryStreams { delivered: CumulativeSum; rejected: CumulativeSum; evicted: CumulativeSum }

function deliveryStreams(producer: CumulativeProducer): DeliveryStreams {
  return {
    delivered: producer.sum({ name: METRICS.deliveryDelivered, unit: METRIC_UNITS.deliveryDelivered, description: 'Readings the upstream confirmed, per sink' }),
    rejected: producer.sum({ name: METRICS.deliveryRejected, unit: METRIC_UNITS.deliveryRejected, description: 'Readings the upstream refused alone (poison), per sink and error_type' }),
    evicted: producer.sum({ name: METRICS.deliveryEvicted, unit: METRIC_UNITS.deliveryEvicted, description: 'Readings evicted from the spool before this sink had them' }),
  };
}

/** Raises a sink's streams to its committed totals (a series appears at its first non-zero count, as an SDK counter's). */
function syncSink(d: DeliveryStreams, sink: string, t: SinkTotals, nowMs: number): void {
  const attrs = { [METRIC_ATTRS.sink]: sink };
  if (t.delivered > 0) d.delivered.raiseTo(d.delivered.series(sink, attrs, nowMs), t.delivered);
  if (t.evicted > 0) d.evicted.raiseTo(d.evicted.series(sink, attrs, nowMs), t.evicted);
  for (const [type, n] of Object.entries(t.rejected)) {
    if (n > 0) d.rejected.raiseTo(d.rejected.series(`${sink}\u0000${type}`, { [METRIC_ATTRS.sink]: sink, [METRIC_ATTRS.errorType]: type }, nowMs), n);
  }
}

export class DeliveryTelemetry {
  private readonly streams: DeliveryStreams;
  private readonly failures: Counter;
  private readonly dropped: CumulativeSum;
  private readonly latency: Histogram;
  private readonly gauges: ObservableGauge[];
  private readonly sinkAttrs = new Map<string, Attributes>();
  private readonly observe: (r: BatchObservableResult) => void;

  constructor(private readonly meter: Meter, source: GaugeSource, producer: CumulativeProducer, private readonly now: () => number) {
    this.streams = deliveryStreams(producer);
    this.failures = meter.createCounter(METRICS.deliveryFailures, { unit: METRIC_UNITS.deliveryFailures, description: 'Failed upstream requests, per sink and error_type' });
    // The meter ingest's stream (one per name in the producer): spool evictions are drops too.
    this.dropped = meterStreams(producer).dropped;
    this.latency = meter.createHistogram(METRICS.deliveryLatency, {
      unit: METRIC_UNITS.deliveryLatency, description: 'Time from the reading\'s arrival to the upstream\'s confirm',
      advice: { explicitBucketBoundaries: [...BUCKETS.deliveryLatencyMs] },
    });
    const pending = meter.createObservableGauge(METRICS.deliveryPending, { unit: METRIC_UNITS.deliveryPending, description: 'Readings in the spool the sink has not confirmed' });
    const oldest = meter.createObservableGauge(METRICS.deliveryOldestAge, { unit: METRIC_UNITS.deliveryOldestAge, description: 'Age of the oldest reading the sink has not confirmed (0 when none)' });
    const bytes = meter.createObservableGauge(METRICS.spoolBytes, { unit: METRIC_UNITS.spoolBytes, description: 'Bytes of readings held in the spool' });
    const readings = meter.createObservableGauge(METRICS.spoolReadings, { unit: METRIC_UNITS.spoolReadings, description: 'Readings held in the spool' });
    this.gauges = [pending, oldest, bytes, readings];
    this.observe = (r) => {
      for (const s of source.sinks()) {
        r.observe(pending, s.pending, this.attrs(s.name));
        r.observe(oldest, s.oldestAgeS, this.attrs(s.name));
      }
      const sp = source.spool();
      r.observe(bytes, sp.bytes);
      r.observe(readings, sp.readings);
    };
    meter.addBatchObservableCallback(this.observe, this.gauges);
  }

  attrs(sink: string): Attributes {
    let a = this.sinkAttrs.get(sink);
    if (a === undefined) {
      a = { [METRIC_ATTRS.sink]: sink };
      this.sinkAttrs.set(sink, a);
    }
    return a;
  }

  /** The latencies of readings the upstream confirmed (the count comes from the committed totals: syncTotals). */
  recordLatencies(sink: string, latenciesMs: readonly number[]): void {
    const a = this.attrs(sink);
    for (const ms of latenciesMs) this.latency.record(ms, a, ROOT_CONTEXT);
  }

  recordFailure(sink: string, errorType: string): void {
    this.failures.add(1, { [METRIC_ATTRS.sink]: sink, [METRIC_ATTRS.errorType]: errorType });
  }

  /** The sink's delivered, rejected and evicted streams follow its committed totals (after each confirm and eviction). */
  syncTotals(sink: string, totals: SinkTotals | undefined): void {
    if (totals !== undefined) syncSink(this.streams, sink, totals, this.now());
  }

  /** Every reading evicted before all sinks had it, as ems.meter.readings_dropped{error_type="spool_evicted"}. */
  recordSpoolEvicted(byRegion: ReadonlyMap<string, number>, errorType: string): void {
    const now = this.now();
    for (const [region, n] of byRegion) this.dropped.add(dropSeries(this.dropped, region, errorType, now), n);
  }

  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, this.gauges);
  }
}
