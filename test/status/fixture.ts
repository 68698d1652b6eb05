// A StatusContext with every section filled, as a running demo site would report it.
import type { StatusContext, StatusProviders } from '../../src/status/status-model.js';
import type { PartHealth } from '../../src/runtime/lifecycle.js';

export function sampleProviders(now: number): StatusProviders {
  return {
    devices: () => [
      {
        id: 'inv-east-1', zone: 'zone-a', role: 'pv-array-east', up: true, last_good_age_s: 0.8,
        identity: { manufacturer: 'EMS Demo', model_name: 'SIM-3PH-10K', serial_number: 'SN0001' },
        sunspec: {
          base: 40000, end: 'end_marker',
          models: [{ id: 1, name: 'common', start: 40002, length: 65 }, { id: 103, name: 'inverter_three_phase', start: 40069, length: 50 }],
          absent: [{ model: 123, points: ['power_limit_pct', 'wmaxlimpct_sf'], reason: "model 123 (controls) is not in the device's SunSpec chain" }],
          length_mismatches: [{ model: 1, device_length: 65, profile_length: 66 }],
        },
        values: [
          { id: 'ac_power', name: 'W', unit: 'W', value: 8123, age_s: 0.8 },
          { id: 'ac_frequency', name: 'Hz', unit: 'Hz', value: 50.01, age_s: 0.8, valid_range: [45, 65] },
          { id: 'operating_state', name: 'St', unit: '1', value: 4, label: 'MPPT', age_s: 0.8 },
          { id: 'events', name: 'Evt1', unit: '1', value: 37, flags: ['COMMS', 'OVER_TEMP_WARNING', 'ISOLATION'], age_s: 0.8 },
          { id: 'dc_power', name: 'DCW', unit: 'W', absent: 'sentinel', reason: '0x8000 means "not implemented"', age_s: 0.8 },
        ],
      },
      {
        id: 'bms-1', zone: 'zone-a', role: 'battery', up: true, last_good_age_s: 1.2,
        values: [
          { id: 'state_of_charge', name: 'SOC', unit: '%', absent: 'implausible', age_s: 1.2, valid_range: [0, 100],
            reason: '2.3844494668951087e-41 is a denormal float (never a measurement); did you mean CDAB?' },
          { id: 'battery_voltage', name: 'U_BAT', unit: 'V', value: 768.25, age_s: 1.2 },
          { id: 'alarms', name: 'ALARM_WORD', unit: '1', value: 0, flags: [], age_s: 1.2 },
          { id: 'contactor_closed', name: 'K_MAIN', value: true, age_s: 1.2 },
        ],
      },
      {
        id: 'load-ctl-north', zone: 'zone-b', role: 'load_controller', up: false, last_good_age_s: 312, last_error: 'MB_TIMEOUT: no answer within 500 ms (unit 3, holding 40001)',
        values: [{ id: 'load_power', name: 'P_LOAD', unit: 'kW', absent: 'failed_read', age_s: 2, reason: 'timeout: load-ctl-north (unit 3) at 10.0.0.9:502 read holding 40000+6: no answer within 500 ms' }],
      },
    ],
    meters: () => ({
      connected: true, flow_confirmed: false, reconnects: 2, readings_per_s: 1843.4, ingested_total: 120_331, dropped_total: 57,
      dropped_by_reason: { malformed_json: 40, duplicate: 17 }, data_age_p99_s: 2.4, ingestion_latency_p99_ms: 12.5, meters_seen: 2000,
      session: { persistent: true, lost_total: 1, last_lost_ms: now - 180_000 },
    }),
    grid: () => ({ frequency_hz: 50.012, nominal_frequency_hz: 50, generation_mw: 3.21, load_mw: 2.98, imbalance_mw: 0.23, sources_contributing: 5, sources_excluded: 1, updated_age_s: 2 }),
    alerts: () => [
      { name: 'ingestion_drops', state: 'firing', since_ms: now - 45_000, value: 0.0047, threshold: 0.001 },
      { name: 'stale_meter_data', state: 'ok', value: 2.4, threshold: 900, summary: 'EmsStaleMeterData in north: 2.4 s (threshold 900 s)' },
      { name: 'slow_ingestion', state: 'pending', value: 6100, threshold: 5000, summary: 'EmsSlowIngestion in north: 6100 ms (threshold 5000 ms), pending' },
      { name: 'frequency_excursion', state: 'ok', value: 0.012, threshold: 0.5 },
    ],
    demand_response: () => ({
      connected: true, dry_run: true,
      active: [{ command_id: 'demo-curtail-0001', type: 'curtail', zone: 'zone-b', reduction_mw: 0.4, ends_at_ms: now + 600_000, controllers: 2, acknowledged: 2 }],
      ack_rate: 1, commands_total: 1, rejected_total: 0, session: { persistent: true, lost_total: 0 },
    }),
    exporter: () => ({
      enabled: true, endpoint: 'http://127.0.0.1:4318', healthy: false, last_error: 'ECONNREFUSED', failures_total: 3,
      spans: { queue_size: 2048, batch_size: 512, queued: 2048, dropped_total: 3644, dropped_by_reason: { queue_full: 1180, export_failed: 2464 } },
    }),
    delivery: () => ({
      spool: { directory: '/var/lib/ems-gateway/spool', policy: 'backpressure', bytes: 52_428_800, max_bytes: 1_073_741_824, readings: 624_000, full: false, disk_full: false },
      sinks: [
        { name: 'otlp_logs', target: 'http://127.0.0.1:4318/v1/logs', state: 'idle', backlog: 0, oldest_pending_age_s: 0, delivered_total: 1_204_311, rejected_total: 0, evicted_total: 0, rate_per_s: 212, drain_estimate_s: null },
        { name: 'postgres', target: 'postgres://ems@db:5432/ems', state: 'retrying', backlog: 624_000, oldest_pending_age_s: 2950, delivered_total: 580_311, rejected_total: 1, evicted_total: 0, rate_per_s: 0, drain_estimate_s: null, last_error: 'unreachable: ECONNREFUSED' },
        { name: 'influx', target: 'https://influx.example:8086', state: 'sending', backlog: 120_000, oldest_pending_age_s: 95, delivered_total: 1_084_311, rejected_total: 0, evicted_total: 0, rate_per_s: 80, drain_estimate_s: 1500 },
      ],
    }),
  };
}

export function sampleContext(providers: StatusProviders, parts?: PartHealth[]): StatusContext {
  const now = Date.now();
  return {
    site: { id: 'demo-substation', region: 'eu-west', name: 'Demo substation' },
    version: '0.1.0',
    now: () => Date.now(),
    uptimeMs: () => 600_000,
    ready: () => (parts ?? []).every((p) => p.state === 'running'),
    parts: () => parts ?? [
      { name: 'telemetry', state: 'running', since_ms: now },
      { name: 'meters', state: 'running', since_ms: now },
      { name: 'modbus', state: 'running', since_ms: now },
    ],
    providers,
  };
}
