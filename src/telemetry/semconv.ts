// The one place that names every metric, span and attribute the gateway exports.
// The `ems.*` names of the source design (../docs/product.md contract) are exact: dashboards and
// alerts depend on them. Names the gateway adds beyond the seed follow the same style and are
// marked "(gateway)". Nothing else in src/ spells a metric or span name as a string literal.

export const METRICS = {
  // --- seed contract ---
  meterReadingsIngested: 'ems.meter.readings_ingested',     // counter {region}
  meterReadingsDropped: 'ems.meter.readings_dropped',       // counter {region, error_type}
  meterIngestionLatency: 'ems.meter.ingestion_latency_ms',  // histogram ms {region}
  meterDataAge: 'ems.meter.data_age_seconds',               // histogram s {region}
  gridFrequency: 'ems.grid.frequency_hz',                   // gauge Hz
  gridTotalGeneration: 'ems.grid.total_generation_mw',      // gauge MW
  gridTotalLoad: 'ems.grid.total_load_mw',                  // gauge MW
  // --- gateway additions ---
  drControllerCommands: 'ems.demand_response.controller_commands', // counter {outcome, zone} (gateway): ack-rate alert
  drCommands: 'ems.demand_response.commands',                      // counter {command_type, result} (gateway)
  drAcksSuppressed: 'ems.demand_response.acks_suppressed',         // counter {result} (gateway): rejection acks not sent (rate limit)
  drStateRefused: 'ems.demand_response.state_refused',             // counter {reason} (gateway): stored controller records refused
  gridSourcesContributing: 'ems.grid.sources_contributing',        // gauge {kind} (gateway)
  modbusRequestDuration: 'ems.modbus.request.duration_ms',         // histogram ms {device_id} (gateway)
  modbusRequests: 'ems.modbus.requests',                           // counter {device_id, table} (gateway)
  modbusErrors: 'ems.modbus.errors',                               // counter {device_id, error_type} (gateway)
  modbusDeviceUp: 'ems.modbus.device.up',                          // gauge 0/1 {device_id, zone} (gateway)
  modbusBytes: 'ems.modbus.bytes',                                 // counter By {endpoint, direction} (gateway)
  modbusStrayResponses: 'ems.modbus.stray_responses',              // counter {endpoint} (gateway)
  modbusPollCycleDuration: 'ems.modbus.poll.cycle_duration_ms',    // histogram ms {device_id} (gateway)
  modbusPollOverruns: 'ems.modbus.poll.overruns',                  // counter {device_id} (gateway)
  modbusMalformedFrames: 'ems.modbus.malformed_frames',            // counter {endpoint} (gateway): bytes no request could own
  exportFailures: 'ems.telemetry.export_failures',                 // counter {signal} (gateway)
  telemetrySpansDropped: 'ems.telemetry.spans_dropped',            // counter {reason} (gateway): spans that never reached the collector
  meterStateEvictions: 'ems.meter.state_evictions',                // counter (gateway): meters heard within the dedupe window evicted at max_meters
  mqttSessionLost: 'ems.mqtt.session_lost',                        // counter {client} (gateway): broker answered a reconnect without our persistent session
  alertFiring: 'ems.alert.firing',                                 // gauge 0/1 {alert} (gateway)
  // --- delivery (spool and sinks, gateway) ---
  deliveryDelivered: 'ems.delivery.delivered',                     // counter {sink}: readings the upstream confirmed
  deliveryPending: 'ems.delivery.pending',                         // gauge {sink}: readings in the spool not yet confirmed
  deliveryOldestAge: 'ems.delivery.oldest_pending_age_seconds',    // gauge s {sink}: the backlog alert
  deliveryLatency: 'ems.delivery.latency_ms',                      // histogram ms {sink}: arrival to upstream confirm
  deliveryFailures: 'ems.delivery.failures',                       // counter {sink, error_type}: failed upstream requests
  deliveryRejected: 'ems.delivery.rejected',                       // counter {sink, error_type}: poison readings dropped alone
  deliveryEvicted: 'ems.delivery.evicted',                         // counter {sink}: evicted before this sink had them
  spoolBytes: 'ems.spool.bytes',                                   // gauge By
  spoolReadings: 'ems.spool.readings',                             // gauge: readings held
} as const;

/**
 * Units of the instruments (UCUM, as OTel wants them). Every part creates its instrument with the
 * unit listed here so the Prometheus names in config/alerts/ems.rules.yaml hold: the collector's
 * Prometheus exporter appends the unit (`ms` -> `_milliseconds`, `Hz` -> `_hertz`) unless the
 * name already ends in it, drops `{annotations}`, and adds `_total` to counters (docs/alerts.md).
 */
