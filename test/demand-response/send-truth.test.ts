// `ems-gateway dr send --gateway-key` exits with the truth while someone else on the broker replays
// the command, publishes `{}` to the command topic and forges acks, on a site with one ack topic for
// every command (the README's layout): the command ran, so it exits 0, and prints only the
// gateway's signed answers to it (real mosquitto, MQTT v5; the pymodbus load controller through
// the shipped generic-load-controller profile).
import mqtt, { type MqttClient } from 'mqtt';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/dr.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DrAck } from '../../src/demand-response/ack.js';
import { generateKeyPair, signAck } from '../../src/demand-response/signing.js';
import { parsePrivateKey } from '../../src/runtime/ed25519-keys.js';
import { systemClock } from '../../src/runtime/clock.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startPymodbusLoadController, type PymodbusLoadController } from '../helpers/pymodbus-load-controller.js';
import { keygenBoth, writeCliSite } from './cli-fixture.js';
import { SITE_ID, tempDir } from './fixtures.js';
import { Rig } from './harness.js';

describe('dr send tells the truth under a hostile broker client (mosquitto, one ack topic)', () => {
  let broker: Mosquitto;
  let device: PymodbusLoadController;
  let rig: Rig;
  let attacker: MqttClient;
  const tmp = tempDir();
  const dir = tmp.dir;
  const commandTopic = `ems/${SITE_ID}/dr/command`;
  const ackTopic = `ems/${SITE_ID}/dr/acks`;

  beforeAll(async () => {
    broker = await startMosquitto();
    const dr = await keygenBoth(dir);
    device = await startPymodbusLoadController(1);
    // The profile's read-back waits 100 ms: time for the attack between `accepted` and `completed`.
    const profile = await loadProfile(fileURLToPath(new URL('../../devices/generic-load-controller.yaml', import.meta.url)));
    rig = await Rig.start({
      profile, servers: [[1]], externalPort: device.port, clock: systemClock,
      mqttUrl: broker.url, protocolVersion: 5, dr: { ...dr, ack_topic: 'ems/{site}/dr/acks' },
    });
    writeCliSite(dir, broker.url, 'ems/{site}/dr/acks');
    // The attacker may publish anywhere and sees every command: it replays each one, publishes {},
    // and forges a "rejected" and a "completed with nothing acknowledged" in the gateway's name.
    const forger = parsePrivateKey(generateKeyPair().privatePem);
    attacker = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'attacker' });
    await attacker.subscribeAsync(commandTopic, { qos: 1 });
    let attacked = false;
    const send = (topic: string, payload: Buffer | string): void => { attacker.publishAsync(topic, payload, { qos: 1 }).catch(() => undefined); };
    attacker.on('message', (_topic, payload) => {
      const env = JSON.parse(payload.toString()) as { command?: string };
      if (attacked || typeof env.command !== 'string') return;
      const id = (JSON.parse(env.command) as { command_id: string }).command_id;
      if (id !== 'truth-1') return;
      attacked = true; // its own replay comes back to it too
      const lie = JSON.stringify({ v: 1, command_id: id, site_id: SITE_ID, status: 'rejected', at: new Date().toISOString(), reason: 'expired', detail: 'forged', authenticated: true });
      const empty = JSON.stringify({ v: 1, command_id: id, site_id: SITE_ID, status: 'completed', at: new Date().toISOString(), ack_count: 0, controller_count: 1, controllers: [] });
      send(commandTopic, payload);
      send(commandTopic, '{}');
      send(ackTopic, JSON.stringify({ ack: lie }));
      send(ackTopic, JSON.stringify({ ack: lie, signature: signAck(lie, forger) }));
      send(ackTopic, JSON.stringify({ ack: empty, signature: signAck(empty, forger) }));
    });
  });
  afterAll(async () => {
    await attacker.endAsync();
    await rig.stop();
    await device.stop();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0 for the command that ran, prints only its accepted and completed, and notes what it ignored', async () => {
    const before = await device.writeCount();
    const lines: string[] = [];
    const errs: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { lines.push(String(c)); return true; });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { errs.push(String(c)); return true; });
    let code: number;
    try {
      code = await run(['send', '--config', `${dir}/site.yaml`, '--key', `${dir}/ems.key`, '--zone', 'zone-a', '--reduction-mw', '0.05',
        '--duration', '15m', '--command-id', 'truth-1', '--timeout', '10s', '--gateway-key', `${dir}/gateway.pub`]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    const acks = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as DrAck);
    expect(acks.map((a) => [a.command_id, a.status])).toEqual([['truth-1', 'accepted'], ['truth-1', 'completed']]);
    expect(code).toBe(0);
    const notes = errs.join('');
    expect(notes).toMatch(/ignored a message on the ack topic: unsigned/);
    expect(notes).toMatch(/signature does not verify with the gateway key/);
    // The gateway did answer the replay, on the same topic (usually between accepted and completed:
    // the read-back waits 100 ms; dr send ignores it wherever it falls).
    await rig.waitFor(() => rig.acks.some((a) => a.command_id === 'truth-1' && a.status === 'rejected'), 'the answer to the replay');
    const mine = rig.acks.filter((a) => a.command_id === 'truth-1').map((a) => (a.status === 'rejected' ? `rejected:${a.reason}` : a.status));
    expect([...mine].sort()).toEqual(['accepted', 'completed', 'rejected:replayed']);
    // Setpoint and enable, once: the replay wrote nothing.
    expect(await device.writeCount()).toBe(before + 2);
  });
});
