// A crash between the spool's commit and the PUBACK: the broker redelivers readings that are
// already committed (and counted in the committed totals). The dedupe state file is not written
// by a crash, so the restarted ingest recognises them from the spool's dedupe journal: they are
// `duplicate`s, and the resumed readings_ingested counts every published reading exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import type { Rejection } from '../../src/meters/validate.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { deliverySite } from '../delivery/fixture.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { hasPeer } from '../peers.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

/** Commits through the delivery service, then never resolves: the crash comes before the PUBACK. */
class CommitThenHang implements ReadingSink {
  committed = 0;
  constructor(private readonly service: DeliveryService) {}
  async write(batch: readonly ValidReading[], dropped?: readonly Pick<Rejection, 'region' | 'error_type'>[]): Promise<void> {
    await this.service.write(batch, dropped);
    this.committed += batch.length;
    await new Promise<void>(() => { /* the process dies before it acknowledges */ });
  }
  committedJournal(): Uint8Array[] { return this.service.committedJournal(); }
}

describe.skipIf(!hasPeer('mosquitto'))('redeliveries of committed readings after a crash', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('are duplicates, and the resumed readings_ingested equals the readings published', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const dir = mkdtempSync(join(tmpdir(), 'ems-crash-redelivery-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { site, cleanup } = await deliverySite('otlp_logs: { endpoint: "http://127.0.0.1:9/v1/logs" }');
    cleanups.push(cleanup);
    const cfg = mqttConfig(broker.url, {}, { batch_max_wait_ms: 200 });
    const delivery = (tel: TestTelemetry): DeliveryService => new DeliveryService({
      config: site.delivery!, site, env: {}, meter: tel.meter, producer: tel.producer, clock: systemClock, logger: silentLogger(), sinks: [],
    });

    // The first process: its first batch commits, then it dies before acknowledging anything.
    const telA = new TestTelemetry();
    cleanups.push(() => telA.shutdown());
    const serviceA = delivery(telA);
    await serviceA.start();
    const hang = new CommitThenHang(serviceA);
    const a = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: telA.meter, tracer: telA.tracer, producer: telA.producer, sink: hang });
    await a.start();
    await waitFor(() => a.status().subscribed, 10_000, 'first process subscribed');
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    cleanups.push(() => pub.endAsync());
    const N = 60;
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < N; i++) {
      const reading = { meter_id: `m-${i % 7}`, timestamp: t0 + i * 1000, kwh: i, voltage: 230, current: 1, power_factor: 1 };
      await pub.publishAsync(`meters/north/m-${i % 7}`, JSON.stringify(reading), { qos: 1 });
    }
    await waitFor(() => hang.committed > 0, 10_000, 'a batch committed');
    const committed = hang.committed;
    expect(committed).toBeLessThan(N);
    expect(await telA.counterSum(METRICS.meterReadingsIngested)).toBe(0); // never handed off: never counted in this process
    await a.abort();
    await serviceA.stop();

    // The restarted process: the committed totals and journal are all it has.
    const telB = new TestTelemetry();
    cleanups.push(() => telB.shutdown());
    const serviceB = delivery(telB);
    await serviceB.start();
    expect(await telB.counterSum(METRICS.meterReadingsIngested)).toBe(committed); // resumed before any message
    const b = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: telB.meter, tracer: telB.tracer, producer: telB.producer, sink: serviceB });
    cleanups.push(async () => { await b.stop(); await serviceB.stop(); });
    await b.start();
    await waitFor(async () => (await telB.counterSum(METRICS.meterReadingsIngested)) + (await telB.counterSum(METRICS.meterReadingsDropped)) >= N, 20_000, 'every redelivery taken');
    expect(await telB.counterSum(METRICS.meterReadingsIngested)).toBe(N);
    expect(await telB.counterBy(METRICS.meterReadingsDropped, 'error_type')).toEqual({ duplicate: committed });
    expect(serviceB.totals()?.ingested).toEqual({ north: N });
    expect(b.status().readings_ingested).toBe(N - committed);
  }, 60_000);
});
