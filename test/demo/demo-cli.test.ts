// `npm run demo` as a newcomer runs it: the built CLI in its own process. Live figures must appear
// within 30 s, and Ctrl-C (SIGINT) must stop everything and exit 0, quickly. The README's other demo
// commands are exercised here too: OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, mbpoll
// reading the simulated grid meter, and --duration.
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/telemetry/semconv.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { startCli, type CliProcess } from '../runtime/cli-process.js';

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
  }, 60_000);

  it('does not export without an endpoint, and --duration stops it by itself with exit 0', async () => {
    demo = startCli(['demo', '--free-ports', '--duration', '2'], { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '' });
    expect(await demo.exited()).toBe(0);
    expect(demo.stdout()).toContain('OTLP export off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)');
    expect(demo.stdout()).toContain('ems-gateway demo: stopped cleanly');
  }, 30_000);
});
