// Adapters from each part's own status() shape to the status endpoint's sections (status-model.ts).
// They live here, not in the parts, so a part's internal snapshot can change without the page
// changing, and the page's JSON stays one documented shape.
import type { AlertOverview } from '../alerts/evaluator.js';
import type { DrAck } from '../demand-response/ack.js';
import type { DemandResponseStatus } from '../demand-response/service.js';
import type { GridSnapshot } from '../grid/grid-state.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { DeliveryStatus } from '../delivery/delivery-service.js';
import type { MeterIngestStatus } from '../meters/ingest-stats.js';
import type { SessionStatus } from '../mqtt/session-continuity.js';
import type { PointReadout, ReadBlockReadout } from '../modbus/live-values.js';
import type { DeviceStatus as PollerStatus } from '../modbus/poller.js';
import type { ExporterHealth } from '../telemetry/export-health.js';
import type { TelemetrySettings } from '../telemetry/settings.js';
import type { SpanBooks } from '../telemetry/span-accounting.js';
import type {
  AbsentReason, AlertStatus, BrokerSessionStatus, DeliveryStatusSection, DeviceDetail, DeviceStatus, DeviceValue, DrStatus, ExporterStatus, GridStatus, MeterStatus,
} from './status-model.js';

export function gridStatus(snap: GridSnapshot | undefined, nominalHz: number, nowMs: number): GridStatus {
  if (!snap) return { frequency_hz: null, nominal_frequency_hz: nominalHz, generation_mw: null, load_mw: null, updated_age_s: null };
  return {
    frequency_hz: snap.frequency_hz,
    nominal_frequency_hz: snap.nominal_frequency_hz,
    generation_mw: snap.generation_mw,
    load_mw: snap.load_mw,
    imbalance_mw: snap.imbalance_mw,
    sources_contributing: snap.sources_contributing,
    sources_excluded: snap.sources_excluded,
    updated_age_s: Math.max(0, (nowMs - snap.at_ms) / 1000),
  };
}

/** Both signals in one line for a technician: healthy only when neither is failing. */
export function exporterStatus(settings: TelemetrySettings, health: ExporterHealth, spans?: SpanBooks): ExporterStatus {
  const states = [health.metrics.state, health.traces.state];
  const enabled = settings.enabled;
  const failing = states.includes('failing');
  const known = states.some((s) => s === 'ok' || s === 'failing');
  const lastError = health.metrics.lastError ?? health.traces.lastError;
  return {
    enabled,
    endpoint: settings.metricsUrl,
    healthy: !enabled || !known ? null : !failing,
    failures_total: health.metrics.failures + health.traces.failures,
    ...(failing && lastError !== undefined ? { last_error: lastError } : {}),
    ...(spans ? {
      spans: {
        queue_size: spans.capacity,
        batch_size: spans.batchSize,
        queued: spans.queued,
        dropped_total: spans.dropped.queue_full + spans.dropped.export_failed,
        dropped_by_reason: { ...spans.dropped },
      },
    } : {}),
  };
}

/** The evaluator reports pending as ok with ', pending' in its summary; the page shows it apart. */
export function alertStatus(alerts: AlertOverview[]): AlertStatus[] {
  return alerts.map((a) => ({
    name: a.name,
    state: a.state === 'ok' && a.summary.endsWith(', pending') ? 'pending' : a.state,
    value: a.value,
    threshold: a.threshold,
    summary: a.summary,
    ...(a.since_ms !== undefined ? { since_ms: a.since_ms } : {}),
  }));
}

/**
 * Turns the meter ingest's own counters into the page's section. The p99s come from the alert
 * evaluator (the same 5-minute windows as the stale-data and slow-ingestion alerts) when it runs.
 */
export function meterStatus(s: MeterIngestStatus, alerts?: AlertOverview[]): MeterStatus {
  const value = (name: string): number | null | undefined => alerts?.find((a) => a.name === name)?.value;
  return {
    data_age_p99_s: value('stale_meter_data') ?? null,
    ingestion_latency_p99_ms: value('slow_ingestion') ?? null,
    connected: s.connected,
    flow_confirmed: s.flow_confirmed,
    reconnects: s.reconnects,
    readings_per_s: s.ingest_rate_per_s,
    ingested_total: s.readings_ingested,
    dropped_total: s.readings_dropped,
    dropped_by_reason: { ...s.drops_by_reason },
    meters_seen: s.meters_tracked,
    session: brokerSession(s.session),
  };
}

export function brokerSession(s: SessionStatus): BrokerSessionStatus {
  return { persistent: s.persistent, lost_total: s.lost, ...(s.lastLostAtMs !== undefined ? { last_lost_ms: s.lastLostAtMs } : {}) };
}

/** Counts DR outcomes from the acks the service publishes (the service's status has no ack rate). */
export class DrTally {
  commands = 0;
  rejected = 0;
  controllers = 0;
  acknowledged = 0;

  record(ack: DrAck): void {
    if (ack.status === 'accepted') this.commands += 1;
    else if (ack.status === 'rejected') {
      this.commands += 1;
      this.rejected += 1;
    } else if (!ack.dry_run && (ack.status === 'completed' || ack.status === 'reasserted')) {
      this.controllers += ack.controller_count;
      this.acknowledged += ack.ack_count;
    }
  }

