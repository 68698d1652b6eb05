// Watches the OTLP exporters' results. Collector and WAN outages are normal at the edge, and the
// SDK would report every failed export: here a failure is counted every time (METRICS.exportFailures)
// but logged only when a signal changes state (ok -> failing, failing -> ok), so an hour-long
// outage is two log lines, not 360.
import type { Counter } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationType, type AggregationTemporality } from '@opentelemetry/sdk-metrics';
import type { PushMetricExporter, ResourceMetrics, InstrumentType, AggregationOption } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../runtime/logger.js';
import { METRIC_ATTRS } from './semconv.js';
import { gatewayTemporality } from './views.js';

export type Signal = 'metrics' | 'traces';

export interface SignalHealth {
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

  constructor(private readonly logger: Logger, private readonly now: () => number, enabled: boolean) {
    const initial = (): SignalHealth => ({ state: enabled ? 'unknown' : 'disabled', failures: 0, successes: 0 });
    this.health = { metrics: initial(), traces: initial() };
  }

  /** The counter lives on the MeterProvider that the wrapped exporter feeds, so it is set after construction. */
  setFailureCounter(counter: Counter): void {
    this.failureCounter = counter;
  }

  record(signal: Signal, result: ExportResult): void {
    const h = this.health[signal];
    const now = this.now();
    if (result.code === ExportResultCode.SUCCESS) {
      h.successes += 1;
      h.lastSuccessMs = now;
      if (h.state !== 'ok') {
        if (h.state === 'failing') {
          this.logger.info({ signal, failed_exports: this.failuresThisOutage[signal] }, 'telemetry export recovered');
        }
        h.state = 'ok';
        h.sinceMs = now;
        delete h.lastError;
      }
      this.failuresThisOutage[signal] = 0;
      return;
    }
    h.failures += 1;
    this.failuresThisOutage[signal] += 1;
    h.lastError = result.error?.message ?? 'export failed';
    this.failureCounter?.add(1, { [METRIC_ATTRS.signal]: signal });
    if (h.state !== 'failing') {
      h.state = 'failing';
      h.sinceMs = now;
      this.logger.warn({ signal, err: h.lastError }, 'telemetry export failing; further failures are counted, not logged, until it recovers');
    }
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

/** Forwards everything to the OTLP span exporter and reports each export's result. */
export class ObservedSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly tracker: ExportHealthTracker) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      this.tracker.record('traces', result);
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
