// Keeps the meter table (dedupe state and power table, slot-table.ts) bounded while the ingest
// runs: a periodic sweep forgets silent meters (a timer, never work per reading), and the meters
// evicted at max_meters while still active are exported as ems.meter.state_evictions.
//
// Forgetting a crowd of meters (a publisher that churned through ids) leaves their ids, index
// entries and the old columns as garbage, which V8 collects at its next full collection: under a
// light steady load that can be hours away, and the process keeps the memory meanwhile. So after
// a sweep that forgot at least RELEASE_AFTER meters, the gateway asks for a full collection when
// the runtime allows it (`--expose-gc`, one of the deployed flags): one pause of tens of ms,
// only after such a crowd left.
import type { Meter, ObservableCounter, ObservableResult } from '@opentelemetry/api';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import { METRICS, METRIC_UNITS } from '../telemetry/semconv.js';
import { SWEEP_BATCH, type SlotTable } from './slot-table.js';

/** A sweep cycle that forgot at least this many meters is followed by a full collection (when exposed). */
export const RELEASE_AFTER = 100_000;

/** The sweep runs every quarter of the forget age, at least every minute and at most every second. */
export function sweepIntervalMs(forgetAfterMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(forgetAfterMs / 4)));
}

export class StateBound {
  private timer: ClockTimer | undefined;
  private forgotten = 0;
  private readonly counter: ObservableCounter;
  private readonly observe = (r: ObservableResult): void => { r.observe(this.slots.activeEvictions); };

  constructor(private readonly slots: SlotTable, private readonly clock: Clock, meter: Meter) {
    this.counter = meter.createObservableCounter(METRICS.meterStateEvictions, {
      unit: METRIC_UNITS.meterStateEvictions,
      description: 'Meters evicted at max_meters although heard within the dedupe window (a duplicate of theirs is no longer recognised)',
    });
  }

  start(): void {
    this.counter.addCallback(this.observe);
    this.schedule(sweepIntervalMs(this.slots.forgetAfterMs));
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.counter.removeCallback(this.observe);
  }

  private release(): void {
    const gc = (globalThis as { gc?: unknown }).gc;
    if (typeof gc === 'function') (gc as () => void)();
  }

  private schedule(ms: number): void {
    this.timer = this.clock.setTimeout(() => {
      // A full batch means more may wait: continue at once (in the next turn, so messages interleave).
      const removed = this.slots.sweep(this.clock.now());
      this.forgotten += removed;
      if (removed >= SWEEP_BATCH) {
        this.schedule(0);
        return;
      }
      if (this.forgotten >= RELEASE_AFTER) this.release();
      this.forgotten = 0;
      this.schedule(sweepIntervalMs(this.slots.forgetAfterMs));
    }, ms);
  }
}
