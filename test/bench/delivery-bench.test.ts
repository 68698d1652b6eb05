// Smoke test of `npm run bench:delivery` at a tiny scale, through the built script with its real
// peers (mosquitto, PostgreSQL, VictoriaMetrics): the last line is one JSON object with every key
// the issue asks for, the kill -9 drill lost nothing and PostgreSQL holds no duplicate.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasPeer } from '../peers.js';

const SCRIPT = fileURLToPath(new URL('../../dist/bench/delivery.js', import.meta.url));
const KEYS = ['spool_commit_readings_per_s', 'spool_append_only_readings_per_s', 'ingest_ratio_with_spool', 'drain_readings_per_s', 'backlog_readings',
  'rss_mb_max', 'spool_bytes_per_reading', 'lost', 'duplicates_postgres'];

describe.skipIf(!(hasPeer('mosquitto') && hasPeer('postgres') && hasPeer('victoria-metrics')))('bench:delivery smoke', () => {
  it('ends with one JSON line holding every figure; lost 0, no duplicates', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [SCRIPT], {
        timeout: 280_000, maxBuffer: 16 << 20,
        env: { ...process.env, BENCH_BACKLOG: '20000', BENCH_INGEST_MESSAGES: '100', BENCH_DRILL_MESSAGES: '100' },
      }, (err, stdout, stderr) => (err ? reject(new Error(`${String(err)}\n${stderr.slice(-3000)}`)) : resolve(stdout)));
    });
    const json = JSON.parse(out.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    for (const k of KEYS) expect(json, k).toHaveProperty(k);
    expect(Object.keys(json['drain_readings_per_s'] as object).sort()).toEqual(['influx', 'otlp_logs', 'postgres']);
    for (const v of Object.values(json['drain_readings_per_s'] as Record<string, number>)) expect(v).toBeGreaterThan(0);
    expect(json['backlog_readings']).toBeGreaterThanOrEqual(20_000);
    expect(json['drill_readings']).toBe(100 * 100);
    expect(json['lost']).toBe(0);
    expect(json['duplicates_postgres']).toBe(0);
    expect(json['spool_bytes_per_reading']).toBeGreaterThan(70);
    expect(json['spool_bytes_per_reading']).toBeLessThan(100);
  }, 300_000);
});
