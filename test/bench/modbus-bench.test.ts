// Smoke test of `npm run bench:modbus`: a few devices for a couple of seconds, through the built
// script (npm test builds before vitest; the global setup test/setup/build-dist.ts builds it when
// dist/ is absent), checking the JSON contract of its last line.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../dist/bench/modbus.js', import.meta.url));
const KEYS = ['devices', 'polls_per_s', 'cycle_p99_ms', 'cpu_pct', 'bare_cpu_pct', 'cpu_ratio_vs_bare', 'rss_mb', 'read_path_ratio'];

describe('bench:modbus smoke', () => {
  it('ends with one JSON line carrying every contract key', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [SCRIPT, '--duration=2', '--fast=1', '--warmup=1', '--endpoints=2', '--units=3', '--interval=500'],
        { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const last = out.trim().split('\n').at(-1) ?? '';
    const json = JSON.parse(last) as Record<string, unknown>;
    for (const k of KEYS) expect(json, k).toHaveProperty(k);
    expect(json['devices']).toBe(6);
    // 6 devices at 2 Hz: about 12 polls/s; the bare loop polls the same devices.
    expect(json['polls_per_s']).toBeGreaterThan(8);
    expect(json['bare_polls_per_s']).toBeGreaterThan(8);
    expect(json['values_ok']).toBe(true);
    expect(json['read_path_ratio']).toBeGreaterThan(0);
  }, 70_000);
});
