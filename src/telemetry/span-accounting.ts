// Every span that never reaches the collector is counted. The SDK's BatchSpanProcessor drops a
// span silently when its queue is full and forgets the spans of an export that failed for good
// (after the OTLP exporter's own retries); neither is visible through its public API. So the
// gateway keeps the queue's books itself:
//   queued   = spans admitted to the processor - spans the processor handed to the exporter;
//   in flight = spans handed to the exporter whose export has not settled.
// The processor splices a batch out of its queue right before it calls the exporter, so its queue
// never holds more than `queued`: admitting a span only while `queued < capacity` means the SDK
// never reaches its own silent drop, and every drop is decided, and counted, here.
import { TraceFlags, type Context, type Counter } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../runtime/logger.js';
import type { ExportHealthTracker } from './export-health.js';
import { METRIC_ATTRS, SPAN_DROP_REASONS, type SpanDropReason } from './semconv.js';

export interface SpanBooks {
  /** The queue's capacity (telemetry.span_queue_size). */
  capacity: number;
  /** Spans per export request (telemetry.span_batch_size). */
  batchSize: number;
  /** Spans waiting in the queue now. */
  queued: number;
  /** Spans in exports that have not settled yet. */
  inFlight: number;
  /** Spans dropped since start, by reason (each one also counted in ems.telemetry.spans_dropped). */
  dropped: Record<SpanDropReason, number>;
}

export class SpanAccounting {
  private queuedNow = 0;
  private inFlightNow = 0;
  private readonly droppedTotal: Record<SpanDropReason, number> = { queue_full: 0, export_failed: 0 };
  private counter: Counter | undefined;
  /** Queue-full drops since the queue last had room to spare, outside an export outage (undefined: none). */
  private overflowDrops: number | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly tracker: ExportHealthTracker,
    readonly capacity: number,
    readonly batchSize: number,
  ) {}

  /** The counter lives on the MeterProvider, built after the span pipeline. */
  setCounter(counter: Counter): void {
    this.counter = counter;
    // Both series exist from the start at 0, so a first drop is an increase a rule can see.
    for (const reason of Object.values(SPAN_DROP_REASONS)) counter.add(0, { [METRIC_ATTRS.reason]: reason });
  }

  /** A sampled span ended: true when it may join the queue, false when it was dropped (and counted). */
  admit(): boolean {
    if (this.queuedNow >= this.capacity) {
      this.drop(SPAN_DROP_REASONS.queueFull, 1);
      return false;
    }
    this.queuedNow += 1;
    return true;
  }

  /** The processor handed `n` spans of its queue to the exporter. */
  taken(n: number): void {
    this.queuedNow = Math.max(0, this.queuedNow - n);
    this.inFlightNow += n;
    this.maybeDrained();
  }

  /** An export of `n` spans settled; a failed one lost them. */
  settled(n: number, ok: boolean): void {
    this.inFlightNow = Math.max(0, this.inFlightNow - n);
    if (!ok) this.drop(SPAN_DROP_REASONS.exportFailed, n);
  }

  /** Spans that would be lost if the process ended now (for the shutdown log line). */
  get unsent(): number {
    return this.queuedNow + this.inFlightNow;
  }

  snapshot(): SpanBooks {
    return { capacity: this.capacity, batchSize: this.batchSize, queued: this.queuedNow, inFlight: this.inFlightNow, dropped: { ...this.droppedTotal } };
  }

  private drop(reason: SpanDropReason, n: number): void {
    this.droppedTotal[reason] += n;
    this.counter?.add(n, { [METRIC_ATTRS.reason]: reason });
    // During an export outage the queue fills by design: its drops belong to the outage's summary
    // (the 'telemetry export recovered' line). Outside one, a full queue means more spans than the
    // exporter ships: one line when it begins, one when the queue has room again.
    if (reason === SPAN_DROP_REASONS.exportFailed || this.tracker.failing('traces')) {
      this.tracker.spansDropped(reason, n);
      return;
    }
    if (this.overflowDrops === undefined) {
      this.overflowDrops = 0;
      this.logger.warn({ span_queue_size: this.capacity }, 'span queue full: new spans are dropped and counted (ems.telemetry.spans_dropped) until it drains');
    }
    this.overflowDrops += n;
  }

  /** Half empty again: the overflow is over (hysteresis, so a queue riding its limit is one episode). */
  private maybeDrained(): void {
    if (this.overflowDrops === undefined || this.queuedNow > this.capacity / 2) return;
    this.logger.info({ spans_dropped: { [SPAN_DROP_REASONS.queueFull]: this.overflowDrops } }, 'span queue drained');
    this.overflowDrops = undefined;
  }
}

/**
 * Wraps the BatchSpanProcessor: admits a sampled span only while the books say the queue has
 * room. The exporter side (`taken`, `settled`) is reported by ObservedSpanExporter.
 */
export class AccountedSpanProcessor implements SpanProcessor {
  private shut = false;

  constructor(private readonly inner: SpanProcessor, private readonly accounting: SpanAccounting) {}

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    // The BatchSpanProcessor ignores these two cases itself; they are not drops.
    if (this.shut || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.accounting.admit()) this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    this.shut = true;
    return this.inner.shutdown();
  }
}
