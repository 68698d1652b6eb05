// Options built from the site's mqtt section, and reconnects with jittered exponential backoff.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttConfig } from '../../src/config/site-types.js';
import { MqttConnection } from '../../src/mqtt/connection.js';
import { mqttClientOptions } from '../../src/mqtt/options.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { mqttConfig, waitFor } from '../meters/harness.js';

describe('mqttClientOptions', () => {
  it('MQTT 5: persistent session with the session expiry in seconds, keepalive, no fixed reconnect period', () => {
    const cfg: MqttConfig = { ...mqttConfig('mqtt://127.0.0.1:1883'), client_id: 'gw-1', session_expiry_ms: 7_200_000, keepalive_ms: 15_000, username: 'u', password: 'p' };
    const o = mqttClientOptions(cfg, { clientIdSuffix: '-meters' });
    expect(o).toMatchObject({ clientId: 'gw-1-meters', protocolVersion: 5, clean: false, keepalive: 15, reconnectPeriod: 0, username: 'u', password: 'p', resubscribe: false });
    expect(o.properties?.sessionExpiryInterval).toBe(7200);
    expect(mqttClientOptions(cfg, { clean: true }).properties?.sessionExpiryInterval).toBe(0);
  });

  it('MQTT 3.1.1: clean session off and no v5 properties', () => {
    const o = mqttClientOptions({ ...mqttConfig('mqtt://127.0.0.1:1883'), protocol_version: 4 });
    expect(o.protocolVersion).toBe(4);
    expect(o.clean).toBe(false);
    expect(o.properties).toBeUndefined();
  });
});

/** A clock whose timers are recorded, so backoff delays are visible; they still fire for real (fast). */
function recordingClock(delays: number[]): Clock {
  return { ...systemClock, setTimeout: (fn, ms) => { delays.push(ms); return setTimeout(fn, 1); } };
}

describe('MqttConnection', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('reconnects with full-jitter exponential backoff between reconnect_min_ms and reconnect_max_ms', async () => {
    // A port that accepts and closes at once: every attempt fails.
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const delays: number[] = [];
    const conn = new MqttConnection({
      cfg: mqttConfig(`mqtt://127.0.0.1:${port}`, { reconnect_min_ms: 100, reconnect_max_ms: 2000 }),
      clock: recordingClock(delays), logger: silentLogger(), random: () => 1,
    });
    cleanups.push(() => conn.stop());
    conn.start();
    await waitFor(() => delays.length >= 7, 5000, '7 reconnect attempts');
    await conn.stop();
    // random() = 1 gives the ceiling: min + min(max - min, min x 2^attempt).
    expect(delays.slice(0, 7)).toEqual([200, 300, 500, 900, 1700, 2000, 2000]);
    expect(conn.connected).toBe(false);
  });

  it('jitter spreads the delays (random() = 0 gives reconnect_min_ms) and a reconnect restores the connection', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const delays: number[] = [];
    const conn = new MqttConnection({
      cfg: mqttConfig(broker.url, { protocol_version: 4, reconnect_min_ms: 100, reconnect_max_ms: 2000 }),
      clock: recordingClock(delays), logger: silentLogger(), random: () => 0,
    });
    cleanups.push(() => conn.stop());
    const generations: number[] = [];
    conn.onConnect((ev) => generations.push(ev.generation));
    conn.start();
    await waitFor(() => conn.connected, 5000, 'connected');
    conn.dropConnection();
    await waitFor(() => generations.length === 2 && conn.connected, 5000, 'reconnected');
    expect(delays[0]).toBe(100);
    expect(conn.reconnects).toBe(1);
    expect(conn.generation).toBe(2);
  });
});
