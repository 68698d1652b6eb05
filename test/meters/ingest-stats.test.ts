// The readings/s on /status: exact over its window (the RATE_WINDOW_S whole seconds before the
// current one), whatever part of a second the status is read in. Time is the injected clock.
import { describe, expect, it } from 'vitest';
import { IngestStats, RATE_WINDOW_S } from '../../src/meters/ingest-stats.js';
import type { DroppedReading } from '../../src/meters/ingest-telemetry.js';
import type { ValidReading } from '../../src/meters/types.js';
import { ManualClock } from '../runtime/manual-clock.js';

const reading = (i: number): ValidReading => ({
  meter_id: `m-${i}`, region: 'north', timestamp_ms: i, kwh: 1, voltage: 230, current: 1, power_factor: 1, power_w: 230, arrived_at: 0,
});
const readings = (n: number): ValidReading[] => Array.from({ length: n }, (_, i) => reading(i));
const drops = (n: number): DroppedReading[] => Array.from({ length: n }, () => ({ error_type: 'duplicate', region: 'north', detail: '', arrived_at: 0 }));
const live = { connected: true, subscribed: true, flowConfirmed: true, reconnects: 0, queuedReadings: 0, meters: 0, session: { persistent: true, lost: 0 } };

/** Hands off `perSecond` readings a second in batches every 10 ms for `seconds` s (the clock advances). */
function feed(clock: ManualClock, stats: IngestStats, perSecond: number, seconds: number, dropsPerSecond = 0): void {
  const perBatch = perSecond / 100;
  const dropsPerBatch = dropsPerSecond / 100;
  for (let i = 0; i < Math.round(seconds * 100); i++) {
    stats.batch(readings(perBatch), drops(dropsPerBatch), 0);
    clock.advance(10);
  }
}

describe('IngestStats rates', () => {
  it('reads exactly 1,000/s at 1,000 readings/s, in every part of a second', () => {
    const clock = new ManualClock();
    clock.advance(370); // the stats begin part-way into a second
    const stats = new IngestStats(clock);
    feed(clock, stats, 1000, 12);
    // Read at ten phases of the next second, handing off at the same rate in between.
    for (let phase = 0; phase < 10; phase++) {
      const s = stats.snapshot(live);
      expect(s.ingest_rate_per_s, `phase ${phase}`).toBe(1000);
      expect(s.drop_rate_per_s).toBe(0);
      feed(clock, stats, 1000, 0.1);
    }
  });

  it('is the mean over the window: 5 s at 1,000/s then 5 s at 2,000/s read 1,500/s, then 2,000/s', () => {
    const clock = new ManualClock();
    const stats = new IngestStats(clock);
    feed(clock, stats, 1000, 1); // the first second is the start second: never in a window
    feed(clock, stats, 1000, 5);
    feed(clock, stats, 2000, 5);
    clock.advance(250); // nothing in the current second yet: it does not count
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(1500);
    clock.advance(750);
    feed(clock, stats, 2000, RATE_WINDOW_S + 1);
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(2000);
  });

  it('counts drops over the same window', () => {
    const clock = new ManualClock();
    const stats = new IngestStats(clock);
    feed(clock, stats, 2000, RATE_WINDOW_S + 2, 300);
    const s = stats.snapshot(live);
    expect(s.ingest_rate_per_s).toBe(2000);
    expect(s.drop_rate_per_s).toBe(300);
    expect(s.readings_ingested).toBe(2000 * (RATE_WINDOW_S + 2));
  });

  it('just after start: the whole seconds so far, not ten; 0 before the first whole second', () => {
    const clock = new ManualClock();
    clock.advance(600);
    const stats = new IngestStats(clock);
    feed(clock, stats, 1000, 0.3); // 0.9 s: still the start second
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(0);
    feed(clock, stats, 1000, 0.2); // 1.1 s: in the first whole second
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(0);
    feed(clock, stats, 1000, 3); // 3 whole seconds after the start second have passed
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(1000);
  });

  it('a silence drains the window: 0 once RATE_WINDOW_S whole seconds passed without hand-offs', () => {
    const clock = new ManualClock();
    const stats = new IngestStats(clock);
    feed(clock, stats, 1000, 12);
    clock.advance(4000);
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(600);
    clock.advance(RATE_WINDOW_S * 1000);
    expect(stats.snapshot(live).ingest_rate_per_s).toBe(0);
  });
});
