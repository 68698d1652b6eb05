// `npm run demo` as a newcomer runs it: the built CLI in its own process. Live figures must appear
// within 30 s, and Ctrl-C (SIGINT) must stop everything and exit 0, quickly. The README's other demo
// commands are exercised here too: OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, mbpoll
// reading the simulated grid meter, and --duration.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/telemetry/semconv.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { REPO, startCli, type CliProcess } from '../runtime/cli-process.js';

const MBPOLL = '/usr/bin/mbpoll';

function mbpoll(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(MBPOLL, args, { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

describe('ems-gateway demo (built CLI, child process)', () => {
  let demo: CliProcess | undefined;
  let receiver: OtlpReceiver | undefined;
  afterEach(async () => {
    if (demo) {
      demo.kill('SIGKILL'); // no-op when it already exited
      await demo.exited();
      // The demo keeps its JSON log in a temporary file (path printed) for the user to read after.
      const log = /logs (\S+\.log)/.exec(demo.stdout())?.[1];
      if (log !== undefined) rmSync(log, { force: true });
    }
    demo = undefined;
    await receiver?.stop();
    receiver = undefined;
  });

  it('shows live figures within 30 s, exports OTLP when asked, and exits 0 on SIGINT', async () => {
    receiver = await OtlpReceiver.start();
    const t0 = Date.now();
    // --free-ports: the demo's fixed ports may be taken by another demo or test on this machine.
    demo = startCli(['demo', '--free-ports'], { LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_METRIC_EXPORT_INTERVAL: '1000' });
    const banner = await demo.waitFor(/status page (http:\/\/127\.0\.0\.1:\d+\/)/, 20_000);
    await demo.waitFor(new RegExp(`OTLP export to ${receiver.url.replaceAll('.', '\\.')}`), 5000);
    const rates = await demo.waitFor(/meters +([1-9][\d,]*) readings\/s +ingested ([1-9][\d,]*)/, 30_000);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(Number(rates[2]?.replaceAll(',', ''))).toBeGreaterThan(0);
    // The data-age p99 comes from the histogram the summary's pull reader collects (the cumulative producer's).
    await demo.waitFor(/data age p99 \d+\.\d s/, 15_000);
    // Every device of the demo site is polled and up; the grid figures come from them.
    await demo.waitFor(/devices 6\/6 up/, 15_000);
    await demo.waitFor(/grid +(4\d|5\d)\.\d{3} Hz +generation \d+\.\d{3} MW +load \d+\.\d{3} MW/, 15_000);
    // The status page of the running demo answers with the same site.
    const status = (await (await fetch(`${banner[1] ?? ''}status`)).json()) as { site: { id: string }; devices: unknown[] };
    expect(status.site.id).toBe('demo-substation');
    expect(status.devices).toHaveLength(6);
    await receiver.waitFor((r) => r.metricNames().has(METRICS.meterReadingsIngested) && r.metricNames().has(METRICS.gridFrequency), 15_000, 'demo metrics at the collector');
    // The demo's spool (a temp folder) with the otlp_logs sink, since an endpoint is set: the summary
    // shows its backlog and what was delivered, and the readings arrive at the collector as log records.
    const spool = await demo.waitFor(/spool +([\d,]+) readings, [\d.]+ MiB(?: FULL)? +otlp_logs (idle|sending|retrying|starting), backlog ([\d,]+)(?: \(oldest \d+ s\))?, delivered ([1-9][\d,]*)/, 30_000);
    expect(Number(spool[3]?.replaceAll(',', ''))).toBeLessThanOrEqual(Number(spool[1]?.replaceAll(',', '')));
    await receiver.waitFor((r) => r.logs().some((l) => l.eventName === 'ems.meter.reading'), 15_000, 'meter readings as OTLP log records');

    // The quick start's mbpoll line, against the grid meter on the port the demo printed.
    const gm = /127\.0\.0\.1:(\d+) \(grid-meter-1 unit 1\)/.exec(demo.stdout());
    expect(gm).not.toBeNull();
    if (existsSync(MBPOLL)) {
      const read = await mbpoll(['-m', 'tcp', '-p', gm?.[1] ?? '0', '-a', '1', '-r', '40001', '-c', '1', '-t', '4:float', '-B', '-1', '127.0.0.1']);
      const hz = Number(/\[40001\]:\s+([\d.]+)/.exec(read)?.[1]);
      expect(Math.abs(hz - 50)).toBeLessThan(0.5);
    }

    const stopAt = Date.now();
    demo.kill('SIGINT');
    const code = await demo.exited();
    expect(code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(demo.stdout()).toContain('ems-gateway demo: stopped cleanly');
    expect(demo.stderr()).toBe('');
    // The temporary log is gone after a clean stop.
    const log = /logs (\S+\.log) \(removed at exit; --log-file to keep\)/.exec(demo.stdout())?.[1];
    expect(log).toBeDefined();
    expect(existsSync(log ?? '')).toBe(false);
  }, 60_000);

  it('does not export without an endpoint, and --duration stops it by itself with exit 0; --log-file keeps the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-demo-log-'));
    try {
      const log = join(dir, 'demo.log');
      demo = startCli(['demo', '--free-ports', '--duration', '6', '--log-file', log], { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '', LOG_LEVEL: 'info' });
      expect(await demo.exited()).toBe(0);
      expect(demo.stdout()).toContain('OTLP export off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)');
      // Still a spool (readings are committed before they are acknowledged), with no sink: an entry
      // no sink takes is deleted once committed, so what it holds stays near 0.
      expect(demo.stdout()).toMatch(/spool +[\d,]+ readings, [\d.]+ MiB +no sinks \(set OTEL_EXPORTER_OTLP_ENDPOINT for otlp_logs\)/);
      expect(demo.stdout()).toContain('ems-gateway demo: stopped cleanly');
      expect(demo.stdout()).toContain(`logs ${log}   DR key`);
      expect(readFileSync(log, 'utf8')).toContain('"msg":"gateway running"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it('a --log-file it cannot write is refused before anything starts (exit 2)', async () => {
    demo = startCli(['demo', '--free-ports', '--log-file', '/nonexistent-dir/demo.log']);
    expect(await demo.exited()).toBe(2);
    expect(demo.stderr()).toMatch(/^ems-gateway demo: cannot write the log to \/nonexistent-dir\/demo\.log: ENOENT/);
    expect(demo.stdout()).toBe('');
  });

  it('`npm run demo` (the documented command) exits 0 on Ctrl-C, which reaches npm and the demo both', async () => {
    // A terminal's Ctrl-C is SIGINT to the whole foreground process group: npm gets it, forwards
    // its own copy to the script, and reports the script's status.
    const npm = spawn('npm', ['run', '--silent', 'demo', '--', '--free-ports'], {
      cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' },
    });
    let out = '';
    let err = '';
    npm.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    npm.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | string>((resolve) => npm.once('close', (code, sig) => resolve(code ?? sig ?? -1)));
    const pgid = npm.pid ?? 0;
    try {
      const deadline = Date.now() + 30_000;
      while (!/devices \d+\/\d+ up/.test(out) && Date.now() < deadline && npm.exitCode === null) await new Promise((r) => setTimeout(r, 200));
      expect(out, err).toMatch(/devices \d+\/\d+ up/);
      process.kill(-pgid, 'SIGINT');
      expect(await exited, `${out}\n${err}`).toBe(0);
      expect(out).toContain('ems-gateway demo: stopped cleanly');
      expect(out).not.toContain('second signal');
      const log = /logs (\S+\.log)/.exec(out)?.[1];
      expect(existsSync(log ?? '')).toBe(false);
    } finally {
      try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
      await exited;
    }
  }, 60_000);
});
