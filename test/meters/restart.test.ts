// At-least-once across failures: a gateway restarted mid-stream with a persistent session, a broker
// restarted mid-stream, and a connection lost while a batch is being handed off. 0 readings lost;
// redeliveries of readings already handed off are counted as duplicates, not handed off twice.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { MeterFleet } from '../../simulators/meter-fleet/fleet.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';
import type { MqttConfig } from '../../src/config/site-types.js';

/** Counts how often each (meter_id, timestamp) was handed off. */
class CopySink implements ReadingSink {
  readonly copies = new Map<string, number>();
  handedOff = 0;
  delayMs = 0;
  async write(batch: readonly ValidReading[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    for (const r of batch) {
      const k = `${r.meter_id}|${r.timestamp_ms}`;
      this.copies.set(k, (this.copies.get(k) ?? 0) + 1);
      this.handedOff++;
    }
  }
  get unique(): number { return this.copies.size; }
}

describe('meter ingest across restarts (mosquitto, persistent session, QoS 1)', () => {
  const cleanups: Array<() => Promise<void>> = [];

  /** mosquitto and a temporary dedupe state file, both removed after the test. */
  async function stateRig(): Promise<{ m: Awaited<ReturnType<typeof startMosquitto>>; stateFile: string; cfg: MqttConfig }> {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    const dir = mkdtempSync(join(tmpdir(), 'ems-meter-state-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return { m, stateFile: join(dir, 'meters.json'), cfg: mqttConfig(m.url) };
  }
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  function gateway(cfg: MqttConfig, sink: ReadingSink, tel: TestTelemetry): MeterIngest {
    return new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink });
  }

  it.each([['graceful stop', false], ['crash (connection dropped, nothing flushed)', true]] as const)(
    'gateway restarted mid-stream (%s): 0 readings lost', async (_name, crash) => {
      const m = await startMosquitto();
      cleanups.push(() => m.stop());
      const cfg = mqttConfig(m.url);
      const sink = new CopySink();
      const telA = new TestTelemetry();
      const telB = new TestTelemetry();
      cleanups.push(() => telA.shutdown(), () => telB.shutdown());
      const a = gateway(cfg, sink, telA);
      const b = gateway(cfg, sink, telB);
      cleanups.push(() => a.stop(), () => b.stop());
      await a.start();
      await waitFor(() => a.status().subscribed, 5000, 'A subscribed');
      let restart: Promise<void> | undefined;
      const fleet = new MeterFleet({
        url: m.url, meters: 40, seed: 7, batchSize: 5, messages: 1500, rate: 3000,
        onProgress: (sent) => {
          // A must have handed something off before it goes (on a busy machine 400 messages are
          // sent before its first batch is through).
          if (sent >= 400 && restart === undefined && a.status().readings_ingested > 0) {
            restart = (async () => {
              if (crash) await a.abort(); else await a.stop();
              await new Promise((r) => setTimeout(r, 150)); // published meanwhile: queued in the session
              await b.start();
            })();
          }
        },
      });
      cleanups.push(() => fleet.stop());
      await fleet.start();
      const report = await fleet.run();
      await restart;
      expect(report.publish_errors).toBe(0);
      await waitFor(() => sink.unique >= report.expected.ingested, 15_000, 'every reading handed off');
      // Give redeliveries a moment to show up, then account.
      await new Promise((r) => setTimeout(r, 200));
      expect(sink.unique).toBe(report.expected.ingested);
      const ingestedA = await telA.counterSum(METRICS.meterReadingsIngested);
      const ingestedB = await telB.counterSum(METRICS.meterReadingsIngested);
      expect(ingestedA).toBeGreaterThan(0);
      expect(ingestedB).toBeGreaterThan(0);
      // Every hand-off is counted exactly once, by the instance that made it.
      expect(ingestedA + ingestedB).toBe(sink.handedOff);
      const dropsB = await telB.counterBy(METRICS.meterReadingsDropped, 'error_type');
      expect(Object.keys(dropsB).filter((k) => k !== 'duplicate')).toEqual([]);
      if (!crash) expect(sink.handedOff).toBe(sink.unique); // a graceful stop acknowledges all it handed off
    });

  it('a stop that times out before the sink finished saves no dedupe state: the redelivered readings are ingested, not dropped as duplicates', async () => {
    const { m, stateFile, cfg } = await stateRig();
    const slow = new CopySink();
    slow.delayMs = 3000;
    const fast = new CopySink();
    const telA = new TestTelemetry();
    const telB = new TestTelemetry();
    cleanups.push(() => telA.shutdown(), () => telB.shutdown());
    const a = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: telA.meter, tracer: telA.tracer, producer: telA.producer, sink: slow, stateFile });
    cleanups.push(() => a.stop());
    await a.start();
    await waitFor(() => a.status().subscribed, 5000, 'A subscribed');
    const fleet = new MeterFleet({ url: m.url, meters: 10, seed: 5, batchSize: 1, messages: 40, rate: 400 });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    await waitFor(() => a.status().queued_readings > 0, 5000, 'A holds readings for the slow sink');
    await a.stop({ drainTimeoutMs: 100 });
    expect(existsSync(stateFile)).toBe(false);

    const b = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: telB.meter, tracer: telB.tracer, producer: telB.producer, sink: fast, stateFile });
    cleanups.push(() => b.stop());
    await b.start();
    // Every reading the slow sink never finished reaches the next instance's sink: none is lost.
    await waitFor(() => slow.handedOff + fast.handedOff >= report.readings, 15_000, 'every reading handed off once at least');
    expect(await telB.counterSum(METRICS.meterReadingsIngested)).toBeGreaterThan(0);
    expect(fast.handedOff).toBeGreaterThan(0);
  });

  it('graceful restart with a dedupe state file: a fault mix is accounted exactly across both instances', async () => {
    const { m, stateFile, cfg } = await stateRig();
    const sink = new CopySink();
    const telA = new TestTelemetry();
    const telB = new TestTelemetry();
    cleanups.push(() => telA.shutdown(), () => telB.shutdown());
    const mk = (tel: TestTelemetry): MeterIngest => new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink, stateFile });
    const a = mk(telA);
    const b = mk(telB);
    cleanups.push(() => a.stop(), () => b.stop());
    await a.start();
    await waitFor(() => a.status().subscribed, 5000, 'A subscribed');
    let restart: Promise<void> | undefined;
    const fleet = new MeterFleet({
      url: m.url, meters: 20, seed: 21, batchSize: 4, messages: 1200, rate: 3000,
      faults: { duplicate: 0.08, kwh_decreasing: 0.05, stale: 0.05, malformed_json: 0.02 },
      onProgress: (sent) => {
        if (sent >= 500 && restart === undefined) {
          restart = (async () => {
            await a.stop();
            await b.start();
          })();
        }
      },
    });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    await restart;
    const counted = async (): Promise<number> => {
      let n = 0;
      for (const tel of [telA, telB]) {
        n += await tel.counterSum(METRICS.meterReadingsIngested);
        n += await tel.counterSum(METRICS.meterReadingsDropped);
      }
      return n;
    };
    await waitFor(async () => (await counted()) >= report.readings, 15_000, 'all accounted');
    const ingested = (await telA.counterSum(METRICS.meterReadingsIngested)) + (await telB.counterSum(METRICS.meterReadingsIngested));
    const dropped: Record<string, number> = {};
    for (const tel of [telA, telB]) {
      for (const [k, v] of Object.entries(await tel.counterBy(METRICS.meterReadingsDropped, 'error_type'))) dropped[k] = (dropped[k] ?? 0) + v;
    }
    expect(report.by_category.duplicate).toBeGreaterThan(0);
    expect({ ingested, dropped }).toEqual({ ingested: report.expected.ingested, dropped: report.expected.dropped });
    expect(await telB.counterSum(METRICS.meterReadingsDropped, { error_type: 'duplicate' })).toBeGreaterThan(0);
    expect(sink.unique).toBe(report.expected.ingested);
    expect(sink.handedOff).toBe(sink.unique);
  });

  it('broker restarted mid-stream: flow resumes, 0 lost at QoS 1, redeliveries counted as duplicates', async () => {
    const m = await startMosquitto({ persistence: true });
    cleanups.push(() => m.stop());
    const sink = new CopySink();
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = gateway(mqttConfig(m.url), sink, tel);
    cleanups.push(() => ingest.stop());
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 5000, 'subscribed');
    let restarted = false;
    const fleet = new MeterFleet({
      // 400 meters: the broker redelivers what was in flight at its restart (its saved session),
      // hundreds of readings; each meter's last 16 timestamps must still hold them to be told
      // apart as duplicates (docs/meters.md): at most 16 readings of one meter in that backlog.
      url: m.url, meters: 400, seed: 9, batchSize: 5, messages: 1500, rate: 3000,
      onProgress: async (sent) => {
        if (sent >= 500 && !restarted) {
          restarted = true;
          await m.restart();
        }
      },
    });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    expect(restarted).toBe(true);
    expect(report.publish_errors).toBe(0);
    await waitFor(() => sink.unique >= report.expected.ingested, 15_000, 'every reading handed off after the restart');
    expect(sink.unique).toBe(report.expected.ingested);
    expect(sink.handedOff).toBe(sink.unique); // nothing handed off twice within one gateway
    expect(await tel.counterSum(METRICS.meterReadingsIngested)).toBe(report.expected.ingested);
    const drops = await tel.counterBy(METRICS.meterReadingsDropped, 'error_type');
    expect(Object.keys(drops).filter((k) => k !== 'duplicate')).toEqual([]);
    const s = ingest.status();
    expect(s.reconnects).toBeGreaterThanOrEqual(1);
    expect(s.connected && s.subscribed).toBe(true);
    await waitFor(() => ingest.status().flow_confirmed, 6000, 'flow confirmed by the probe after reconnect');
  });

  it('connection lost during a hand-off: the broker redelivers, the readings are counted as duplicates', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    const sink = new CopySink();
    sink.delayMs = 300;
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = gateway(mqttConfig(m.url), sink, tel);
    cleanups.push(() => ingest.stop());
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 5000, 'subscribed');
    const fleet = new MeterFleet({ url: m.url, meters: 10, seed: 3, batchSize: 10, messages: 5 });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    await waitFor(() => ingest.status().queued_readings >= report.readings, 3000, 'batch in hand-off');
    ingest.dropConnection(); // the PUBACKs of the batch in hand-off can no longer be sent
    await waitFor(() => ingest.status().readings_dropped >= report.readings, 10_000, 'redeliveries counted');
    expect(sink.unique).toBe(report.readings);
    expect(sink.handedOff).toBe(report.readings);
    expect(await tel.counterSum(METRICS.meterReadingsIngested)).toBe(report.readings);
    expect(await tel.counterBy(METRICS.meterReadingsDropped, 'error_type')).toEqual({ duplicate: report.readings });
    expect(ingest.status().stale_acks).toBe(report.messages);
  });
});
