// Simulated devices on a serial line: Modbus RTU on a serial port, or on one end of a
// pseudo-terminal pair (pty.ts) whose other end the gateway opens as its serial port. A pty
// paces nothing: the timing on it is the gateway's own. A unit the line does not have stays
// silent (there is no gateway on a serial line to answer exception 11).

import type { SerialSettings } from '../../src/config/site-types.js';
import type { Clock } from '../../src/runtime/clock.js';
import type { SimulatedDevice } from './device.js';
import { Responder, type ResponderConn } from './responder.js';
import { RtuRequestReader, aduToRtu } from './rtu.js';
import { controlOf, type ModbusSimControl } from './server.js';

export interface RtuSerialServerOptions {
  /** The serial port or pseudo-terminal to serve on. */
  path: string;
  /** Line settings; a pseudo-terminal ignores them. Default 19200 8E1. */
  serial?: Pick<SerialSettings, 'baud' | 'parity' | 'stop_bits'>;
  units: Map<number, SimulatedDevice>;
  clock?: Clock;
}

export interface RtuSerialServer extends ModbusSimControl {
  readonly path: string;
}

export async function startRtuSerialServer(opts: RtuSerialServerOptions): Promise<RtuSerialServer> {
  const { SerialPort } = await import('serialport');
  const r = new Responder({ units: opts.units, unknownUnit: 'drop', ...(opts.clock ? { clock: opts.clock } : {}) });
  const s = opts.serial ?? { baud: 19200, parity: 'even', stop_bits: 1 };
  const port = new SerialPort({ path: opts.path, baudRate: s.baud, parity: s.parity, stopBits: s.stop_bits, dataBits: 8, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const stats = r.stats;
  stats.connectionsTotal = stats.connectionsOpen = stats.maxConnectionsOpen = 1;
  let lastAnswerAt = 0;
  const conn: ResponderConn = {
    id: 1, answered: new Map(),
    send(adu, fault) {
      if (!port.isOpen) return 0;
      const out = aduToRtu(adu, fault?.crc === true);
      // Taken before the write: the port writes from libuv's thread pool, so the bytes may be on the
      // line before write() returns; a time taken after it (this process preempted in between) made
      // the gateway's silence look shorter than it was.
      lastAnswerAt = performance.now();
      port.write(out);
      return out.length;
    },
    end: () => { /* a serial line cannot be hung up on */ },
  };
  const reader = new RtuRequestReader();
  let fresh = true;
  port.on('data', (chunk: Buffer) => {
    if (fresh && lastAnswerAt > 0) stats.minSilenceMs = Math.min(stats.minSilenceMs, performance.now() - lastAnswerAt);
    stats.bytesIn += chunk.length;
    const before = stats.requests;
    stats.framingErrors += reader.push(chunk, (adu) => r.onRequest(conn, adu));
    // The next chunk starts a new request only once this one has been framed.
    fresh = stats.requests > before;
  });
  port.on('error', () => { /* a closed pty end is normal at shutdown */ });
  const control = controlOf(r, () => new Promise<void>((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  }));
  return { ...control, path: opts.path };
}
