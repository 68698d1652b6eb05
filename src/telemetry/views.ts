// Metric views: explicit histogram boundaries (BUCKETS) so the alert thresholds 5000 ms and 900 s
// are bucket edges and `histogram_quantile`/`le` comparisons are exact, and one cardinality limit
// per metric. One view per named instrument (an instrument matched by two views would be exported
// twice), so every METRICS name gets the limit; unnamed instruments get it from the reader.
import { AggregationTemporality, AggregationType, InstrumentType, type ViewOptions } from '@opentelemetry/sdk-metrics';
import { BUCKETS, METRICS } from './semconv.js';

const HISTOGRAM_BOUNDARIES: Readonly<Record<string, readonly number[]>> = {
  [METRICS.meterIngestionLatency]: BUCKETS.ingestionLatencyMs,
  [METRICS.meterDataAge]: BUCKETS.dataAgeSeconds,
  [METRICS.modbusRequestDuration]: BUCKETS.modbusRequestMs,
  [METRICS.modbusPollCycleDuration]: BUCKETS.pollCycleMs,
};

export function gatewayViews(cardinalityLimit: number): ViewOptions[] {
  return Object.values(METRICS).map((name): ViewOptions => {
    const boundaries = HISTOGRAM_BOUNDARIES[name];
    return {
      instrumentName: name,
      aggregationCardinalityLimit: cardinalityLimit,
      ...(boundaries === undefined
        ? {}
        : { aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...boundaries], recordMinMax: true } } }),
    };
  });
}

/**
 * Cumulative for everything (what a Prometheus pipeline wants) except gauges: with cumulative
 * temporality the SDK keeps re-exporting a gauge's last value after the callback stops observing
 * it, which would report a stale grid value as fresh. OTLP gauges carry no temporality on the
 * wire, so DELTA only changes that: an unobserved gauge is simply absent from the export.
 * Every reader on the gateway's MeterProvider should use this (setup.ts, the alert evaluator).
 */
export function gatewayTemporality(instrumentType: InstrumentType): AggregationTemporality {
  return instrumentType === InstrumentType.GAUGE || instrumentType === InstrumentType.OBSERVABLE_GAUGE
    ? AggregationTemporality.DELTA
    : AggregationTemporality.CUMULATIVE;
}
