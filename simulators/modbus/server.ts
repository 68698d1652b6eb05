// A fast Modbus TCP server for simulated devices, written directly on node:net: requests are
// answered synchronously in the data handler (tens of microseconds), unlike modbus-serial's
// ServerTCP which delays every request by a timer (~700 requests/s per connection). Several unit
// ids per server (an RTU gateway), many connections, and fault injection per unit or server.

import net from 'node:net';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import type { SimulatedDevice } from './device.js';
import { FrameReader, MBAP_LENGTH, exceptionFor, handleRequest, type WriteRecord } from './frame.js';

/** Faults injected into a unit's (or, with '*', every unit's) answers. */
export interface ModbusFault {
  latencyMs?: number;          // every answer delayed by this much
  drop?: boolean;              // no answer at all
  exception?: number;          // answer every request with this exception code (2, 4, 6, 11, ...)
  disconnectAfter?: number;    // close the connection after answering N requests (per connection)
  singleClient?: boolean;      // accept one client connection; further ones are closed at once
  garble?: boolean;            // right transaction id, wrong function code (0x7F) and payload
  short?: boolean;             // a frame whose PDU is cut short (byte count promises more)
  late?: { delayMs: number; count?: number }; // the next `count` (default 1) answers come after delayMs
}

export interface WriteLog extends WriteRecord {
  unitId: number;
  at: number; // epoch ms (the server's clock)
  connection: number;
}

export interface ServerStats {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRejected: number;
  maxConnectionsOpen: number;
  requests: number;
  responses: number;
  exceptions: number;
  dropped: number;
  framingErrors: number;
  bytesIn: number;
  bytesOut: number;
}

export interface ModbusServerOptions {
  host?: string;              // default 127.0.0.1
  port?: number;              // default 0 (any free port)
  units: Map<number, SimulatedDevice>;
  maxConnections?: number;    // default unlimited
  /** A request for a unit the server does not have: exception 11 (an RTU gateway's answer), or silence. */
  unknownUnit?: 'exception' | 'drop';
  clock?: Clock;
}

export interface ModbusSimServer {
  readonly host: string;
  readonly port: number;
  readonly units: Map<number, SimulatedDevice>;
  readonly stats: ServerStats;
  /** Every accepted write, in order (the latest 50,000-100,000): tests assert "zero writes reached the wire" on it. */
  readonly writes: WriteLog[];
  setFault(target: number | '*', fault: ModbusFault | undefined): void;
  clearFaults(): void;
  /** Reboot a unit (or all): registers back to defaults, commands forgotten. */
  reboot(target: number | '*'): void;
  /** Close every client connection (the server keeps listening). */
  dropConnections(): void;
  close(): Promise<void>;
}

const MAX_WRITE_LOG = 100_000;

interface Conn {
  id: number;
  socket: net.Socket;
  reader: FrameReader;
  answered: Map<number, number>; // unit -> requests answered on this connection
}

