// A subscription that vanishes mid-connection (the client believes it is subscribed, the broker
// delivers nothing: telegraf#16293) is noticed by the idle probe, and a reconnect restores the flow.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { MqttConnection } from '../../src/mqtt/connection.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

describe('flow check', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('an idle probe that does not come back triggers a reconnect and resubscribe; readings flow again', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = new MeterIngest({
      mqtt: mqttConfig(m.url), clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
      idleProbeMs: 500, probeTimeoutMs: 1000,
    });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    await waitFor(() => ingest.status().flow_confirmed, 5000, 'first probe');
    // Behind the gateway's back: the broker forgets the subscriptions.
    const client = (ingest as unknown as { connection: MqttConnection }).connection.mqttClient;
    await client?.unsubscribeAsync(['meters/#', `ems-gateway/probe/${client.options.clientId ?? ''}`]);
    await waitFor(() => ingest.status().reconnects >= 1, 8000, 'reconnect after a lost probe');
    await waitFor(() => ingest.status().flow_confirmed, 8000, 'flow confirmed again');
    const pub = await mqtt.connectAsync(m.url, { reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    await pub.publishAsync('meters/south/m-9', JSON.stringify({ meter_id: 'm-9', timestamp: Date.now(), kwh: 1, voltage: 230, current: 1, power_factor: 1 }), { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 1, 5000, 'reading after recovery');
    expect(ingest.status().connected).toBe(true);
  });
});
