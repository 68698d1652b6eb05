// The ems.delivery.* and ems.spool.* instruments, created once; gauges are read at collection
// from the forwarders and the spool (no I/O beyond one mmap read per sink for the oldest age).
import { ROOT_CONTEXT, type Attributes, type BatchObservableResult, type Counter, type Histogram, type Meter, type ObservableGauge } from '@opentelemetry/api';
import { BUCKETS, METRIC_ATTRS, METRICS, METRIC_UNITS } from '../telemetry/semconv.js';

export interface GaugeSource {
  sinks(): Array<{ name: string; pending: number; oldestAgeS: number }>;
  spool(): { bytes: number; readings: number };
}

export class DeliveryTelemetry {
  private readonly delivered: Counter;
  private readonly failures: Counter;
  private readonly rejected: Counter;
  private readonly evicted: Counter;
  private readonly dropped: Counter;
  private readonly latency: Histogram;
  private readonly gauges: ObservableGauge[];
  private readonly sinkAttrs = new Map<string, Attributes>();
  private readonly observe: (r: BatchObservableResult) => void;

  constructor(private readonly meter: Meter, source: GaugeSource) {
    this.delivered = meter.createCounter(METRICS.deliveryDelivered, { unit: METRIC_UNITS.deliveryDelivered, description: 'Readings the upstream confirmed, per sink' });
    this.failures = meter.createCounter(METRICS.deliveryFailures, { unit: METRIC_UNITS.deliveryFailures, description: 'Failed upstream requests, per sink and error_type' });
    this.rejected = meter.createCounter(METRICS.deliveryRejected, { unit: METRIC_UNITS.deliveryRejected, description: 'Readings the upstream refused alone (poison), per sink and error_type' });
    this.evicted = meter.createCounter(METRICS.deliveryEvicted, { unit: METRIC_UNITS.deliveryEvicted, description: 'Readings evicted from the spool before this sink had them' });
    // The same instrument as the meter ingest's (the SDK returns one aggregation for both).
    this.dropped = meter.createCounter(METRICS.meterReadingsDropped, { description: 'Meter readings dropped, by error_type', unit: METRIC_UNITS.meterReadingsDropped });
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

  recordDelivered(sink: string, n: number, latenciesMs: readonly number[]): void {
    const a = this.attrs(sink);
    if (n > 0) this.delivered.add(n, a);
    for (const ms of latenciesMs) this.latency.record(ms, a, ROOT_CONTEXT);
  }

  recordFailure(sink: string, errorType: string): void {
    this.failures.add(1, { [METRIC_ATTRS.sink]: sink, [METRIC_ATTRS.errorType]: errorType });
  }

  recordRejected(sink: string, errorType: string, n: number): void {
    if (n > 0) this.rejected.add(n, { [METRIC_ATTRS.sink]: sink, [METRIC_ATTRS.errorType]: errorType });
  }

  recordEvicted(sink: string, n: number): void {
    if (n > 0) this.evicted.add(n, this.attrs(sink));
  }

  /** Every reading evicted before all sinks had it, as ems.meter.readings_dropped{error_type="spool_evicted"}. */
  recordSpoolEvicted(byRegion: ReadonlyMap<string, number>, errorType: string): void {
    for (const [region, n] of byRegion) this.dropped.add(n, { [METRIC_ATTRS.region]: region, [METRIC_ATTRS.errorType]: errorType });
  }

  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, this.gauges);
  }
}
