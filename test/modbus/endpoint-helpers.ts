// A scriptable raw Modbus TCP server on node:net for endpoint/poller tests: each test decides,
// per request, what bytes go back (a good answer, an exception, nothing, garbage, late replies).
import net from 'node:net';
import type { EndpointObserver, RequestEvent } from '../../src/modbus/endpoint.js';

export interface RawRequest {
  tid: number;
  unitId: number;
  fc: number;
  address: number;
  count: number;
  pdu: Buffer;
  at: number;
}

export type Handler = (req: RawRequest, sock: net.Socket, server: RawServer) => void;

export interface RawServer {
  port: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  readonly open: number;
  requests: RawRequest[];
  connectTimes: number[];
  handler: Handler;
  /** Refuse a second concurrent client (a device that accepts only one connection). */
  maxClients: number;
  close(): Promise<void>;
}

export function mbap(tid: number, unitId: number, pdu: Buffer | number[]): Buffer {
  const body = Buffer.isBuffer(pdu) ? pdu : Buffer.from(pdu);
  const head = Buffer.alloc(7);
  head.writeUInt16BE(tid, 0);
  head.writeUInt16BE(0, 2);
  head.writeUInt16BE(body.length + 1, 4);
  head[6] = unitId;
  return Buffer.concat([head, body]);
}

export function registersFrame(req: Pick<RawRequest, 'tid' | 'unitId' | 'fc'>, words: number[]): Buffer {
  const pdu = Buffer.alloc(2 + words.length * 2);
  pdu[0] = req.fc;
  pdu[1] = words.length * 2;
  words.forEach((w, i) => pdu.writeUInt16BE(w & 0xffff, 2 + i * 2));
  return mbap(req.tid, req.unitId, pdu);
}

export function bitsFrame(req: Pick<RawRequest, 'tid' | 'unitId' | 'fc'>, bits: number[]): Buffer {
  const n = Math.ceil(bits.length / 8);
  const pdu = Buffer.alloc(2 + n);
  pdu[0] = req.fc;
  pdu[1] = n;
  bits.forEach((b, i) => { if (b) pdu[2 + (i >> 3)] = (pdu[2 + (i >> 3)] ?? 0) | (1 << (i & 7)); });
  return mbap(req.tid, req.unitId, pdu);
}

export function exceptionFrame(req: Pick<RawRequest, 'tid' | 'unitId' | 'fc'>, code: number): Buffer {
  return mbap(req.tid, req.unitId, [req.fc | 0x80, code]);
}

/** Echo for FC5/6/15/16. */
export function writeEcho(req: RawRequest): Buffer {
  return mbap(req.tid, req.unitId, req.pdu.subarray(0, 5));
}

/** Register value i of a deterministic map: unit * 1000 + address. */
export function mapValue(unitId: number, address: number): number {
  return (unitId * 1000 + address) & 0xffff;
}

export const answerFromMap: Handler = (req, sock) => {
  if (req.fc === 3 || req.fc === 4) {
    sock.write(registersFrame(req, Array.from({ length: req.count }, (_, i) => mapValue(req.unitId, req.address + i))));
  } else if (req.fc === 1 || req.fc === 2) {
    sock.write(bitsFrame(req, Array.from({ length: req.count }, (_, i) => (req.address + i) % 2)));
  } else {
    sock.write(writeEcho(req));
  }
};

export async function startRawServer(handler: Handler = answerFromMap, port = 0): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer();
  const state: RawServer = {
    port: 0, accepted: 0, requests: [], connectTimes: [], handler, maxClients: Infinity,
    get open() { return sockets.size; },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    }),
  };
  srv.on('connection', (sock) => {
    if (sockets.size >= state.maxClients) {
      sock.destroy();
      return;
    }
    state.accepted += 1;
    state.connectTimes.push(performance.now());
    sockets.add(sock);
    // Each write its own segment, at once: split and dribbled answers arrive as the test wrote them
    // (with Nagle, a 1-byte write can wait for the delayed ACK of the previous one, ~40 ms).
    sock.setNoDelay(true);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 7) {
        const len = buf.readUInt16BE(4);
        if (buf.length < 6 + len) break;
        const pdu = Buffer.from(buf.subarray(7, 6 + len));
        const req: RawRequest = {
          tid: buf.readUInt16BE(0), unitId: buf[6] ?? 0, fc: pdu[0] ?? 0,
          address: pdu.length >= 3 ? pdu.readUInt16BE(1) : 0, count: pdu.length >= 5 ? pdu.readUInt16BE(3) : 0,
          pdu, at: performance.now(),
        };
        buf = buf.subarray(6 + len);
        state.requests.push(req);
        state.handler(req, sock, state);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  state.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return state;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms until true or `ms` passed; returns the final value. */
export async function waitFor(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}

/** What an endpoint reports: every request's outcome, strays and malformed bytes. */
export class Recorder implements EndpointObserver {
  events: RequestEvent[] = [];
  strays = 0;
  malformedCount = 0;
  /** Unit ids charged with garbage (bytes that came while their request was in flight), in order. */
  garbageUnits: number[] = [];
  requestDone(ev: RequestEvent): void { this.events.push(ev); }
  stray(): void { this.strays += 1; }
  malformed(): void { this.malformedCount += 1; }
  garbage(ev: { unitId: number }): void { this.garbageUnits.push(ev.unitId); }
}
