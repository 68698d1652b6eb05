// Starts test/interop/pymodbus-load-controller.py (Debian python3-pymodbus) on a free loopback
// port and keeps its write log: the independent device whose write counter the DR tests watch.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { DEBIAN_PYTHON } from '../peers.js';
import { freePort } from './ports.js';

const SCRIPT = fileURLToPath(new URL('../interop/pymodbus-load-controller.py', import.meta.url));

export interface PymodbusWrite { unit: number; fc: number; address: number; values: number[] }

export interface PymodbusLoadController {
  port: number;
  /** Every write the device accepted, in order (from its stdout: may trail the Modbus answers a little). */
  readonly writes: PymodbusWrite[];
  /** The device's own count of accepted writes over all units, read over Modbus (modbus-serial): exact at the time of the read. */
  writeCount(): Promise<number>;
  /** Resolves once `n` writes are logged (false after `timeoutMs`). */
  waitForWrites(n: number, timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

// CommonJS (`module.exports = ModbusRTU`): the default import is the constructor (bench/lib/roles-sim-bare.ts).
const ModbusClient = ModbusSerial as unknown as new () => ModbusRTU;

/** Wire address of the write counter (see the script). */
const WRITES_REGISTER = 40006;

export async function startPymodbusLoadController(units = 1): Promise<PymodbusLoadController> {
  const port = await freePort();
  const child: ChildProcess = spawn(DEBIAN_PYTHON, [SCRIPT, String(port), String(units)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const writes: PymodbusWrite[] = [];
  let buf = '';
  let ready = false;
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line === `ready ${port}`) ready = true;
      else if (line.startsWith('{')) writes.push((JSON.parse(line) as { write: PymodbusWrite }).write);
    }
  });
  child.stderr?.on('data', () => undefined); // pymodbus logs every closed connection as ERROR
  const until = async (pred: () => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline || child.exitCode !== null) return pred();
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  };
  if (!(await until(() => ready, 15_000))) {
    child.kill('SIGKILL');
    throw new Error(`pymodbus load controller did not start (exit ${String(child.exitCode)})`);
  }
  // An independent Modbus client (modbus-serial) reads the counters: not the gateway's endpoint.
  const reader = new ModbusClient();
  await reader.connectTCP('127.0.0.1', { port });
  reader.setTimeout(2000);
  return {
    port, writes,
    writeCount: async () => {
      let n = 0;
      for (let u = 1; u <= units; u++) {
        reader.setID(u);
        n += (await reader.readHoldingRegisters(WRITES_REGISTER, 1)).data[0] ?? 0;
      }
      return n;
    },
    waitForWrites: (n, timeoutMs = 5000) => until(() => writes.length >= n, timeoutMs),
    stop: async () => {
      await new Promise<void>((resolve) => reader.close(() => resolve()));
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
