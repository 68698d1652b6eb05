// `ems-gateway run` as systemd runs it: the built CLI in its own process.
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, type CliProcess } from './cli-process.js';

const SITE = (statusPort: number): string => `version: 1
site: { id: run-test, region: north, nominal_frequency_hz: 50 }
devices: []
telemetry: { enabled: false }
status: { host: 127.0.0.1, port: ${statusPort} }
`;

describe('ems-gateway run (built CLI, child process)', () => {
  const procs: CliProcess[] = [];
  const dirs: string[] = [];
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) { p.kill('SIGKILL'); await p.exited(); }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  const siteFile = (text: string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-run-'));
    dirs.push(dir);
    const f = join(dir, 'site.yaml');
    writeFileSync(f, text);
    return f;
  };
  const cli = (args: string[]): CliProcess => {
    const p = startCli(args, { LOG_LEVEL: 'info' });
    procs.push(p);
    return p;
  };

  it('starts, serves /readyz, logs JSON, and exits 0 on SIGTERM', async () => {
    const p = cli(['run', '--config', siteFile(SITE(8780)), '--status-port', '0']);
    const m = await p.waitFor(/"msg":"gateway running"/, 15_000);
    expect(m).toBeTruthy();
    const line = p.stdout().split('\n').find((l) => l.includes('"gateway running"')) ?? '';
    const url = (JSON.parse(line) as { status_url: string }).status_url;
    expect((await fetch(`${url}readyz`)).status).toBe(200);
    const t0 = Date.now();
    p.kill('SIGTERM');
    expect(await p.exited()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(p.stdout()).toContain('"msg":"stopped"');
    const lines = p.stdout().split('\n').filter((l) => l.startsWith('{'));
    // Every line names the site, the start and stop lines included; no key twice in a line.
    for (const msg of ['gateway running', 'stopping', 'stopped', 'status page listening']) {
      const l = lines.find((x) => x.includes(`"msg":"${msg}"`));
      expect(l, msg).toBeDefined();
      expect((JSON.parse(l!) as { site?: string }).site, msg).toBe('run-test');
    }
    for (const l of lines) {
      const keys = [...l.matchAll(/"([a-z_]+)":/g)].map((m) => m[1]);
      expect(keys.filter((k, i) => keys.indexOf(k) !== i), l).toEqual([]);
    }
  }, 30_000);

  it('a broker that is down at boot is not fatal: the gateway runs, reports it, and stops cleanly', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const site = `${SITE(8780)}mqtt:
  url: mqtt://127.0.0.1:${deadPort}
  client_id: run-test
  reconnect_min: 100ms
  reconnect_max: 500ms
  meters: { topics: [meters/+/readings], region_topic_level: 1 }
`;
    const p = cli(['run', '--config', siteFile(site), '--status-port', '0']);
    await p.waitFor(/"msg":"gateway running"/, 15_000);
    const line = p.stdout().split('\n').find((l) => l.includes('"gateway running"')) ?? '';
    const url = (JSON.parse(line) as { status_url: string }).status_url;
    const st = (await (await fetch(`${url}status`)).json()) as { meters: { connected: boolean; ingested_total: number }; parts: Array<{ name: string; state: string }> };
    expect(st.meters).toMatchObject({ connected: false, ingested_total: 0 });
    expect(st.parts.find((x) => x.name === 'meters')?.state).toBe('running');
    p.kill('SIGTERM');
    expect(await p.exited()).toBe(0);
  }, 30_000);

  it('a config error prints file:line and exits 2 without starting anything', async () => {
    const f = siteFile(SITE(8780).replace('nominal_frequency_hz: 50', 'nominal_frequency_hz: 55'));
    const p = cli(['run', '--config', f]);
    expect(await p.exited()).toBe(2);
    expect(p.stderr()).toMatch(new RegExp(`${f.replaceAll('/', '\\/')}:2:\\d+ site\\.nominal_frequency_hz: .*55`));
    expect(p.stderr()).toMatch(/error\(s\) in the configuration; not starting/);
  }, 30_000);

  it('a start-up failure is one line on stderr and exit 1', async () => {
    const blocker = http.createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const p = cli(['run', '--config', siteFile(SITE(port))]);
    expect(await p.exited()).toBe(1);
    const lines = p.stderr().trim().split('\n');
    expect(lines).toEqual([`ems-gateway: start-up failed: status failed to start: GW_STATUS_LISTEN: status endpoint cannot listen on 127.0.0.1:${port}: EADDRINUSE (set status.port in the site file or --status-port)`]);
  }, 30_000);

  it('an unknown option is a usage error', async () => {
    const p = cli(['run', '--config', 'x.yaml', '--stauts-port', '1']);
    expect(await p.exited()).toBe(2);
    expect(p.stderr()).toContain('unknown option --stauts-port');
  });
});
