// The meter fleet simulator as a process of its own (the built CLI, dist/simulators/meter-fleet/
// main.js), for tests that measure the gateway's memory: an MQTT client in the test's process
// keeps memory of its own that grows with what it publishes (mqtt-packet caches the encoded
// length of every distinct packet length below 16,384 bytes, each a few bytes of Node's shared
// 8 KiB Buffer pool that then stays allocated: docs/delivery.md, "Memory during an outage").
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FleetReport } from '../../simulators/meter-fleet/fleet.js';

const FLEET_CLI = fileURLToPath(new URL('../../dist/simulators/meter-fleet/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface FleetProcess {
  /** The report the fleet printed as its last line (rejects if it exited otherwise). */
  report: Promise<FleetReport>;
  kill(): void;
}

/** Starts `meter-fleet` with `args` (its CLI options); resolves its report when it exits. */
export function runFleetProcess(args: string[], timeoutMs: number): FleetProcess {
  if (!existsSync(FLEET_CLI)) throw new Error(`${FLEET_CLI} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [FLEET_CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  const timer = setTimeout(kill, timeoutMs);
  const report = new Promise<FleetReport>((resolve, reject) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit ${code ?? signal}`);
        resolve(JSON.parse(last) as FleetReport);
      } catch (e) {
        reject(new Error(`meter-fleet ${args.join(' ')}: ${(e as Error).message}; stdout: ${out.slice(-1000)}; stderr: ${err.slice(-1000)}`));
      }
    });
  });
  return { report, kill };
}
