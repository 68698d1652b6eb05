// `npm run demo` as a newcomer runs it: the built CLI in its own process. Live figures must appear
// within 30 s, and Ctrl-C (SIGINT) must stop everything and exit 0, quickly.
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from './cli-process.js';

describe('ems-gateway demo (built CLI, child process)', () => {
  let demo: CliProcess | undefined;
  afterEach(async () => {
    if (demo) {
      demo.kill('SIGKILL');
      await demo.exited();
    }
    demo = undefined;
  });

  it('shows live figures within 30 s and exits 0 on SIGINT', async () => {
    const t0 = Date.now();
    // --free-ports: the demo's fixed ports may be taken by another demo or test on this machine.
    demo = startCli(['demo', '--free-ports'], { LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: '' });
    const banner = await demo.waitFor(/status page (http:\/\/127\.0\.0\.1:\d+\/)/, 20_000);
    const rates = await demo.waitFor(/meters +([1-9][\d,]*) readings\/s +ingested ([1-9][\d,]*)/, 30_000);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(Number(rates[2]?.replaceAll(',', ''))).toBeGreaterThan(0);
    // Every device of the demo site is polled and up; the grid figures come from them.
    await demo.waitFor(/devices 6\/6 up/, 15_000);
    await demo.waitFor(/grid +(4\d|5\d)\.\d{3} Hz +generation \d+\.\d{3} MW +load \d+\.\d{3} MW/, 15_000);
    // The status page of the running demo answers with the same site.
    const status = (await (await fetch(`${banner[1] ?? ''}status`)).json()) as { site: { id: string }; devices: unknown[] };
    expect(status.site.id).toBe('demo-substation');
    expect(status.devices).toHaveLength(6);

    const stopAt = Date.now();
    demo.kill('SIGINT');
    const code = await demo.exited();
    expect(code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(demo.stdout()).toContain('ems-gateway demo: stopped cleanly');
    expect(demo.stderr()).toBe('');
    demo = undefined;
  }, 60_000);
});