export async function startModbusServer(opts: ModbusServerOptions): Promise<ModbusSimServer> {
  const host = opts.host ?? '127.0.0.1';
  const clock = opts.clock ?? systemClock;
  const units = opts.units;
  const faults = new Map<number | '*', ModbusFault>();
  const lateLeft = new Map<number | '*', number>();
  const conns = new Set<Conn>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const writes: WriteLog[] = [];
  const stats: ServerStats = {
    connectionsOpen: 0, connectionsTotal: 0, connectionsRejected: 0, maxConnectionsOpen: 0,
    requests: 0, responses: 0, exceptions: 0, dropped: 0, framingErrors: 0, bytesIn: 0, bytesOut: 0,
  };
  let nextConn = 1;
  // The log is for tests and short runs; a long `simulate` session keeps the latest writes only.
  const logWrite = (w: WriteLog): void => {
    writes.push(w);
    if (writes.length > MAX_WRITE_LOG) writes.splice(0, writes.length - MAX_WRITE_LOG / 2);
  };

  const faultFor = (unit: number): { fault: ModbusFault | undefined; key: number | '*' } => {
    const own = faults.get(unit);
    return own ? { fault: own, key: unit } : { fault: faults.get('*'), key: '*' };
  };
  const connectionLimit = (): number => {
    const single = [...faults.values()].some((f) => f.singleClient === true);
    return Math.min(opts.maxConnections ?? Infinity, single ? 1 : Infinity);
  };

  const send = (conn: Conn, frame: Buffer, delayMs: number, then?: () => void): void => {
    const out = (): void => {
      if (conn.socket.destroyed || !conn.socket.writable) return;
      stats.responses++;
      stats.bytesOut += frame.length;
      if (frame[7] !== undefined && (frame[7] & 0x80) !== 0) stats.exceptions++;
      conn.socket.write(frame);
      then?.();
    };
    if (delayMs <= 0) return out();
    const t = setTimeout(() => {
      timers.delete(t);
      out();
    }, delayMs);
    timers.add(t);
  };

  const onRequest = (conn: Conn, req: Buffer): void => {
    stats.requests++;
    const unit = req[6] ?? 0;
    const { fault, key } = faultFor(unit);
    const device = units.get(unit);
    if (fault?.drop || (!device && opts.unknownUnit === 'drop')) {
      stats.dropped++;
      return;
    }
    let frame: Buffer;
    if (fault?.exception !== undefined) frame = exceptionFor(req, fault.exception);
    else if (!device) frame = exceptionFor(req, 11);
    else {
      try {
        frame = handleRequest(req, device, (w) => logWrite({ ...w, unitId: unit, at: clock.now(), connection: conn.id }));
      } catch {
        // A simulator bug must not take the server down: answer like a failing device.
        frame = exceptionFor(req, 4);
      }
    }
    if (fault?.garble) frame = garble(frame);
    else if (fault?.short) frame = shorten(frame);
    let delay = fault?.latencyMs ?? 0;
    if (fault?.late) {
      const left = lateLeft.get(key) ?? fault.late.count ?? 1;
      if (left > 0) {
        delay += fault.late.delayMs;
        lateLeft.set(key, left - 1);
      }
    }
    const n = (conn.answered.get(unit) ?? 0) + 1;
    conn.answered.set(unit, n);
    const limit = fault?.disconnectAfter;
    // end(), not destroy(): the Nth answer is still in the (corked) write buffer.
    send(conn, frame, delay, limit !== undefined && n >= limit ? () => conn.socket.end() : undefined);
  };

  const server = net.createServer({ noDelay: true }, (socket) => {
    if (conns.size >= connectionLimit()) {
      stats.connectionsRejected++;
      socket.destroy();
      return;
    }
    const conn: Conn = { id: nextConn++, socket, reader: new FrameReader(), answered: new Map() };
    conns.add(conn);
    stats.connectionsTotal++;
    stats.connectionsOpen = conns.size;
    stats.maxConnectionsOpen = Math.max(stats.maxConnectionsOpen, conns.size);
    socket.on('data', (chunk: Buffer) => {
      stats.bytesIn += chunk.length;
      // Coalesced requests go out as one TCP segment where possible.
      socket.cork();
      const ok = conn.reader.push(chunk, (adu) => onRequest(conn, adu));
      socket.uncork();
      if (!ok) {
        stats.framingErrors++;
        socket.destroy();
      }
    });
    socket.on('error', () => { /* a client reset is normal; 'close' cleans up */ });
    socket.on('close', () => {
      conns.delete(conn);
      stats.connectionsOpen = conns.size;
    });
  });
  server.on('error', () => { /* listen errors reject below; later errors have no caller to report to */ });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('modbus simulator: no TCP address');

  return {
    host,
    port: addr.port,
    units,
    stats,
    writes,
    setFault(target, fault) {
      lateLeft.delete(target);
      if (fault) faults.set(target, fault);
      else faults.delete(target);
    },
    clearFaults() {
      faults.clear();
      lateLeft.clear();
    },
    reboot(target) {
      for (const [unit, device] of units) if (target === '*' || target === unit) device.reset();
    },
    dropConnections() {
      for (const c of conns) c.socket.destroy();
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function garble(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  out[7] = 0x7f; // a function code nobody asked for
  for (let i = MBAP_LENGTH + 1; i < out.length; i++) out[i] = ((out[i] ?? 0) ^ 0xa5) & 0xff;
  return out;
}

function shorten(frame: Buffer): Buffer {
  // Keep the function code and the byte count (which still promises the full payload), drop the
  // rest, and make the MBAP length agree with what is sent so the frame itself is well delimited.
  const pdu = Math.min(2, frame.length - MBAP_LENGTH);
  const out = Buffer.from(frame.subarray(0, MBAP_LENGTH + pdu));
  out.writeUInt16BE(pdu + 1, 4);
  return out;
}
