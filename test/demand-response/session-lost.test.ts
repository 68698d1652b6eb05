// The DR command subscription's broker session: a broker that comes back without it (the embedded
// broker replaced on the same port, as a broker restarted without its saved sessions) is counted
// for the `dr` client and shown in the service's status; the subscription is made again and a
// command sent afterwards is answered.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/runtime/clock.js';
import { brokerSession } from '../../src/status/adapters.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { buildCommand, sendCommand, signedMessage } from '../../src/demand-response/sender.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

describe('DR client: lost broker session', () => {
  let broker: EmbeddedBroker | undefined;
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    await broker?.close();
    rig = undefined;
    broker = undefined;
  });

  it('counted as ems.mqtt.session_lost{client="dr"} and in status; commands flow again', async () => {
    broker = await startEmbeddedBroker();
    const r = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock, mqttUrl: broker.url });
    rig = r;
    const service = r.service;
    if (!service) throw new Error('no DR service');
    expect(service.status().session).toEqual({ persistent: true, lost: 0 });
    expect(await r.counter(METRICS.mqttSessionLost)).toEqual([{ attrs: { client: 'dr' }, value: 0 }]);

    const port = broker.port;
    await broker.close();
    broker = await startEmbeddedBroker({ port });
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
