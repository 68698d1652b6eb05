// A lost broker session is detected at the CONNACK, counted and logged once per loss; a kept
// session, a first connect and a clean session are not losses. The embedded broker (aedes, its
// sessions in memory) keeps a session across a dropped connection and loses it when it is
// replaced by a new broker on the same port, as a broker restarted without persistence would.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonLines } from '../helpers/capture.js';
import { MqttConnection } from '../../src/mqtt/connection.js';
import { SessionContinuity } from '../../src/mqtt/session-continuity.js';
import { systemClock } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { mqttConfig, TestTelemetry, waitFor } from '../meters/harness.js';
import { ManualClock } from '../runtime/manual-clock.js';

interface Line { msg: string; level: number; client?: string; sessions_lost?: number; disconnected_ms?: number; session_expiry_s?: number; likely_cause?: string }

function capture(): { lines: Line[]; logger: Logger } {
  const { lines, sink } = jsonLines<Line>();
  return { lines, logger: pino({ level: 'info' }, sink) };
}

describe('lost broker session (MqttConnection, embedded broker)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function rig(clean?: boolean): Promise<{ conn: MqttConnection; tel: TestTelemetry; lines: Line[]; broker: { current: EmbeddedBroker }; subacks: () => number }> {
    const broker = { current: await startEmbeddedBroker() };
    cleanups.push(() => broker.current.close());
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const { lines, logger } = capture();
    const conn = new MqttConnection({
      cfg: mqttConfig(broker.current.url, { protocol_version: 4, reconnect_min_ms: 50, reconnect_max_ms: 200 }),
      clock: systemClock, logger, client: 'meters', sessionAtRisk: 'meter readings', meter: tel.meter,
      ...(clean !== undefined ? { clean } : {}),
    });
    cleanups.push(() => conn.stop());
    // A subscription makes the session something the broker has to keep.
    let subacks = 0;
    conn.onConnect(() => { conn.mqttClient?.subscribe('meters/#', { qos: 1 }, (err) => { if (!err) subacks++; }); });
    return { conn, tel, lines, broker, subacks: () => subacks };
  }

  it('kept across a dropped connection; lost when the broker comes back without it: counted once, warned once', async () => {
    const { conn, tel, lines, broker, subacks } = await rig();
    const events: Array<{ present: boolean; lost: boolean }> = [];
    conn.onConnect((ev) => events.push({ present: ev.sessionPresent, lost: ev.sessionLost }));
    conn.start();
    await waitFor(() => conn.connected, 5000, 'connected');
    expect(await tel.counterSum(METRICS.mqttSessionLost, { client: 'meters' })).toBe(0);
    expect((await tel.metric(METRICS.mqttSessionLost))?.dataPoints).toHaveLength(1); // exported at 0 from the start

    await waitFor(() => subacks() === 1, 5000, 'subscribed');
    conn.dropConnection();
    await waitFor(() => events.length === 2 && conn.connected, 5000, 'reconnected');
    expect(events).toEqual([{ present: false, lost: false }, { present: true, lost: false }]);

    const port = broker.current.port;
    await broker.current.close();
    broker.current = await startEmbeddedBroker({ port });
    await waitFor(() => events.length === 3 && conn.connected, 5000, 'reconnected to the new broker');
    expect(events[2]).toEqual({ present: false, lost: true });
    expect(conn.session.status()).toMatchObject({ persistent: true, lost: 1 });
    expect(conn.session.status().lastLostAtMs).toBeGreaterThan(0);
    expect(await tel.counterSum(METRICS.mqttSessionLost, { client: 'meters' })).toBe(1);
    const warned = lines.filter((l) => l.msg.startsWith('broker session lost'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, client: 'meters', sessions_lost: 1 });
    expect(warned[0]?.msg).toContain('QoS 1 meter readings published while the broker held no session for this client were not queued and are lost');
    expect(warned[0]?.disconnected_ms).toBeGreaterThanOrEqual(0);
    expect(warned[0]?.likely_cause).toContain('restarted without its saved sessions');
  });

  it('a clean session asks for none: a broker without it is no loss', async () => {
    const { conn, tel, lines, broker } = await rig(true);
    conn.start();
    await waitFor(() => conn.connected, 5000, 'connected');
    const port = broker.current.port;
    await broker.current.close();
    broker.current = await startEmbeddedBroker({ port });
    await waitFor(() => conn.reconnects >= 1 && conn.connected, 5000, 'reconnected');
    expect(conn.session.status()).toEqual({ persistent: false, lost: 0 });
    expect(await tel.counterSum(METRICS.mqttSessionLost)).toBe(0);
    expect(lines.filter((l) => l.msg.startsWith('broker session lost'))).toEqual([]);
  });
});

describe('SessionContinuity', () => {
  it('MQTT 5: persistent only with a session expiry above 0; an absence longer than the expiry is named as the cause', () => {
    const clock = new ManualClock();
    const { lines, logger } = capture();
    const s = new SessionContinuity({ client: 'dr', atRisk: 'DR commands', clock, logger });
    s.expect(false, 5, 0);
    expect(s.status().persistent).toBe(false);
    s.expect(false, 5, 60);
    expect(s.status().persistent).toBe(true);
    expect(s.connected(false)).toBe(false); // the first CONNACK creates the session
    s.disconnected();
    clock.advance(30_000);
    s.disconnected(); // a failed reconnect attempt closes again: the time away runs from the first close
    clock.advance(45_000);
    expect(s.connected(false)).toBe(true);
    expect(lines.at(-1)).toMatchObject({ client: 'dr', disconnected_ms: 75_000, session_expiry_s: 60, likely_cause: expect.stringContaining('expired while disconnected') });
    s.disconnected();
    expect(s.connected(true)).toBe(false);
    expect(s.status()).toEqual({ persistent: true, lost: 1, lastLostAtMs: clock.now() });
  });
});
