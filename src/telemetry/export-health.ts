// Watches the OTLP exporters' results. Collector and WAN outages are normal at the edge, and the
// SDK would report every failed export: here a failure is counted every time (METRICS.exportFailures)
// but logged only when a signal changes state (ok -> failing, failing -> ok), so an hour-long
// outage is two log lines, not 360. The traces lines also say how many spans the outage cost
// (span-accounting.ts counts them).
import type { Counter } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationType, type AggregationTemporality } from '@opentelemetry/sdk-metrics';
import type { PushMetricExporter, ResourceMetrics, InstrumentType, AggregationOption } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../runtime/logger.js';
import { METRIC_ATTRS, SPAN_DROP_REASONS, type SpanDropReason } from './semconv.js';
import type { SpanAccounting } from './span-accounting.js';
import { gatewayTemporality } from './views.js';

type Signal = 'metrics' | 'traces';

interface SignalHealth {
  /** `unknown` until the first export finishes; `disabled` when export is off. */
  state: 'unknown' | 'ok' | 'failing' | 'disabled';
  /** Failed exports since start. */
  failures: number;
  /** Successful exports since start. */
  successes: number;
  lastError?: string;
  /** Epoch ms of the last state change. */
  sinceMs?: number;
  lastSuccessMs?: number;
}

export type ExporterHealth = Record<Signal, SignalHealth>;

export class ExportHealthTracker {
  private readonly health: ExporterHealth;
  private failureCounter: Counter | undefined;
  private failuresThisOutage: Record<Signal, number> = { metrics: 0, traces: 0 };
  private spansDroppedThisOutage: Record<SpanDropReason, number> = { queue_full: 0, export_failed: 0 };

  constructor(private readonly logger: Logger, private readonly now: () => number, enabled: boolean) {
    const initial = (): SignalHealth => ({ state: enabled ? 'unknown' : 'disabled', failures: 0, successes: 0 });
    this.health = { metrics: initial(), traces: initial() };
  }

  /** The counter lives on the MeterProvider that the wrapped exporter feeds, so it is set after construction. */
  setFailureCounter(counter: Counter): void {
    this.failureCounter = counter;
  }

  failing(signal: Signal): boolean {
    return this.health[signal].state === 'failing';
  }

  /** Spans lost to the current (or starting) traces outage; summarised in its log lines. */
  spansDropped(reason: SpanDropReason, n: number): void {
    this.spansDroppedThisOutage[reason] += n;
  }

  record(signal: Signal, result: ExportResult): void {
    const h = this.health[signal];
    const now = this.now();
    if (result.code === ExportResultCode.SUCCESS) {
      h.successes += 1;
      h.lastSuccessMs = now;
      if (h.state !== 'ok') {
        if (h.state === 'failing') {
          this.logger.info({ signal, failed_exports: this.failuresThisOutage[signal], ...this.spanSummary(signal, true) }, 'telemetry export recovered');
        }
        h.state = 'ok';
        h.sinceMs = now;
        delete h.lastError;
      }
      this.failuresThisOutage[signal] = 0;
      if (signal === 'traces') this.spansDroppedThisOutage = { queue_full: 0, export_failed: 0 };
      return;
    }
    h.failures += 1;
    this.failuresThisOutage[signal] += 1;
    h.lastError = result.error?.message ?? 'export failed';
    this.failureCounter?.add(1, { [METRIC_ATTRS.signal]: signal });
    if (h.state !== 'failing') {
      h.state = 'failing';
      h.sinceMs = now;
      this.logger.warn({ signal, err: h.lastError, ...this.spanSummary(signal, false) }, 'telemetry export failing; further failures are counted, not logged, until it recovers');
    }
  }

  /** traces lines only: spans dropped so far in this outage (by reason once it is over). */
  private spanSummary(signal: Signal, byReason: boolean): Record<string, unknown> {
    if (signal !== 'traces') return {};
    const d = this.spansDroppedThisOutage;
    return { spans_dropped: byReason ? { ...d } : d[SPAN_DROP_REASONS.queueFull] + d[SPAN_DROP_REASONS.exportFailed] };
  }

  snapshot(): ExporterHealth {
    return { metrics: { ...this.health.metrics }, traces: { ...this.health.traces } };
  }
}

/** Forwards everything to the OTLP metric exporter and reports each export's result. */
export class ObservedMetricExporter implements PushMetricExporter {
  constructor(private readonly inner: PushMetricExporter, private readonly tracker: ExportHealthTracker) {}

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.inner.export(metrics, (result) => {
      this.tracker.record('metrics', result);
      resultCallback(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    return gatewayTemporality(instrumentType);
  }

  selectAggregation(instrumentType: InstrumentType): AggregationOption {
    return this.inner.selectAggregation?.(instrumentType) ?? { type: AggregationType.DEFAULT };
  }
}

/** Forwards everything to the OTLP span exporter and reports each export's spans and result. */
export class ObservedSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly tracker: ExportHealthTracker, private readonly accounting: SpanAccounting) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const n = spans.length;
    this.accounting.taken(n);
    const done = (result: ExportResult): void => {
      // Spans first, so a 'failing' line counts the spans of the export that made it.
      this.accounting.settled(n, result.code === ExportResultCode.SUCCESS);
      this.tracker.record('traces', result);
      resultCallback(result);
    };
    try {
      this.inner.export(spans, done);
    } catch (err) {
      // The processor would turn a throw into a rejected flush and forget the batch uncounted.
      done({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
