// The brokers the other tests rely on: a real mosquitto and the embedded aedes both carry a QoS 1 message.
import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { startMosquitto } from './mosquitto.js';

async function roundTrip(url: string, protocolVersion: 4 | 5): Promise<string> {
  const client = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 });
  try {
    const got = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
    await client.subscribeAsync('t/+', { qos: 1 });
    await client.publishAsync('t/1', 'hello', { qos: 1 });
    return await got;
  } finally {
    await client.endAsync();
  }
}

describe('test brokers', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0)) await c(); });

  it('mosquitto on a free port carries an MQTT v5 QoS 1 message', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    expect(m.port).toBeGreaterThan(0);
    expect(await roundTrip(m.url, 5)).toBe('hello');
  });

  it('the embedded broker carries an MQTT 3.1.1 QoS 1 message', async () => {
    const b = await startEmbeddedBroker();
    cleanups.push(() => b.close());
    expect(await roundTrip(b.url, 4)).toBe('hello');
  });
});