export const METRIC_UNITS = {
  meterReadingsIngested: '{reading}',
  meterReadingsDropped: '{reading}',
  meterIngestionLatency: 'ms',
  meterDataAge: 's',
  gridFrequency: 'Hz',
  gridTotalGeneration: 'MW',
  gridTotalLoad: 'MW',
  drControllerCommands: '{command}',
  drCommands: '{command}',
  drAcksSuppressed: '{ack}',
  drStateRefused: '{record}',
  gridSourcesContributing: '{source}',
  exportFailures: '{export}',
  telemetrySpansDropped: '{span}',
  mqttSessionLost: '{session}',
  meterStateEvictions: '{meter}',
  modbusRequestDuration: 'ms',
  modbusRequests: '{request}',
  modbusErrors: '{error}',
  modbusDeviceUp: '{up}',           // not '1': the Prometheus exporter would append _ratio
  modbusBytes: 'By',
  modbusStrayResponses: '{response}',
  modbusPollCycleDuration: 'ms',
  modbusPollOverruns: '{cycle}',
  modbusMalformedFrames: '{frame}',
  deliveryDelivered: '{reading}',
  deliveryPending: '{reading}',
  deliveryOldestAge: 's',
  deliveryLatency: 'ms',
  deliveryFailures: '{request}',
  deliveryRejected: '{reading}',
  deliveryEvicted: '{reading}',
  spoolBytes: 'By',
  spoolReadings: '{reading}',
  alertFiring: '{alert}',   // not '1': the Prometheus exporter would append _ratio to a gauge with unit 1
} as const satisfies Partial<Record<keyof typeof METRICS, string>>;

/**
 * `outcome` values of METRICS.drControllerCommands that the ack-rate alert singles out (the full
 * set is ControllerOutcome in src/demand-response/executor.ts). Ack rate =
 * outcome="acknowledged" / every outcome except "dry_run" (a dry run writes nothing to acknowledge).
 */
export const DR_OUTCOMES = {
  acknowledged: 'acknowledged',
  dryRun: 'dry_run',
} as const;

/** `reason` values of METRICS.telemetrySpansDropped. */
export const SPAN_DROP_REASONS = {
  /** The span queue (telemetry.span_queue_size) was full when the span ended. */
  queueFull: 'queue_full',
  /** The span was in an export that failed for good (after the OTLP exporter's retries). */
  exportFailed: 'export_failed',
} as const;

export type SpanDropReason = (typeof SPAN_DROP_REASONS)[keyof typeof SPAN_DROP_REASONS];

export const SPANS = {
  meterProcessBatch: 'ems.meter.process_batch',
  meterProcessReading: 'ems.meter.process_reading',
  drSend: 'ems.demand_response.send',
  drControllerCmd: 'ems.demand_response.controller_cmd',
  drModbusWrite: 'ems.demand_response.modbus_write',     // (gateway) child of controller_cmd
  drReadBack: 'ems.demand_response.read_back',           // (gateway) child of controller_cmd
  gridStateUpdate: 'ems.grid.state_update',
} as const;

/** Span attribute keys (seed contract, exact). */
export const SPAN_ATTRS = {
  batchSize: 'ems.batch.size',
  batchSuccess: 'ems.batch.success',
  batchFailed: 'ems.batch.failed',
  batchDurationMs: 'ems.batch.duration_ms',
  meterId: 'ems.meter_id',
  region: 'ems.region',
  validation: 'ems.validation',
  writeLatencyMs: 'ems.write_latency_ms',
  drCommandType: 'ems.dr.command_type',
  drTargetZone: 'ems.dr.target_zone',
  drReductionMw: 'ems.dr.reduction_mw',
  drDurationMinutes: 'ems.dr.duration_minutes',
  drControllerCount: 'ems.dr.controller_count',
  drAckCount: 'ems.dr.ack_count',
  drAckRate: 'ems.dr.ack_rate',
  drCommandId: 'ems.dr.command_id',                      // (gateway)
  drRejectReason: 'ems.dr.reject_reason',                // (gateway) on the send span of a rejected command
  drSuppressed: 'ems.dr.suppressed',                     // (gateway) rejections not answered since the last answered one
  modbusAddress: 'ems.modbus.address',                   // (gateway) on DR write / read-back spans: wire address
  modbusValue: 'ems.modbus.value',                       // (gateway) value written (engineering units, after rounding)
  modbusExpected: 'ems.modbus.expected',                 // (gateway) value a read-back must show
  modbusReadBack: 'ems.modbus.read_back',                // (gateway) value read back
  controllerId: 'ems.controller_id',
  controllerType: 'ems.controller_type',
  cmdLatencyMs: 'ems.cmd.latency_ms',
  cmdAcknowledged: 'ems.cmd.acknowledged',
  gridGenerationMw: 'ems.grid.generation_mw',
  gridLoadMw: 'ems.grid.load_mw',
  gridImbalanceMw: 'ems.grid.imbalance_mw',
  gridImbalancePct: 'ems.grid.imbalance_pct',
  gridFrequencyHz: 'ems.grid.frequency_hz',
  gridFrequencyDeviationHz: 'ems.grid.frequency_deviation_hz',
  gridSourcesContributing: 'ems.grid.sources_contributing', // (gateway)
  gridSourcesExcluded: 'ems.grid.sources_excluded',         // (gateway)
} as const;

