// What /status reports, and the small interface the parts' status() accessors are gathered through.
// The composition root (src/gateway.ts) adapts each part's own status() into one of these sections;
// a part that is not built (not configured, or not wired yet) has no provider and shows as absent
// (null, and listed in `absent`), never as a zero that looks like data.
import type { PartHealth } from '../runtime/lifecycle.js';

export interface DeviceStatus {
  id: string;
  zone?: string;
  role?: string;
  profile?: string;
  up: boolean;
  /** Seconds since the last good read; null when never read. */
  last_good_age_s: number | null;
  /** The last error's code/message, when down. */
  last_error?: string;
  /** Identity read at connect (SunSpec manufacturer, model, serial ...), when the profile has identity points. */
  identity?: Readonly<Record<string, string | number | boolean>>;
  /** SunSpec profiles: the model chain found on the device (id, name, start, length), what it lacks, length mismatches. */
  sunspec?: {
    base: number;
    models: Array<{ id: number; name: string; start: number; length: number }>;
    end: string;
    absent: Array<{ model: number | null; points: string[]; reason: string }>;
    length_mismatches: Array<{ model: number; device_length: number; profile_length: number }>;
  };
  /** Every cyclic point of the profile: its current value, or why there is none (docs/operations.md "Live values"). */
  values?: DeviceValue[];
}

/** Why a point has no value: a "not implemented" sentinel, a failed read, outside valid_range, undecodable, not read yet. */
export type AbsentReason = 'sentinel' | 'failed_read' | 'implausible' | 'malformed' | 'not_read';

export interface DeviceValue {
  id: string;
  /** The datasheet's name (SunSpec "St"). */
  name?: string;
  unit?: string;
  /** The exported value; absent when `absent` says why. */
  value?: number | string | boolean;
  /** Enum label of the raw value (St 4 = MPPT). */
  label?: string;
  /** Flags set in a bit-field word (alarm word 37 = COMMS, OVER_TEMP_WARNING, ISOLATION). */
  flags?: string[];
  /** Seconds since the read the value (or the reason) comes from; null when never read. */
  age_s: number | null;
  absent?: AbsentReason;
  /** With `absent`: the detail (the sentinel registers, the error, the range and the likely word order). */
  reason?: string;
  valid_range?: [number, number];
  /** /status/devices/<id> only: the point's raw registers in the last answer. */
  registers?: number[];
  /** /status/devices/<id> only, 32/64-bit points: the profile's word order and the value in each of the four. */
  order?: string;
  orders?: Record<string, number | null>;
}

/** /status/devices/<id>: the device's section entry plus the raw registers of its last reads. */
export interface DeviceDetail extends DeviceStatus {
  reads: Array<{ table: string; address: number; count: number; age_s: number | null; registers: number[] | null; error?: string }>;
}

export interface MeterStatus {
  connected?: boolean;
  /** A probe message came back through the broker after the latest (re)subscribe: messages really flow. */
  flow_confirmed?: boolean;
  reconnects?: number;
  /** Readings ingested per second over the 10 whole seconds before the current one (docs/meters.md). */
  readings_per_s: number;
  ingested_total: number;
  dropped_total: number;
  dropped_by_reason: Record<string, number>;
  /** p99 of the readings' data age over the last window, seconds; null when no readings. */
  data_age_p99_s?: number | null;
  ingestion_latency_p99_ms?: number | null;
  meters_seen?: number;
  session?: BrokerSessionStatus;
}

/** A client's persistent session on the broker (docs/operations.md "Broker"). */
export interface BrokerSessionStatus {
  /** The client asks for a persistent session (a lost one can be told from a fresh start). */
  persistent: boolean;
  /** Reconnects the broker answered without the session (QoS 1 messages published meanwhile are lost). */
  lost_total: number;
  /** Epoch ms of the latest loss. */
  last_lost_ms?: number;
}

export interface GridStatus {
  frequency_hz: number | null;
  nominal_frequency_hz?: number;
  generation_mw: number | null;
  load_mw: number | null;
  imbalance_mw?: number | null;
  sources_contributing?: number;
  sources_excluded?: number;
  /** Seconds since the grid state was last computed. */
  updated_age_s?: number | null;
}

export interface AlertStatus {
  name: string;
  /** pending: the condition holds but not yet for the alert's `for` duration. */
  state: 'firing' | 'pending' | 'ok' | 'unknown';
  /** Epoch ms of the last transition. */
  since_ms?: number;
  value?: number | null;
  threshold?: number;
  summary?: string;
}

interface DrCommandStatus {
  command_id: string;
  type?: string;
  zone: string;
  reduction_mw?: number;
  /** Epoch ms when the command ends (reverts). */
  ends_at_ms?: number;
  controllers?: number;
  acknowledged?: number;
}

export interface DrStatus {
  connected?: boolean;
  /** Everything but the Modbus write (site file `dry_run: true`). */
  dry_run?: boolean;
  active: DrCommandStatus[];
  /** Ack rate over recent controller commands (0..1); null when none. */
  ack_rate: number | null;
  commands_total?: number;
  rejected_total?: number;
  session?: BrokerSessionStatus;
}

