// Benchmark parties that are not the gateway: the simulators (with an OTLP sink), and the bare
// modbus-serial client, polling at the gateway's rate (the CPU floor) and at full speed.
import http from 'node:http';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../../simulators/modbus/index.js';
import type { SimulatedDevice } from '../../simulators/modbus/index.js';
import { BENCH_REGISTERS, benchProfile } from './bench-profile.js';
import { ResourceMeter, onParent, sleep, toParent, type Msg } from './child.js';

// The package is CommonJS (`module.exports = ModbusRTU`): the default import is the constructor
// at run time, while its typings describe a namespace.
const ModbusClient = ModbusSerial as unknown as new () => ModbusRTU;

/** `firstEndpoint`: this process's first endpoint index (seeds), when several processes share the simulators. */
export interface SimParams { endpoints: number; units: number; firstEndpoint?: number }

export async function runSim(p: SimParams): Promise<void> {
  const profile = benchProfile();
  const servers: ModbusSimServer[] = [];
  const first = p.firstEndpoint ?? 0;
  for (let e = first; e < first + p.endpoints; e++) {
    const units = new Map<number, SimulatedDevice>();
    for (let u = 1; u <= p.units; u++) units.set(u, createSimulatedDevice(profile, { seed: e * 1000 + u, tickMs: 1000 }));
    servers.push(await startModbusServer({ units }));
  }
  // The gateway exports real OTLP/HTTP protobuf here: the cost of export is part of its CPU.
  let exports = 0;
  let exportBytes = 0;
  const sink = http.createServer((req, res) => {
    req.on('data', (d: Buffer) => { exportBytes += d.length; });
    req.on('end', () => {
      exports += 1;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const addr = sink.address();
  const sinkPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
  onParent('stop', () => {
    const requests = servers.reduce((n, s) => n + s.stats.requests, 0);
    toParent({ type: 'sim-stats', requests, exports, exportBytes });
    void Promise.all(servers.map((s) => s.close())).then(() => { sink.close(); process.exit(0); });
  });
  toParent({ type: 'ready', ports: servers.map((s) => s.port), sinkUrl: `http://127.0.0.1:${sinkPort}` });
}

async function connectAll(ports: number[]): Promise<ModbusRTU[]> {
  return Promise.all(ports.map(async (port) => {
    const c = new ModbusClient();
    await c.connectTCP('127.0.0.1', { port });
    c.setTimeout(1000);
    return c;
  }));
}

export interface RateParams { ports: number[]; units: number; intervalMs: number; warmupS: number; durationS: number }

/** (b) The floor: one modbus-serial client per endpoint, each second a loop over its unit ids. */
export async function runBare(p: RateParams): Promise<Msg> {
  const clients = await connectAll(p.ports);
  let measuring = false;
  let polls = 0;
  let errors = 0;
  let running = true;
  const loops = clients.map(async (c, e) => {
    await sleep((p.intervalMs * e) / clients.length);
    let due = performance.now();
    while (running) {
      for (let u = 1; u <= p.units && running; u++) {
        c.setID(u);
        try {
          const r = await c.readHoldingRegisters(0, BENCH_REGISTERS);
          if (measuring && r.data.length === BENCH_REGISTERS) polls += 1;
        } catch {
          if (measuring) errors += 1;
        }
      }
      due += p.intervalMs;
      const now = performance.now();
      while (due <= now) due += p.intervalMs;
      await sleep(due - now);
    }
  });
  await sleep(p.warmupS * 1000);
  const meter = new ResourceMeter();
  measuring = true;
  meter.start();
  await sleep(p.durationS * 1000);
  measuring = false;
  const r = meter.stop();
  running = false;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => new Promise<void>((res) => c.close(() => res()))));
  return { type: 'result', polls, errors, polls_per_s: polls / r.elapsedS, cpu_pct: r.cpuPct, rss_mb: r.rssMb };
}

export interface FastParams { ports: number[]; units: number; seconds: number }

/** (c) The bare client at full speed: one request in flight per connection, back to back. */
export async function runBareFast(p: FastParams): Promise<Msg> {
  const clients = await connectAll(p.ports);
  let n = 0;
  const end = performance.now() + p.seconds * 1000;
  const meter = new ResourceMeter();
  meter.start();
  await Promise.all(clients.map(async (c) => {
    for (let u = 1; performance.now() < end; u = u === p.units ? 1 : u + 1) {
      c.setID(u);
      const r = await c.readHoldingRegisters(0, BENCH_REGISTERS);
      if (r.data.length === BENCH_REGISTERS) n += 1;
    }
  }));
  const r = meter.stop();
  await Promise.all(clients.map((c) => new Promise<void>((res) => c.close(() => res()))));
  return { type: 'result', requests: n, requests_per_s: n / r.elapsedS, cpu_pct: r.cpuPct };
}
