// A collector outage (503s, then the port closed) at the edge: no crash, no log flood, every
// failed export counted, export resumes by itself when the collector is back.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS, SPANS } from '../../src/telemetry/semconv.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/setup.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { telemetryConfig } from './fixtures.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const healthy = (t: Telemetry): boolean => t.exporterHealth().metrics.state === 'ok' && t.exporterHealth().traces.state === 'ok';
async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
}

describe('collector outage', () => {
  let receiver: OtlpReceiver | undefined;
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown(1000);
    await receiver?.stop();
    telemetry = undefined;
    receiver = undefined;
  });

  it('logs once per state change, counts failures, and resumes', async () => {
    const rx = await OtlpReceiver.start();
    receiver = rx;
    const lines: Array<{ msg: string; level: number; signal?: string }> = [];
    const sink = new Writable({ write(chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string; level: number }); cb(); } });
    const t = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: rx.url, export_interval_ms: 300, export_timeout_ms: 300 }),
      site: { id: 'outage-site', region: 'north', nominal_frequency_hz: 50 }, logger: pino({ level: 'debug' }, sink), serviceVersion: '0.0.0', env: {},
    });
    telemetry = t;
    const counter = t.meter.createCounter(METRICS.meterReadingsIngested);
    const work = setInterval(() => {
      counter.add(1, { region: 'north' });
      t.tracer.startSpan(SPANS.meterProcessBatch).end();
    }, 20);
    try {
      await rx.waitFor((r) => r.metricNames().has(METRICS.meterReadingsIngested), 5000, 'first export');
      await waitUntil(() => healthy(t), 5000);
      const linesBefore = lines.length;

      // Outage, part 1: the collector answers 503 (retryable) for a while.
      rx.failWith(503);
      const deadline = Date.now() + 8000;
      while (t.exporterHealth().metrics.failures < 3 && Date.now() < deadline) await sleep(50);
      expect(t.exporterHealth().metrics.state).toBe('failing');
      // Outage, part 2: the collector is gone (connection refused).
      const port = rx.port;
      await rx.stop();
      const failuresBefore = t.exporterHealth().metrics.failures;
      while (t.exporterHealth().metrics.failures < failuresBefore + 3 && Date.now() < deadline + 4000) await sleep(50);
      await t.forceFlush();
      const h = t.exporterHealth();
      expect(h.metrics.failures).toBeGreaterThanOrEqual(6);
      expect(h.traces.state).toBe('failing');
      expect(h.traces.failures).toBeGreaterThanOrEqual(1);

      // During the whole outage: one "failing" line per signal, nothing else at info or above.
      const outage = lines.slice(linesBefore).filter((l) => l.level >= 30);
      expect(outage.map((l) => `${l.msg.split(';')[0] ?? ''}|${l.signal ?? ''}`).sort()).toEqual(['telemetry export failing|metrics', 'telemetry export failing|traces']);
      const linesAtRecovery = lines.length;

      // Back: same port, accepting again.
      rx.clear();
      rx.failWith(undefined);
      await rx.listen(port);
      await rx.waitFor((r) => r.metricNames().has(METRICS.exportFailures), 8000, 'export after recovery');
      await rx.waitFor((r) => r.spans().length > 0, 8000, 'spans after recovery');
      await waitUntil(() => healthy(t), 5000);

      // The failures were counted and exported once the collector came back.
      const failures = rx.metric(METRICS.exportFailures).flatMap((m) => m.points);
      const metricFailures = failures.filter((p) => p.attributes['signal'] === 'metrics').map((p) => p.value ?? 0);
      expect(Math.max(...metricFailures)).toBeGreaterThanOrEqual(6);

      // And one "recovered" line per signal once it is back.
      const after = lines.slice(linesAtRecovery).filter((l) => l.msg === 'telemetry export recovered');
      expect([...new Set(after.map((l) => l.signal))].sort()).toEqual(['metrics', 'traces']);
    } finally {
      clearInterval(work);
    }
  });
});
