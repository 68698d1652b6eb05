// Counters whole across a crash (issue 17, item 3), as an operator's worst day: mosquitto with
// persistence, a QoS 1 publisher numbering every reading, the gateway (`ems-gateway run`, with a
// delivery spool) killed with -9 under load and started again. What the collector receives of
// `ems.meter.readings_ingested` after the restart equals the readings the broker acknowledged to
// the publisher: the restarted process resumes the series from the totals committed with the
// readings (never from 0, same start time), and the broker's redeliveries of readings committed
// before the crash are recognised from the spool's dedupe journal (not ingested twice).
// Bounded: at most 8,000 readings at 400/s, 25 s of publishing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { NumberedPublisher } from '../helpers/numbered-publisher.js';
import { OtlpReceiver, type ReceivedMetric } from '../helpers/otlp-receiver.js';
import { waitFor } from '../delivery/fixture.js';
import { hasPeer } from '../peers.js';
import { startCli, type CliProcess } from '../runtime/cli-process.js';

/** The north series of readings_ingested in one export, if that export carried it. */
function north(m: ReceivedMetric): { value: number; startMs: number | undefined } | undefined {
  const p = m.points.find((x) => x.attributes['region'] === 'north');
  return p?.value === undefined ? undefined : { value: p.value, startMs: p.startMs };
}

describe.skipIf(!hasPeer('mosquitto'))('gateway kill -9 under load: exported counters stay whole', () => {
  const cleanups: Array<() => Promise<unknown> | void> = [];
  afterAll(async () => { for (const c of cleanups.reverse()) await c(); }, 30_000);

  it('readings_ingested exported after the restart equals the readings the broker acknowledged', async () => {
    const broker: Mosquitto = await startMosquitto({ persistence: true });
    cleanups.push(() => broker.stop());
    const receiver = await OtlpReceiver.start();
    cleanups.push(() => receiver.stop());
    const dir = mkdtempSync(join(tmpdir(), 'ems-counters-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const siteFile = join(dir, 'site.yaml');
    writeFileSync(siteFile, [
      'version: 1', 'site: { id: counters-crash, region: north, nominal_frequency_hz: 50 }',
      `mqtt: { url: "${broker.url}", client_id: counters-crash-gw, meters: { topics: ["meters/#"], region_topic_level: 1, regions: [north], reading_span_ratio: 0 } }`,
      'delivery:', `  spool: { directory: ${join(dir, 'spool')} }`, '  sinks: { otlp_logs: { retry_min: 100ms, retry_max: 1s } }',
      `telemetry: { otlp_endpoint: "${receiver.url}", export_interval: 300ms, export_timeout: 2s }`,
      'status: { enabled: false }', '',
    ].join('\n'));
    const run = (): CliProcess => startCli(['run', '--config', siteFile], { LOG_LEVEL: 'info', OTEL_SDK_DISABLED: '' });
    let gw = run();
    cleanups.push(() => gw.kill('SIGKILL'));
    await gw.waitFor(/"msg":"subscribed"/, 30_000);

    const pub = new NumberedPublisher(broker.url, { ratePerS: 400, maxReadings: 8000, maxPublishMs: 25_000, meters: 300, clientId: 'counters-crash-pub' });
    cleanups.push(() => pub.close());
    await pub.start();
    const publishing = pub.run();
    // Load until the first process has exported a few times, then kill -9 and start it again.
    await waitFor(() => pub.acked.size >= 2500 && receiver.metric(METRICS.meterReadingsIngested).length >= 3, 30_000, 'load and exports before the crash');
    gw.kill('SIGKILL');
    await gw.exited();
    const before = receiver.metric(METRICS.meterReadingsIngested).map(north).filter((x) => x !== undefined);
    const exportsBefore = receiver.metric(METRICS.meterReadingsIngested).length;
    gw = run();
    await gw.waitFor(/"msg":"dedupe journal replayed"/, 30_000);
    await publishing;
    await waitFor(() => pub.unacknowledged === 0, 20_000, 'every publish answered by the broker');
    const acked = pub.acked.size;
    expect(acked).toBeGreaterThan(2500);

    let last: number | undefined;
    await waitFor(() => {
      last = receiver.metric(METRICS.meterReadingsIngested).slice(exportsBefore).map(north).at(-1)?.value;
      return last === acked;
    }, 60_000, () => `exported readings_ingested (${String(last)}) == acknowledged readings (${acked})`);
    // Hold it a little: nothing more arrives (no redelivery counted twice after the figure was reached).
    await new Promise((r) => setTimeout(r, 1500));
    const after = receiver.metric(METRICS.meterReadingsIngested).slice(exportsBefore).map(north).filter((x) => x !== undefined);
    expect(after.at(-1)?.value).toBe(acked);

    // One series across the crash: never lower than before it, and the same start time.
    const series = [...before, ...after];
    for (let i = 1; i < series.length; i++) expect(series[i]?.value).toBeGreaterThanOrEqual(series[i - 1]?.value as number);
    expect(after[0]?.value).toBeGreaterThanOrEqual(before.at(-1)?.value as number);
    expect(new Set(series.map((s) => s.startMs)).size).toBe(1);
    // The restarted process replayed the committed journal before it took the redeliveries.
    const replayed = /"readings":(\d+),"ms":\d+,"msg":"dedupe journal replayed"/.exec(gw.stdout());
    expect(Number(replayed?.[1] ?? 0)).toBeGreaterThan(0);

    gw.kill('SIGTERM');
    expect(await gw.exited()).toBe(0);
  }, 180_000);
});
