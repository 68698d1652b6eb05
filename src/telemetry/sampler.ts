// Sampling lives here, in one place, not in the parts that create spans. It is parent-based
// (a child of an unsampled parent is never recorded, a remote parent's decision is respected),
// and inside a sampled trace a span whose NAME is listed gets its own ratio. That is how
// `ems.meter.process_reading` (thousands per second) is kept at `mqtt.meters.reading_span_ratio`
// while its parent `ems.meter.process_batch` and every other span are always kept: the meter
// ingest just starts the span and skips expensive attributes when `span.isRecording()` is false.
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler, SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';

/** Span name -> probability in [0, 1] that one such span is recorded. */
export type SpanRatios = Readonly<Record<string, number>>;

class SpanNameRatioSampler implements Sampler {
  constructor(
    private readonly ratios: SpanRatios,
    private readonly delegate: Sampler = new AlwaysOnSampler(),
    private readonly random: () => number = Math.random,
  ) {}

  shouldSample(context: Context, traceId: string, spanName: string, spanKind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const ratio = this.ratios[spanName];
    if (ratio === undefined) return this.delegate.shouldSample(context, traceId, spanName, spanKind, attributes, links);
    // Per span, not per trace id: all readings of one batch share the batch's trace id, and a
    // trace-id ratio would keep all of them or none.
    return { decision: this.random() < ratio ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `SpanNameRatioSampler{${Object.entries(this.ratios).map(([k, v]) => `${k}=${v}`).join(',')}}`;
  }
}

/** Parent-based: roots and children of sampled parents go through the span-name ratios. */
export function createGatewaySampler(ratios: SpanRatios, random: () => number = Math.random): Sampler {
  const byName = new SpanNameRatioSampler(ratios, new AlwaysOnSampler(), random);
  return new ParentBasedSampler({ root: byName, localParentSampled: byName, remoteParentSampled: byName });
}