  ackRate(): number | null {
    return this.controllers === 0 ? null : this.acknowledged / this.controllers;
  }
}

export function drStatus(s: DemandResponseStatus, tally: DrTally): DrStatus {
  return {
    connected: s.connected,
    dry_run: s.dry_run,
    active: s.active.map((a) => ({
      command_id: a.command_id, zone: a.zone, reduction_mw: a.reduction_mw, ends_at_ms: Date.parse(a.ends_at), controllers: a.controllers,
    })),
    ack_rate: tally.ackRate(),
    commands_total: tally.commands,
    rejected_total: tally.rejected,
    ...(s.session ? { session: brokerSession(s.session) } : {}),
  };
}

/** Where the live values come from (PollerSet.liveValues / lastReads). */
interface LiveValueSource {
  liveValues(deviceId: string, withRegisters?: boolean): PointReadout[] | undefined;
  lastReads(deviceId: string): ReadBlockReadout[] | undefined;
}

const ageOf = (atMs: number | undefined, nowMs: number): number | null => (atMs === undefined ? null : Math.max(0, (nowMs - atMs) / 1000));

/** A point's readout as the status page shows it: the value, or `absent` with the reason. */
function deviceValue(r: PointReadout, nowMs: number): DeviceValue {
  const v: DeviceValue = { id: r.id, age_s: ageOf(r.read_at_ms, nowMs) };
  if (r.name !== undefined) v.name = r.name;
  if (r.unit !== undefined) v.unit = r.unit;
  if (r.state === 'ok') {
    if (r.value !== undefined) v.value = r.value;
    if (r.label !== undefined) v.label = r.label;
    if (r.flags !== undefined) v.flags = r.flags;
  } else {
    v.absent = r.state satisfies AbsentReason;
    if (r.reason !== undefined) v.reason = r.reason;
  }
  if (r.valid_range !== undefined) v.valid_range = r.valid_range;
  if (r.registers !== undefined) v.registers = r.registers;
  if (r.order !== undefined) v.order = r.order;
  if (r.orders !== undefined) v.orders = r.orders;
  return v;
}

/** /status/devices/<id>: the device's entry with raw registers per point and per read; undefined when unknown. */
export function deviceDetail(id: string, pollers: PollerStatus[], devices: readonly DeviceConfig[], live: LiveValueSource, nowMs: number): DeviceDetail | undefined {
  const p = pollers.find((s) => s.deviceId === id);
  const values = live.liveValues(id, true);
  const reads = live.lastReads(id);
  if (p === undefined || values === undefined || reads === undefined) return undefined;
  const [base] = deviceStatus([p], devices);
  if (base === undefined) return undefined;
  return {
    ...base,
    values: values.map((r) => deviceValue(r, nowMs)),
    reads: reads.map((b) => ({
      table: b.table, address: b.address, count: b.count, age_s: ageOf(b.read_at_ms, nowMs), registers: b.registers, ...(b.error === undefined ? {} : { error: b.error }),
    })),
  };
}

/**
 * Pollers' status joined with the site's device config (zone, role, profile) and, given a
 * source, each device's live values. Never-polled = down.
 */
export function deviceStatus(pollers: PollerStatus[], devices: readonly DeviceConfig[], live?: LiveValueSource, nowMs = Date.now()): DeviceStatus[] {
  const byId = new Map(devices.map((d) => [d.id, d]));
  return pollers.map((p) => {
    const d = byId.get(p.deviceId);
    const out: DeviceStatus = {
      id: p.deviceId,
      up: p.up === true,
      last_good_age_s: p.lastGoodAgeMs === undefined ? null : p.lastGoodAgeMs / 1000,
      ...(d ? { zone: d.zone, role: d.role ?? d.profile, profile: d.profile } : {}),
    };
    if (p.up !== true && p.lastError) out.last_error = `${p.lastError.code}: ${p.lastError.message}`;
    if (p.identity !== undefined) out.identity = p.identity;
    const values = live?.liveValues(p.deviceId);
    if (values !== undefined) out.values = values.map((r) => deviceValue(r, nowMs));
    if (p.sunspec !== undefined) out.sunspec = p.sunspec;
    return out;
  });
}

/** The spool and each sink: state, backlog, oldest pending age and drain estimate. */
export function deliveryStatus(s: DeliveryStatus | undefined): DeliveryStatusSection {
  if (s === undefined) throw new Error('delivery not started');
  const sp = s.spool;
  return {
    spool: { directory: sp.directory, policy: sp.policy, bytes: sp.bytes, max_bytes: sp.max_bytes, readings: sp.readings, full: sp.full, disk_full: sp.disk_full },
    sinks: s.sinks.map((f) => ({
      name: f.name, target: f.target, state: f.state, backlog: f.pending, oldest_pending_age_s: f.oldest_pending_age_s,
      delivered_total: f.delivered_total, rejected_total: f.rejected_total, evicted_total: f.evicted_total, rate_per_s: f.rate_per_s,
      drain_estimate_s: f.drain_estimate_s, ...(f.last_error !== undefined ? { last_error: f.last_error } : {}),
    })),
  };
}
