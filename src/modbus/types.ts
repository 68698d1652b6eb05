// The contract between the Modbus layer and the parts above it (pollers, demand response, grid).
// Errors are translated at this edge (socket errors, exception responses, malformed frames): everything above sees ModbusError.

import type { RegisterTable } from '../config/profile-types.js';
import type { CheckedWrite } from './write-controls.js';

/** Stable error codes; also the `error_type` attribute of ems.modbus.errors. */
export type ModbusErrorType =
  | 'timeout'
  | 'connect_failed'
  | 'disconnected'
  | 'exception_illegal_function'      // exception 1: configuration error, not retried
  | 'exception_illegal_address'       // exception 2: configuration error, not retried
  | 'exception_illegal_value'         // exception 3: configuration error, not retried
  | 'exception_device_failure'        // exception 4
  | 'exception_busy'                  // exceptions 5 (ack) / 6 (busy): retry later, no reconnect
  | 'exception_gateway_path'          // exception 10: back off this unit only
  | 'exception_gateway_target'        // exception 11: back off this unit only
  | 'exception_other'
  | 'malformed_response'              // the answer's MBAP length or protocol id, byte count or write echo is wrong
  | 'crc_error'                       // (RTU) an answer with the right unit, function code and length failed its CRC
  | 'unit_backed_off'                 // request refused locally: the unit is in backoff
  | 'rejected_write'                  // a write refused before the wire (bounds, never_write, undeclared)
  | 'invalid_request'                 // (endpoint) address/count/unit id outside Modbus limits: a caller bug, never sent
  | 'identity_mismatch'               // (poller) no 'SunS' marker at the profile's sunspec_base, or none of its points on the chain: configuration error, device not polled
  | 'implausible'                     // (poller) a value outside its valid_range, or a denormal float: withheld, device stays up
  | 'closed';                         // the endpoint is shutting down

export class ModbusError extends Error {
  readonly code: ModbusErrorType;
  readonly device: string | undefined;
  readonly exceptionCode: number | undefined;
  constructor(code: ModbusErrorType, message: string, opts: { device?: string; exceptionCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ModbusError';
    this.code = code;
    this.device = opts.device;
    this.exceptionCode = opts.exceptionCode;
  }
}

export interface ReadRequest {
  unitId: number;
  table: RegisterTable;
  address: number;       // wire address (0-based)
  count: number;         // registers, or bits for coil/discrete
}

/** Registers as 16-bit words, or bits as 0/1 for coil/discrete reads. */
export type ReadResult = Uint16Array | Uint8Array;

/** What goes in the PDU of a write; built only by CheckedWrite.request() (see ModbusEndpointClient.write). */
export type WriteRequest =
  | { unitId: number; table: 'holding'; address: number; values: Uint16Array }   // FC6 (1 word) / FC16
  | { unitId: number; table: 'coil'; address: number; values: boolean[] };       // FC5 / FC15

export interface RequestOptions {
  /** Writes and DR read-backs use 'high': they go before queued polls on the same endpoint. */
  priority?: 'high' | 'normal';
  timeoutMs?: number;
  /** For messages and metrics: the device id this request concerns. */
  deviceId?: string;
}

/**
 * One TCP connection to host:port (or one serial line), shared by every unit id behind it; one
 * request in flight; answers matched on transaction id, unit id and function code. Pollers and
 * demand response both go through it.
 */
export interface ModbusEndpointClient {
  readonly key: string;  // "host:port", or the serial port
  read(req: ReadRequest, opts?: RequestOptions): Promise<ReadResult>;
  /**
   * Compile a read that will be repeated (a poller's planned reads, at plan compile): its checks,
   * PDU and wire frame are done once, and read() of the result only stamps the transaction id.
   * Optional: a client without it is given the plain request.
   */
  prepareRead?(req: ReadRequest): ReadRequest;
  /**
   * Writes one checked value of a profile's writable control (src/modbus/write-controls.ts) to
   * `unitId`: never raw addresses or words, so nothing but a declared control, within its bounds
   * after rounding, can reach the wire.
   */
  write(unitId: number, value: CheckedWrite, opts?: RequestOptions): Promise<void>;
  /** True while the TCP connection or the serial port is open. */
  readonly connected: boolean;
  /** Called after every (re)connect: DR re-asserts active commands from here. */
  onConnect(listener: () => void): () => void;
  close(): Promise<void>;
}

/** Reads and nothing else: what `ems-gateway probe` holds, so no write can be reached from it. */
export type RegisterReader = Pick<ModbusEndpointClient, 'key' | 'read'>;

/** A read-only view of an endpoint (a new object: the endpoint's write is not reachable through it). */
export function readOnly(endpoint: ModbusEndpointClient): RegisterReader {
  return { key: endpoint.key, read: (req, opts) => endpoint.read(req, opts) };
}
