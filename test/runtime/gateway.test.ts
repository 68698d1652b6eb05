import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { ALERTS } from '../../src/alerts/definitions.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { StartupError } from '../../src/runtime/lifecycle.js';
import type { StatusReport } from '../../src/status/status-model.js';
import { minimalSite } from './site-fixture.js';

describe('composition root', () => {
  const gateways: Gateway[] = [];
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const g of gateways.splice(0)) await g.stop();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('starts its parts in order, serves status, and stops in reverse', async () => {
    const gw = buildGateway(minimalSite(), { env: {}, logger: silentLogger(), statusPort: 0 });
    gateways.push(gw);
    await gw.start();
    expect(gw.lifecycle.health().map((h) => `${h.name}:${h.state}`)).toEqual(expect.arrayContaining(['telemetry:running', 'status:running', 'grid-state:running']));
    expect(gw.lifecycle.health()[0]?.name).toBe('telemetry');
    const url = gw.statusUrl();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const st = (await (await fetch(`${url}status`)).json()) as StatusReport;
    expect(st.site.id).toBe('test-site');
    expect(st.ready).toBe(true);
    expect(st.grid).toMatchObject({ nominal_frequency_hz: 50 });
    expect(st.exporter).toMatchObject({ enabled: false, healthy: null });
    const report = await gw.stop();
    expect(report.timedOut).toEqual([]);
    expect(gw.lifecycle.health().every((h) => h.state === 'stopped')).toBe(true);
    await expect(fetch(`${url}healthz`)).rejects.toThrow();
  });

  it('a part that fails at run time is isolated: shown failed, not ready, the others keep running', async () => {
    const gw = buildGateway(minimalSite(), { env: {}, logger: silentLogger(), statusPort: 0 });
    gateways.push(gw);
    await gw.start();
    gw.lifecycle.reportFailure('grid-state', Object.assign(new Error('sample source exploded'), { code: 'GRID_BOOM' }));
    const ready = await fetch(`${gw.statusUrl()}readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('grid-state: failed (GRID_BOOM: sample source exploded)');
    const st = (await (await fetch(`${gw.statusUrl()}status`)).json()) as StatusReport;
    expect(st.ready).toBe(false);
    expect(st.parts.filter((p) => p.state !== 'running').map((p) => p.name)).toEqual(['grid-state']);
    // Stopping still works and does not stop the failed part twice.
    const report = await gw.stop();
    expect(report.failed).toEqual([]);
  });

  it('a taken status port is a start-up failure naming the part, and nothing is left running', async () => {
    const blocker = http.createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const gw = buildGateway(minimalSite(), { env: {}, logger: silentLogger(), statusPort: port });
    gateways.push(gw);
    const err = await gw.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(`status failed to start: GW_STATUS_LISTEN: status endpoint cannot listen on 127.0.0.1:${port}: EADDRINUSE (set status.port in the site file or --status-port)`);
    expect(gw.lifecycle.health().find((h) => h.name === 'telemetry')?.state).toBe('stopped');
  });
});

describe('composition root with meters over MQTT', () => {
  it('ingests a reading through the embedded broker and reports it on /status; stop leaves nothing running', async () => {
    const { startEmbeddedBroker } = await import('../../simulators/broker.js');
    const mqtt = (await import('mqtt')).default;
    const broker = await startEmbeddedBroker();
    const loaded = minimalSite({
      mqtt: {
        url: broker.url, client_id: 'gw-test', protocol_version: 4, session_expiry_ms: 60_000, keepalive_ms: 30_000,
        reconnect_min_ms: 100, reconnect_max_ms: 1000,
        meters: {
          topics: ['meters/+/readings'], qos: 1, region_topic_level: 1, batch_max_size: 100, batch_max_wait_ms: 20,
          max_payload_bytes: 1 << 20, future_skew_ms: 300_000, dedupe_window_ms: 600_000, meter_stale_after_ms: 300_000, max_meters: 1_000_000, reading_span_ratio: 0,
        },
      },
    });
    const gw = buildGateway(loaded, { env: {}, logger: silentLogger(), statusPort: 0 });
    try {
      await gw.start();
      expect(gw.lifecycle.health().map((h) => h.name)).toEqual(['telemetry', 'status', 'meters', 'grid-state', 'alerts']);
      const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
      const reading = { meter_id: 'm-1', timestamp: Date.now(), kwh: 12.5, voltage: 230, current: 5, power_factor: 0.95 };
      await pub.publishAsync('meters/eu-test/readings', JSON.stringify(reading), { qos: 1 });
      await pub.publishAsync('meters/eu-test/readings', '{not json', { qos: 1 });
      await pub.endAsync();
      let st: StatusReport | undefined;
      for (let i = 0; i < 100; i++) {
        st = (await (await fetch(`${gw.statusUrl()}status`)).json()) as StatusReport;
        const m = st.meters as { ingested_total: number; dropped_total: number } | null;
        if (m && m.ingested_total + m.dropped_total >= 2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(st?.meters).toMatchObject({ connected: true, ingested_total: 1, dropped_total: 1, dropped_by_reason: { malformed_json: 1 } });
      expect(st?.absent).toEqual(['devices', 'demand_response', 'delivery']);
      expect(Array.isArray(st?.alerts) && st.alerts.map((a) => a.name)).toEqual(ALERTS.map((a) => a.id));
      expect(st?.meters).toMatchObject({ session: { persistent: true, lost_total: 0 } });
    } finally {
      await gw.stop();
      await broker.close();
    }
  });
});
