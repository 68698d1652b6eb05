// Builds the gateway's OpenTelemetry pipeline: one MeterProvider and one TracerProvider, both
// exporting OTLP/HTTP protobuf to a collector, with the site on the Resource, the histogram views
// and cardinality limit, the parent-based span-name sampler, and exporter health tracking.
// Nothing here is global: the composition root passes `meter`/`tracer` (or the providers) to parts.
import type { Meter, Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { ExportResultCode } from '@opentelemetry/core';
import type { SiteInfo, TelemetryConfig } from '../config/site-types.js';
import type { Logger } from '../runtime/logger.js';
import { CumulativeProducer } from './cumulative-producer.js';
import { GaugeProducer } from './gauge-producer.js';
import { ExportHealthTracker, ObservedMetricExporter, ObservedSpanExporter, type ExporterHealth } from './export-health.js';
import { createGatewaySampler, type SpanRatios } from './sampler.js';
import { METRICS, METRIC_UNITS } from './semconv.js';
import { resolveTelemetrySettings, type TelemetrySettings } from './settings.js';
import { PullMetricReader } from './pull-reader.js';
import { AccountedSpanProcessor, SpanAccounting, type SpanBooks } from './span-accounting.js';
import { gatewayViews } from './views.js';

export const INSTRUMENTATION_SCOPE = 'ems-gateway';
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;

export interface TelemetryOptions {
  config: TelemetryConfig;
  site: SiteInfo;
  logger: Logger;
  serviceVersion: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Span name -> recording ratio, e.g. `{ [SPANS.meterProcessReading]: site.mqtt.meters.reading_span_ratio }`. */
  spanRatios?: SpanRatios;
  /**
   * More readers on the same MeterProvider (the alert evaluator's pull reader, tests' in-memory
   * readers). A PullMetricReader also gets the cumulative producer (the ems.meter.* counters and
   * histograms); another reader sees only the SDK's instruments.
   */
  extraMetricReaders?: MetricReader[];
  /** More span processors (tests' in-memory exporters). */
  extraSpanProcessors?: SpanProcessor[];
  /** Epoch ms, for exporter health timestamps. */
  now?: () => number;
  /** Random source of the span-name sampler (tests). */
  random?: () => number;
}

export interface Telemetry {
  readonly meterProvider: MeterProvider;
  readonly tracerProvider: NodeTracerProvider;
  /** The gateway's one Meter and Tracer (scope `ems-gateway`, version = service version). */
  readonly meter: Meter;
  readonly tracer: Tracer;
  /** The effective settings after env precedence (for logs and the status endpoint; headers included, do not log them raw). */
  readonly settings: TelemetrySettings;
  /**
   * Snapshot gauges emitted without SDK per-series state (device gauges: PollerSet's `gaugeProducer`).
   * Registered on the OTLP reader; an extra reader that should see them needs `metricProducers: [it]`.
   */
  readonly gaugeProducer: GaugeProducer;
  /**
   * Cumulative counters and histograms recorded without the SDK's per-call cost (the meter
   * ingest's and the delivery counts, MeterIngest's and DeliveryService's `producer`). Registered
   * on the OTLP reader and on every extra PullMetricReader.
   */
  readonly cumulativeProducer: CumulativeProducer;
  /** Exports what is pending on both signals now. Never rejects. */
  forceFlush(): Promise<void>;
  /** Flushes and stops both signals, giving up after timeoutMs. Never rejects; idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
  exporterHealth(): ExporterHealth;
  /** The OTLP span queue and the spans dropped so far; undefined when export is off. */
  spanQueue(): SpanBooks | undefined;
}

export function createTelemetry(opts: TelemetryOptions): Telemetry {
  const logger = opts.logger.child({ component: 'telemetry' });
  const settings = resolveTelemetrySettings({ config: opts.config, site: opts.site, env: opts.env ?? process.env, serviceVersion: opts.serviceVersion });
  const tracker = new ExportHealthTracker(logger, opts.now ?? Date.now, settings.enabled);
  const resource = resourceFromAttributes(settings.resourceAttributes);
  const gaugeProducer = new GaugeProducer(resource, { name: INSTRUMENTATION_SCOPE, version: opts.serviceVersion }, settings.cardinalityLimit, opts.now);


  const scope = { name: INSTRUMENTATION_SCOPE, version: opts.serviceVersion };
  const cumulativeProducer = new CumulativeProducer(scope, settings.cardinalityLimit, opts.now, resource);
  const readers: MetricReader[] = [...(opts.extraMetricReaders ?? [])];
  for (const r of readers) if (r instanceof PullMetricReader) r.addProducer(cumulativeProducer);
  const spanProcessors: SpanProcessor[] = [...(opts.extraSpanProcessors ?? [])];
  let accounting: SpanAccounting | undefined;
  if (settings.enabled) {
    const metricExporter = new OTLPMetricExporter({
      url: settings.metricsUrl,
      headers: settings.metricsHeaders,
      timeoutMillis: settings.exportTimeoutMs,
      temporalityPreference: AggregationTemporality.CUMULATIVE,
    });
    readers.push(new PeriodicExportingMetricReader({
      exporter: new ObservedMetricExporter(metricExporter, tracker),
      exportIntervalMillis: settings.exportIntervalMs,
      exportTimeoutMillis: settings.exportTimeoutMs,
      cardinalityLimits: { default: settings.cardinalityLimit },
      metricProducers: [gaugeProducer, cumulativeProducer],
    }));
    const traceExporter = new OTLPTraceExporter({ url: settings.tracesUrl, headers: settings.tracesHeaders, timeoutMillis: settings.exportTimeoutMs });
    // The SDK keeps no disk buffer: past the queue size spans are dropped (field notes). The
    // accounting decides and counts those drops, and counts the spans of failed exports.
    const books = new SpanAccounting(logger, tracker, settings.spanQueueSize, settings.spanBatchSize);
    accounting = books;
    spanProcessors.push(new AccountedSpanProcessor(new BatchSpanProcessor(new ObservedSpanExporter(traceExporter, tracker, books), {
      maxQueueSize: settings.spanQueueSize,
      maxExportBatchSize: settings.spanBatchSize,
      scheduledDelayMillis: Math.min(5_000, settings.exportIntervalMs),
      exportTimeoutMillis: settings.exportTimeoutMs,
    }), books));
  }

  const meterProvider = new MeterProvider({ resource, views: gatewayViews(settings.cardinalityLimit), readers });
  const tracerProvider = new NodeTracerProvider({ resource, sampler: createGatewaySampler(opts.spanRatios ?? {}, opts.random), spanProcessors });
  const meter = meterProvider.getMeter(INSTRUMENTATION_SCOPE, opts.serviceVersion);
  const tracer = tracerProvider.getTracer(INSTRUMENTATION_SCOPE, opts.serviceVersion);
  tracker.setFailureCounter(meter.createCounter(METRICS.exportFailures, {
    unit: METRIC_UNITS.exportFailures,
    description: 'Failed OTLP exports by signal (each failure is data that did not reach the collector)',
  }));
  accounting?.setCounter(meter.createCounter(METRICS.telemetrySpansDropped, {
    unit: METRIC_UNITS.telemetrySpansDropped,
    description: 'Spans that never reached the collector, by reason: queue_full (the span queue was full) or export_failed (its export failed for good)',
  }));

  logger.info({
    enabled: settings.enabled, metrics_url: settings.metricsUrl, traces_url: settings.tracesUrl,
    export_interval_ms: settings.exportIntervalMs, service_name: settings.resourceAttributes['service.name'],
    span_queue_size: settings.spanQueueSize, span_batch_size: settings.spanBatchSize,
  }, settings.enabled ? 'telemetry export configured' : 'telemetry export disabled (OTEL_SDK_DISABLED or telemetry.enabled: false)');

  let shutdownPromise: Promise<void> | undefined;
  // A flush that fails during an outage is already counted and logged by the health tracker:
  // debug only, so a status page polling forceFlush cannot flood the log.
  const settle = async (what: string, work: Promise<unknown>, level: 'debug' | 'warn' = 'warn'): Promise<void> => {
    try {
      await work;
    } catch (err) {
      logger[level]({ err }, `telemetry ${what} failed`);
    }
  };

  return {
    meterProvider, tracerProvider, meter, tracer, settings, gaugeProducer, cumulativeProducer,
    exporterHealth: () => tracker.snapshot(),
    spanQueue: () => accounting?.snapshot(),
    forceFlush: async () => {
      await Promise.all([settle('metric flush', meterProvider.forceFlush(), 'debug'), settle('span flush', tracerProvider.forceFlush(), 'debug')]);
    },
    shutdown: (timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS) => {
      shutdownPromise ??= boundedShutdown(logger, timeoutMs, [
        settle('metric shutdown', meterProvider.shutdown({ timeoutMillis: timeoutMs })),
        settle('span shutdown', tracerProvider.shutdown()),
      ], () => accounting?.unsent ?? 0);
      return shutdownPromise;
    },
  };
}

async function boundedShutdown(logger: Logger, timeoutMs: number, work: Promise<void>[], unsentSpans: () => number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  const outcome = await Promise.race([Promise.all(work).then(() => 'done' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') logger.warn({ timeout_ms: timeoutMs, spans_unsent: unsentSpans() }, 'telemetry shutdown timed out; unsent data dropped');
}

/**
 * A tracer and a meter made by the same SDK classes as the gateway's (spans batched by a
 * BatchSpanProcessor, counters of an SDK MeterProvider) whose data goes nowhere: no reader, and an
 * exporter that discards. For rehearsals that warm this code at start-up
 * (src/demand-response/warm-up.ts); shutdown() when done.
 */
export function offlineTelemetry(): { tracer: Tracer; meter: Meter; shutdown(): Promise<void> } {
  const discard: SpanExporter = { export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }), shutdown: () => Promise.resolve() };
  const tracerProvider = new NodeTracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new BatchSpanProcessor(discard)] });
  const meterProvider = new MeterProvider();
  return {
    tracer: tracerProvider.getTracer('ems-gateway-rehearsal'),
    meter: meterProvider.getMeter('ems-gateway-rehearsal'),
    shutdown: async () => { await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]); },
  };
}
