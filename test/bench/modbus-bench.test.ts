// Smoke test of `npm run bench:modbus`: a few devices for a couple of seconds, through the built
// script (npm test builds before vitest; the global setup test/setup/build-dist.ts builds it when
// dist/ is absent), checking the JSON contract of its last line.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../dist/bench/modbus.js', import.meta.url));
const KEYS = ['devices', 'polls_per_s', 'cycle_p99_ms', 'cpu_pct', 'bare_cpu_pct', 'cpu_ratio_vs_bare', 'rss_mb', 'read_path_ratio'];
// The large-site run (d), asked for here at a small size: its keys keep their names.
const KEYS_5K = ['devices_5k', 'cycle_p99_ms_5k', 'overruns_5k', 'cpu_pct_5k', 'rss_mb_5k'];

describe('bench:modbus smoke', () => {
  it('ends with one JSON line carrying every contract key, the large-site run\'s and the goals', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [SCRIPT, '--duration=2', '--fast=1', '--warmup=1', '--endpoints=2', '--units=3', '--interval=500',
        '--endpoints-5k=2', '--units-5k=2', '--duration-5k=2', '--sim-procs-5k=2'],
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
    for (const k of KEYS_5K) expect(json, k).toHaveProperty(k);
    expect(json['devices_5k']).toBe(4);
    expect(json['values_ok_5k']).toBe(true);
    expect(json['polls_per_s_5k']).toBeGreaterThan(4);
    expect(Object.keys(json['goals_met'] as object).sort()).toEqual(['cpu_pct_5k', 'cpu_ratio_vs_bare', 'cycle_p99_ms_5k', 'overruns_5k', 'rss_mb_5k']);
    expect(typeof json['goal_met']).toBe('boolean');
  }, 70_000);
});
