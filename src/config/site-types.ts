// The site model: config/<site>.yaml after validation. YAML keys are snake_case and mirror these
// types one to one; durations are written with units in YAML (`1s`, `500ms`, `15m`) and arrive
// here as milliseconds in fields named *_ms. Secrets arrive resolved (from ${ENV} or *_file).
// src/config/site-schema.ts is the single source of truth that validates raw YAML into these.

import type { DeviceProfile } from './profile-types.js';

export interface SiteInfo {
  id: string;                      // e.g. demo-substation; a resource attribute (ems.site.id)
  region: string;                  // default region; a resource attribute (ems.site.region)
  nominal_frequency_hz: 50 | 60;
  name?: string;
}

/** How a device is reached: Modbus TCP, RTU on a serial port, or RTU frames through a serial device server. */
export type ModbusTransport = 'tcp' | 'rtu' | 'rtu_over_tcp';

/** A serial line (RS-485/RS-232): the port for `rtu`, and the line timing for both RTU transports. */
export interface SerialSettings {
  device?: string;                 // rtu: the serial port, e.g. /dev/ttyUSB0 (absent for rtu_over_tcp)
  baud: number;                    // required: 1200..115200 and the usual higher rates
  parity: 'none' | 'even' | 'odd'; // default even (the Modbus spec's default; many meters ship 8N1)
  stop_bits: 1 | 2;                // default 1
  data_bits: 8;                    // RTU frames are 8-bit (7 is Modbus ASCII)
  turnaround_ms: number;           // default 0: extra silence after each answer, for slow RS-485 transceivers
}

export interface DeviceConfig {
  id: string;                      // unique within the site
  profile: string;                 // devices/<profile>.yaml
  /** Absent in configs built in code: tcp. The loader always sets it. */
  transport?: ModbusTransport;     // default tcp
  host?: string;                   // tcp, rtu_over_tcp (required there)
  port: number;                    // default 502 (tcp, rtu_over_tcp)
  serial?: SerialSettings;         // rtu, rtu_over_tcp (required there)
  unit_id: number;                 // 0..255 (default 1); 1..247 on an RTU line
  zone: string;                    // DR zone / feeder
  role?: string;                   // free text role label (e.g. pv-array-east); default the profile's kind
  poll_interval_ms: number;        // default 1000
  labels: Record<string, string>;
  capacity_kw?: number;            // load controllers: the sheddable load, for DR planning
  enabled: boolean;                // default true
  record?: boolean;                // default false: each poll's values go through the delivery spool and sinks
}

export interface MqttTls {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  reject_unauthorized: boolean;    // default true
}

export interface MeterIngestConfig {
  topics: string[];                // may include wildcards and $share/<group>/<filter>
  qos: 0 | 1;                      // default 1
  region_topic_level?: number;     // 0-based level of the topic that carries the region (after any $share prefix)
  regions?: string[];              // known regions; a reading whose region is not listed -> unknown_region
  batch_max_size: number;          // default 500
  batch_max_wait_ms: number;       // default 50
  max_payload_bytes: number;       // default 1 MiB
  future_skew_ms: number;          // default 5m: timestamps further ahead are rejected
  dedupe_window_ms: number;        // default 10m
  meter_stale_after_ms: number;    // default 5m: a meter's power drops out of the grid load total
  max_meters: number;              // default 1,000,000: meters remembered at once (dedupe state, power table); the least recently heard is evicted first
  reading_span_ratio: number;      // sampling ratio of ems.meter.process_reading spans; default 0.01
  state_file?: string;             // dedupe state across graceful restarts; the loader sets .state/meter-state.json (absolute) by default
}

export interface DemandResponseConfig {
  command_topic: string;
  ack_topic: string;
  public_keys: string[];           // Ed25519 public keys (PEM or base64 raw 32 bytes), resolved from *_file too
  gateway_key?: string;            // the gateway's Ed25519 private key (PKCS#8 PEM) from gateway_key_file: acks are signed with it
  max_clock_skew_ms: number;       // default 30s
  state_file: string;              // where active commands and seen command ids persist; default .state/dr-state.json
  max_concurrency: number;         // controllers commanded at once; default 64
  dry_run: boolean;                // do everything but the write; default false
}

export interface MqttConfig {
  url: string;                     // mqtt://, mqtts://, ws://
  client_id: string;
  username?: string;
  password?: string;               // resolved from password / password_file / ${ENV}
  protocol_version: 4 | 5;         // default 5
  session_expiry_ms: number;       // default 1h; persistent session (clean start off)
  keepalive_ms: number;            // default 30s
  reconnect_min_ms: number;        // default 500
  reconnect_max_ms: number;        // default 30s
  tls?: MqttTls;
  meters?: MeterIngestConfig;
  demand_response?: DemandResponseConfig;
}

export interface TelemetryConfig {
  service_name: string;            // default ems-gateway; OTEL_SERVICE_NAME wins when set
  otlp_endpoint?: string;          // base URL (…:4318); OTEL_EXPORTER_OTLP_* env wins when set
  otlp_headers: Record<string, string>;
  export_interval_ms: number;      // default 10s; OTEL_METRIC_EXPORT_INTERVAL wins
  export_timeout_ms: number;       // default 5s
  resource_attributes: Record<string, string>;
  cardinality_limit: number;       // per metric; default 2000
  span_queue_size: number;         // default 2048; OTEL_BSP_MAX_QUEUE_SIZE wins
  span_batch_size: number;         // default 512, <= span_queue_size; OTEL_BSP_MAX_EXPORT_BATCH_SIZE wins
  enabled: boolean;                // default true; OTEL_SDK_DISABLED=true wins
}

