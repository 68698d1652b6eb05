// Starts a real mosquitto (Debian package, installed by .ci/run) on a free loopback port.
// mosquitto cannot listen on port 0, so a free port is picked first and the start retried on a clash.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /** kill -9: no clean shutdown, so nothing is saved that autosave has not saved already. */
  crash(): Promise<void>;
  /** Starts again on the same port with the same configuration (after crash()). */
  start(): Promise<void>;
}

/** Where a configuration is written: the port and the persistence folder (writable by mosquitto). */
export interface MosquittoConfContext {
  port: number;
  dir: string;
  dbDir: string;
}

export interface MosquittoOptions {
  /** Extra lines for mosquitto.conf (listener lines are written by this helper unless `listenerConf` is given). */
  extraConf?: string[];
  /** Replaces the default `listener <port> 127.0.0.1` + `allow_anonymous true` lines. `{port}` is substituted. */
  listenerConf?: string[];
  persistence?: boolean;
  /** The whole configuration instead of the helper's (e.g. the shipped deploy/mosquitto/ems.conf, adapted). */
  conf?: (ctx: MosquittoConfContext) => string[];
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
  // mosquitto started as root drops to the `mosquitto` user before it writes its database: the
  // folder must be writable for it, or every save fails (and a restart finds no sessions).
  const dbDir = join(dir, 'db');
  mkdirSync(dbDir);
  chmodSync(dir, 0o755);
  chmodSync(dbDir, 0o777);
  let port = 0;
  let child: ChildProcess | undefined;
  let stderr = '';

  const writeConf = (): string => {
    const listener = (opts.listenerConf ?? [`listener {port} 127.0.0.1`, 'allow_anonymous true']).map((l) => l.replaceAll('{port}', String(port)));
    const lines = opts.conf ? opts.conf({ port, dir, dbDir }) : [
      ...listener,
      // mosquitto's default of 1000 queued messages silently drops QoS 1 messages for a lagging subscriber.
      'max_queued_messages 0',
      'max_inflight_messages 0',
      ...(opts.persistence ? ['persistence true', `persistence_location ${dbDir}/`, 'autosave_interval 1'] : ['persistence false']),
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

  const stopChild = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { proc.kill('SIGKILL'); }, 3000);
      proc.once('exit', () => { clearTimeout(t); resolve(); });
      proc.kill(signal);
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
    crash: () => stopChild('SIGKILL'),
    start: () => launch(),
  };
}
