// A pull-only MetricReader (the alert evaluator's, the demo summary's, tests') that more metric
// producers can be added to after it was built: the readers are made before createTelemetry, which
// makes the producers and adds them (`extraMetricReaders`). The SDK takes producers only in a
// reader's constructor; this one passes a producer of its own there that asks the added ones.
import { emptyResource } from '@opentelemetry/resources';
import { MetricReader, type CollectionResult, type MetricProducer, type MetricReaderOptions } from '@opentelemetry/sdk-metrics';

class AddedProducers implements MetricProducer {
  readonly list: MetricProducer[] = [];

  async collect(options?: { timeoutMillis?: number }): Promise<CollectionResult> {
    const results = await Promise.all(this.list.map((p) => p.collect(options)));
    return {
      resourceMetrics: { resource: emptyResource(), scopeMetrics: results.flatMap((r) => r.resourceMetrics.scopeMetrics) },
      errors: results.flatMap((r) => r.errors),
    };
  }
}

export class PullMetricReader extends MetricReader {
  private readonly added: AddedProducers;

  constructor(options: Omit<MetricReaderOptions, 'metricProducers'> = {}) {
    const added = new AddedProducers();
    super({ ...options, metricProducers: [added] });
    this.added = added;
  }

  /** Makes `producer`'s metrics part of every later collect(); adding one twice has no effect. */
  addProducer(producer: MetricProducer): void {
    if (!this.added.list.includes(producer)) this.added.list.push(producer);
  }

  protected override async onForceFlush(): Promise<void> { /* pull-only: nothing buffered */ }
  protected override async onShutdown(): Promise<void> { /* nothing to release */ }
}
