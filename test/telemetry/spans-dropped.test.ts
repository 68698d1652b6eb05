// Every span lost on the way to the collector is counted: the collector goes down while spans are
// produced (the queue fills, exports fail for good), comes back, and ems.telemetry.spans_dropped
// as the collector itself received it equals exactly the spans it never received.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonLines } from '../helpers/capture.js';
import { exporterStatus } from '../../src/status/adapters.js';
import { METRICS, SPAN_DROP_REASONS, SPANS } from '../../src/telemetry/semconv.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/setup.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { telemetryConfig } from './fixtures.js';

interface Line { msg: string; level: number; signal?: string; spans_dropped?: unknown; span_queue_size?: number }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function capture(): { lines: Line[]; sink: Writable } {
  return jsonLines<Line>();
}

/** The last exported value of ems.telemetry.spans_dropped per reason, as the collector decoded it. */
function exportedDrops(rx: OtlpReceiver): Record<string, number> {
  const last = rx.metric(METRICS.telemetrySpansDropped).at(-1);
  const out: Record<string, number> = {};
  for (const p of last?.points ?? []) out[String(p.attributes['reason'])] = p.value ?? 0;
  return out;
}

const uniqueSpans = (rx: OtlpReceiver): number => new Set(rx.spans().map((s) => s.spanId)).size;
const site = { id: 'spans-site', region: 'north', nominal_frequency_hz: 50 as const };

describe('spans dropped', () => {
  let receiver: OtlpReceiver | undefined;
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown(2000);
    await receiver?.stop();
    telemetry = undefined;
    receiver = undefined;
  });

  /** A receiver and a telemetry pipeline with a 64-span queue and 16-span batches, its log captured. */
  async function rig(): Promise<{ rx: OtlpReceiver; t: Telemetry; lines: Line[] }> {
    const rx = await OtlpReceiver.start();
    receiver = rx;
    const { lines, sink } = capture();
    const t = createTelemetry({
      config: telemetryConfig({ otlp_endpoint: rx.url, export_interval_ms: 500, export_timeout_ms: 500, span_queue_size: 64, span_batch_size: 16 }),
      site, logger: pino({ level: 'info' }, sink), serviceVersion: '0.0.0', env: {},
    });
    telemetry = t;
    return { rx, t, lines };
  }

  it('collector down while spans are produced: spans_dropped equals exactly what the collector did not receive', async () => {
    const { rx, t, lines } = await rig();
    let produced = 0;
    const produce = (n: number): void => {
      for (let i = 0; i < n; i++) {
        t.tracer.startSpan(SPANS.meterProcessBatch).end();
        produced++;
      }
    };

    // Up: everything arrives, nothing is dropped, and both reasons are exported at 0.
    produce(40);
    await t.forceFlush();
    await rx.waitFor((r) => uniqueSpans(r) === 40 && r.metricNames().has(METRICS.telemetrySpansDropped), 5000, 'the first 40 spans');
    expect(exportedDrops(rx)).toEqual({ [SPAN_DROP_REASONS.queueFull]: 0, [SPAN_DROP_REASONS.exportFailed]: 0 });

    // Down (port closed): the next export fails (connection refused) ...
    const port = rx.port;
    await rx.stop();
    produce(16);
    await waitUntil(() => t.exporterHealth().traces.state === 'failing', 8000, 'span export failing');
    // ... and for 1 s, 100 spans every 20 ms: each burst is more than one batch in flight (16)
    // and the queue (64) hold, and every export fails.
    for (let i = 0; i < 50; i++) {
      produce(100);
      await sleep(20);
    }
    expect(t.spanQueue()?.dropped.queue_full).toBeGreaterThan(0);
    expect(t.exporterHealth().traces.state).toBe('failing');

    // Back on the same port: more spans, then wait until nothing is queued or in flight.
    await rx.listen(port);
    produce(30);
    await waitUntil(() => t.exporterHealth().traces.state === 'ok', 10_000, 'span export recovered');
    await t.forceFlush();
    await waitUntil(() => t.spanQueue()?.queued === 0 && t.spanQueue()?.inFlight === 0, 10_000, 'the span queue empty and no export in flight');
    await t.forceFlush(); // the final counts, exported after the last drop
    const books = t.spanQueue();
    await rx.waitFor(() => {
      const d = exportedDrops(rx);
      return d[SPAN_DROP_REASONS.queueFull] === books?.dropped.queue_full && d[SPAN_DROP_REASONS.exportFailed] === books?.dropped.export_failed;
    }, 5000, () => `exported drops ${JSON.stringify(exportedDrops(rx))} to reach ${JSON.stringify(books?.dropped)}`);

    const dropped = exportedDrops(rx);
    const lost = produced - uniqueSpans(rx);
    expect(lost).toBeGreaterThan(0);
    expect((dropped[SPAN_DROP_REASONS.queueFull] ?? 0) + (dropped[SPAN_DROP_REASONS.exportFailed] ?? 0)).toBe(lost);
    expect(dropped[SPAN_DROP_REASONS.queueFull]).toBeGreaterThan(0);
    expect(dropped[SPAN_DROP_REASONS.exportFailed]).toBeGreaterThan(0);

    // /status shows the queue and the same counts.
    expect(exporterStatus(t.settings, t.exporterHealth(), t.spanQueue()).spans).toEqual({
      queue_size: 64, batch_size: 16, queued: 0, dropped_total: lost, dropped_by_reason: dropped,
    });

    // The export-state lines summarise the outage: the failing line counts the first failed
    // export's spans, the recovery line every span the outage cost, by reason.
    const failing = lines.filter((l) => l.signal === 'traces' && l.msg.startsWith('telemetry export failing'));
    expect(failing).toHaveLength(1);
    expect(failing[0]?.spans_dropped).toBe(16);
    const recovered = lines.filter((l) => l.signal === 'traces' && l.msg === 'telemetry export recovered');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]?.spans_dropped).toEqual(dropped);
    // Drops inside the outage are the outage's, not a separate queue episode.
    expect(lines.filter((l) => l.msg.startsWith('span queue'))).toEqual([]);
  });

  it('a burst larger than the queue while the collector is up: counted as queue_full, one line when it begins and one when it drains', async () => {
    const { rx, t, lines } = await rig();
    // 500 spans in one tick: the first batch of 16 goes out at once, 64 wait, the rest are dropped.
    for (let i = 0; i < 500; i++) t.tracer.startSpan(SPANS.gridStateUpdate).end();
    expect(t.spanQueue()).toMatchObject({ queued: 64, inFlight: 16, dropped: { queue_full: 420, export_failed: 0 } });
    await t.forceFlush();
    await waitUntil(() => t.spanQueue()?.queued === 0 && t.spanQueue()?.inFlight === 0, 5000, 'queue empty');
    await t.forceFlush();
    await rx.waitFor((r) => exportedDrops(r)[SPAN_DROP_REASONS.queueFull] === 420, 5000, 'exported queue_full 420');
    expect(uniqueSpans(rx)).toBe(80);
    expect(exportedDrops(rx)).toEqual({ [SPAN_DROP_REASONS.queueFull]: 420, [SPAN_DROP_REASONS.exportFailed]: 0 });
    const queueLines = lines.filter((l) => l.msg.startsWith('span queue'));
    expect(queueLines.map((l) => [l.msg.split(':')[0], l.level])).toEqual([['span queue full', 40], ['span queue drained', 30]]);
    expect(queueLines[0]?.span_queue_size).toBe(64);
    expect(queueLines[1]?.spans_dropped).toEqual({ [SPAN_DROP_REASONS.queueFull]: 420 });
  });
});
