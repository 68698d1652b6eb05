// Shared fixtures of the DR tests: a load-controller profile (inline, so these tests do not depend
// on the YAML in devices/), a site, keys, and a clock whose long timers fire only when advanced.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlDef, DeviceProfile } from '../../src/config/profile-types.js';
import type { DemandResponseConfig, DeviceConfig, SiteConfig } from '../../src/config/site-types.js';
import { generateKeyPair } from '../../src/demand-response/signing.js';
import { parsePrivateKey, parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import type { Clock, ClockTimer } from '../../src/runtime/clock.js';

export const SITE_ID = 'test-site';

export function loadControllerProfile(overrides: Partial<ControlDef> = {}): DeviceProfile {
  const setpoint: ControlDef = {
    id: 'power_limit_kw', table: 'holding', address: 10, type: 'uint16', scale: 0.1, unit: 'kW', role: 'setpoint',
    min: 0, max: 500, never_write: [], verify: { tolerance: 0.1, timeout_ms: 300 }, restore: 'max', rate_limit_ms: 0,
    ...overrides,
  };
  return {
    profile: 'test-load-controller', vendor: 'test', model: 'lc', kind: 'load_controller', address_base: 0, default_order: 'ABCD',
    quirks: { max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: 500, max_connections: 1 },
    points: [
      { id: 'load_kw', table: 'holding', address: 0, type: 'uint16', scale: 0.1, unit: 'kW', role: 'load', simulate: { kind: 'follow_setpoint', base: 100, setpoint: 'power_limit_kw' } },
      { id: 'cmd_status', table: 'holding', address: 20, type: 'uint16', role: 'status', simulate: { kind: 'ack', control: 'power_limit_kw', value: 1 } },
    ],
    controls: [{ ...setpoint, simulate: { kind: 'constant', value: setpoint.max } }],
    source: 'inline',
  };
}

export function device(id: string, port: number, unitId: number, zone = 'zone-a', capacityKw = 100): DeviceConfig {
  return { id, profile: 'test-load-controller', host: '127.0.0.1', port, unit_id: unitId, zone, poll_interval_ms: 1000, labels: {}, capacity_kw: capacityKw, enabled: true };
}

export function siteWith(devices: DeviceConfig[], siteId = SITE_ID): SiteConfig {
  return {
    version: 1, site: { id: siteId, region: 'r1', nominal_frequency_hz: 50 }, devices,
    telemetry: { service_name: 't', otlp_headers: {}, export_interval_ms: 10_000, export_timeout_ms: 5000, resource_attributes: {}, cardinality_limit: 2000, span_queue_size: 2048, span_batch_size: 512, enabled: false },
    grid: { update_interval_ms: 5000, stale_after_ms: 10_000 },
    alerts: { evaluate_interval_ms: 15_000, stale_meter_data_age_ms: 900_000, drop_ratio: 0.001, dr_ack_rate_min: 0.9, frequency_deviation_hz: 0.5, ingestion_latency_p99_ms: 5000 },
    status: { host: '127.0.0.1', port: 0, enabled: false }, logging: { level: 'silent' }, source: 'inline.yaml',
  };
}

export const KEYS = (() => {
  const pair = generateKeyPair();
  const other = generateKeyPair();
  return {
    privateKey: parsePrivateKey(pair.privatePem),
    publicPem: pair.publicPem,
    publicRaw: pair.publicRaw,
    publicKey: parsePublicKey(pair.publicRaw),
    otherPrivateKey: parsePrivateKey(other.privatePem),
  };
})();

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ems-dr-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function drConfig(stateFile: string, overrides: Partial<DemandResponseConfig> = {}): DemandResponseConfig {
  return {
    command_topic: 'ems/{site}/dr/command', ack_topic: 'ems/{site}/dr/ack/{command_id}', public_keys: [KEYS.publicPem],
    max_clock_skew_ms: 30_000, state_file: stateFile, max_concurrency: 64, dry_run: false, ...overrides,
  };
}

/**
 * Wall time is real time plus `offset`; timers up to `realTimerMaxMs` run on real time (Modbus
 * timeouts, read-back delays), longer ones (curtailment ends, checks) fire only in `advance()`.
 */
export class TestClock implements Clock {
  offset = 0;
  private readonly manual = new Map<ClockTimer, { at: number; fn: () => void }>();
  constructor(private readonly realTimerMaxMs = 10_000) {}
  now(): number { return Date.now() + this.offset; }
  monotonic(): number { return performance.now(); }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    if (ms <= this.realTimerMaxMs) return setTimeout(fn, ms);
    const handle = setTimeout(() => undefined, 0);
    clearTimeout(handle);
    this.manual.set(handle, { at: this.now() + ms, fn });
    return handle;
  }
  clearTimeout(t: ClockTimer): void {
    if (!this.manual.delete(t)) clearTimeout(t);
  }
  /** Moves wall time forward and fires the long timers that fall due. */
  advance(ms: number): void {
    this.offset += ms;
    const now = this.now();
    for (const [h, t] of [...this.manual]) {
      if (t.at <= now) {
        this.manual.delete(h);
        t.fn();
      }
    }
  }
  pending(): number { return this.manual.size; }
}
