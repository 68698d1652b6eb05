// A deliberately dumb Modbus TCP master on node:net for simulator tests: it sends bytes exactly
// as given (split, coalesced, malformed) and splits what comes back into MBAP frames.
import net from 'node:net';

export function adu(tid: number, unit: number, pdu: number[]): Buffer {
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unit;
  Buffer.from(pdu).copy(b, 7);
  return b;
}

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
export const readPdu = (fc: number, address: number, count: number): number[] => [fc, ...u16(address), ...u16(count)];
export const writeSinglePdu = (fc: 5 | 6, address: number, value: number): number[] => [fc, ...u16(address), ...u16(value)];
export const writeRegistersPdu = (address: number, values: number[]): number[] =>
  [16, ...u16(address), ...u16(values.length), values.length * 2, ...values.flatMap(u16)];
export const writeCoilsPdu = (address: number, bits: number[]): number[] => {
  const bytes = new Array<number>(Math.ceil(bits.length / 8)).fill(0);
  bits.forEach((b, i) => { if (b) bytes[i >> 3] = (bytes[i >> 3] ?? 0) | (1 << (i & 7)); });
  return [15, ...u16(address), ...u16(bits.length), bytes.length, ...bytes];
};

export interface Frame { tid: number; unit: number; fc: number; pdu: Buffer; at: number }

/** Registers of a FC3/FC4 response. */
export function registersOf(f: Frame): number[] {
  const n = f.pdu[1] ?? 0;
  const out: number[] = [];
  for (let i = 0; i < n / 2; i++) out.push(f.pdu.readUInt16BE(2 + i * 2));
  return out;
}

export class RawClient {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 7) {
        const len = this.buf.readUInt16BE(4);
        if (this.buf.length < 6 + len) break;
        const f = this.buf.subarray(0, 6 + len);
        this.frames.push({ tid: f.readUInt16BE(0), unit: f[6] ?? 0, fc: f[7] ?? 0, pdu: Buffer.from(f.subarray(7)), at: performance.now() });
        this.buf = this.buf.subarray(6 + len);
      }
      this.wake();
    });
    socket.on('error', () => { /* resets are part of the fault tests */ });
    socket.on('close', () => { this.closed = true; this.wake(); });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  /** Wait until `n` frames have arrived in total (or the socket closed, or the timeout passed). */
  async waitFrames(n: number, timeoutMs = 2000): Promise<Frame[]> {
    const deadline = performance.now() + timeoutMs;
    while (this.frames.length < n && !this.closed && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.frames;
  }

  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.closed;
  }

  /** Send one request and wait for the next frame. */
  async request(tid: number, unit: number, pdu: number[], timeoutMs = 2000): Promise<Frame | undefined> {
    const before = this.frames.length;
    this.send(adu(tid, unit, pdu));
    const frames = await this.waitFrames(before + 1, timeoutMs);
    return frames[before];
  }

  close(): void {
    this.socket.destroy();
  }
}
