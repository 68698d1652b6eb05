// The endpoint's public shapes: options, the observer the metrics module implements, stats.
// Split from endpoint.ts so the client itself stays one concern (the socket and its queue).
import type { RegisterTable } from '../config/profile-types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { EndpointTarget } from './transport.js';
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
  /** A well-formed frame that answers nothing in flight (late, duplicated, unsolicited, another unit's). */
  stray(endpoint: string, bytes: number): void;
  /** Bytes that could not be framed at all (garbage, a broken header, a partial frame left at a timeout). */
  malformed(endpoint: string, detail: string): void;
  /**
   * Such bytes arrived while a request of this unit was in flight: they are charged to it
   * (`ems.modbus.errors{error_type="garbage"}`), whether or not its own answer then arrives intact.
   */
  garbage?(ev: { endpoint: string; deviceId: string | undefined; unitId: number }): void;
}

/** error_type of ems.modbus.errors for unframeable bytes received while a unit's request was in flight. */
export const GARBAGE_ERROR_TYPE = 'garbage';

export interface UnitSettings {
  timeoutMs?: number;
  /** Pause after a request to this unit before the next request on the line (profile quirk). */
  requestGapMs?: number;
}

/** Tuning shared by every transport (defaults in brackets). */
export interface EndpointTuning {
  connectTimeoutMs?: number;       // [3000]
  /** Pause after the link opens before the first request (profile quirk connect_delay_ms). */
  connectDelayMs?: number;
  reconnectBaseMs?: number;        // [500]
  reconnectMaxMs?: number;         // [30000]
  defaultTimeoutMs?: number;       // [1000]
  /** Consecutive timeouts with no answer in between before the link is presumed dead. [3] */
  timeoutsBeforeReconnect?: number;
  unitBackoff?: UnitBackoffOptions;
  /** Jitter of the reconnect and unit backoffs; when given, also the key of the transaction ids (tests: deterministic). */
  random?: () => number;
}

/** Where the endpoint connects (Modbus TCP by default) and how it is tuned. */
export type EndpointOptions = EndpointTarget & EndpointTuning;

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
