// Options built from the site's mqtt section, and reconnects with jittered exponential backoff.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttConfig } from '../../src/config/site-types.js';
import { MqttConnection } from '../../src/mqtt/connection.js';
import { mqttClientOptions } from '../../src/mqtt/options.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import mqtt from 'mqtt';
import type { AckToken } from '../../src/mqtt/connection.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { startMosquitto } from '../helpers/mosquitto.js';
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

  // The deferred PUBACKs are written as bytes (connection.ts putPuback): a real broker must take
  // them as PUBACKs of exactly those messages, in MQTT 3.1.1 and 5. Checked through the session:
  // after a dropped connection the broker redelivers exactly the messages not acknowledged.
  // (aedes, the embedded broker, speaks MQTT 3.1.1 only, and sets no DUP flag on a redelivery)
  for (const [brokerName, protocol] of [['mosquitto', 5], ['mosquitto', 4], ['aedes', 4]] as const) {
    it(`PUBACKs written by ackMany()/ack() acknowledge exactly their messages (${brokerName}, MQTT ${protocol === 5 ? '5' : '3.1.1'})`, async () => {
      const broker = brokerName === 'mosquitto' ? await startMosquitto() : await startEmbeddedBroker();
      cleanups.push(async () => { await ('stop' in broker ? broker.stop() : broker.close()); });
      const conn = new MqttConnection({ cfg: mqttConfig(broker.url, { protocol_version: protocol }), clock: systemClock, logger: silentLogger() });
      cleanups.push(() => conn.stop());
      const got: Array<{ payload: string; token: AckToken | undefined; dup: boolean }> = [];
      conn.setMessageHandler((packet, token, next) => { got.push({ payload: packet.payload.toString(), token, dup: packet.dup }); next(); });
      let subscribed = false;
      conn.onConnect((ev) => { if (ev.generation === 1) conn.mqttClient?.subscribe('acks/#', { qos: 1 }, (err) => { subscribed = !err; }); });
      conn.start();
      await waitFor(() => subscribed, 5000, 'subscribed');
      const pub = await mqtt.connectAsync(broker.url, { protocolVersion: protocol, reconnectPeriod: 0 });
      cleanups.push(() => pub.endAsync());
      for (let i = 0; i < 8; i++) await pub.publishAsync(`acks/${i}`, String(i), { qos: 1 });
      await waitFor(() => got.length === 8, 5000, '8 messages');
      const tokens = got.map((g) => g.token as AckToken);
      expect(tokens.every((t) => t !== undefined && t.generation === 1)).toBe(true);
      // 0-4 in one write, with a token of an earlier connection among them (stale: not sent); 5 alone.
      expect(conn.ackMany([...tokens.slice(0, 3), { generation: 0, messageId: (tokens[6] as AckToken).messageId, link: {} }, ...tokens.slice(3, 5)])).toBe(1);
      expect(conn.ack(tokens[5] as AckToken)).toBe(true);
      // A round trip after the acks: the broker has read them once it answers.
      await conn.mqttClient?.subscribeAsync('other/x', { qos: 1 });
      conn.dropConnection();
      await waitFor(() => conn.generation === 2 && got.length >= 10, 5000, 'the unacknowledged messages redelivered');
      // Another round trip: whatever else the broker would redeliver came before its answer.
      await conn.mqttClient?.subscribeAsync('other/y', { qos: 1 });
      const again = got.slice(8);
      expect(again.map((g) => g.payload)).toEqual(['6', '7']);
      if (brokerName === 'mosquitto') expect(again.every((g) => g.dup)).toBe(true);
      // The old connection's tokens are stale now; the new ones acknowledge.
      expect(conn.ackMany(tokens)).toBe(8);
      expect(conn.ackMany(again.map((g) => g.token as AckToken))).toBe(0);
    }, 30_000);
  }
});
