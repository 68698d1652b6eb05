// The DR command subscription's broker session: a broker that comes back without it (mosquitto
// restarted on the same port without persistence, as a broker restarted without its saved
// sessions) is counted for the `dr` client and shown in the service's status; the subscription is
// made again and a command sent afterwards is answered. The DR client keeps a persistent session
// over MQTT v5 only: over 3.1.1 it is clean on purpose (docs/demand-response.md, "Retained commands
// and the MQTT version"), and its status says so.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/runtime/clock.js';
import { brokerSession } from '../../src/status/adapters.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { buildCommand, sendCommand, signedMessage } from '../../src/demand-response/sender.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

describe('DR client: lost broker session', () => {
  let broker: Mosquitto | undefined;
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    await broker?.stop();
    rig = undefined;
    broker = undefined;
  });

  it('over MQTT 3.1.1 the DR session is clean on purpose: status says it is not persistent', async () => {
    const embedded = await startEmbeddedBroker();
    try {
      const r = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock, mqttUrl: embedded.url, protocolVersion: 4 });
      rig = r;
      expect(r.service?.status().session).toEqual({ persistent: false, lost: 0 });
      await r.stop();
      rig = undefined;
    } finally {
      await embedded.close();
    }
  });

  it('counted as ems.mqtt.session_lost{client="dr"} and in status; commands flow again', async () => {
    broker = await startMosquitto();
    const r = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock, mqttUrl: broker.url, protocolVersion: 5 });
    rig = r;
    const service = r.service;
    if (!service) throw new Error('no DR service');
    expect(service.status().session).toEqual({ persistent: true, lost: 0 });
    expect(await r.counter(METRICS.mqttSessionLost)).toEqual([{ attrs: { client: 'dr' }, value: 0 }]);

    await broker.restart(); // persistence off: the sessions are gone
    await r.waitFor(() => (service.status().session?.lost ?? 0) === 1 && service.connected, 'the DR client back without its session');
    expect(await r.counter(METRICS.mqttSessionLost)).toEqual([{ attrs: { client: 'dr' }, value: 1 }]);
    const shown = service.status().session;
    expect(shown && brokerSession(shown)).toMatchObject({ persistent: true, lost_total: 1 });
    // Subscribed again on the new broker: a command sent now is answered.
    const mqtt = r.mqttConfig();
    if (!mqtt?.demand_response) throw new Error('no mqtt');
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 5, commandId: 'after-loss' });
    const res = await sendCommand({ mqtt: { ...mqtt, client_id: 'ems' }, dr: mqtt.demand_response, siteId: SITE_ID, commandId: 'after-loss', message: signedMessage(cmd, KEYS.privateKey), timeoutMs: 10_000 });
    expect(res.acks[0]?.status).toBe('accepted');
  });
});
