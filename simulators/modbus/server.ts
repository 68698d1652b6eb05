// A fast Modbus TCP server for simulated devices, written directly on node:net: requests are
// answered synchronously in the data handler (tens of microseconds), unlike modbus-serial's
// ServerTCP which delays every request by a timer (~700 requests/s per connection). Several unit
// ids per server (an RTU gateway), many connections, and fault injection per unit or server.
// With `framing: 'rtu'` it speaks raw RTU frames instead of MBAP: a serial device server in
// "raw TCP" mode with its RTU line behind it (transport rtu_over_tcp).

import net from 'node:net';
import type { Clock } from '../../src/runtime/clock.js';
import type { SimulatedDevice } from './device.js';
import { FrameReader } from './frame.js';
import { Responder, type ModbusFault, type ResponderConn, type ServerStats, type WriteLog } from './responder.js';
import { RtuRequestReader, aduToRtu } from './rtu.js';

export type { ModbusFault, ServerStats, WriteLog } from './responder.js';

export interface ModbusServerOptions {
  host?: string;              // default 127.0.0.1
  port?: number;              // default 0 (any free port)
  units: Map<number, SimulatedDevice>;
  maxConnections?: number;    // default unlimited
  /** A request for a unit the server does not have: exception 11 (an RTU gateway's answer), or silence (default for rtu). */
  unknownUnit?: 'exception' | 'drop';
  /** mbap (Modbus TCP, default) or rtu (raw RTU frames over TCP). */
  framing?: 'mbap' | 'rtu';
  clock?: Clock;
}

/** What every simulator server offers tests, whatever its transport. */
export interface ModbusSimControl {
  readonly units: Map<number, SimulatedDevice>;
  readonly stats: ServerStats;
  /** Every accepted write, in order (the latest 50,000-100,000): tests assert "zero writes reached the wire" on it. */
  readonly writes: WriteLog[];
  setFault(target: number | '*', fault: ModbusFault | undefined): void;
  clearFaults(): void;
  /** Reboot a unit (or all): registers back to defaults, commands forgotten. */
  reboot(target: number | '*'): void;
  close(): Promise<void>;
}

export interface ModbusSimServer extends ModbusSimControl {
  readonly host: string;
  readonly port: number;
  /** Close every client connection (the server keeps listening). */
  dropConnections(): void;
}

export function controlOf(r: Responder, close: () => Promise<void>): ModbusSimControl {
  return {
    units: r.units, stats: r.stats, writes: r.writes,
    setFault: (t, f) => r.setFault(t, f), clearFaults: () => r.clearFaults(), reboot: (t) => r.reboot(t),
    close: async () => { r.stop(); await close(); },
  };
}

export async function startModbusServer(opts: ModbusServerOptions): Promise<ModbusSimServer> {
  const host = opts.host ?? '127.0.0.1';
  const rtu = opts.framing === 'rtu';
  const r = new Responder({ units: opts.units, unknownUnit: opts.unknownUnit ?? (rtu ? 'drop' : 'exception'), ...(opts.clock ? { clock: opts.clock } : {}) });
  const stats = r.stats;
  const sockets = new Set<net.Socket>();
  let nextConn = 1;

  const server = net.createServer({ noDelay: true }, (socket) => {
    if (sockets.size >= Math.min(opts.maxConnections ?? Infinity, r.connectionLimit)) {
      stats.connectionsRejected++;
      socket.destroy();
      return;
    }
    const conn: ResponderConn = {
      id: nextConn++, answered: new Map(),
      send(adu, fault) {
        if (socket.destroyed || !socket.writable) return 0;
        const out = rtu ? aduToRtu(adu, fault?.crc === true) : adu;
        socket.write(out);
        return out.length;
      },
      // end(), not destroy(): the Nth answer is still in the (corked) write buffer.
      end: () => { socket.end(); },
    };
    sockets.add(socket);
    stats.connectionsTotal++;
    stats.connectionsOpen = sockets.size;
    stats.maxConnectionsOpen = Math.max(stats.maxConnectionsOpen, sockets.size);
    const mbap = new FrameReader();
    const rtuReader = new RtuRequestReader();
    socket.on('data', (chunk: Buffer) => {
      stats.bytesIn += chunk.length;
      // Coalesced requests go out as one TCP segment where possible.
      socket.cork();
      if (rtu) {
        stats.framingErrors += rtuReader.push(chunk, (adu) => r.onRequest(conn, adu));
        socket.uncork();
        return;
      }
      const ok = mbap.push(chunk, (adu) => r.onRequest(conn, adu));
      socket.uncork();
      if (!ok) {
        // A protocol id other than 0 or an impossible length: devices drop the connection.
        stats.framingErrors++;
        socket.destroy();
      }
    });
    socket.on('error', () => { /* a client reset is normal; 'close' cleans up */ });
    socket.on('close', () => {
      sockets.delete(socket);
      stats.connectionsOpen = sockets.size;
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

  const control = controlOf(r, async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    ...control,
    host,
    port: addr.port,
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
  };
}