export interface ExporterStatus {
  enabled: boolean;
  endpoint?: string;
  /** null until the first export attempt. */
  healthy: boolean | null;
  last_error?: string;
  failures_total?: number;
  /** The span queue (absent when export is off). */
  spans?: SpanQueueStatus;
}

interface SpanQueueStatus {
  /** telemetry.span_queue_size: spans held for export; past it new spans are dropped. */
  queue_size: number;
  /** telemetry.span_batch_size: spans per export request. */
  batch_size: number;
  /** Spans waiting for export now. */
  queued: number;
  /** Spans that never reached the collector since start (ems.telemetry.spans_dropped). */
  dropped_total: number;
  /** queue_full, export_failed. */
  dropped_by_reason: Record<string, number>;
}

interface SinkStatus {
  name: string;
  /** Where it delivers (URL or host, no credentials). */
  target: string;
  state: 'starting' | 'idle' | 'sending' | 'retrying' | 'stopped';
  /** Readings in the spool this sink has not confirmed. */
  backlog: number;
  oldest_pending_age_s: number;
  delivered_total: number;
  rejected_total: number;
  evicted_total: number;
  rate_per_s: number;
  /** Seconds until the backlog is delivered at the current rate; null when nothing drains. */
  drain_estimate_s: number | null;
  last_error?: string;
}

export interface DeliveryStatusSection {
  spool: { directory: string; policy: string; bytes: number; max_bytes: number; readings: number; full: boolean; disk_full: boolean };
  sinks: SinkStatus[];
}

/** Each accessor is cheap and does no I/O. A missing accessor = the part is absent. */
export interface StatusProviders {
  devices?: () => DeviceStatus[];
  meters?: () => MeterStatus;
  grid?: () => GridStatus;
  alerts?: () => AlertStatus[];
  demand_response?: () => DrStatus;
  exporter?: () => ExporterStatus;
  delivery?: () => DeliveryStatusSection;
  /** /status/devices/<id> (not a section of /status); undefined: no such device. */
  device?: (id: string) => DeviceDetail | undefined;
}

const SECTIONS = ['devices', 'meters', 'grid', 'alerts', 'demand_response', 'exporter', 'delivery'] as const;
type SectionName = (typeof SECTIONS)[number];

/** A section whose accessor threw: shown as such, never crashes the endpoint. */
export interface SectionError {
  error: string;
}

export interface StatusReport {
  site: { id: string; region: string; name?: string };
  version: string;
  generated_at_ms: number;
  uptime_s: number;
  ready: boolean;
  parts: PartHealth[];
  absent: SectionName[];
  devices: DeviceStatus[] | SectionError | null;
  meters: MeterStatus | SectionError | null;
  grid: GridStatus | SectionError | null;
  alerts: AlertStatus[] | SectionError | null;
  demand_response: DrStatus | SectionError | null;
  exporter: ExporterStatus | SectionError | null;
  delivery: DeliveryStatusSection | SectionError | null;
}

export interface StatusContext {
  site: { id: string; region: string; name?: string };
  version: string;
  now: () => number;
  uptimeMs: () => number;
  ready: () => boolean;
  parts: () => PartHealth[];
  providers: StatusProviders;
}

function section<T>(fn: (() => T) | undefined): T | SectionError | null {
  if (fn === undefined) return null;
  try {
    return fn();
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Readiness (docs/operations.md): every part runs and, when the site polls devices, at least one
 * of them is up (its last poll cycle read something). `reasons` say what is missing.
 */
export function readiness(ctx: StatusContext): { ready: boolean; reasons: string[] } {
  const partsReady = ctx.ready();
  const reasons = partsReady ? [] : ctx.parts().filter((p) => p.state !== 'running')
    .map((p) => `${p.name}: ${p.state}${p.error ? ` (${p.error})` : ''}`);
  if (!partsReady && reasons.length === 0) reasons.push('gateway not running');
  const devices = section(ctx.providers.devices);
  if (devices !== null && !Array.isArray(devices)) reasons.push(`devices: ${devices.error}`);
  else if (devices !== null && devices.length > 0 && !devices.some((d) => d.up)) {
    reasons.push(`devices: none of ${devices.length} up (${devices.map((d) => `${d.id}: ${d.last_error ?? 'down'}`).join(', ')})`);
  }
  return { ready: reasons.length === 0, reasons };
}

export function gatherStatus(ctx: StatusContext): StatusReport {
  const p = ctx.providers;
  return {
    site: ctx.site,
    version: ctx.version,
    generated_at_ms: ctx.now(),
    uptime_s: Math.round(ctx.uptimeMs() / 1000),
    ready: readiness(ctx).ready,
    parts: ctx.parts(),
    absent: SECTIONS.filter((s) => p[s] === undefined),
    devices: section(p.devices),
    meters: section(p.meters),
    grid: section(p.grid),
    alerts: section(p.alerts),
    demand_response: section(p.demand_response),
    exporter: section(p.exporter),
    delivery: section(p.delivery),
  };
}
