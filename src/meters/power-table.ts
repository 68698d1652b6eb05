// The default ReadingSink: the latest reading of every meter, from which the meter fleet's
// instantaneous power per region feeds the grid load total (GridSampleSource).
import type { GridSample, GridSampleSource } from '../grid/sources.js';
import type { Clock } from '../runtime/clock.js';
import type { ReadingSink, ValidReading } from './types.js';

interface Latest {
  region: string;
  power_w: number;
  timestamp_ms: number;
}

export interface RegionPower {
  region: string;
  power_w: number;
  meters: number;
  newest_ms: number;
}

/**
 * Keeps each meter's latest reading (by the reading's own timestamp: a late, older reading does not
 * replace a newer one). A meter whose latest reading is older than `staleAfterMs` no longer counts:
 * stale is never reported as fresh, and a region with no fresh meter yields no sample at all.
 */
export class MeterPowerTable implements ReadingSink, GridSampleSource {
  private readonly latest = new Map<string, Latest>();

  constructor(private readonly clock: Clock, private readonly staleAfterMs: number) {}

  get meterCount(): number { return this.latest.size; }

  write(batch: readonly ValidReading[]): Promise<void> {
    for (const r of batch) {
      const cur = this.latest.get(r.meter_id);
      if (cur === undefined) {
        this.latest.set(r.meter_id, { region: r.region, power_w: r.power_w, timestamp_ms: r.timestamp_ms });
      } else if (r.timestamp_ms >= cur.timestamp_ms) {
        cur.region = r.region;
        cur.power_w = r.power_w;
        cur.timestamp_ms = r.timestamp_ms;
      }
    }
    return Promise.resolve();
  }

  /** Fresh power per region; forgets meters stale for twice the stale age. */
  regionPower(): RegionPower[] {
    const now = this.clock.now();
    const byRegion = new Map<string, RegionPower>();
    for (const [id, m] of this.latest) {
      const age = now - m.timestamp_ms;
      if (age > this.staleAfterMs) {
        if (age > 2 * this.staleAfterMs) this.latest.delete(id);
        continue;
      }
      let r = byRegion.get(m.region);
      if (r === undefined) {
        r = { region: m.region, power_w: 0, meters: 0, newest_ms: 0 };
        byRegion.set(m.region, r);
      }
      r.power_w += m.power_w;
      r.meters++;
      if (m.timestamp_ms > r.newest_ms) r.newest_ms = m.timestamp_ms;
    }
    return [...byRegion.values()].sort((a, b) => a.region.localeCompare(b.region));
  }

  gridSamples(): GridSample[] {
    return this.regionPower().map((r) => ({
      source: `meters:${r.region}`, point: 'power', role: 'load', value: r.power_w, unit: 'W', observedAtMs: r.newest_ms,
    }));
  }
}
