// The one place that turns the site's `mqtt:` section into mqtt.js v5 client options. Every MQTT
// client of the gateway (meter ingest, demand response, simulators that want the site's broker)
// builds its options here so TLS, session and keep-alive behave the same everywhere.
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { MqttConfig } from '../config/site-types.js';

export interface MqttClientOptionOverrides {
  /** Appended to `client_id` so several clients of one gateway do not take over each other's session. */
  clientIdSuffix?: string;
  /** Default false: a persistent session so QoS 1 messages published while we are away are delivered after. */
  clean?: boolean;
  /** MQTT v5 receive maximum: how many unacknowledged QoS 1 messages the broker may have in flight to us. */
  receiveMaximum?: number;
}

/** Upper bound of MQTT's session expiry interval (seconds); 0xFFFFFFFF means "never expires". */
const MAX_SESSION_EXPIRY_S = 0xfffffffe;

class MqttOptionsError extends Error {
  readonly code = 'EMS_MQTT_OPTIONS';
  constructor(message: string) {
    super(message);
    this.name = 'MqttOptionsError';
  }
}

function noLog(): void { /* mqtt.js debug output is off */ }

function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new MqttOptionsError(`mqtt.tls.${what}: cannot read '${path}': ${(err as Error).message}`);
  }
}

/**
 * mqtt.js options for `cfg`.
 *
 * Reconnects are NOT left to mqtt.js: its `reconnectPeriod` is a fixed interval (no backoff, no
 * jitter), which makes a fleet of gateways hammer a recovering broker in lock-step. So
 * `reconnectPeriod` is 0 here and `MqttConnection` (./connection.ts) reconnects with full-jitter
 * exponential backoff between `reconnect_min_ms` and `reconnect_max_ms`. A client built from these
 * options without that supervisor connects once and stays down after a disconnect.
 */
export function mqttClientOptions(cfg: MqttConfig, opts: MqttClientOptionOverrides = {}): IClientOptions {
  const clean = opts.clean ?? false;
  const options: IClientOptions = {
    clientId: cfg.client_id + (opts.clientIdSuffix ?? ''),
    protocolVersion: cfg.protocol_version,
    clean,
    keepalive: Math.max(0, Math.ceil(cfg.keepalive_ms / 1000)),
    reconnectPeriod: 0,
    connectTimeout: Math.max(1000, Math.min(cfg.reconnect_max_ms, 30_000)),
    // A PUBACK for a message received on an old connection must never be replayed on a new one.
    queueQoSZero: false,
    // The supervisor resubscribes explicitly after checking the CONNACK's session-present flag.
    resubscribe: false,
  };
  // mqtt.js calls its debug logger several times per packet; unless DEBUG asks for mqttjs output
  // that is pure overhead on the meter hot path.
  if (!/mqttjs/.test(process.env['DEBUG'] ?? '')) options.log = noLog;
  if (cfg.protocol_version === 5) {
    options.properties = {
      // Clean start off + a session expiry = the broker keeps our subscriptions and queued QoS 1
      // messages while we are away (MQTT 5 §3.1.2.11.2). With clean start on, the expiry is 0.
      sessionExpiryInterval: clean ? 0 : Math.min(MAX_SESSION_EXPIRY_S, Math.ceil(cfg.session_expiry_ms / 1000)),
      ...(opts.receiveMaximum !== undefined ? { receiveMaximum: opts.receiveMaximum } : {}),
    };
  }
  if (cfg.username !== undefined) options.username = cfg.username;
  if (cfg.password !== undefined) options.password = cfg.password;
  const tls = cfg.tls;
  if (tls) {
    if (tls.ca_file !== undefined) options.ca = readTlsFile(tls.ca_file, 'ca_file');
    if (tls.cert_file !== undefined) options.cert = readTlsFile(tls.cert_file, 'cert_file');
    if (tls.key_file !== undefined) options.key = readTlsFile(tls.key_file, 'key_file');
    if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
      throw new MqttOptionsError('mqtt.tls: cert_file and key_file go together (mutual TLS needs both)');
    }
    options.rejectUnauthorized = tls.reject_unauthorized;
  }
  return options;
}
