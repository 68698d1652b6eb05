// The command channel end to end, against independent parts: mosquitto (MQTT v5 and 3.1.1) and a
// pymodbus load controller (test/interop/pymodbus-load-controller.py) driven through the shipped
// generic-load-controller profile. Each hostile message is refused (or reported truthfully) and the
// controller's own write log does not move; a genuine command after them shows the log works.
import mqtt, { type MqttClient } from 'mqtt';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/modbus/profile-load.js';
import { DR_OVER_MQTT311_WARNING } from '../../src/config/site-checks.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { readAck, type DrAck, type RejectedAck } from '../../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { generateKeyPair } from '../../src/demand-response/signing.js';
import { parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { METRICS, SPANS } from '../../src/telemetry/semconv.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startPymodbusLoadController, type PymodbusLoadController } from '../helpers/pymodbus-load-controller.js';
import { KEYS, SITE_ID, TestClock } from './fixtures.js';
import { HOSTILE, authenticated } from './hostile-commands.js';
import { Rig } from './harness.js';

const COMMANDS = `ems/${SITE_ID}/dr/command`;
const PROFILE_FILE = fileURLToPath(new URL('../../devices/generic-load-controller.yaml', import.meta.url));
/** The gateway's pair: its acks are verified as the EMS would. */
const GATEWAY_KEY = (() => {
  const pair = generateKeyPair();
  return { privatePem: pair.privatePem, publicKey: parsePublicKey(pair.publicPem) };
})();

const command = (id: string, nowMs = Date.now(), reductionMw = 0.05): string =>
  signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw, durationMinutes: 15, commandId: id, nowMs }), KEYS.privateKey);

