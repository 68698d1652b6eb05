// How often the gateway answers messages anyone can send: rejections of unauthenticated messages
// and replays of genuine ones (a copy of a signed command is as cheap to send as garbage). Without
// a limit, 500 two-byte messages earned 500 QoS 1 acks and 563 error spans. At most one such
// answer goes out per interval; what is held back is counted by reason, reported on the next
// answer (`suppressed`, `suppressed_reasons`) or, when the noise stops, in one aggregate answer at
// the end of the interval. Answers to authenticated new commands are never held back.
import type { Clock, ClockTimer } from '../runtime/clock.js';
import { RepeatLimiter } from '../runtime/rate-limit.js';
import type { RejectReason } from './command.js';

type SuppressedCounts = Partial<Record<RejectReason, number>>;

export interface Held {
  total: number;
  byReason: SuppressedCounts;
}

const KEY = 'noise';

export class RejectAnswers {
  private readonly limiter: RepeatLimiter;
  private byReason: SuppressedCounts = {};
  private timer: ClockTimer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    /** Called at the end of an interval in which answers were held back and none went out since. */
    private readonly onAggregate: (held: Held) => void,
  ) {
    this.limiter = new RepeatLimiter(clock, { intervalMs, maxKeys: 1 });
  }

  /** What was held back since the last answer when this one may be answered (then it takes them along); undefined: hold it back. */
  answer(reason: RejectReason): Held | undefined {
    const total = this.limiter.hit(KEY);
    if (total === undefined) {
      this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
      this.timer ??= this.clock.setTimeout(() => this.flush(), this.intervalMs);
      return undefined;
    }
    const held = { total, byReason: this.byReason };
    this.byReason = {};
    return held;
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    // An answer since the last hold took the counts along: nothing to report, the interval stands.
    if (Object.keys(this.byReason).length === 0) return;
    // Forgetting the key also lets the next message be answered at once.
    const total = this.limiter.reset(KEY);
    if (total === 0) return;
    const held = { total, byReason: this.byReason };
    this.byReason = {};
    this.onAggregate(held);
  }
}
