// A scriptable raw Modbus RTU device for endpoint tests: on one end of a socat pseudo-terminal pair
// (the gateway opens the other end as its serial port), or as raw RTU frames on a TCP server (a
// serial device server). Each test decides, per request, which bytes go back.
import net from 'node:net';
import { crc16 } from '../../src/modbus/framing-rtu.js';
import { openPtyPair } from '../../simulators/modbus/pty.js';
import { RtuRequestReader } from '../../simulators/modbus/rtu.js';
import { mapValue } from './endpoint-helpers.js';

export interface RtuRequest {
  unitId: number;
  fc: number;
  address: number;
  count: number;
  /** performance.now() when its first byte arrived. */
  at: number;
}

export type RtuHandler = (req: RtuRequest, reply: (bytes: Buffer) => void) => void;

export interface RtuLine {
  /** The gateway's end: serial.device for rtu, or host:port for rtu_over_tcp. */
  path: string;
  port: number;
  requests: RtuRequest[];
  /** performance.now() when each reply was written. */
  replies: number[];
  handler: RtuHandler;
  close(): Promise<void>;
}

export function rtuFrame(unitId: number, pdu: number[] | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([unitId]), Buffer.from(pdu)]);
  const crc = crc16(body);
  return Buffer.concat([body, Buffer.from([crc & 0xff, crc >> 8])]);
}

export function rtuRegisters(req: Pick<RtuRequest, 'unitId' | 'fc'>, words: number[]): Buffer {
  const pdu = Buffer.alloc(2 + words.length * 2);
  pdu[0] = req.fc;
  pdu[1] = words.length * 2;
  words.forEach((w, i) => pdu.writeUInt16BE(w & 0xffff, 2 + i * 2));
  return rtuFrame(req.unitId, pdu);
}

export const rtuFromMap: RtuHandler = (req, reply) => {
  if (req.fc === 3 || req.fc === 4) reply(rtuRegisters(req, Array.from({ length: req.count }, (_, i) => mapValue(req.unitId, req.address + i))));
  else if (req.fc === 5 || req.fc === 6 || req.fc === 15 || req.fc === 16) reply(rtuFrame(req.unitId, [req.fc, req.address >> 8, req.address & 0xff, req.count >> 8, req.count & 0xff]));
};

function dispatch(line: Pick<RtuLine, 'requests' | 'replies' | 'handler'>, write: (b: Buffer) => void): (chunk: Buffer) => void {
  const reader = new RtuRequestReader();
  return (chunk) => {
    const at = performance.now();
    reader.push(chunk, (adu) => {
      const req: RtuRequest = { unitId: adu[6] ?? 0, fc: adu[7] ?? 0, address: adu.readUInt16BE(8), count: adu.readUInt16BE(10), at };
      line.requests.push(req);
      line.handler(req, (b) => { line.replies.push(performance.now()); write(b); });
    });
  };
}

/** A raw RTU device on a fresh pseudo-terminal pair. */
export async function rtuPtyLine(handler: RtuHandler = rtuFromMap): Promise<RtuLine> {
  const pty = await openPtyPair('rtu');
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path: pty.device, baudRate: 19200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const line: RtuLine = {
    path: pty.gateway, port: 0, requests: [], replies: [], handler,
    close: async () => {
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
      await pty.close();
    },
  };
  port.on('data', dispatch(line, (b) => { if (port.isOpen) port.write(b); }));
  port.on('error', () => undefined);
  return line;
}

/** A raw RTU device behind a TCP server (a serial device server in raw mode). */
export async function rtuTcpLine(handler: RtuHandler = rtuFromMap): Promise<RtuLine> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', dispatch(line, (b) => { if (!sock.destroyed) sock.write(b); }));
  });
  const line: RtuLine = {
    path: '127.0.0.1', port: 0, requests: [], replies: [], handler,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    }),
  };
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const addr = srv.address();
  line.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return line;
}
