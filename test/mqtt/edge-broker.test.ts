// The shipped broker configuration with its ACL (deploy/mosquitto/ems.conf, ems.acl) on a real
// mosquitto: the gateway's account ingests readings and confirms its flow probe; a meter head-end
// may publish readings and nothing else; only the EMS may send DR commands and read the acks.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { edgeBrokerConf, SHIPPED_ACL } from '../helpers/edge-broker.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from '../meters/harness.js';
import { hasPeer } from '../peers.js';

const USERS = { 'ems-gateway': 'gw-pass', 'meter-headend': 'meter-pass', ems: 'ems-pass' } as const;
type User = keyof typeof USERS;

describe.skipIf(!hasPeer('mosquitto') || !hasPeer('mosquitto_passwd'))('shipped mosquitto configuration and ACL', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function broker(): Promise<Mosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'ems-edge-broker-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const passwordFile = join(dir, 'ems.passwd');
    for (const [i, [user, password]] of Object.entries(USERS).entries()) {
      execFileSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwordFile, user, password], { stdio: 'ignore', timeout: 10_000 });
    }
    const aclFile = join(dir, 'ems.acl');
    copyFileSync(SHIPPED_ACL, aclFile);
    // mosquitto started as root reads both after dropping privileges.
    chmodSync(dir, 0o755);
    chmodSync(passwordFile, 0o644);
    chmodSync(aclFile, 0o644);
    const m = await startMosquitto({ conf: edgeBrokerConf({ autosave: true, auth: { passwordFile, aclFile } }) });
    cleanups.push(() => m.stop());
    return m;
  }

  async function client(m: Mosquitto, user: User): Promise<MqttClient> {
    const c = await mqtt.connectAsync(m.url, { protocolVersion: 5, username: user, password: USERS[user], reconnectPeriod: 0, clientId: `${user}-${Math.random().toString(36).slice(2, 8)}` });
    cleanups.push(() => c.endAsync(true));
    return c;
  }

  /** The reason code of a QoS 1 publish's PUBACK (0 accepted; 135 not authorized: mqtt.js rejects with it). */
  async function publishReason(c: MqttClient, topic: string, payload: string): Promise<number> {
    try {
      const packet = await c.publishAsync(topic, payload, { qos: 1 });
      return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') return code;
      throw err;
    }
  }

  /**
   * A publish the ACL must refuse, from a client of its own: mosquitto answers PUBACK 135, or (2.0.x
   * with max_queued_messages 0, eclipse-mosquitto/mosquitto#2579) closes the connection instead.
   * Either way nothing is delivered; true when it was refused.
   */
  async function refused(m: Mosquitto, user: User, topic: string): Promise<boolean> {
    const c = await client(m, user);
    const closed = new Promise<number>((resolve) => { c.once('close', () => resolve(135)); });
    const reason = await Promise.race([publishReason(c, topic, `from-${user}`).catch(() => 135), closed]);
    return reason === 135;
  }

  /**
   * Messages `c` received on `filter` after a round trip: mosquitto grants a subscription the ACL
   * does not allow reading and then delivers nothing. Anything it had queued for `c` before the
   * PUBACK of a later publish of `c`'s own arrives first (one socket, in order).
   */
  async function receivedAfterRoundTrip(c: MqttClient, got: string[], pingTopic: string): Promise<string[]> {
    await publishReason(c, pingTopic, 'ping');
    return got;
  }

  it('the gateway account ingests readings and its flow probe comes back; a meter head-end publishes readings only', async () => {
    const m = await broker();
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = new MeterIngest({
      mqtt: mqttConfig(m.url, { client_id: 'ems-gateway-site-7', username: 'ems-gateway', password: USERS['ems-gateway'] }),
      clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
    });
    cleanups.push(() => ingest.stop());
    await ingest.start();
    await waitFor(() => ingest.status().flow_confirmed, 10_000, 'the probe back through the ACL');

    const meter = await client(m, 'meter-headend');
    const meterGot: string[] = [];
    meter.on('message', (t) => meterGot.push(t));
    await meter.subscribeAsync(['meters/#', 'ems/#'], { qos: 1 });
    const reading = JSON.stringify({ meter_id: 'm-1', timestamp: Date.now(), kwh: 1, voltage: 230, current: 1, power_factor: 1 });
    expect(await publishReason(meter, 'meters/north/m-1', reading)).toBe(0);
    await waitFor(() => ingest.status().readings_ingested === 1, 5000, 'the reading ingested');
    // Not the meter's to read (its own reading included), nor to command.
    expect(await receivedAfterRoundTrip(meter, meterGot, 'meters/north/ping')).toEqual([]);
    expect(await refused(m, 'meter-headend', 'ems/site-7/dr/commands')).toBe(true);
  });

  it('only the EMS sends DR commands; the gateway answers on the ack topic, which only the EMS reads', async () => {
    const m = await broker();
    const gateway = await client(m, 'ems-gateway');
    const ems = await client(m, 'ems');
    const meter = await client(m, 'meter-headend');
    const commands: string[] = [];
    gateway.on('message', (_t, p) => commands.push(p.toString()));
    expect((await gateway.subscribeAsync('ems/+/dr/commands', { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    // The gateway may not command itself, a meter may not command at all.
    expect(await refused(m, 'ems-gateway', 'ems/site-7/dr/commands')).toBe(true);
    expect(await refused(m, 'meter-headend', 'ems/site-7/dr/commands')).toBe(true);
    expect(await publishReason(ems, 'ems/site-7/dr/commands', 'from-ems')).toBe(0);
    await waitFor(() => commands.length >= 1, 5000, 'the EMS command delivered');
    expect(commands).toEqual(['from-ems']);

    const acks: string[] = [];
    ems.on('message', (_t, p) => acks.push(p.toString()));
    const meterGot: string[] = [];
    meter.on('message', (t) => meterGot.push(t));
    await ems.subscribeAsync('ems/+/dr/acks/#', { qos: 1 });
    await meter.subscribeAsync('ems/+/dr/acks/#', { qos: 1 });
    expect(await publishReason(gateway, 'ems/site-7/dr/acks', 'ack')).toBe(0);
    expect(await publishReason(gateway, 'ems/site-7/dr/acks/cmd-1', 'ack-cmd-1')).toBe(0);
    await waitFor(() => acks.length >= 2, 5000, 'the acks delivered to the EMS');
    expect(acks).toEqual(['ack', 'ack-cmd-1']);
    expect(await receivedAfterRoundTrip(meter, meterGot, 'meters/north/ping')).toEqual([]);
    // And the gateway may not publish readings as if it were a meter.
    expect(await refused(m, 'ems-gateway', 'meters/north/m-1')).toBe(true);
  });
});
