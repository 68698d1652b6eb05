// Without `mqtt.meters.regions`, a publisher inventing region names cannot grow the ems.meter.*
// series, the producer's index or the spool's committed totals without bound: MAX_OPEN_REGIONS
// names are taken, the rest are `unknown_region` (under the topic's region when it is a taken one,
// else `unknown`), logged once; a restart
// takes the committed names first, so the set does not grow across restarts either.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { IngestTelemetry } from '../../src/meters/ingest-telemetry.js';
import { MAX_OPEN_REGIONS, OpenRegions } from '../../src/meters/open-regions.js';
import { describeRejection, parsePayload, type ParseResult } from '../../src/meters/validate.js';
import { createLogger, silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { deliverySite } from '../delivery/fixture.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { hasPeer } from '../peers.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

const N = 10_000;
const reading = (i: number, region: string, now: number): Record<string, unknown> => ({
  meter_id: `m-${i}`, region, timestamp: now - 60_000, kwh: 1, voltage: 230, current: 1, power_factor: 1,
});

describe('distinct regions without mqtt.meters.regions', () => {
  it('10,000 invented regions: MAX_OPEN_REGIONS series, the rest one unknown_region series (the topic region), the limit reported once', async () => {
    let full = 0;
    const ctx = { regions: new Set<string>(), regionTopicLevel: 1, maxPayloadBytes: 1 << 20, futureSkewMs: 300_000, openRegions: new OpenRegions(MAX_OPEN_REGIONS, () => { full++; }) };
    const tel = new TestTelemetry();
    const ingest = new IngestTelemetry(tel.producer, tel.tracer, 0);
    const now = Date.now();
    for (let b = 0; b < N / 100; b++) {
      const out: ParseResult = { readings: [], rejections: [] };
      const body = Array.from({ length: 100 }, (_, k) => reading(b * 100 + k, `r-${b * 100 + k}`, now));
      parsePayload(Buffer.from(JSON.stringify(body)), 'meters/r-0/m', ctx, now, 0, out);
      ingest.record({ readings: out.readings, rejections: out.rejections, openedAtWall: now }, 0, now);
      if (b === N / 100 - 1) expect(describeRejection(out.rejections[0]!)).toBe('region "r-9900" is past the limit of distinct regions (mqtt.meters.regions unset)');
    }
    expect(full).toBe(1);
    expect(ctx.openRegions.size).toBe(MAX_OPEN_REGIONS);
    expect((await tel.metric(METRICS.meterReadingsIngested))?.dataPoints).toHaveLength(MAX_OPEN_REGIONS);
    expect((await tel.metric(METRICS.meterIngestionLatency))?.dataPoints).toHaveLength(MAX_OPEN_REGIONS);
    expect(await tel.counterSum(METRICS.meterReadingsIngested)).toBe(MAX_OPEN_REGIONS);
    const dropped = (await tel.metric(METRICS.meterReadingsDropped))?.dataPoints ?? [];
    expect(dropped.map((p) => [p.attributes, p.value])).toEqual([[{ region: 'r-0', error_type: 'unknown_region' }, N - MAX_OPEN_REGIONS]]);
    await tel.shutdown();
  });

  describe.skipIf(!hasPeer('mosquitto'))('through the spool', () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

    it('the committed totals hold MAX_OPEN_REGIONS regions, and do not grow after a restart', async () => {
      const broker = await startMosquitto();
      cleanups.push(() => broker.stop());
      const dir = mkdtempSync(join(tmpdir(), 'ems-open-regions-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const { site, cleanup } = await deliverySite('otlp_logs: { endpoint: "http://127.0.0.1:9/v1/logs" }');
      cleanups.push(cleanup);
      const cfg = mqttConfig(broker.url, {}, { regions: undefined, batch_max_wait_ms: 50 });
      const lines: string[] = [];
      const logger = createLogger({ env: { LOG_LEVEL: 'warn' }, destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }) });
      const run = async (tel: TestTelemetry): Promise<{ ingest: MeterIngest; service: DeliveryService }> => {
        const service = new DeliveryService({ config: site.delivery!, site, env: {}, meter: tel.meter, producer: tel.producer, clock: systemClock, logger: silentLogger(), sinks: [] });
        await service.start();
        const ingest = new MeterIngest({ mqtt: cfg, clock: systemClock, logger, meter: tel.meter, tracer: tel.tracer, producer: tel.producer, sink: service });
        await ingest.start();
        await waitFor(() => ingest.status().subscribed, 10_000, 'subscribed');
        return { ingest, service };
      };
      const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
      cleanups.push(() => pub.endAsync());
      const now = Date.now();

      const telA = new TestTelemetry();
      cleanups.push(() => telA.shutdown());
      const a = await run(telA);
      for (let b = 0; b < N / 100; b++) {
        const body = Array.from({ length: 100 }, (_, k) => reading(b * 100 + k, `r-${b * 100 + k}`, now));
        await pub.publishAsync('meters/r-0/m', JSON.stringify(body), { qos: 1 });
      }
      const handled = async (tel: TestTelemetry): Promise<number> => (await tel.counterSum(METRICS.meterReadingsIngested)) + (await tel.counterSum(METRICS.meterReadingsDropped));
      await waitFor(async () => (await handled(telA)) >= N, 30_000, 'every reading handed off');
      const totals = a.service.totals()!;
      expect(Object.keys(totals.ingested)).toHaveLength(MAX_OPEN_REGIONS);
      expect(totals.dropped).toEqual({ 'r-0': { unknown_region: N - MAX_OPEN_REGIONS } });
      expect(lines.filter((l) => l.includes('distinct regions limit reached'))).toHaveLength(1);
      await a.ingest.stop();
      await a.service.stop();

      // The restart takes the committed regions first: an old one is still ingested, a new one is not.
      const telB = new TestTelemetry();
      cleanups.push(() => telB.shutdown());
      const b = await run(telB);
      cleanups.push(async () => { await b.ingest.stop(); await b.service.stop(); });
      const before = await handled(telB);
      await pub.publishAsync('meters/r-0/m', JSON.stringify([reading(1, 'r-7', now + 1), reading(2, 'r-new', now + 1)]), { qos: 1 });
      await waitFor(async () => (await handled(telB)) >= before + 2, 10_000, 'the two readings handed off');
      const after = b.service.totals()!;
      expect(Object.keys(after.ingested)).toHaveLength(MAX_OPEN_REGIONS);
      expect(after.ingested['r-7']).toBe(2);
      expect(after.dropped).toEqual({ 'r-0': { unknown_region: N - MAX_OPEN_REGIONS + 1 } });
    }, 90_000);
  });
});
