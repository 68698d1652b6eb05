// A Clock driven by the test: time moves only when advance() is called.
import type { Clock, ClockTimer } from '../../src/runtime/clock.js';

export class ManualClock implements Clock {
  private t = 0;
  private wall = Date.UTC(2026, 0, 1);
  private timers: Array<{ at: number; fn: () => void; id: ClockTimer }> = [];

  now(): number { return this.wall + this.t; }
  monotonic(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    // A real (never-armed) handle gives the right type without touching the event loop.
    const id = setTimeout(() => undefined, 0);
    clearTimeout(id);
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((x) => x.id !== timer);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}
