// The dedupe journal replayed after a crash outlasting the dedupe window: a gateway that comes back
// more than dedupe_window_ms after it died still recognises the broker's redeliveries of readings
// it had committed (they are `duplicate`s, not ingested again). Time is a ManualClock.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeJournal } from '../../src/meters/dedupe-journal.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import type { Rejection } from '../../src/meters/validate.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { hasPeer } from '../peers.js';
import { ManualClock } from '../runtime/manual-clock.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

/** A sink whose last committed batch (before the crash) is `journal`; it records what it is given. */
class JournalSink implements ReadingSink {
  written: ValidReading[] = [];
  dropped: Array<Pick<Rejection, 'region' | 'error_type'>> = [];
  constructor(private readonly journal: Uint8Array[]) {}
  write(batch: readonly ValidReading[], dropped?: readonly Pick<Rejection, 'region' | 'error_type'>[]): Promise<void> {
    this.written.push(...batch);
    this.dropped.push(...(dropped ?? []));
    return Promise.resolve();
  }
  committedJournal(): Uint8Array[] { return this.journal; }
}

describe.skipIf(!hasPeer('mosquitto'))('dedupe journal replay after a long outage', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('redeliveries are duplicates when the gateway restarts more than dedupe_window_ms after the crash', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const windowMs = 600_000;
    const clock = new ManualClock();
    clock.advance(5_000);
    // What the crashed process committed: 3 readings of two meters, arrived (and journaled) now.
    const t0 = clock.now() - 60_000;
    const committed: ValidReading[] = [0, 1, 2].map((i) => ({
      meter_id: `m-${i % 2}`, region: 'north', timestamp_ms: t0 + i * 1000, kwh: 10 + i, voltage: 230, current: 1, power_factor: 1, power_w: 230, arrived_at: clock.monotonic(),
    }));
    const journal = encodeJournal(committed, clock.now() - clock.monotonic());
    // The gateway stays down for longer than the dedupe window.
    clock.advance(windowMs + 60_000);

    const sink = new JournalSink([journal]);
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const cfg = mqttConfig(broker.url, {}, { dedupe_window_ms: windowMs, batch_max_wait_ms: 50 });
    const ingest = new MeterIngest({ mqtt: cfg, clock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink });
    cleanups.push(() => ingest.stop());
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 10_000, 'subscribed');
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    cleanups.push(() => pub.endAsync());
    // The broker's redeliveries of the committed readings, then one new reading.
    for (const r of committed) {
      const body = { meter_id: r.meter_id, timestamp: r.timestamp_ms, kwh: r.kwh, voltage: 230, current: 1, power_factor: 1 };
      await pub.publishAsync(`meters/north/${r.meter_id}`, JSON.stringify(body), { qos: 1 });
    }
    await pub.publishAsync('meters/north/m-0', JSON.stringify({ meter_id: 'm-0', timestamp: t0 + 5000, kwh: 20, voltage: 230, current: 1, power_factor: 1 }), { qos: 1 });
    await waitFor(() => sink.written.length + sink.dropped.length >= committed.length + 1, 10_000, 'every message handed off');
    expect(sink.dropped.map((d) => d.error_type)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(sink.written.map((r) => r.timestamp_ms)).toEqual([t0 + 5000]);
    expect(await tel.counterSum(METRICS.meterReadingsIngested)).toBe(1);
    expect(await tel.counterBy(METRICS.meterReadingsDropped, 'error_type')).toEqual({ duplicate: 3 });

  }, 30_000);
});
