// The hostile command table over a real broker: every message is answered on the ack topic with
// its rejection reason, and the simulated controllers record zero writes.
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck, type DrAck } from '../../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { systemClock } from '../../src/runtime/clock.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { HOSTILE, authenticated } from './hostile-commands.js';
import { Rig } from './harness.js';

describe('hostile DR commands (aedes)', () => {
  let broker: EmbeddedBroker;
  let rig: Rig;
  let ems: MqttClient;
  const received: DrAck[] = [];
  const original = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: 15, commandId: 'original-1' }), KEYS.privateKey);
  let writesAfterOriginal = 0;

  async function publishAndWaitAck(payload: Buffer | string, qos: 0 | 1 = 1): Promise<DrAck> {
    const before = received.length;
    await ems.publishAsync(`ems/${SITE_ID}/dr/command`, payload, { qos });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const ack = received.slice(before).find((a) => a.status === 'rejected' || a.status === 'completed');
      if (ack) return ack;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('no ack');
  }

  beforeAll(async () => {
    broker = await startEmbeddedBroker();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock: systemClock, mqttUrl: broker.url, noiseAnswerIntervalMs: 0 });
    ems = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'ems-hostile' });
    ems.on('message', (_t, p) => {
      const r = readAck(p, undefined);
      if (r.ok) received.push(r.ack);
    });
    await ems.subscribeAsync(`ems/${SITE_ID}/dr/ack/+`, { qos: 1 });
    const ack = await publishAndWaitAck(original);
    expect(ack).toMatchObject({ status: 'completed', ack_count: 2 });
    writesAfterOriginal = rig.writes();
    expect(writesAfterOriginal).toBe(2);
  });
  afterAll(async () => {
    await ems.endAsync();
    await rig.stop();
    await broker.close();
  });

  it.each(HOSTILE.filter((h) => h.reason !== 'retained').map((h) => [h.name, h] as const))('%s', async (_name, h) => {
    const msg = h.message(Date.now(), original);
    const ack = await publishAndWaitAck(msg.payload, msg.qos ?? 1);
    expect(ack).toMatchObject({ status: 'rejected', reason: h.reason, site_id: SITE_ID });
    expect(typeof (ack as { detail?: unknown }).detail).toBe('string');
    // Only a verified signature makes a rejection the verdict on the command id it names.
    expect((ack as { authenticated?: unknown }).authenticated).toBe(authenticated(h));
    expect(rig.writes()).toBe(writesAfterOriginal);
  });

  it('replay after a gateway restart is still refused', async () => {
    const writesBefore = rig.writes();
    await rig.restartGateway();
    // The still-active original was re-asserted at start (re-assert is the documented restart policy).
    expect(rig.acks.filter((a) => a.status === 'reasserted' && a.command_id === 'original-1')).toHaveLength(1);
    expect(rig.writes()).toBe(writesBefore + 2);
    const before = rig.writes();
    const ack = await publishAndWaitAck(original);
    expect(ack).toMatchObject({ status: 'rejected', reason: 'replayed', command_id: 'original-1' });
    await rig.service?.idle();
    expect(rig.writes()).toBe(before);
  });

  it('counts rejections by reason, with no attacker-chosen attribute values', async () => {
    const points = await rig.counter('ems.demand_response.commands');
    const reasons = new Set(points.map((p) => p.attrs['result']));
    expect(reasons).toContain('bad_signature');
    expect(reasons).toContain('replayed');
    expect(new Set(points.map((p) => p.attrs['command_type']))).toEqual(new Set(['curtail', 'unknown']));
  });
});
