// The broker-crash drill, on loopback: mosquitto runs the shipped edge-box configuration
// (deploy/mosquitto/ems.conf), a QoS 1 publisher numbers every reading and keeps the ones the broker
// acknowledged, the whole gateway ingests them. Under that load mosquitto is killed with -9 and
// started again; the publisher is back within a few hundred ms, the gateway (its reconnect backoff
// starting at 2 s) after it.
//   - Without autosave_interval (mosquitto's default: save every 30 min or at a clean shutdown), the
//     restarted broker has no session for the gateway: what the publisher sent until the gateway
//     subscribed again is lost. The gateway detects it, counts it, shows it and alerts on it.
//   - With the shipped configuration (autosave_interval 1) the session survives: 0 lost.
// Bounded: at most 6,000 readings at 500/s, at most 20 s of publishing per run.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttConfig } from '../../src/config/site-types.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import type { Logger } from '../../src/runtime/logger.js';
import type { MeterStatus, StatusReport } from '../../src/status/status-model.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { edgeBrokerConf } from '../helpers/edge-broker.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { NumberedPublisher } from '../helpers/numbered-publisher.js';
import { hasPeer } from '../peers.js';
import { minimalSite } from '../runtime/site-fixture.js';
import { meterIngestConfig, TestReader, waitFor } from './harness.js';

const RATE_PER_S = 500;
const MAX_READINGS = 6000;
const MAX_PUBLISH_MS = 20_000;
const METERS = 200;

interface Line { msg: string; level: number; client?: string; component?: string }

const drillMqtt = (url: string): MqttConfig => ({
  url, client_id: `drill-gw-${process.pid}`, protocol_version: 5, session_expiry_ms: 3_600_000, keepalive_ms: 30_000,
  // The gateway comes back after the publisher: its first reconnect waits 2-4 s.
  reconnect_min_ms: 2000, reconnect_max_ms: 4000,
  meters: meterIngestConfig({ topics: ['meters/+/+'], regions: ['north'], batch_max_wait_ms: 20, reading_span_ratio: 0 }),
});

