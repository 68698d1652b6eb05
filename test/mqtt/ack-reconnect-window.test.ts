// A deferred PUBACK goes out on the connection its message arrived on, and only there. mqtt.js marks
// a new connection connected at its CONNACK but emits 'connect' only after resending its own
// unacknowledged QoS 1 publishes (the meter subscription probe, DR acks) and getting their PUBACKs:
// a message arriving in that window must be acknowledgeable on the new connection, and a token of
// the old connection must not write a PUBACK onto the new one (after a lost session packet ids
// start again, so it would acknowledge another message before it was committed).
// The broker here is scripted byte by byte on a loopback socket, so the window can be held open.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttConnection, type AckToken } from '../../src/mqtt/connection.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { mqttConfig, waitFor } from '../meters/harness.js';

interface Packet { type: number; flags: number; body: Buffer }

/** Splits MQTT packets off a byte stream (fixed header, variable-length remaining length). */
function packetReader(onPacket: (p: Packet) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < Math.min(buf.length, 5); i++) {
        len += (buf[i]! & 0x7f) * mul;
        mul *= 128;
        if ((buf[i]! & 0x80) === 0) break;
      }
      if (i >= buf.length || buf.length < i + 1 + len) return;
      onPacket({ type: buf[0]! >> 4, flags: buf[0]! & 0x0f, body: buf.subarray(i + 1, i + 1 + len) });
      buf = buf.subarray(i + 1 + len);
    }
  };
}

const connack = (sessionPresent: boolean): Buffer => Buffer.from([0x20, 0x02, sessionPresent ? 1 : 0, 0x00]);

/** PUBLISH, QoS 1, MQTT 3.1.1 (remaining length below 128). */
function publish(topic: string, id: number, payload: string): Buffer {
  const t = Buffer.from(topic);
  const p = Buffer.from(payload);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([id >> 8, id & 0xff]), p]);
  return Buffer.concat([Buffer.from([0x32, body.length]), body]);
}

const puback = (id: number): Buffer => Buffer.from([0x40, 0x02, id >> 8, id & 0xff]);

interface Conn { socket: net.Socket; packets: Packet[] }

describe('deferred PUBACKs across a reconnect', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it("a token of the old connection writes nothing on the new one; a message in the new one's window before 'connect' is acknowledged there", async () => {
    const conns: Conn[] = [];
    const server = net.createServer((socket) => {
      const c: Conn = { socket, packets: [] };
      conns.push(c);
      socket.on('data', packetReader((p) => c.packets.push(p)));
      socket.on('error', () => { /* closed by the test */ });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as net.AddressInfo).port;
    const conn = new MqttConnection({
      cfg: mqttConfig(`mqtt://127.0.0.1:${port}`, { protocol_version: 4, reconnect_min_ms: 20, reconnect_max_ms: 40 }),
      clock: systemClock, logger: silentLogger(),
    });
    cleanups.push(() => conn.stop({ force: true }));
    const got: Array<{ payload: string; token: AckToken }> = [];
    conn.setMessageHandler((packet, token, next) => {
      if (token) got.push({ payload: packet.payload.toString(), token });
      next();
    });
    conn.start();

    // Connection 1: a message held unacknowledged, and a QoS 1 publish of the client the broker never answers.
    await waitFor(() => conns[0]?.packets.some((p) => p.type === 1) === true, 5000, 'CONNECT 1');
    const first = conns[0]!;
    first.socket.write(Buffer.concat([connack(false), publish('m/1', 7, 'old')]));
    await waitFor(() => got.length === 1 && conn.generation === 1, 5000, 'the old message');
    conn.mqttClient?.publish('own/probe', 'x', { qos: 1 });
    await waitFor(() => first.packets.some((p) => p.type === 3), 5000, "the client's publish");
    first.socket.destroy();

    // Connection 2: a lost session (packet ids start again) and a new message with the same id, in one write.
    await waitFor(() => conns[1]?.packets.some((p) => p.type === 1) === true, 5000, 'CONNECT 2');
    const second = conns[1]!;
    second.socket.write(Buffer.concat([connack(false), publish('m/1', 7, 'new')]));
    await waitFor(() => got.length === 2 && second.packets.some((p) => p.type === 3), 5000, 'the new message and the resent publish');
    // The window: connected, but 'connect' (and the next generation) waits for the resent publish's PUBACK.
    expect(conn.mqttClient?.connected).toBe(true);
    expect(conn.generation).toBe(1);
    const [oldMsg, newMsg] = got;
    expect([oldMsg?.payload, newMsg?.payload]).toEqual(['old', 'new']);

    expect(conn.ackMany([oldMsg!.token])).toBe(1);
    expect(conn.ackMany([newMsg!.token])).toBe(0);
    // Whatever the client wrote has arrived once the broker sees a PINGREQ written after it.
    conn.mqttClient?.stream.write(Buffer.from([0xc0, 0x00]));
    await waitFor(() => second.packets.some((p) => p.type === 12), 5000, 'PINGREQ');
    const pubacks = (c: Conn): string[] => c.packets.filter((p) => p.type === 4).map((p) => p.body.toString('hex'));
    // Exactly one PUBACK of id 7 on connection 2: the new message's (the old token wrote none).
    expect(pubacks(second)).toEqual(['0007']);

    // The broker answers the resent publish: 'connect', generation 2; the new message's token still acknowledges there.
    const resent = second.packets.find((p) => p.type === 3)!;
    const topicLen = resent.body.readUInt16BE(0);
    second.socket.write(puback(resent.body.readUInt16BE(2 + topicLen)));
    await waitFor(() => conn.generation === 2, 5000, "'connect' on connection 2");
    expect(conn.ack(newMsg!.token)).toBe(true);
    expect(conn.ack(oldMsg!.token)).toBe(false);
  }, 30_000);
});
