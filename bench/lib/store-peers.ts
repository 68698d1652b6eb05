// Real upstream stores for the delivery tests and bench:delivery, each started on a free loopback
// port in a temp folder and removed on stop: PostgreSQL (Debian `postgresql`; it refuses to run as
// root, so as root it runs as the `postgres` user through runuser), InfluxDB 1.x (`influxdb`) and
// VictoriaMetrics (`victoria-metrics`, with a 100-year retention: it silently drops samples older
// than its retention period).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function waitFor(what: string, ok: () => Promise<boolean>, child: ChildProcess | undefined, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${log().slice(-800)}`);
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start within ${timeoutMs} ms: ${log().slice(-800)}`);
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill(signal);
  });
}

const isRoot = (): boolean => process.getuid?.() === 0;
/** As root: run as `postgres` (PostgreSQL refuses root); otherwise as ourselves. */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  return isRoot() ? ['/usr/sbin/runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]] : [join(PG_BIN, bin), args];
}

export interface PostgresPeer {
  port: number;
  url: string;
  database: string;
  query<T = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Stops the server (fast shutdown) and starts it again on the same port and data. */
  restart(downMs?: number): Promise<void>;
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<PostgresPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-pg-'));
  const data = join(dir, 'data');
  if (isRoot()) {
    const u = spawnSync('/usr/bin/id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('/usr/bin/id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(u.stdout.trim()), Number(g.stdout.trim()));
  }
  const [cmd, args] = pgCommand('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const init = spawnSync(cmd, args, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const startServer = async (): Promise<void> => {
    const [c, a] = pgCommand('postgres', ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
      '-c', `fsync=${opts.fsync === false ? 'off' : 'on'}`, '-c', 'max_connections=20', '-c', 'shared_buffers=64MB']);
    child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor('postgres', async () => {
      const c2 = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      try { await c2.connect(); await c2.query('SELECT 1'); return true; } finally { await c2.end().catch(() => undefined); }
    }, child, 30_000, () => log);
  };
  const stopServer = async (): Promise<void> => {
    // pg_ctl's fast shutdown: a signal to the runuser wrapper would not reach postgres itself.
    const [c, a] = pgCommand('pg_ctl', ['-D', data, 'stop', '-m', 'fast', '-w', '-t', '30']);
    const r = spawnSync(c, a, { encoding: 'utf8' });
    if (r.status !== 0 && !/not running|No such process/i.test(`${r.stdout}${r.stderr}`)) throw new Error(`pg_ctl stop failed: ${r.stderr || r.stdout}`);
    if (child) await stopChild(child, 'SIGINT');
    child = undefined;
  };
  await startServer();
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE ems');
  await admin.end();
  const query = async <T>(sql: string, values: unknown[] = []): Promise<T[]> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'ems' });
    await c.connect();
    try { return (await c.query(sql, values)).rows as T[]; } finally { await c.end(); }
  };
  return {
    port, url: `postgres://postgres@127.0.0.1:${port}/ems`, database: 'ems', query,
    stopServer, startServer,
    restart: async (downMs = 0) => { await stopServer(); await new Promise((r) => setTimeout(r, downMs)); await startServer(); },
    stop: async () => { await stopServer(); rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface HttpStorePeer {
  url: string;
  stop(): Promise<void>;
}

export interface InfluxPeer extends HttpStorePeer {
  /** InfluxQL query; the rows of the first series as objects. */
  select(q: string, db: string): Promise<Array<Record<string, unknown>>>;
  createDatabase(db: string): Promise<void>;
}

export async function startInfluxdb(): Promise<InfluxPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-influx-'));
  const http = await freePort();
  const rpc = await freePort();
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(conf, [
    'reporting-disabled = true', `bind-address = "127.0.0.1:${rpc}"`,
    '[meta]', `  dir = "${join(dir, 'meta')}"`,
    '[data]', `  dir = "${join(dir, 'data')}"`, `  wal-dir = "${join(dir, 'wal')}"`, '  query-log-enabled = false',
    '[http]', `  bind-address = "127.0.0.1:${http}"`, '  log-enabled = false',
    '[monitor]', '  store-enabled = false', '',
  ].join('\n'));
  let log = '';
  const child = spawn('/usr/bin/influxd', ['-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
  const url = `http://127.0.0.1:${http}`;
  await waitFor('influxd', async () => (await fetch(`${url}/ping`)).status === 204, child, 30_000, () => log);
  const q = async (text: string, db?: string): Promise<unknown> => {
    const body = new URLSearchParams({ q: text, epoch: 'ms', ...(db ? { db } : {}) });
    const res = await fetch(`${url}/query`, { method: 'POST', body });
    return res.json();
  };
  return {
    url,
    createDatabase: async (db) => { await q(`CREATE DATABASE "${db}"`); },
    select: async (text, db) => {
      const out = await q(text, db) as { results?: Array<{ series?: Array<{ columns: string[]; values: unknown[][] }> }> };
      const rows: Array<Record<string, unknown>> = [];
      for (const s of out.results?.[0]?.series ?? []) for (const v of s.values) rows.push(Object.fromEntries(s.columns.map((c, i) => [c, v[i]])));
      return rows;
    },
    stop: async () => { await stopChild(child); rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface VictoriaPeer extends HttpStorePeer {
  /** Every raw sample of the series matching `match` (after a flush), as /api/v1/export returns them. */
  exportSeries(match: string): Promise<Array<{ metric: Record<string, string>; values: number[]; timestamps: number[] }>>;
}

export async function startVictoriaMetrics(): Promise<VictoriaPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-vm-'));
  const port = await freePort();
  let log = '';
  const child = spawn('/usr/bin/victoria-metrics', [`-storageDataPath=${dir}`, `-httpListenAddr=127.0.0.1:${port}`, '-retentionPeriod=100y',
    '-loggerLevel=ERROR', '-search.disableCache', '-memory.allowedBytes=256MB'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('victoria-metrics', async () => (await fetch(`${url}/health`)).ok, child, 30_000, () => log);
  return {
    url,
    exportSeries: async (match) => {
      await fetch(`${url}/internal/force_flush`);
      const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match, start: '0' }).toString()}`);
      const text = await res.text();
      return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { metric: Record<string, string>; values: number[]; timestamps: number[] });
    },
    stop: async () => { await stopChild(child); rmSync(dir, { recursive: true, force: true }); },
  };
}