/** Event names of the per-reading OTLP log records (the otlp_logs sink). */
export const LOG_EVENTS = {
  meterReading: 'ems.meter.reading',
  deviceSample: 'ems.device.sample',
} as const;

/** Attribute keys of those log records (per-reading: meter_id belongs here, never on a metric). */
export const LOG_ATTRS = {
  meterId: 'ems.meter_id',
  region: 'ems.region',
  kwh: 'ems.kwh',
  voltage: 'ems.voltage',
  current: 'ems.current',
  powerFactor: 'ems.power_factor',
  powerW: 'ems.power_w',
  deviceId: 'ems.device_id',
  zone: 'ems.zone',
  role: 'ems.role',
  /** A device sample's point values: `ems.point.<point id>`. */
  pointPrefix: 'ems.point.',
} as const;

/** Metric attribute keys: low cardinality only. `meter_id` is never one of them. */
export const METRIC_ATTRS = {
  region: 'region',
  errorType: 'error_type',
  deviceId: 'device_id',
  zone: 'zone',
  role: 'role',
  point: 'point',
  table: 'table',
  direction: 'direction',
  endpoint: 'endpoint',
  outcome: 'outcome',
  commandType: 'command_type',
  result: 'result',
  signal: 'signal',
  alert: 'alert',
  kind: 'kind',
  reason: 'reason',
  client: 'client',
  sink: 'sink',
} as const;

/** Resource attribute keys (beyond the OTel standard service.* / host.name). */
export const RESOURCE_ATTRS = {
  siteId: 'ems.site.id',
  siteRegion: 'ems.site.region',
} as const;

/**
 * Histogram bucket boundaries that resolve the seed's alert thresholds exactly:
 * slow ingestion = P99 latency above 5 s (5000 ms is a boundary);
 * stale meter data = data age above 15 min (900 s is a boundary).
 */
export const BUCKETS = {
  ingestionLatencyMs: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
  dataAgeSeconds: [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 86400],
  modbusRequestMs: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
  pollCycleMs: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  // Arrival to upstream confirm: milliseconds when all is well, hours to a day after an outage.
  deliveryLatencyMs: [10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000, 21600000, 86400000],
} as const;

/**
 * Per-point device gauges (gateway): the `metric:` vocabulary of device profiles (devices/*.yaml),
 * each with the one unit every profile must use for it (test/config/profiles.test.ts checks it;
 * docs/device-profiles.md lists it). Attributes: device id, kind, zone, role, point.
 */
export const DEVICE_METRICS = {
  'ems.device.ac_power': 'W',
  'ems.device.ac_current': 'A',
  'ems.device.ac_current_phase': 'A',
  'ems.device.ac_voltage': 'V',
  'ems.device.ac_frequency': 'Hz',
  'ems.device.apparent_power': 'VA',
  'ems.device.reactive_power': 'var',
  'ems.device.power_factor': '1', // -1..1 (SunSpec PF is in percent: profiles scale it by 0.01)
  'ems.device.energy_produced': 'Wh',
  'ems.device.energy_imported': 'kWh',
  'ems.device.energy_exported': 'kWh',
  'ems.device.dc_power': 'W',
  'ems.device.dc_voltage': 'V',
  'ems.device.dc_current': 'A',
  'ems.device.temperature': 'Cel',
  'ems.device.operating_state': '1',
  'ems.device.alarm_flags': '1',
  'ems.device.power_limit': '%',
  'ems.device.state_of_charge': '%',
  'ems.device.battery_power': 'kW',
  'ems.device.cell_voltage': 'V',
  'ems.device.grid_import_power': 'kW',
  'ems.device.grid_export_power': 'kW',
  'ems.device.load_power': 'kW',
  'ems.device.curtailment_setpoint': 'kW',
  'ems.device.curtailment_enabled': '1',
  'ems.device.command_status': '1',
} as const satisfies Record<string, string>;

/** A device metric name. */
type DeviceMetric = keyof typeof DEVICE_METRICS;
type DeviceMetricSegment = DeviceMetric extends infer M ? (M extends `ems.device.${infer S}` ? S : never) : never;

/** A device metric's name from its last segment (`ac_power` -> its full name), for code that writes profiles (`sunspec scan`). */
export function deviceMetric(segment: DeviceMetricSegment): DeviceMetric {
  return `ems.device.${segment}` as DeviceMetric;
}
