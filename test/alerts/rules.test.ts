// The Prometheus rule file: promtool checks it and runs its unit tests (each alert fired), and
// every metric it names is the collector's translation of a semconv metric with its unit.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERTS } from '../../src/alerts/definitions.js';
import { prometheusName } from '../../src/alerts/prometheus-names.js';
import { METRICS, METRIC_UNITS } from '../../src/telemetry/semconv.js';
import { hasPeer } from '../peers.js';

const ALERTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/alerts');
const promtoolBin = '/usr/bin/promtool';
// The preflight fails a run without promtool unless EMS_TEST_PEERS=optional (test/peers.ts).
const havePromtool = hasPeer('promtool');

describe.skipIf(!havePromtool)('promtool', () => {
  it('check rules: the rule file is valid', () => {
    const out = execFileSync(promtoolBin, ['check', 'rules', 'ems.rules.yaml'], { cwd: ALERTS_DIR, encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  it('test rules: each alert fires on its unit-test series', () => {
    const r = spawnSync(promtoolBin, ['test', 'rules', 'ems.rules.test.yaml'], { cwd: ALERTS_DIR, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
    const tests = readFileSync(path.join(ALERTS_DIR, 'ems.rules.test.yaml'), 'utf8');
    for (const alert of ALERTS.map((a) => a.prometheusName)) {
      expect(tests).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
    }
  });
});

describe('rule file metric names', () => {
  it('follows the collector translation of the semconv names and units', () => {
    expect(prometheusName(METRICS.meterIngestionLatency, METRIC_UNITS.meterIngestionLatency, 'histogram')).toBe('ems_meter_ingestion_latency_ms_milliseconds');
    expect(prometheusName(METRICS.meterDataAge, METRIC_UNITS.meterDataAge, 'histogram')).toBe('ems_meter_data_age_seconds');
    expect(prometheusName(METRICS.meterReadingsIngested, METRIC_UNITS.meterReadingsIngested, 'counter')).toBe('ems_meter_readings_ingested_total');
    expect(prometheusName(METRICS.gridFrequency, METRIC_UNITS.gridFrequency, 'gauge')).toBe('ems_grid_frequency_hz_hertz');
    expect(prometheusName(METRICS.gridTotalLoad, METRIC_UNITS.gridTotalLoad, 'gauge')).toBe('ems_grid_total_load_mw_MW');
    expect(prometheusName('http.server.duration', 's', 'histogram')).toBe('http_server_duration_seconds');
    expect(prometheusName('requests.count', '1', 'counter')).toBe('requests_count_total');
    expect(prometheusName('cpu.usage', '1', 'gauge')).toBe('cpu_usage_ratio');
    expect(prometheusName('net.io', 'By/s', 'counter')).toBe('net_io_bytes_per_second_total');
  });

  it('names only metrics the gateway exports', () => {
    const rules = readFileSync(path.join(ALERTS_DIR, 'ems.rules.yaml'), 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    const used = new Set([...rules.matchAll(/\b(ems_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b(?=[{[\s)])/g)].map((m) => m[1]));
    const exported = new Set([
      prometheusName(METRICS.meterIngestionLatency, METRIC_UNITS.meterIngestionLatency, 'histogram'),
      prometheusName(METRICS.meterDataAge, METRIC_UNITS.meterDataAge, 'histogram'),
      prometheusName(METRICS.meterReadingsIngested, METRIC_UNITS.meterReadingsIngested, 'counter'),
      prometheusName(METRICS.meterReadingsDropped, METRIC_UNITS.meterReadingsDropped, 'counter'),
      prometheusName(METRICS.drControllerCommands, METRIC_UNITS.drControllerCommands, 'counter'),
      prometheusName(METRICS.gridFrequency, METRIC_UNITS.gridFrequency, 'gauge'),
      prometheusName(METRICS.mqttSessionLost, METRIC_UNITS.mqttSessionLost, 'counter'),
      prometheusName(METRICS.deliveryOldestAge, METRIC_UNITS.deliveryOldestAge, 'gauge'),
    ]);
    expect(used.size).toBe(exported.size);
    for (const name of used) expect(exported, name ?? '').toContain(name);
  });
});

describe('rule file and local evaluator agree', () => {
  it('same alerts, same `for` durations, same windows', () => {
    const doc = parse(readFileSync(path.join(ALERTS_DIR, 'ems.rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for?: string; labels: Record<string, string> }> }> };
    const rules = doc.groups.flatMap((g) => g.rules);
    const ms = (d: string | undefined): number => {
      if (d === undefined) return 0;
      const m = /^(\d+)(s|m)$/.exec(d);
      return m ? Number(m[1]) * (m[2] === 'm' ? 60_000 : 1000) : Number.NaN;
    };
    expect(rules.map((r) => r.alert)).toEqual(ALERTS.map((a) => a.prometheusName));
    for (const def of ALERTS) {
      const rule = rules.find((r) => r.alert === def.prometheusName);
      expect(rule?.labels['ems_alert'], def.id).toBe(def.id);
      expect(ms(rule?.for), def.id).toBe(def.forMs);
      if (def.windowMs > 0) expect(rule?.expr, def.id).toContain(`[${def.windowMs / 60_000}m]`);
    }
  });
});
