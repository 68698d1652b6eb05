// The sizing figure of docs/delivery.md and the site schema ("about N bytes per reading"), measured:
// 200,000 readings of 10,000 meters (ids like m-000042), 500 per entry as the ingest commits them,
// written to a real LMDB spool; the spool's own byte accounting (what max_size_mb bounds) and the
// pages LMDB actually uses for them must both agree with the documented figure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import type { MeterRecord } from '../../src/delivery/records.js';
import { Spool } from '../../src/delivery/spool.js';
import { LmdbSpoolStore } from '../../src/delivery/spool-store.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';

/** docs/delivery.md "Sizing" and site-schema.ts max_size_mb. */
export const DOCUMENTED_BYTES_PER_READING = 82;

describe('spool sizing', () => {
  it(`about ${DOCUMENTED_BYTES_PER_READING} bytes per reading, accounted and on disk`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-sizing-'));
    try {
      const s = Spool.open(new LmdbSpoolStore(dir), { maxBytes: 1 << 30, maxAgeMs: 1e9, policy: 'backpressure', sinks: ['a'], clock: systemClock, logger: silentLogger() });
      const now = Date.now();
      const N = 200_000;
      for (let i = 0; i < N;) {
        const recs: MeterRecord[] = [];
        for (let k = 0; k < 500; k++, i++) {
          recs.push({ kind: 'meter', meter_id: `m-${String(i % 10_000).padStart(6, '0')}`, region: ['north', 'south', 'east', 'west'][i % 4]!, timestamp_ms: now + i, kwh: 1000 + i / 1000, voltage: 230.1, current: 4.2, power_factor: 0.95, power_w: 900, arrived_ms: now });
        }
        await s.append(recs);
      }
      const st = s.state();
      await s.close();
      const env = open({ path: dir, readOnly: true, maxDbs: 4 });
      const stats = env.openDB('entries', { encoding: 'binary' }).getStats() as Record<string, number>;
      await env.close();
      const accounted = st.bytes / st.readings;
      const pages = ((stats['treeBranchPageCount'] ?? 0) + (stats['treeLeafPageCount'] ?? 0) + (stats['overflowPages'] ?? 0)) * (stats['pageSize'] ?? 4096) / st.readings;
      expect(st.readings).toBe(N);
      expect(Math.abs(accounted - DOCUMENTED_BYTES_PER_READING)).toBeLessThan(3);
      expect(Math.abs(pages - DOCUMENTED_BYTES_PER_READING)).toBeLessThan(DOCUMENTED_BYTES_PER_READING * 0.1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