describe.skipIf(!hasPeer('mosquitto'))('broker kill -9 under QoS 1 load (shipped mosquitto configuration)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function drill(autosave: boolean): Promise<{ acked: number; ingested: number; duplicates: number; status: StatusReport; lines: Line[]; lostCounter: number; gw: Gateway }> {
    const broker: Mosquitto = await startMosquitto({ conf: edgeBrokerConf({ autosave }) });
    cleanups.push(() => broker.stop());
    const lines: Line[] = [];
    const logger: Logger = pino({ level: 'info' }, new Writable({
      write(chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line); cb(); },
    }));
    const reader = new TestReader();
    const loaded = minimalSite({ mqtt: drillMqtt(broker.url) });
    const gw = buildGateway(loaded, { env: {}, logger, statusPort: 0, extraMetricReaders: [reader] });
    cleanups.push(async () => { await gw.stop(); });
    await gw.start();
    const meters = (): MeterStatus => {
      const m = gw.status().meters;
      if (m === null || 'error' in m) throw new Error('no meters section');
      return m;
    };
    await waitFor(() => meters().flow_confirmed === true, 10_000, 'gateway subscribed and flow confirmed');

    const pub = new NumberedPublisher(broker.url, { ratePerS: RATE_PER_S, maxReadings: MAX_READINGS, maxPublishMs: MAX_PUBLISH_MS, meters: METERS });
    cleanups.push(() => pub.close());
    await pub.start();
    const publishing = pub.run();
    // Load for 2 s (the shipped autosave has saved the gateway's session by then), then kill -9.
    await waitFor(() => pub.acked.size >= 1000, 10_000, '1000 readings acknowledged before the crash');
    const reconnectsBefore = meters().reconnects ?? 0;
    await broker.crash();
    await new Promise((r) => setTimeout(r, 500)); // the broker stays down half a second
    await broker.start();
    await waitFor(() => meters().connected === true && (meters().reconnects ?? 0) > reconnectsBefore, 15_000, 'gateway reconnected');
    const ackedAtReconnect = pub.acked.size;
    await waitFor(() => pub.acked.size >= ackedAtReconnect + 500, 10_000, '500 more readings after the gateway is back');
    pub.stop();
    await publishing;

    const counter = async (name: string, match: Record<string, string> = {}): Promise<number> => {
      const { resourceMetrics } = await reader.collect();
      let n = 0;
      for (const m of resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)) {
        if (m.descriptor.name !== name) continue;
        for (const p of m.dataPoints) if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) n += p.value as number;
      }
      return n;
    };
    // Settled: everything the broker still has for the gateway has arrived (nothing new for 1 s).
    let last = -1;
    let stableSince = Date.now();
    await waitFor(async () => {
      const m = meters();
      const seen = m.ingested_total + m.dropped_total;
      if (seen !== last) { last = seen; stableSince = Date.now(); }
      return Date.now() - stableSince >= 1000 && (gw.meters?.status().queued_readings ?? 1) === 0;
    }, 20_000, 'the gateway to have taken everything the broker kept');
    await waitFor(async () => {
      const a = gw.status().alerts;
      return Array.isArray(a) && a.some((x) => x.name === 'broker_session_lost' && x.state !== 'unknown');
    }, 5000, 'the session alert evaluated');
    const status = (await (await fetch(`${gw.statusUrl()}status`)).json()) as StatusReport;
    return {
      acked: pub.acked.size,
      ingested: await counter(METRICS.meterReadingsIngested),
      duplicates: await counter(METRICS.meterReadingsDropped, { error_type: 'duplicate' }),
      status, lines, lostCounter: await counter(METRICS.mqttSessionLost, { client: 'meters' }), gw,
    };
  }

  it('without autosave: the session loss is detected, counted, shown and alerted on, and readings are lost', async () => {
    const r = await drill(false);
    // Every reading is unique (meter, timestamp): what the gateway ingested once, at most once each.
    expect(r.ingested).toBeLessThan(r.acked);
    expect(r.lostCounter).toBe(1);
    const m = r.status.meters as MeterStatus;
    expect(m.session).toMatchObject({ persistent: true, lost_total: 1 });
    expect(m.ingested_total).toBe(r.ingested);
    const alert = Array.isArray(r.status.alerts) ? r.status.alerts.find((a) => a.name === 'broker_session_lost') : undefined;
    expect(alert).toMatchObject({ state: 'firing', value: 1 });
    const warned = r.lines.filter((l) => l.msg.startsWith('broker session lost'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, client: 'meters' });
    expect(warned[0]?.msg).toContain('meter readings');
    // Flow resumed on the new session: readings published after the gateway was back arrived.
    expect(m.flow_confirmed).toBe(true);
    console.info(`broker kill -9 without autosave: ${r.acked} readings acknowledged to the publisher, ${r.ingested} ingested, ${r.acked - r.ingested} lost`);
  }, 90_000);

  it('with the shipped configuration (autosave_interval 1): the session survives, 0 readings lost', async () => {
    const r = await drill(true);
    expect(r.ingested).toBe(r.acked);
    expect(r.lostCounter).toBe(0);
    const m = r.status.meters as MeterStatus;
    expect(m.session).toEqual({ persistent: true, lost_total: 0 });
    const alert = Array.isArray(r.status.alerts) ? r.status.alerts.find((a) => a.name === 'broker_session_lost') : undefined;
    expect(alert).toMatchObject({ state: 'ok', value: 0 });
    expect(r.lines.filter((l) => l.msg.startsWith('broker session lost'))).toEqual([]);
    console.info(`broker kill -9 with autosave_interval 1: ${r.acked} readings acknowledged, ${r.ingested} ingested, 0 lost, ${r.duplicates} redeliveries dropped as duplicates`);
  }, 90_000);
});
