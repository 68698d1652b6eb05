// An endpoint that never touches a wire: registers in memory per unit id, requests checked, encoded
// and answered through the same PDU functions as the wire endpoint (endpoint-frames.ts). For
// rehearsals at start-up (src/demand-response/warm-up.ts runs the DR path against it so the first
// real command finds its code compiled); nothing written here reaches a device.
import { checkRead, checkWrite, encodeRead, encodeWrite, parseReadResponse, parseWriteResponse } from './endpoint-frames.js';
import { ModbusError, type ModbusEndpointClient, type ReadRequest, type ReadResult, type RequestOptions } from './types.js';
import { CheckedWrite } from './write-controls.js';

export class RehearsalEndpoint implements ModbusEndpointClient {
  readonly connected = true;
  /** unit id -> "table:address" -> word (a bit is 0/1); what is not set reads 0. */
  private readonly units = new Map<number, Map<string, number>>();
  requests = 0;

  constructor(readonly key: string) {}

  /** Sets registers as a device would hold them (e.g. an acknowledge register), words from `address` on. */
  set(unitId: number, table: ReadRequest['table'], address: number, words: ArrayLike<number>): void {
    const regs = this.regs(unitId);
    for (let i = 0; i < words.length; i++) regs.set(`${table}:${address + i}`, words[i] ?? 0);
  }

  read(req: ReadRequest, opts: RequestOptions = {}): Promise<ReadResult> {
    const bad = checkRead(req);
    if (bad !== undefined) return Promise.reject(new ModbusError('invalid_request', `read ${bad}`, { device: opts.deviceId }));
    this.requests += 1;
    const pdu = encodeRead(req);
    const regs = this.regs(req.unitId);
    // The answer a device would send, parsed as the wire endpoint parses it.
    const bits = req.table === 'coil' || req.table === 'discrete';
    const body = Buffer.alloc(pdu.answerLength);
    body[0] = pdu.functionCode;
    body[1] = pdu.answerLength - 2;
    for (let i = 0; i < req.count; i++) {
      const v = regs.get(`${req.table}:${req.address + i}`) ?? 0;
      if (bits) { if (v !== 0) body[2 + (i >> 3)] = (body[2 + (i >> 3)] ?? 0) | (1 << (i & 7)); } else body.writeUInt16BE(v & 0xffff, 2 + i * 2);
    }
    const r = parseReadResponse(pdu, body);
    return r.ok ? Promise.resolve(r.value) : Promise.reject(new ModbusError(r.code, r.detail, { device: opts.deviceId }));
  }

  write(unitId: number, value: CheckedWrite, opts: RequestOptions = {}): Promise<void> {
    if (!CheckedWrite.isGenuine(value)) return Promise.reject(new ModbusError('invalid_request', 'write: not a checked value of a writable control', { device: opts.deviceId }));
    const req = value.request(unitId);
    const bad = checkWrite(req);
    if (bad !== undefined) return Promise.reject(new ModbusError('invalid_request', `write ${bad}`, { device: opts.deviceId }));
    this.requests += 1;
    const pdu = encodeWrite(req);
    // Every write is answered by the echo of its first five PDU bytes (FC5/6: the value, FC15/16: the count).
    const r = parseWriteResponse(pdu, pdu.pdu.subarray(0, 5));
    if (!r.ok) return Promise.reject(new ModbusError(r.code, r.detail, { device: opts.deviceId }));
    if (req.table === 'holding') this.set(unitId, 'holding', req.address, req.values);
    else this.set(unitId, 'coil', req.address, req.values.map((b) => (b ? 1 : 0)));
    return Promise.resolve();
  }

  onConnect(): () => void {
    return () => undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private regs(unitId: number): Map<string, number> {
    let m = this.units.get(unitId);
    if (m === undefined) {
      m = new Map();
      this.units.set(unitId, m);
    }
    return m;
  }
}
