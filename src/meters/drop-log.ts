// Drops are logged, but a publisher sending garbage at 10k msg/s must not turn the log into the
// bottleneck: at most one line per error_type per interval, carrying how many were suppressed.
// The detail text is built only for the line that is printed.
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { describeRejection, type Rejection } from './validate.js';

export class DropLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly logger: Logger, private readonly clock: Clock, private readonly intervalMs = 10_000) {}

  note(r: Rejection, topic: string): void {
    const now = this.clock.monotonic();
    const entry = this.last.get(r.error_type);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(r.error_type, { at: now, suppressed: 0 });
    this.logger.warn({
      error_type: r.error_type, region: r.region, meter_id: r.meter_id, topic: topic.slice(0, 200), detail: describeRejection(r),
      suppressed_since_last: suppressed,
    }, `meter reading dropped: ${r.error_type}`);
  }
}
