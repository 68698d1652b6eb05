// The site schema (config/<site>.yaml): the single source of truth that validates site YAML into
// SiteConfig (site-types.ts) and generates schemas/site.schema.json. Secrets resolve here
// (${ENV} in any string, *_file options); cross-section checks live in site-checks.ts.
import { parsePrivateKey, parsePublicKey } from '../runtime/ed25519-keys.js';
import { arr, bool, duration, num, oneOf, str } from './schema-dsl.js';
import { fields, obj, record, without, type Obj } from './schema-object.js';
import { checkPathOption, exclusive, readSecretFile, resolveFrom } from './secret-files.js';
import type { FileCtx } from './yaml-source.js';

const ID = { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', patternHint: 'an id of letters, digits, ".", "_" and "-"' };
const TOPIC_FILTER = { pattern: '^[^#+]*(/?[+#]?[^#+]*)*$', patternHint: 'an MQTT topic filter' };

const serialSchema = obj({
  device: { s: str({ minLength: 1 }), doc: 'rtu: the serial port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...; not for rtu_over_tcp' },
  baud: { s: num({ int: true, min: 300, max: 4_000_000 }), required: true, doc: "the line's speed (rtu_over_tcp: the serial side's, for the timing)", why: 'every device on the line must use the same' },
  parity: { s: oneOf(['none', 'even', 'odd'] as const), default: 'even', doc: "the Modbus spec's default is even; many meters ship with none (8N1)" },
  stop_bits: { s: oneOf([1, 2] as const), default: 1, doc: '1 or 2' },
  data_bits: { s: oneOf([8] as const), default: 8, doc: 'RTU frames are 8-bit (7 data bits is Modbus ASCII, not supported)' },
  turnaround: { s: duration(), default: 0, doc: 'extra silence after each answer before the next request (slow RS-485 transceivers)' },
}, { doc: 'A serial line (RS-485/RS-232). Devices on one line share it: write it once with a YAML anchor (&line-a) and refer to it (*line-a).' });

const RTU = ['rtu', 'rtu_over_tcp'];

export const deviceSchema = obj({
  id: { s: str(ID), required: true, doc: 'unique within the site' },
  profile: { s: str({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', patternHint: 'a profile name (devices/<name>.yaml)' }), required: true, doc: 'device profile name: <profiles folder>/<profile>.yaml' },
  transport: { s: oneOf(['tcp', 'rtu', 'rtu_over_tcp'] as const), default: 'tcp', doc: 'tcp: Modbus TCP; rtu: Modbus RTU on a serial port (serial.device); rtu_over_tcp: RTU frames through a serial device server at host:port' },
  host: { s: str({ minLength: 1 }), required: true, requiredUnless: { key: 'transport', values: ['rtu'] }, doc: 'IP address or host name of the Modbus TCP endpoint or serial device server (not for rtu)' },
  port: { s: num({ int: true, min: 1, max: 65535 }), default: 502, doc: 'devices with the same host:port share one connection (not for rtu)' },
  serial: { s: serialSchema, doc: 'rtu and rtu_over_tcp: the serial line; devices on the same serial.device (or host:port) share it' },
  unit_id: { s: num({ int: true, min: 0, max: 255 }), default: 1, doc: 'Modbus unit (slave) id behind the endpoint; 1..247 on an RTU line' },
  zone: { s: str(ID), default: 'default', doc: 'DR zone / feeder' },
  role: { s: str(), doc: "free-text role label; default: the profile's kind" },
  poll_interval: { s: duration({ min_ms: 50 }), default: 1000, doc: 'time between two polls of the read plan' },
  labels: { s: record(str()), default: {}, doc: 'extra low-cardinality labels' },
  capacity_kw: { s: num({ exclusiveMin: 0 }), doc: 'load controllers: the sheddable load, for DR planning' },
  enabled: { s: bool(), default: true, doc: 'false: configured but not polled or commanded' },
  record: { s: bool(), default: false, doc: "true: each poll's values go through the delivery spool to the sinks (needs delivery:)" },
}, { doc: 'A Modbus device wired to a profile: over Modbus TCP, on a serial line (RTU), or through a serial device server.', post: checkTransport });

/** The keys each transport needs, and none it cannot use. */
function checkTransport(out: { transport: string; serial?: { device?: string }; unit_id: number }, ctx: FileCtx): void {
  const { transport, serial } = out;
  if (!RTU.includes(transport)) {
    if (serial !== undefined) ctx.errorAt(out, 'serial', 'serial is for transport rtu or rtu_over_tcp (this device is Modbus TCP)');
    return;
  }
  if (serial === undefined) ctx.errorAt(out, 'transport', `transport ${transport} needs serial (at least its baud)`);
  if (transport === 'rtu') {
    for (const k of ['host', 'port']) if (ctx.hasKey(out, k)) ctx.errorAt(out, k, `${k} is for tcp and rtu_over_tcp: an rtu device is on serial.device`);
    if (serial !== undefined && serial.device === undefined) ctx.errorAt(serial, undefined, 'transport rtu needs serial.device (the serial port, e.g. /dev/ttyUSB0)');
  } else if (serial !== undefined && serial.device !== undefined) {
    ctx.errorAt(serial, 'device', 'serial.device is for transport rtu: rtu_over_tcp reaches the line through host:port');
  }
  const unit = out.unit_id;
  if (unit === 0) ctx.errorAt(out, ctx.hasKey(out, 'unit_id') ? 'unit_id' : 'transport', 'unit id 0 is broadcast on a serial line: no device answers it (use 1..247)');
  else if (unit > 247) ctx.errorAt(out, 'unit_id', `unit id ${unit} is reserved on a serial line (use 1..247)`);
}

const tls = obj({
  ca_file: { s: str({ minLength: 1 }), doc: 'CA bundle (PEM) to trust, relative to the site file' },
  cert_file: { s: str({ minLength: 1 }), doc: 'client certificate (PEM) for mutual TLS' },
  key_file: { s: str({ minLength: 1 }), doc: 'client private key (PEM)' },
  reject_unauthorized: { s: bool(), default: true, doc: 'false only for a lab broker' },
}, {
  post(out, ctx) { for (const k of ['ca_file', 'cert_file', 'key_file']) checkPathOption(ctx, out, k); },
});

const meters = obj({
  topics: { s: arr(str({ minLength: 1, ...TOPIC_FILTER }), { minItems: 1 }), required: true, doc: 'filters; wildcards and $share/<group>/<filter> allowed' },
  qos: { s: oneOf([0, 1] as const), default: 1, doc: 'subscription QoS; QoS 1 is acknowledged only once handed on' },
  region_topic_level: { s: num({ int: true, min: 0 }), doc: '0-based topic level carrying the region (after any $share prefix)' },
  regions: { s: arr(str({ minLength: 1 })), doc: 'known regions; others are rejected as unknown_region' },
  batch_max_size: { s: num({ int: true, min: 1 }), default: 500, doc: 'readings per batch' },
  batch_max_wait: { s: duration(), default: 50, doc: 'wait before a partial batch is handed on' },
  max_payload_bytes: { s: num({ int: true, min: 1 }), default: 1024 * 1024, doc: 'larger messages are dropped' },
  future_skew: { s: duration(), default: 300_000, doc: 'timestamps further ahead are rejected' },
  dedupe_window: { s: duration(), default: 600_000, doc: 'QoS 1 duplicates (meter_id, timestamp) within it are dropped' },
  meter_stale_after: { s: duration(), default: 300_000, doc: "a meter's power drops out of the grid load total" },
  max_meters: { s: num({ int: true, min: 1, max: 10_000_000 }), default: 1_000_000, doc: 'meters remembered at once (dedupe state and power table); beyond it the least recently heard is forgotten first' },
  reading_span_ratio: { s: num({ min: 0, max: 1 }), default: 0.01, doc: 'sampling ratio of ems.meter.process_reading spans' },
  state_file: { s: str({ minLength: 1 }), default: '.state/meter-state.json', doc: 'dedupe state kept across graceful restarts; relative to the site file' },
}, {
  post(out, ctx) { out['state_file'] = resolveFrom(ctx, String(out['state_file'])); },
});

const demandResponse = obj({
  command_topic: { s: str({ minLength: 1 }), required: true, doc: 'signed commands arrive here (retained ones are never acted on)' },
  ack_topic: { s: str({ minLength: 1 }), required: true, doc: 'acknowledgements are published here' },
  public_keys: { s: arr(str({ minLength: 1 })), doc: 'Ed25519 public keys (PEM or base64 raw 32 bytes)' },
  public_key_file: { s: str({ minLength: 1 }), doc: 'a file holding one public key, relative to the site file' },
  public_key_files: { s: arr(str({ minLength: 1 })), doc: 'several key files (rotation)' },
  gateway_key_file: { s: str({ minLength: 1 }), doc: "the gateway's own Ed25519 private key (PKCS#8 PEM, `dr keygen`), relative to the site file: acks are signed with it; omitted: unsigned acks" },
  max_clock_skew: { s: duration(), default: 30_000, doc: 'commands stamped further from our clock are refused' },
  state_file: { s: str({ minLength: 1 }), default: '.state/dr-state.json', doc: 'relative to the site file' },
  max_concurrency: { s: num({ int: true, min: 1 }), default: 64, doc: 'controllers commanded at once' },
  dry_run: { s: bool(), default: false, doc: 'do everything except the Modbus write' },
}, { post: resolveKeys });

/** The keys resolveKeys() reads; what it yields is that object with the key files read. */
interface KeyOptions { public_keys?: string[]; public_key_file?: string; public_key_files?: string[]; gateway_key_file?: string; state_file: string }
type ResolvedKeys<T> = Omit<T, 'public_key_file' | 'public_key_files' | 'gateway_key_file'> & { public_keys: string[]; gateway_key?: string };

function resolveKeys<T extends KeyOptions>(out: T, ctx: FileCtx): ResolvedKeys<T> {
  const keys: string[] = [...(out.public_keys ?? [])];
  const files = [
    ...(typeof out.public_key_file === 'string' ? [{ key: 'public_key_file', p: out.public_key_file }] : []),
    ...(out.public_key_files ?? []).map((p) => ({ key: 'public_key_files', p })),
  ];
  for (const f of files) {
    const text = readSecretFile(ctx, out, f.key, f.p);
    if (text !== undefined) keys.push(text);
  }
  keys.forEach((k, i) => {
    try { parsePublicKey(k, `public key ${i + 1}`); } catch (err) { ctx.errorAt(out, files.length ? files[0]?.key : 'public_keys', (err as Error).message); }
  });
  if (keys.length === 0) ctx.errorAt(out, undefined, 'needs at least one public key (public_keys, public_key_file or public_key_files): unsigned commands are never accepted');
  let gatewayKey: string | undefined;
  if (typeof out.gateway_key_file === 'string') {
    const pem = readSecretFile(ctx, out, 'gateway_key_file', out.gateway_key_file);
    if (pem !== undefined) {
      try {
        parsePrivateKey(pem, 'gateway_key_file');
        gatewayKey = pem;
      } catch (err) {
        ctx.errorAt(out, 'gateway_key_file', (err as Error).message);
      }
    }
  }
  out.state_file = resolveFrom(ctx, out.state_file);
  const resolved = { ...without(out, 'public_key_file', 'public_key_files', 'gateway_key_file'), public_keys: keys };
  return gatewayKey === undefined ? resolved : { ...resolved, gateway_key: gatewayKey };
}

const mqtt = obj({
  url: { s: str({ pattern: '^(mqtts?|wss?|tcp|ssl)://', patternHint: 'an mqtt://, mqtts://, ws:// or wss:// URL' }), required: true, doc: 'broker URL' },
  client_id: { s: str({ minLength: 1, maxLength: 256 }), doc: 'default ems-gateway-<site id>' },
  username: { s: str(), doc: 'broker user name' },
  password: { s: str(), doc: 'prefer ${ENV_VAR} or password_file' },
  password_file: { s: str({ minLength: 1 }), doc: 'file holding the password, relative to the site file' },
  protocol_version: { s: oneOf([4, 5] as const), default: 5, doc: '4 = MQTT 3.1.1, 5 = MQTT 5' },
  session_expiry: { s: duration(), default: 3_600_000, doc: 'persistent session: the broker keeps subscriptions and QoS 1 messages this long' },
  keepalive: { s: duration({ min_ms: 1000 }), default: 30_000, doc: 'MQTT keep-alive' },
  reconnect_min: { s: duration({ min_ms: 10 }), default: 500, doc: 'first reconnect delay (exponential backoff with jitter)' },
  reconnect_max: { s: duration({ min_ms: 10 }), default: 30_000, doc: 'reconnect backoff ceiling' },
  tls: { s: tls, doc: 'TLS files for mqtts:// / wss://' },
  meters: { s: meters, doc: 'smart-meter readings; omitted: no subscription' },
  demand_response: { s: demandResponse, doc: 'signed DR commands and acks; omitted: DR off' },
}, {
  post(out, ctx) {
    resolveSecret(out, ctx, 'password');
    if (out.reconnect_min_ms > out.reconnect_max_ms) ctx.errorAt(out, 'reconnect_min', 'reconnect_min is longer than reconnect_max');
    return without(out, 'password_file');
  },
});

const telemetry = obj({
  service_name: { s: str({ minLength: 1 }), default: 'ems-gateway', doc: 'OTEL_SERVICE_NAME wins when set' },
  otlp_endpoint: { s: str({ pattern: '^https?://', patternHint: 'an http(s):// URL' }), doc: 'base URL (…:4318); OTEL_EXPORTER_OTLP_* env wins' },
  otlp_headers: { s: record(str()), default: {}, doc: 'extra HTTP headers, e.g. authorization: "Bearer ${TOKEN}"' },
  export_interval: { s: duration({ min_ms: 100 }), default: 10_000, doc: 'OTEL_METRIC_EXPORT_INTERVAL wins' },
  export_timeout: { s: duration({ min_ms: 100 }), default: 5000, doc: 'one export attempt' },
  resource_attributes: { s: record(str()), default: {}, doc: 'extra resource attributes' },
  cardinality_limit: { s: num({ int: true, min: 1 }), default: 2000, doc: 'attribute sets per metric' },
  span_queue_size: { s: num({ int: true, min: 1, max: 1_000_000 }), default: 2048, doc: 'spans held for export; past it new spans are dropped and counted (OTEL_BSP_MAX_QUEUE_SIZE wins)' },
  span_batch_size: { s: num({ int: true, min: 1 }), default: 512, doc: 'spans per export request, at most span_queue_size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE wins)' },
  enabled: { s: bool(), default: true, doc: 'OTEL_SDK_DISABLED=true wins' },
}, {
  post(out, ctx) {
    const batch = out.span_batch_size;
    const queue = out.span_queue_size;
    if (batch > queue) ctx.errorAt(out, 'span_batch_size', `span_batch_size ${batch} is larger than span_queue_size ${queue}`);
  },
});

const grid = obj({
  update_interval: { s: duration({ min_ms: 100 }), default: 5000, doc: 'how often the grid state is recomputed' },
  stale_after: { s: duration({ min_ms: 100 }), doc: 'default: 3x the slowest contributing poll interval, at least 10s' },
  frequency_source: { s: str(ID), doc: "device id whose 'frequency' point is the grid frequency" },
});

const alerts = obj({
  evaluate_interval: { s: duration({ min_ms: 100 }), default: 15_000, doc: 'how often the local alert evaluator runs' },
  stale_meter_data_age: { s: duration(), default: 900_000, doc: 'stale meter data: data age above this' },
  drop_ratio: { s: num({ min: 0, max: 1 }), default: 0.001, doc: 'ingestion drops: dropped / (ingested + dropped) above this' },
  dr_ack_rate_min: { s: num({ min: 0, max: 1 }), default: 0.9, doc: 'DR not acknowledged: ack rate below this' },
  frequency_deviation_hz: { s: num({ exclusiveMin: 0 }), default: 0.5, doc: 'frequency excursion: |frequency - nominal| above this' },
  ingestion_latency_p99: { s: duration(), default: 5000, doc: 'slow ingestion: ingestion latency P99 above this' },
  delivery_backlog_age: { s: duration({ min_ms: 1000 }), default: 3_600_000, doc: "delivery backlog: a sink's oldest pending reading older than this" },
}, { doc: "Thresholds of the five alerts of the source design (defaults are its own) and of the delivery backlog alert." });

const sinkTls = obj({
  ca_file: { s: str({ minLength: 1 }), doc: 'CA bundle (PEM) to trust, relative to the site file' },
  cert_file: { s: str({ minLength: 1 }), doc: 'client certificate (PEM)' },
  key_file: { s: str({ minLength: 1 }), doc: 'client private key (PEM)' },
  reject_unauthorized: { s: bool(), default: true, doc: 'false only for a lab server' },
}, {
  post(out, ctx) { for (const k of ['ca_file', 'cert_file', 'key_file']) checkPathOption(ctx, out, k); },
});

/** Keys every sink has; each sink adds its own. */
export const sinkCommon = fields({
  batch_max_size: { s: num({ int: true, min: 1, max: 100_000 }), default: 5000, doc: 'readings per upstream request' },
  batch_max_wait: { s: duration(), default: 200, doc: 'a partial batch waits this long for more readings' },
  max_rate: { s: num({ min: 0 }), default: 100_000, doc: 'readings/s at most, also while catching up after an outage (default: twice the 50k/s drain goal); 0 = unlimited' },
  retry_min: { s: duration({ min_ms: 10 }), default: 1000, doc: 'first retry delay (exponential backoff with full jitter)' },
  retry_max: { s: duration({ min_ms: 10 }), default: 60_000, doc: 'retry delay ceiling' },
  timeout: { s: duration({ min_ms: 100 }), default: 10_000, doc: 'one upstream request' },
});

/** `secret` or `secret_file`: at most one; the file's content replaces it (the caller drops `secret_file`). */
function resolveSecret(out: Obj, ctx: FileCtx, key: string): void {
  const fileKey = `${key}_file`;
  const file = out[fileKey];
  if (exclusive(ctx, out, key, fileKey) && typeof file === 'string') {
    const v = readSecretFile(ctx, out, fileKey, file);
    if (v !== undefined) out[key] = v;
  }
}

function checkRetry(out: { retry_min_ms: number; retry_max_ms: number }, ctx: FileCtx): void {
  if (out.retry_min_ms > out.retry_max_ms) ctx.errorAt(out, 'retry_min', 'retry_min is longer than retry_max');
}

const SQL_NAME = { pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$', patternHint: 'a table name (letters, digits, "_", optionally schema.table)' };
const MEASUREMENT = { pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$', patternHint: 'a measurement name (letters, digits, "_", ".", "-")' };

const otlpLogsSink = obj({
  ...sinkCommon,
  endpoint: { s: str({ pattern: '^https?://', patternHint: 'an http(s):// URL' }), doc: 'the full logs URL; default OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, else the OTLP base + /v1/logs' },
  headers: { s: record(str()), default: {}, doc: 'extra HTTP headers; OTEL_EXPORTER_OTLP_LOGS_HEADERS wins' },
}, { doc: 'Each reading an OTLP log record (event ems.meter.reading) to the collector.', post: checkRetry });

const influxSink = obj({
  ...sinkCommon,
  url: { s: str({ pattern: '^https?://', patternHint: 'an http(s):// URL' }), required: true, doc: 'base URL, e.g. http://influx:8086' },
  api: { s: oneOf(['v1', 'v2'] as const), default: 'v1', doc: 'v1: /write?db= (InfluxDB 1.x, VictoriaMetrics); v2: /api/v2/write with a token (InfluxDB 2.x, 3.x)' },
  database: { s: str({ minLength: 1 }), doc: 'v1: the database' },
  retention_policy: { s: str({ minLength: 1 }), doc: 'v1: the retention policy; default the database default' },
  username: { s: str({ minLength: 1 }), doc: 'v1: user (HTTP basic auth)' },
  password: { s: str(), doc: 'v1: prefer ${ENV_VAR} or password_file' },
  password_file: { s: str({ minLength: 1 }), doc: 'file holding the password, relative to the site file' },
  org: { s: str({ minLength: 1 }), doc: 'v2: the organisation' },
  bucket: { s: str({ minLength: 1 }), doc: 'v2: the bucket' },
  token: { s: str(), doc: 'v2: API token; prefer ${ENV_VAR} or token_file' },
  token_file: { s: str({ minLength: 1 }), doc: 'file holding the token, relative to the site file' },
  measurement: { s: str(MEASUREMENT), default: 'meter_reading', doc: 'measurement of meter readings' },
  device_measurement: { s: str(MEASUREMENT), default: 'device_sample', doc: 'measurement of device samples' },
  tls: { s: sinkTls, doc: 'TLS files for https://' },
}, {
  doc: 'InfluxDB line protocol over HTTP (InfluxDB 1.x/2.x/3.x, VictoriaMetrics).',
  post(out, ctx) {
    checkRetry(out, ctx);
    resolveSecret(out, ctx, 'password');
    resolveSecret(out, ctx, 'token');
    if (out['api'] === 'v1' && out['database'] === undefined) ctx.errorAt(out, 'api', 'api v1 needs database:');
    if (out['api'] === 'v2') for (const k of ['org', 'bucket'] as const) if (out[k] === undefined) ctx.errorAt(out, 'api', `api v2 needs ${k}:`);
    return without(out, 'password_file', 'token_file');
  },
});

const postgresSink = obj({
  ...sinkCommon,
  url: { s: str({ pattern: '^postgres(ql)?://', patternHint: 'a postgres:// URL' }), doc: 'connection URL (keep the password out of it: password / password_file)' },
  host: { s: str({ minLength: 1 }), default: '127.0.0.1', doc: 'server host (when no url)' },
  port: { s: num({ int: true, min: 1, max: 65535 }), default: 5432, doc: 'server port (when no url)' },
  database: { s: str({ minLength: 1 }), default: 'ems', doc: 'database (when no url)' },
  user: { s: str({ minLength: 1 }), default: 'ems', doc: 'user (when no url)' },
  password: { s: str(), doc: 'prefer ${ENV_VAR} or password_file' },
  password_file: { s: str({ minLength: 1 }), doc: 'file holding the password, relative to the site file' },
  table: { s: str(SQL_NAME), default: 'meter_readings', doc: 'meter readings table (primary key meter_id, ts)' },
  device_table: { s: str(SQL_NAME), default: 'device_samples', doc: 'device samples table (primary key device_id, point, ts)' },
  create_table: { s: bool(), default: true, doc: 'CREATE TABLE IF NOT EXISTS at start' },
  tls: { s: sinkTls, doc: 'TLS (sslmode=verify-full with ca_file)' },
}, {
  doc: 'PostgreSQL or TimescaleDB: batched INSERT ... ON CONFLICT DO NOTHING, exactly once per (meter_id, ts).',
  post(out, ctx) { checkRetry(out, ctx); resolveSecret(out, ctx, 'password'); return without(out, 'password_file'); },
});

const delivery = obj({
  spool: { s: obj({
    directory: { s: str({ minLength: 1 }), default: '.state/spool', doc: 'the spool folder (LMDB), relative to the site file' },
    max_size_mb: { s: num({ min: 1 }), default: 1024, doc: 'bound of the spooled readings in MiB (about 82 bytes per reading: docs/delivery.md, Sizing)' },
    max_age: { s: duration({ min_ms: 1000 }), default: 7 * 86_400_000, doc: 'bound of the oldest reading held' },
    policy: { s: oneOf(['backpressure', 'drop_oldest'] as const), default: 'backpressure', doc: 'when full: stop acknowledging (the broker keeps the readings) or evict the oldest (counted as spool_evicted)' },
  }, { post(out, ctx) { out['directory'] = resolveFrom(ctx, String(out['directory'])); } }), defaults: true, doc: 'the durable queue on the box' },
  sinks: { s: obj({
    otlp_logs: { s: otlpLogsSink, doc: 'OTLP logs to the collector' },
    influx: { s: influxSink, doc: 'InfluxDB line protocol' },
    postgres: { s: postgresSink, doc: 'PostgreSQL / TimescaleDB' },
  }, {
    post(out, ctx) { if (Object.keys(out).length === 0) ctx.errorAt(out, undefined, 'needs at least one sink (otlp_logs, influx or postgres): readings would have nowhere to go'); },
  }), required: true, doc: 'where readings go; each sink has its own position in the spool' },
  record_devices: { s: bool(), default: false, doc: "true: every device's polls are recorded (as record: true on each device)" },
}, { doc: 'Reading delivery: a durable spool on the box and upstream stores (docs/delivery.md).' });

const status = obj({
  host: { s: str({ minLength: 1 }), default: '127.0.0.1', doc: 'listen address (loopback by default)' },
  port: { s: num({ int: true, min: 0, max: 65535 }), default: 8780, doc: '0 picks a free port' },
  enabled: { s: bool(), default: true, doc: 'false: no status page' },
}, { doc: 'The local status page (HTML and JSON).' });

export const siteSchema = obj({
  version: { s: oneOf([1] as const), required: true, doc: 'format version of this file' },
  profiles_dir: { s: str({ minLength: 1 }), doc: "device profiles folder, relative to this file; default: the package's devices/" },
  site: { s: obj({
    id: { s: str(ID), required: true, doc: 'resource attribute ems.site.id' },
    region: { s: str({ minLength: 1 }), required: true, doc: 'resource attribute ems.site.region' },
    nominal_frequency_hz: { s: oneOf([50, 60] as const), required: true, doc: 'the frequency-excursion alert measures from it' },
    name: { s: str(), doc: 'display name' },
  }), required: true, doc: 'who this site is' },
  devices: { s: arr(deviceSchema), default: [], doc: 'Modbus devices (TCP, RTU on a serial line, RTU over TCP)' },
  mqtt: { s: mqtt, doc: 'omitted: no MQTT (no meter ingest, no DR)' },
  delivery: { s: delivery, doc: 'omitted: readings are counted and feed the grid load, but are not stored or forwarded' },
  telemetry: { s: telemetry, defaults: true, doc: 'OpenTelemetry export; OTEL_* environment variables win' },
  grid: { s: grid, defaults: true, doc: 'the grid state' },
  alerts: { s: alerts, defaults: true },
  status: { s: status, defaults: true },
  logging: { s: obj({ level: { s: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const), default: 'info', doc: 'LOG_LEVEL wins' } }), defaults: true, doc: 'pino logging' },
}, { doc: 'EMS gateway site file.' });
