// Starts a real mosquitto (Debian package, installed by .ci/run) on a free loopback port.
// mosquitto cannot listen on port 0, so a free port is picked first and the start retried on a clash.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  stop(): Promise<void>;
  /** Stop and start again on the same port, keeping persistence when enabled. */
  restart(): Promise<void>;
}

export interface MosquittoOptions {
  /** Extra lines for mosquitto.conf (listener lines are written by this helper unless `listenerConf` is given). */
  extraConf?: string[];
  /** Replaces the default `listener <port> 127.0.0.1` + `allow_anonymous true` lines. `{port}` is substituted. */
  listenerConf?: string[];
  persistence?: boolean;
}

export const MOSQUITTO_BIN = process.env['MOSQUITTO_BIN'] ?? '/usr/sbin/mosquitto';

async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-mosquitto-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let stderr = '';

  const writeConf = (): string => {
    const listener = (opts.listenerConf ?? [`listener {port} 127.0.0.1`, 'allow_anonymous true']).map((l) => l.replaceAll('{port}', String(port)));
    const lines = [
      ...listener,
      // mosquitto's default of 1000 queued messages silently drops QoS 1 messages for a lagging subscriber.
      'max_queued_messages 0',
      'max_inflight_messages 0',
      ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1'] : ['persistence false']),
      ...(opts.extraConf ?? []),
    ];
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, lines.join('\n') + '\n');
    return conf;
  };

  const launch = async (): Promise<void> => {
    const conf = writeConf();
    stderr = '';
    const proc = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    child = proc;
    const up = await waitForPort(port, 5000);
    if (!up || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error(`mosquitto did not start on port ${port}: ${stderr.trim()}`);
    }
  };

  const stopChild = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { proc.kill('SIGKILL'); }, 3000);
      proc.once('exit', () => { clearTimeout(t); resolve(); });
      proc.kill('SIGTERM');
    });
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }

  return {
    get port() { return port; },
    get url() { return `mqtt://127.0.0.1:${port}`; },
    dir,
    stop: async () => {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stopChild();
      await launch();
    },
  };
}
