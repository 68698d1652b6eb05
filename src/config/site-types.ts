// The site model: config/<site>.yaml after validation. YAML keys are snake_case and mirror these
// types one to one; durations are written with units in YAML (`1s`, `500ms`, `15m`) and arrive
// here as milliseconds in fields named *_ms. Secrets arrive resolved (from ${ENV} or *_file).
// The types are inferred from src/config/site-schema.ts, the single source of truth that validates
// raw YAML into them: a key is added to the schema, never here. What the loader derives after
// validation (client_id, grid.stale_after_ms, source) is composed on below.

import type { DeviceProfile } from './profile-types.js';
import type { Infer } from './schema-dsl.js';
import type { InferObj, Omissible } from './schema-object.js';
import type { deviceSchema, siteSchema, sinkCommon } from './site-schema.js';

/** What the site schema yields, before checkSite() fills in the derived defaults. */
export type ParsedSite = Infer<typeof siteSchema>;
type ParsedMqtt = NonNullable<ParsedSite['mqtt']>;
type ParsedDevice = Infer<typeof deviceSchema>;

export type SiteInfo = ParsedSite['site'];

/** How a device is reached: Modbus TCP, RTU on a serial port, or RTU frames through a serial device server. */
export type ModbusTransport = ParsedDevice['transport'];

/** A serial line (RS-485/RS-232): the port for `rtu`, and the line timing for both RTU transports. */
export type SerialSettings = NonNullable<ParsedDevice['serial']>;

/** A Modbus device; `transport` (tcp) and `record` (false) may be left out in code. */
export type DeviceConfig = Omissible<ParsedDevice, 'transport' | 'record'>;

/** Smart-meter ingest; `state_file` (.state/meter-state.json, absolute) may be left out in code. */
export type MeterIngestConfig = Omissible<NonNullable<ParsedMqtt['meters']>, 'state_file'>;
/** Keys resolved: public_keys holds every key (also those of *_file), gateway_key the signing key. */
export type DemandResponseConfig = NonNullable<ParsedMqtt['demand_response']>;

/** checkSite() sets client_id (default ems-gateway-<site id>). */
export type MqttConfig = Omit<ParsedMqtt, 'client_id' | 'meters'> & { client_id: string; meters?: MeterIngestConfig };

export type TelemetryConfig = ParsedSite['telemetry'];

/** checkSite() sets stale_after_ms (default 3x the slowest contributing poll interval, at least 10s). */
export type GridConfig = Omit<ParsedSite['grid'], 'stale_after_ms'> & { stale_after_ms: number };

/** Thresholds of the five alerts of the source design and of the delivery backlog (which may be left out in code). */
export type AlertConfig = Omissible<ParsedSite['alerts'], 'delivery_backlog_age_ms'>;

type ParsedDelivery = NonNullable<ParsedSite['delivery']>;
export type DeliveryConfig = ParsedDelivery;
type DeliverySinksConfig = ParsedDelivery['sinks'];
/** What every sink has: batching, catch-up rate, retry backoff. */
export type SinkCommonConfig = InferObj<typeof sinkCommon>;
export type OtlpLogsSinkConfig = NonNullable<DeliverySinksConfig['otlp_logs']>;
export type InfluxSinkConfig = NonNullable<DeliverySinksConfig['influx']>;
export type PostgresSinkConfig = NonNullable<DeliverySinksConfig['postgres']>;
/** TLS of a sink's connection (files resolved relative to the site file). */
export type SinkTlsConfig = NonNullable<InfluxSinkConfig['tls']>;

/**
 * A validated site: what the schema yields with the derived defaults set (checkSite()) and the
 * source file. `profiles_dir` is absolute (relative to the site file in YAML).
 */
export type SiteConfig = Omit<ParsedSite, 'devices' | 'mqtt' | 'grid' | 'alerts'> & {
  devices: DeviceConfig[];
  mqtt?: MqttConfig;
  grid: GridConfig;
  alerts: AlertConfig;
  /** Absolute path of the site file. */
  source: string;
};

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
