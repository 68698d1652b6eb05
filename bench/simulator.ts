// How fast the Modbus simulator answers: `npm run bench:simulator`.
//   (a) in process: the request handler alone for a 60-register FC3 read (ns per request);
//   (b) over loopback, the server in its own process: sequential round trips on one connection
//       (median/p99 us), then full speed over several connections with one request in flight
//       each (requests/s) and the server's own CPU time per request.
// Options: --seconds=S (default 5) --connections=N (default 16) --units=N (default 50)
// The last line of output is one JSON object.
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DeviceProfile, PointDef } from '../src/config/profile-types.js';
import { createSimulatedDevice } from '../simulators/modbus/device.js';
import { handleRequest } from '../simulators/modbus/frame.js';
import { startModbusServer } from '../simulators/modbus/server.js';

function arg(name: string, dflt: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit === undefined ? NaN : Number(hit.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

/** 60 holding registers: 20 float32 (CDAB), 10 int16 with a scale factor, 10 uint16 (some animated). */
function benchProfile(): DeviceProfile {
  const points: PointDef[] = [];
  for (let i = 0; i < 20; i++) {
    points.push({ id: `f${i}`, table: 'holding', address: i * 2, type: 'float32', order: 'CDAB',
      simulate: i % 4 === 0 ? { kind: 'sine', mean: 100, amplitude: 10, period_s: 60 } : { kind: 'constant', value: i * 1.5 } });
  }
  points.push({ id: 'sf', table: 'holding', address: 40, type: 'int16', role: 'scale_factor', simulate: { kind: 'constant', value: -1 } });
  for (let i = 0; i < 9; i++) points.push({ id: `s${i}`, table: 'holding', address: 41 + i, type: 'int16', scale_factor: 'sf', simulate: { kind: 'constant', value: i - 4 } });
  for (let i = 0; i < 10; i++) {
    points.push({ id: `u${i}`, table: 'holding', address: 50 + i, type: 'uint16',
      simulate: i === 0 ? { kind: 'random_walk', start: 50, step: 1, min: 0, max: 100 } : { kind: 'constant', value: i } });
  }
  return {
    profile: 'bench-60', vendor: 'bench', model: '60 registers', kind: 'other', address_base: 0, default_order: 'ABCD',
    quirks: { max_registers_per_request: 125, max_gap_registers: 0, request_gap_ms: 0, connect_delay_ms: 0, one_request_per_point: false, timeout_ms: 1000, max_connections: 100 },
    points, controls: [], source: 'bench',
  };
}

function request(tid: number, unit: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(tid & 0xffff, 0);
  b.writeUInt16BE(6, 4);
  b[6] = unit;
  b[7] = 3;
  b.writeUInt16BE(0, 8);
  b.writeUInt16BE(60, 10);
  return b;
}

async function server(): Promise<void> {
  const units = new Map(Array.from({ length: arg('units', 50) }, (_, i) => [i + 1, createSimulatedDevice(benchProfile(), { seed: i + 1 })] as const));
  const s = await startModbusServer({ units });
  process.send?.({ type: 'ready', port: s.port });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'usage') process.send?.({ type: 'usage', cpu: process.cpuUsage(), requests: s.stats.requests });
    if (m.type === 'stop') void s.close().then(() => process.exit(0)); // exit once closed; nothing to await it
  });
}

/** One connection keeping one request in flight, for `ms`. Returns round-trip times (ms). */
async function loop(port: number, unit: number, ms: number, keepTimes: boolean): Promise<{ count: number; times: number[] }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  const times: number[] = [];
  let count = 0;
  let tid = 0;
  let pending: Buffer = Buffer.alloc(0);
  const end = performance.now() + ms;
  await new Promise<void>((resolve) => {
    let t0 = performance.now();
    const next = (): void => {
      if (performance.now() >= end) return resolve();
      t0 = performance.now();
      socket.write(request(++tid, unit));
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 7 && pending.length >= 6 + pending.readUInt16BE(4)) {
        pending = pending.subarray(6 + pending.readUInt16BE(4));
        count++;
        if (keepTimes) times.push(performance.now() - t0);
        next();
      }
    });
    next();
  });
  socket.destroy();
  return { count, times };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 5);
  const connections = arg('connections', 16);
  const units = arg('units', 50);

  // (a) the handler alone
  const device = createSimulatedDevice(benchProfile());
  const req = request(1, 1);
  const n = 200_000;
  for (let i = 0; i < 10_000; i++) handleRequest(req, device, () => undefined);
  const h0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) handleRequest(req, device, () => undefined);
  const handlerNs = Number(process.hrtime.bigint() - h0) / n;

  // (b) a server process
  const child = fork(fileURLToPath(import.meta.url), ['--role=server', `--units=${units}`], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  const usage = (): Promise<{ cpu: NodeJS.CpuUsage; requests: number }> => new Promise((resolve) => {
    child.once('message', (m: { cpu: NodeJS.CpuUsage; requests: number }) => resolve(m));
    child.send({ type: 'usage' });
  });
  const seq = await loop(port, 1, Math.min(3000, seconds * 1000), true);
  seq.times.sort((a, b) => a - b);
  const q = (p: number): number => (seq.times[Math.min(seq.times.length - 1, Math.floor(p * seq.times.length))] ?? NaN) * 1000;

  const u0 = await usage();
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: connections }, (_, i) => loop(port, (i % units) + 1, seconds * 1000, false)));
  const elapsed = (performance.now() - t0) / 1000;
  const u1 = await usage();
  child.send({ type: 'stop' });
  const total = runs.reduce((s, r) => s + r.count, 0);
  const serverCpuUs = (u1.cpu.user - u0.cpu.user + u1.cpu.system - u0.cpu.system);
  const served = u1.requests - u0.requests;

  const result = {
    handler_ns_per_request: Math.round(handlerNs),
    rtt_median_us: Math.round(q(0.5)),
    rtt_p99_us: Math.round(q(0.99)),
    sequential_requests: seq.count,
    connections,
    requests_per_s: Math.round(total / elapsed),
    server_cpu_us_per_request: Math.round((serverCpuUs / Math.max(1, served)) * 10) / 10,
    server_cpu_pct: Math.round((serverCpuUs / 1e6 / elapsed) * 1000) / 10,
  };
  process.stdout.write(`handler alone: ${result.handler_ns_per_request} ns per 60-register read\n`);
  process.stdout.write(`loopback round trip (1 connection, sequential, client and server on one machine): median ${result.rtt_median_us} us, p99 ${result.rtt_p99_us} us\n`);
  process.stdout.write(`full speed, ${connections} connections x 1 in flight: ${result.requests_per_s} requests/s; server ${result.server_cpu_us_per_request} us CPU per request (${result.server_cpu_pct} % of a core)\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv.includes('--role=server')) void server(); // errors surface as the child's exit
else await main();
