// Smoke test of `npm run bench:ingest` at a tiny scale through the built script (npm test builds
// before vitest; the global setup test/setup/build-dist.ts builds it when dist/ is absent): the
// gateway and the count-only subscriber in processes of their own, the churn phase with a small
// max_meters, and the JSON contract of the last line.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../dist/bench/ingest.js', import.meta.url));
const KEYS = ['single_ratio', 'cpu_us_per_reading_single', 'batched_readings_per_s', 'cpu_us_per_reading', 'gateway_rss_mb',
  'churn_rss_mb', 'steady_rss_mb_after_churn', 'steady_rss_mb_before_churn', 'churn_meters_tracked', 'meters_tracked_after_churn'];
const GOALS = ['single_ratio', 'cpu_us_per_reading_single', 'batched_readings_per_s', 'cpu_us_per_reading', 'gateway_rss_mb', 'churn_rss_mb', 'steady_rss_mb_after_churn'];

describe('bench:ingest smoke', () => {
  it('ends with one JSON line carrying every contract key and the goals', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [SCRIPT, '--single=300', '--batched=20', '--churn=5000', '--steady-meters=50', '--steady-s=2', '--window-s=2', '--max-meters=2000'],
        { timeout: 150_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    const last = out.trim().split('\n').at(-1) ?? '';
    const json = JSON.parse(last) as Record<string, unknown>;
    for (const k of KEYS) expect(json, k).toHaveProperty(k);
    expect(json['single_readings']).toBe(300);
    expect(json['batched_readings']).toBe(2000);
    for (const k of ['single_ratio', 'batched_readings_per_s', 'gateway_rss_mb', 'churn_rss_mb', 'steady_rss_mb_before_churn', 'steady_rss_mb_after_churn']) {
      expect(json[k], k).toBeGreaterThan(0);
    }
    expect(json['cpu_us_per_reading']).toBeGreaterThanOrEqual(0);
    // 50 steady meters + 5,000 churned ids through max_meters 2,000: the table never went past the
    // cap (it is exactly 2,000 unless the machine was slow enough for the 2 s window to forget some
    // before the sample), and once the churned ids fell silent only the steady meters were left.
    expect(json['churn_meters_tracked']).toBeLessThanOrEqual(2000);
    expect(json['churn_meters_tracked']).toBeGreaterThan(50);
    expect(json['meters_tracked_after_churn']).toBe(50);
    expect(json['churn_dropped']).toBe(0);
    const goals = json['goals'] as Record<string, { goal: string; met: boolean }>;
    expect(Object.keys(goals).sort()).toEqual([...GOALS].sort());
    for (const g of GOALS) expect(typeof goals[g]?.met, g).toBe('boolean');
  }, 160_000);
});
