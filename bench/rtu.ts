// npm run bench:rtu — the request rate the gateway reaches on a Modbus RTU line, against the
// theoretical rate of that line for the same requests.
//   A socat pseudo-terminal pair stands in for the line: the simulator (its own process) serves
//   `--units` devices on one end, the gateway's endpoint (transport rtu, `--baud`, `--parity`) reads
//   `--registers` holding registers per request from them, one request in flight, round robin.
//   A pty paces nothing (bytes arrive as fast as they are written), so what limits the rate on it
//   is the gateway's own timing: 3.5 characters of silence before every request (+ turnaround).
//   theoretical_rps is what a real line at that baud carries: per request, its bytes and its
//   answer's at the character time, plus two silences (before the answer, before the next request).
// Options: --duration=S (10) --baud=N (19200) --parity=none|even|odd (even) --registers=N (10) --units=N (4)
// The last line of output is one JSON object.
import { fileURLToPath } from 'node:url';
import { ModbusEndpoint } from '../src/modbus/endpoint.js';
import { lineTiming, rtuBytes } from '../src/modbus/framing-rtu.js';
import type { SerialSettings } from '../src/config/site-types.js';
import { systemClock } from '../src/runtime/clock.js';
import { silentLogger } from '../src/runtime/logger.js';
import { createSimulatedDevice } from '../simulators/modbus/device.js';
import { openPtyPair } from '../simulators/modbus/pty.js';
import { startRtuSerialServer } from '../simulators/modbus/serial-server.js';
import { benchProfile } from './lib/bench-profile.js';
import { onParent, percentile, ResourceMeter, startChild, toParent, type Msg } from './lib/child.js';

function arg(name: string, dflt: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit === undefined ? NaN : Number(hit.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}
const parityArg = process.argv.find((a) => a.startsWith('--parity='))?.slice(9);
const parity: SerialSettings['parity'] = parityArg === 'none' || parityArg === 'odd' ? parityArg : 'even';
const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** The simulator child: serves the units on the pty end it is given until told to stop. */
async function simulator(): Promise<void> {
  onParent('run', (m) => {
    void (async () => {
      const units = new Map(Array.from({ length: Number(m['units']) }, (_, i) => [i + 1, createSimulatedDevice(benchProfile(), { seed: i + 1 })] as const));
      const server = await startRtuSerialServer({ path: String(m['path']), units });
      onParent('stats', () => toParent({ type: 'stats', requests: server.stats.requests, minSilenceMs: server.stats.minSilenceMs, framingErrors: server.stats.framingErrors }));
      onParent('stop', () => { void server.close().then(() => process.exit(0)); });
      toParent({ type: 'ready' });
    })().catch((e: unknown) => toParent({ type: 'error', message: String(e) }));
  });
}

async function main(): Promise<void> {
  const durationS = arg('duration', 10);
  const baud = arg('baud', 19200);
  const registers = Math.min(125, arg('registers', 10));
  const unitCount = Math.min(247, arg('units', 4));
  const serial: SerialSettings = { baud, parity, stop_bits: 1, data_bits: 8, turnaround_ms: 0 };
  const t = lineTiming(serial);
  const bytes = rtuBytes(5, 2 + 2 * registers);
  const theoreticalMs = (bytes.request + bytes.answer) * t.charMs + 2 * t.silenceMs;

  const pty = await openPtyPair('bench');
  const sim = startChild(fileURLToPath(import.meta.url), 'simulator');
  try {
    sim.send({ type: 'run', path: pty.device, units: unitCount });
    await Promise.race([sim.next('ready', 30_000), sim.next('error', 30_000).then((e: Msg) => { throw new Error(String(e['message'])); })]);
    const ep = new ModbusEndpoint({ transport: 'rtu', serial: { ...serial, device: pty.gateway }, defaultTimeoutMs: 1000 }, { clock: systemClock, logger: silentLogger() });
    const read = (u: number): Promise<unknown> => ep.read({ unitId: u, table: 'holding', address: 0, count: registers });
    for (let u = 1; u <= unitCount; u++) await read(u); // warm-up: open the port, one read per unit
    const meter = new ResourceMeter();
    meter.start();
    const times: number[] = [];
    let errors = 0;
    const t0 = performance.now();
    const end = t0 + durationS * 1000;
    for (let i = 0; performance.now() < end; i++) {
      const s = performance.now();
      try {
        await read(1 + (i % unitCount));
        times.push(performance.now() - s);
      } catch {
        errors += 1;
      }
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const usage = meter.stop();
    await ep.close();
    sim.send({ type: 'stats' });
    const st = await sim.next('stats', 10_000);
    times.sort((a, b) => a - b);
    const rps = times.length / elapsedS;
    const theoreticalRps = 1000 / theoreticalMs;
    console.log(`line ${baud} baud 8${parity[0]?.toUpperCase() ?? 'N'}1: character ${t.charMs.toFixed(3)} ms, silence ${t.silenceMs.toFixed(3)} ms`);
    console.log(`request ${bytes.request} bytes, answer ${bytes.answer} bytes (${registers} registers): ${theoreticalMs.toFixed(2)} ms each on a real line = ${theoreticalRps.toFixed(1)} requests/s`);
    console.log(`gateway on a pty (paces nothing): ${rps.toFixed(1)} requests/s, ${errors} errors, request p50 ${percentile(times, 0.5).toFixed(2)} ms p99 ${percentile(times, 0.99).toFixed(2)} ms, CPU ${usage.cpuPct.toFixed(1)} %`);
    console.log(`shortest silence the simulator saw before a request: ${Number(st['minSilenceMs']).toFixed(3)} ms (the line needs ${t.silenceMs.toFixed(3)})`);
    console.log(JSON.stringify({
      baud, parity, registers, units: unitCount, duration_s: round(elapsedS, 1),
      char_ms: round(t.charMs, 4), silence_ms: round(t.silenceMs, 4), request_bytes: bytes.request, answer_bytes: bytes.answer,
      theoretical_request_ms: round(theoreticalMs, 3), theoretical_rps: round(theoreticalRps, 1),
      // What the gateway's own silence alone would allow on a line that costs nothing else.
      silence_bound_rps: round(1000 / t.silenceMs, 1),
      gateway_rps: round(rps, 1), ratio_vs_theoretical: round(rps / theoreticalRps), errors,
      request_p50_ms: round(percentile(times, 0.5), 3), request_p99_ms: round(percentile(times, 0.99), 3),
      min_silence_ms: round(Number(st['minSilenceMs']), 3), sim_framing_errors: Number(st['framingErrors']),
      gateway_cpu_pct: round(usage.cpuPct, 1),
    }));
  } finally {
    await sim.stop();
    await pty.close();
  }
}

if (role === 'simulator') void simulator();
else main().catch((e: unknown) => { console.error(e); process.exit(1); });