/** The EMS's view: a client on the ack topics that keeps every signed ack. */
async function emsClient(url: string, protocolVersion: 4 | 5): Promise<{ client: MqttClient; acks: DrAck[]; unsigned: number }> {
  const client = await mqtt.connectAsync(url, { protocolVersion, clientId: `ems-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
  const out = { client, acks: [] as DrAck[], unsigned: 0 };
  client.on('message', (_t, p) => {
    const r = readAck(p, [GATEWAY_KEY.publicKey]);
    if (r.ok) out.acks.push(r.ack);
    else out.unsigned += 1;
  });
  await client.subscribeAsync(`ems/${SITE_ID}/dr/ack/+`, { qos: 1 });
  return out;
}

async function until(pred: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const forId = (acks: DrAck[], id: string): string[] => acks.filter((a) => a.command_id === id).map((a) => (a.status === 'rejected' ? `rejected:${a.reason}` : a.status));

/** How many messages the gateway counted as copies of answered commands (replays, retained copies). */
async function copies(rig: Rig): Promise<number> {
  return (await rig.counter(METRICS.drCommands)).filter((p) => p.attrs['result'] === 'replayed').reduce((n, p) => n + p.value, 0);
}

type Ems = Awaited<ReturnType<typeof emsClient>>;
interface Channel { broker: Mosquitto; rig: Rig; ems: Ems }

describe('DR command channel: mosquitto + pymodbus load controller', () => {
  let profile: DeviceProfile;
  let device: PymodbusLoadController;

  /** Per describe: a mosquitto, the gateway's DR service on the pymodbus device, the EMS's client. */
  function useChannel(protocolVersion: 4 | 5, extra: { clock?: Clock; noiseAnswerIntervalMs?: number } = {}): Channel {
    const ch = {} as Channel;
    beforeAll(async () => {
      ch.broker = await startMosquitto();
      ch.rig = await Rig.start({
        profile, servers: [[1, 2]], externalPort: device.port, clock: extra.clock ?? systemClock, mqttUrl: ch.broker.url, protocolVersion,
        dr: { gateway_key: GATEWAY_KEY.privatePem },
        ...(extra.noiseAnswerIntervalMs !== undefined ? { noiseAnswerIntervalMs: extra.noiseAnswerIntervalMs } : {}),
      });
      ch.ems = await emsClient(ch.broker.url, protocolVersion);
    }, 30_000);
    afterAll(async () => {
      // A retained message outlives the test otherwise: an empty retained payload clears it.
      await ch.ems.client.publishAsync(COMMANDS, '', { qos: 1, retain: true });
      await ch.ems.client.endAsync();
      await ch.rig.stop();
      await ch.broker.stop();
    });
    return ch;
  }
  beforeAll(async () => {
    profile = await loadProfile(PROFILE_FILE);
    device = await startPymodbusLoadController(2);
  }, 30_000);
  afterAll(async () => {
    await device.stop();
  });

  /** A genuine command runs on both units (setpoint + enable each): the write log works. */
  async function control(ems: { client: MqttClient; acks: DrAck[] }, id: string, reductionMw: number, nowMs = Date.now()): Promise<void> {
    const before = await device.writeCount();
    await ems.client.publishAsync(COMMANDS, command(id, nowMs, reductionMw), { qos: 1 });
    await until(() => forId(ems.acks, id).includes('completed'), `${id} completed`);
    expect(ems.acks.find((a) => a.command_id === id && a.status === 'completed')).toMatchObject({ ack_count: 2 });
    expect(await device.writeCount()).toBe(before + 4);
  }

  describe('MQTT v5, every hostile message', () => {
    const ch = useChannel(5, { noiseAnswerIntervalMs: 0 });
    const original = command('chan-original');

    beforeAll(async () => {
      await control(ch.ems, 'chan-warmup', 0.05);
      await ch.ems.client.publishAsync(COMMANDS, original, { qos: 1 });
      await until(() => forId(ch.ems.acks, 'chan-original').includes('completed'), 'the original');
    }, 30_000);

    it.each(HOSTILE.map((h) => [h.name, h] as const))('%s', async (_name, h) => {
      const before = await device.writeCount();
      const acksBefore = ch.ems.acks.length;
      const msg = h.message(Date.now(), original);
      await ch.ems.client.publishAsync(COMMANDS, msg.payload, { qos: msg.qos ?? 1, retain: msg.retained === true });
      await until(() => ch.ems.acks.slice(acksBefore).some((a) => a.status === 'rejected'), `the answer to ${h.name}`);
      const ack = ch.ems.acks.slice(acksBefore).find((a) => a.status === 'rejected') as RejectedAck;
      expect(ack).toMatchObject({ reason: h.reason, authenticated: authenticated(h) });
      if (msg.retained) {
        // Cleared at once (an empty retained message), and its own answer awaited, so it cannot pass for the next case's.
        const n = ch.ems.acks.length;
        await ch.ems.client.publishAsync(COMMANDS, '', { qos: 1, retain: true });
        await until(() => ch.ems.acks.slice(n).some((a) => a.status === 'rejected' && a.reason === 'malformed_json'), 'the answer to the empty message');
      }
      expect(await device.writeCount()).toBe(before);
    });

    it('after all of them a genuine command still runs, and nothing else was written', async () => {
      await control(ch.ems, 'chan-after', 0.08);
    });
  });

  describe('MQTT v5, retained commands (retain-as-published)', () => {
    const ch = useChannel(5);

    it('published retained while the gateway is connected: delivered with the flag, refused, answered once', async () => {
      const before = await device.writeCount();
      await ch.ems.client.publishAsync(COMMANDS, command('ret-live'), { qos: 1, retain: true });
      await until(() => forId(ch.ems.acks, 'ret-live').length > 0, 'the answer');
      expect(forId(ch.ems.acks, 'ret-live')).toEqual(['rejected:retained']);
      // Reconnecting re-delivers the retained copy (flagged) right after the subscription, before a
      // command published later: recognised as the same command, counted, not answered again.
      const copiesBefore = await copies(ch.rig);
      await ch.rig.restartGateway();
      await control(ch.ems, 'ret-live-control', 0.05);
      expect(await copies(ch.rig)).toBe(copiesBefore + 1);
      expect(forId(ch.ems.acks, 'ret-live')).toEqual(['rejected:retained']);
      expect(await device.writeCount()).toBe(before + 4);
    });

    it('published retained while the gateway is down: the queued copy and the retained copy make one answer, and nothing runs', async () => {
      await ch.ems.client.publishAsync(COMMANDS, '', { qos: 1, retain: true });
      await ch.rig.stopService(); // the broker keeps the session (expiry 60 s) and queues for it
      await ch.ems.client.publishAsync(COMMANDS, command('ret-down'), { qos: 1, retain: true });
      const copiesBefore = await copies(ch.rig);
      await ch.rig.startService();
      // Counted after the restart's re-assertion of the active curtailment (the documented restart policy).
      const before = await device.writeCount();
      await control(ch.ems, 'ret-down-control', 0.04);
      // The session's copy came first, flagged by retain-as-published (answered), then the retained one (a copy).
      expect(forId(ch.ems.acks, 'ret-down')).toEqual(['rejected:retained']);
      expect(await copies(ch.rig)).toBe(copiesBefore + 1);
      expect(await device.writeCount()).toBe(before + 4);
    });
  });

  describe('MQTT 3.1.1: a clean DR session, so nothing is queued to be told from a fresh command', () => {
    const ch = useChannel(4);

    it('published retained while the gateway is down: only the retained copy arrives, flagged, refused once', async () => {
      await ch.rig.stopService();
      const before = await device.writeCount();
      await ch.ems.client.publishAsync(COMMANDS, command('v4-down'), { qos: 1, retain: true });
      const copiesBefore = await copies(ch.rig);
      await ch.rig.startService();
      await control(ch.ems, 'v4-control', 0.05);
      expect(forId(ch.ems.acks, 'v4-down')).toEqual(['rejected:retained']);
      expect(await copies(ch.rig)).toBe(copiesBefore); // nothing was queued: no second copy
      expect(await device.writeCount()).toBe(before + 4);
    });

    it('the gateway warns at start-up that 3.1.1 cannot tell a retained publish while connected; such a command runs (the documented limit)', async () => {
      await ch.rig.stopService();
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
      await ch.rig.startService({ logger: pino(sink) });
      expect(lines.filter((l) => l['msg'] === DR_OVER_MQTT311_WARNING).map((l) => [l['level'], l['component'], l['protocol_version']])).toEqual([[40, 'demand-response', 4]]);
      const before = await device.writeCount();
      await ch.ems.client.publishAsync(COMMANDS, command('v4-live-retained'), { qos: 1, retain: true });
      await until(() => forId(ch.ems.acks, 'v4-live-retained').includes('completed'), 'the retained command ran');
      expect(forId(ch.ems.acks, 'v4-live-retained')).toEqual(['accepted', 'completed']);
      expect(await device.writeCount()).toBe(before + 4);
      await ch.ems.client.publishAsync(COMMANDS, '', { qos: 1, retain: true });
    });
  });

  describe('a not_yet_valid command re-sent inside its window, and a flood of garbage (MQTT v5)', () => {
    const clock = new TestClock();
    const ch = useChannel(5, { clock });

    it('refused not_yet_valid, then replayed: it never runs', async () => {
      const before = await device.writeCount();
      const early = command('nyv-chan', clock.now() + 120_000);
      await ch.ems.client.publishAsync(COMMANDS, early, { qos: 1 });
      await until(() => forId(ch.ems.acks, 'nyv-chan').length === 1, 'the first answer');
      clock.advance(120_000);
      await ch.ems.client.publishAsync(COMMANDS, early, { qos: 1 });
      await until(() => forId(ch.ems.acks, 'nyv-chan').length === 2, 'the second answer');
      expect(forId(ch.ems.acks, 'nyv-chan')).toEqual(['rejected:not_yet_valid', 'rejected:replayed']);
      expect(await device.writeCount()).toBe(before);
    });

    it('500 two-byte messages earn two answers and one error span, and a genuine command right after runs', async () => {
      const before = await device.writeCount();
      const spansBefore = ch.rig.spans.getFinishedSpans().filter((s) => s.name === SPANS.drSend).length;
      const acksBefore = ch.ems.acks.length;
      const flood = mqtt.connectAsync(ch.broker.url, { protocolVersion: 5, clientId: 'flood', reconnectPeriod: 0 });
      const f = await flood;
      await Promise.all(Array.from({ length: 500 }, () => f.publishAsync(COMMANDS, '{}', { qos: 1 })));
      await f.endAsync();
      await until(() => ch.ems.acks.slice(acksBefore).some((a) => a.status === 'rejected' && a.suppressed !== undefined), 'the aggregate answer');
      const answers = ch.ems.acks.slice(acksBefore).filter((a): a is RejectedAck => a.status === 'rejected');
      expect(answers.length).toBeLessThanOrEqual(3);
      // Each answer stands for its own message plus those it reports; the aggregate only for those.
      expect(answers.reduce((n, a) => n + (a.aggregate ? 0 : 1) + (a.suppressed ?? 0), 0)).toBe(500);
      const errorSpans = ch.rig.spans.getFinishedSpans().filter((s) => s.name === SPANS.drSend).length - spansBefore;
      expect(errorSpans).toBeLessThanOrEqual(2);
      expect(await device.writeCount()).toBe(before);
      await control(ch.ems, 'after-flood', 0.05, clock.now());
    });
  });
});
