// The DR path through the shipped broker configuration and ACL (deploy/mosquitto/ems.conf, ems.acl,
// with a password file made by mosquitto_passwd): the EMS's signed command reaches the gateway's DR
// service and runs, its signed acks reach the EMS; a third client with a valid login (the meter
// head-end) can neither publish a command nor an ack, nor overhear a command to replay it; the EMS
// cannot publish acks and the gateway's account cannot publish commands. A refused publish gets PUBACK 135, or (mosquitto 2.0.x with the shipped
// max_queued_messages 0, eclipse-mosquitto/mosquitto#2579) its connection closed: either way it is
// never delivered. test/mqtt/edge-broker.test.ts covers the same ACL for meters and raw clients.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck, type DrAck } from '../../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { generateKeyPair } from '../../src/demand-response/signing.js';
import { parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import { systemClock } from '../../src/runtime/clock.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { edgeBrokerConf, SHIPPED_ACL } from '../helpers/edge-broker.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { KEYS, loadControllerProfile, tempDir } from './fixtures.js';
import { Rig } from './harness.js';

const SITE = 'site-7';
const COMMANDS = `ems/${SITE}/dr/commands`;
const USERS = { 'ems-gateway': 'gw-pass', 'meter-headend': 'meter-pass', ems: 'ems-pass' } as const;
type User = keyof typeof USERS;

describe('DR through the shipped mosquitto ACL (deploy/mosquitto)', () => {
  const tmp = tempDir();
  let broker: Mosquitto;
  let rig: Rig;
  let ems: MqttClient;
  const clients: MqttClient[] = [];
  const emsAcks: DrAck[] = [];
  const emsRaw: string[] = [];
  const gatewayKey = generateKeyPair();

  async function client(user: User): Promise<MqttClient> {
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `${user}-${clients.length}`, username: user, password: USERS[user], reconnectPeriod: 0 });
    clients.push(c);
    return c;
  }

  /** A publish the ACL must refuse, from a connection of its own: true when refused (PUBACK 135 or connection closed). */
  async function refused(user: User, topic: string, payload: string): Promise<boolean> {
    const c = await client(user);
    const closed = new Promise<number>((resolve) => { c.once('close', () => resolve(135)); });
    const published = c.publishAsync(topic, payload, { qos: 1 }).then(
      (p) => (p as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
      (err: unknown) => (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 135),
    );
    return (await Promise.race([published, closed])) === 135;
  }

  const command = (id: string): string => signedMessage(buildCommand({ siteId: SITE, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 15, commandId: id }), KEYS.privateKey);
  const commandsSeen = async (): Promise<number> => (await rig.counter(METRICS.drCommands)).reduce((n, p) => n + p.value, 0);

  beforeAll(async () => {
    const passwordFile = join(tmp.dir, 'ems.passwd');
    for (const [i, [user, password]] of Object.entries(USERS).entries()) {
      execFileSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwordFile, user, password], { stdio: 'ignore', timeout: 10_000 });
    }
    const aclFile = join(tmp.dir, 'ems.acl');
    copyFileSync(SHIPPED_ACL, aclFile);
    chmodSync(tmp.dir, 0o755); // mosquitto started as root reads both after dropping privileges
    chmodSync(passwordFile, 0o644);
    chmodSync(aclFile, 0o644);
    broker = await startMosquitto({ conf: edgeBrokerConf({ autosave: true, auth: { passwordFile, aclFile } }) });
    rig = await Rig.start({
      profile: loadControllerProfile(), servers: [[1]], clock: systemClock, mqttUrl: broker.url, protocolVersion: 5, noiseAnswerIntervalMs: 0, siteId: SITE,
      mqttAuth: { username: 'ems-gateway', password: USERS['ems-gateway'] },
      dr: { gateway_key: gatewayKey.privatePem, command_topic: 'ems/{site}/dr/commands', ack_topic: 'ems/{site}/dr/acks/{command_id}' },
    });
    ems = await client('ems');
    ems.on('message', (_t, p) => {
      emsRaw.push(p.toString());
      const r = readAck(p, [parsePublicKey(gatewayKey.publicPem)]);
      if (r.ok) emsAcks.push(r.ack);
    });
    await ems.subscribeAsync(`ems/${SITE}/dr/acks/#`, { qos: 1 });
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    await rig.stop();
    await broker.stop();
    tmp.cleanup();
  });

  it("the EMS's command reaches the gateway, runs, and its signed acks reach the EMS", async () => {
    await ems.publishAsync(COMMANDS, command('acl-ok'), { qos: 1 });
    await rig.waitFor(() => emsAcks.some((a) => a.command_id === 'acl-ok' && a.status === 'completed'), 'the completed ack at the EMS');
    expect(rig.writes()).toBe(1);
  });

  it('a third client with a valid login can neither publish a command nor an ack, nor overhear commands; the EMS cannot publish acks', async () => {
    const writes = rig.writes();
    const seen = await commandsSeen();
    expect(await refused('meter-headend', COMMANDS, command('acl-intruder'))).toBe(true);
    expect(await refused('meter-headend', COMMANDS, '{}')).toBe(true);
    const forged = JSON.stringify({ ack: JSON.stringify({ v: 1, command_id: 'acl-ok', site_id: SITE, status: 'rejected', reason: 'expired', detail: 'forged-by-intruder', authenticated: true, at: new Date().toISOString() }) });
    expect(await refused('meter-headend', `ems/${SITE}/dr/acks/acl-ok`, forged)).toBe(true);
    expect(await refused('ems', `ems/${SITE}/dr/acks/acl-ok`, forged.replace('intruder', 'ems'))).toBe(true);
    // The gateway's own account cannot publish a command either (a stolen gateway login cannot curtail).
    expect(await refused('ems-gateway', COMMANDS, command('acl-from-gateway'))).toBe(true);
    // mosquitto grants the SUBSCRIBE and checks read access on every delivery: nothing arrives.
    const listener = await client('meter-headend');
    const overheard: string[] = [];
    listener.on('message', (t) => overheard.push(t));
    await listener.subscribeAsync(COMMANDS, { qos: 1 });
    // A command the EMS sends now is the next thing the gateway sees: nothing of the others' arrived before it.
    await ems.publishAsync(COMMANDS, command('acl-after'), { qos: 1 });
    await rig.waitFor(() => emsAcks.some((a) => a.command_id === 'acl-after' && a.status === 'completed'), 'the next command');
    expect(await commandsSeen()).toBe(seen + 1);
    expect(rig.acks.some((a) => a.command_id === 'acl-intruder')).toBe(false);
    expect(rig.acks.some((a) => a.command_id === 'acl-from-gateway')).toBe(false);
    expect(emsRaw.some((m) => m.includes('forged-by'))).toBe(false);
    expect(overheard).toEqual([]);
    expect(rig.writes()).toBe(writes + 1);
  });
});