export interface GridConfig {
  update_interval_ms: number;      // default 5s
  stale_after_ms: number;          // default 3x the slowest contributing poll interval, at least 10s
  frequency_source?: string;       // device id whose 'frequency' point is the grid frequency
}

/** Thresholds of the five alerts of the source design (defaults are the seed's) and of the delivery backlog. */
export interface AlertConfig {
  evaluate_interval_ms: number;    // default 15s
  stale_meter_data_age_ms: number; // default 15m
  drop_ratio: number;              // default 0.001 (0.1 %)
  dr_ack_rate_min: number;         // default 0.9
  frequency_deviation_hz: number;  // default 0.5
  ingestion_latency_p99_ms: number;// default 5000
  delivery_backlog_age_ms?: number; // delivery backlog: a sink's oldest pending reading older than this; default 1h
}

/** TLS of a sink's connection (files resolved relative to the site file). */
export interface SinkTlsConfig {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  reject_unauthorized: boolean;    // default true
}

/** What every sink has: batching, catch-up rate, retry backoff. */
export interface SinkCommonConfig {
  batch_max_size: number;          // readings per upstream request; default 5000
  batch_max_wait_ms: number;       // a partial batch waits this long for more; default 200ms
  max_rate: number;                // readings/s at most (catch-up after an outage); 0 = unlimited; default 20000
  retry_min_ms: number;            // first retry delay (exponential backoff with full jitter); default 1s
  retry_max_ms: number;            // retry ceiling; default 60s
  timeout_ms: number;              // one request; default 10s
}

export interface OtlpLogsSinkConfig extends SinkCommonConfig {
  endpoint?: string;               // full logs URL; default OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, else <OTLP base>/v1/logs
  headers: Record<string, string>; // OTEL_EXPORTER_OTLP_LOGS_HEADERS / OTEL_EXPORTER_OTLP_HEADERS win
}

export interface InfluxSinkConfig extends SinkCommonConfig {
  url: string;                     // base URL, e.g. http://influx:8086
  api: 'v1' | 'v2';                // v1: /write?db=; v2: /api/v2/write?org=&bucket= with a token
  database?: string;               // v1
  retention_policy?: string;       // v1
  username?: string;               // v1
  password?: string;               // v1, resolved from password / password_file / ${ENV}
  org?: string;                    // v2
  bucket?: string;                 // v2
  token?: string;                  // v2, resolved from token / token_file / ${ENV}
  measurement: string;             // meter readings; default meter_reading
  device_measurement: string;      // device samples; default device_sample
  tls?: SinkTlsConfig;
}

export interface PostgresSinkConfig extends SinkCommonConfig {
  url?: string;                    // postgres://user@host:port/db (no password in it: use password / password_file)
  host: string;                    // default 127.0.0.1
  port: number;                    // default 5432
  database: string;                // default ems
  user: string;                    // default ems
  password?: string;               // resolved from password / password_file / ${ENV}
  table: string;                   // meter readings; default meter_readings
  device_table: string;            // device samples; default device_samples
  create_table: boolean;           // CREATE TABLE IF NOT EXISTS at start; default true
  tls?: SinkTlsConfig;
}

export interface DeliverySinksConfig {
  otlp_logs?: OtlpLogsSinkConfig;
  influx?: InfluxSinkConfig;
  postgres?: PostgresSinkConfig;
}

export interface SpoolConfig {
  directory: string;               // absolute (relative to the site file in YAML); default .state/spool
  max_size_mb: number;             // bound of the spooled data; default 1024
  max_age_ms: number;              // bound of the oldest reading; default 7d
  policy: 'backpressure' | 'drop_oldest'; // default backpressure
}

/** Where readings go: the durable spool on the box and the upstream sinks. */
export interface DeliveryConfig {
  spool: SpoolConfig;
  sinks: DeliverySinksConfig;
  record_devices: boolean;         // every device's polls are recorded (as record: true on each); default false
}

export interface StatusConfig {
  host: string;                    // default 127.0.0.1
  port: number;                    // default 8780
  enabled: boolean;
}

export interface LoggingConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; // LOG_LEVEL env wins
}

export interface SiteConfig {
  version: 1;
  site: SiteInfo;
  devices: DeviceConfig[];
  mqtt?: MqttConfig;
  delivery?: DeliveryConfig;
  telemetry: TelemetryConfig;
  grid: GridConfig;
  alerts: AlertConfig;
  status: StatusConfig;
  logging: LoggingConfig;
  /** Absolute path of the profiles folder when the site sets `profiles_dir:` (relative to the site file in YAML). */
  profiles_dir?: string;
  /** Absolute path of the site file. */
  source: string;
}

/** A validated site together with the profiles it refers to, keyed by profile name. */
export interface LoadedSite {
  site: SiteConfig;
  profiles: Map<string, DeviceProfile>;
  warnings: ConfigProblem[];
}

/** One problem found in a config file: printed as `file:line:col path: message`. */
export interface ConfigProblem {
  file: string;
  line: number;                    // 1-based; 0 when unknown
  col: number;                     // 1-based; 0 when unknown
  path: string;                    // e.g. devices[2].unit_id
  message: string;                 // quotes the bad value
  severity: 'error' | 'warning';
}
