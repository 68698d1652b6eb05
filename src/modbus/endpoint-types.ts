// The endpoint's public shapes: options, the observer the metrics module implements, stats.
// Split from endpoint.ts so the client itself stays one concern (the socket and its queue).
import type { RegisterTable } from '../config/profile-types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { ModbusErrorType } from './types.js';
import type { UnitBackoffOptions } from './unit-backoff.js';

/** What the endpoint reports per request; the metrics module turns it into instruments. */
export interface RequestEvent {
  endpoint: string;
  deviceId: string | undefined;
  unitId: number;
  table: RegisterTable;
  write: boolean;
  /** False when refused before the wire (unit backed off, disconnected, closed). */
  sent: boolean;
  durationMs: number;
  bytesOut: number;
  bytesIn: number;
  error: ModbusErrorType | undefined;
}

export interface EndpointObserver {
  requestDone(ev: RequestEvent): void;
  /** A response whose transaction id matches nothing in flight (late reply to a timed-out request). */
  stray(endpoint: string, bytes: number): void;
  /** Bytes that could not be framed at all (garbled header, partial frame left at a timeout). */
  malformed(endpoint: string, detail: string): void;
}

export interface UnitSettings {
  timeoutMs?: number;
  /** Pause after a request to this unit before the next request on the line (profile quirk). */
  requestGapMs?: number;
}

export interface EndpointOptions {
  host: string;
  port: number;
  connectTimeoutMs?: number;       // default 3000
  /** Pause after TCP connect before the first request (profile quirk connect_delay_ms). */
  connectDelayMs?: number;
  reconnectBaseMs?: number;        // default 500
  reconnectMaxMs?: number;         // default 30000
  defaultTimeoutMs?: number;       // default 1000
  /** Consecutive timeouts with no answer in between before the connection is presumed dead. Default 3. */
  timeoutsBeforeReconnect?: number;
  unitBackoff?: UnitBackoffOptions;
  random?: () => number;
}

export interface EndpointDeps {
  clock: Clock;
  logger: Logger;
  observer?: EndpointObserver;
}

export interface EndpointStats {
  connected: boolean;
  connects: number;
  disconnects: number;
  strays: number;
  malformed: number;
  queued: number;
  reconnectAttempt: number;
}
