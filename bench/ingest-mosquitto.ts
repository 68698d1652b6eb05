// A private mosquitto for the ingest benchmark: a free loopback port and `max_queued_messages 0`
// (mosquitto's default of 1000 silently drops QoS 1 messages for a subscriber that lags behind).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchBroker {
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function startBenchMosquitto(bin = process.env['MOSQUITTO_BIN'] ?? '/usr/sbin/mosquitto'): Promise<BenchBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-bench-mosquitto-'));
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'max_queued_bytes 0',
      'max_inflight_messages 0', 'persistence false', ''].join('\n'));
    const child: ChildProcess = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && child.exitCode === null && !(await reachable(port))) await new Promise((r) => setTimeout(r, 50));
    if (child.exitCode === null && (await reachable(port))) {
      return {
        url: `mqtt://127.0.0.1:${port}`,
        stop: async () => {
          await new Promise<void>((resolve) => {
            if (child.exitCode !== null) { resolve(); return; }
            const t = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => { clearTimeout(t); resolve(); });
            child.kill('SIGTERM');
          });
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    if (attempt === 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mosquitto did not start: ${stderr.trim()}`);
    }
  }
  throw new Error('unreachable');
}
