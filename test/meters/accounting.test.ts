// Exact accounting: every reading the fleet simulator sent is either ingested or dropped with the
// error_type the simulator predicts; 0 unaccounted. Against a real mosquitto and the embedded aedes.
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { MeterFleet, type FleetReport } from '../../simulators/meter-fleet/fleet.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

const FAULTS = {
  stale: 0.04, duplicate: 0.05, malformed_json: 0.03, not_object: 0.02, missing_field: 0.03, wrong_type: 0.03,
  out_of_range: 0.03, clock_skew: 0.03, kwh_decreasing: 0.03, unknown_region: 0.02,
};

class RecordingSink implements ReadingSink {
  readonly readings: ValidReading[] = [];
  write(batch: readonly ValidReading[]): Promise<void> {
    this.readings.push(...batch);
    return Promise.resolve();
  }
}

describe('meter ingest accounting with a fault mix', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function run(url: string, protocolVersion: 4 | 5, batchSize: number, regionInPayload: boolean): Promise<{ report: FleetReport; tel: TestTelemetry; ingest: MeterIngest; sink: RecordingSink }> {
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const sink = new RecordingSink();
    const ingest = new MeterIngest({
      mqtt: mqttConfig(url, { protocol_version: protocolVersion }), clock: systemClock, logger: silentLogger(),
      meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink,
    });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    await waitFor(() => ingest.status().subscribed, 5000, 'subscription');
    const fleet = new MeterFleet({ url, protocolVersion, meters: 50, seed: 42, batchSize, faults: FAULTS, messages: 600, regionInPayload });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    expect(report.publish_errors).toBe(0);
    await waitFor(() => { const s = ingest.status(); return s.readings_ingested + s.readings_dropped >= report.readings; }, 15_000, 'all readings accounted');
    return { report, tel, ingest, sink };
  }

  async function assertExact(r: Awaited<ReturnType<typeof run>>): Promise<void> {
    const { report, tel, ingest, sink } = r;
    // Every category was exercised, so the assertion below can fail.
    for (const [cat, n] of Object.entries(report.by_category)) expect(n, cat).toBeGreaterThan(0);
    const ingested = await tel.counterSum(METRICS.meterReadingsIngested);
    const dropped = await tel.counterBy(METRICS.meterReadingsDropped, 'error_type');
    expect({ ingested, dropped }).toEqual({ ingested: report.expected.ingested, dropped: report.expected.dropped });
    expect(dropped).toEqual(report.expected.dropped);
    const total = ingested + Object.values(dropped).reduce((a, b) => a + b, 0);
    expect(report.readings - total).toBe(0); // 0 unaccounted
    expect(sink.readings.length).toBe(report.expected.ingested);
    const status = ingest.status();
    expect(status.readings_ingested).toBe(report.expected.ingested);
    expect(status.drops_by_reason).toEqual(report.expected.dropped);
    expect(status.queued_readings).toBe(0);
  }

  it('mosquitto, MQTT 5, one reading per message: ingested + dropped per error_type == sent per category', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    await assertExact(await run(m.url, 5, 1, true));
  });

  it('mosquitto, MQTT 5, batches of 20 readings with the region only in the topic', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    await assertExact(await run(m.url, 5, 20, false));
  });

  it('aedes (MQTT 3.1.1), batches of 10 readings', async () => {
    const b = await startEmbeddedBroker();
    cleanups.push(() => b.close());
    await assertExact(await run(b.url, 4, 10, true));
  });
});
