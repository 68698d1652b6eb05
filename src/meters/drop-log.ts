// Drops are logged, but a publisher sending garbage at 10k msg/s must not turn the log into the
// bottleneck: at most one line per error_type per interval, carrying how many were suppressed.
// The detail text is built only for the line that is printed.
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { RepeatLimiter } from '../runtime/rate-limit.js';
import { describeRejection, type Rejection } from './validate.js';

export class DropLog {
  private readonly limiter: RepeatLimiter;

  constructor(private readonly logger: Logger, clock: Clock, intervalMs = 10_000) {
    this.limiter = new RepeatLimiter(clock, { intervalMs });
  }

  note(r: Rejection, topic: string): void {
    const suppressed = this.limiter.hit(r.error_type);
    if (suppressed === undefined) return;
    this.logger.warn({
      error_type: r.error_type, region: r.region, meter_id: r.meter_id, topic: topic.slice(0, 200), detail: describeRejection(r),
      suppressed_since_last: suppressed,
    }, `meter reading dropped: ${r.error_type}`);
  }
}
