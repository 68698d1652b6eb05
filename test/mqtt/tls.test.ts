// TLS and mutual TLS against a real mosquitto with a CA made by the test: the right CA connects and
// readings flow, a wrong CA is refused, and a broker requiring client certificates refuses a
// gateway without one.
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttConfig } from '../../src/config/site-types.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { mqttClientOptions } from '../../src/mqtt/options.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from '../meters/harness.js';
import { makeTestPki, type TestPki } from './test-ca.js';

describe('MQTT over TLS (mosquitto)', () => {
  let pki: TestPki;
  beforeAll(() => { pki = makeTestPki(); });
  afterAll(() => pki.cleanup());
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function tlsBroker(requireCert: boolean): Promise<Mosquitto> {
    const m = await startMosquitto({
      listenerConf: ['listener {port} 127.0.0.1', `cafile ${pki.caFile}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`,
        `require_certificate ${requireCert}`, 'allow_anonymous true'],
    });
    cleanups.push(() => m.stop());
    return m;
  }

  function gateway(cfg: MqttConfig): { ingest: MeterIngest; tel: TestTelemetry } {
    const tel = new TestTelemetry();
    const ingest = new MeterIngest({ mqtt: cfg, clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer });
    cleanups.push(() => tel.shutdown(), () => ingest.stop());
    return { ingest, tel };
  }

  async function publishOne(cfg: MqttConfig): Promise<void> {
    const c = await mqtt.connectAsync(cfg.url, { ...mqttClientOptions(cfg, { clientIdSuffix: '-pub', clean: true }), connectTimeout: 5000 });
    try {
      await c.publishAsync('meters/north/m-1', JSON.stringify({ meter_id: 'm-1', timestamp: Date.now(), kwh: 1, voltage: 230, current: 2, power_factor: 1, region: 'north' }), { qos: 1 });
    } finally {
      await c.endAsync();
    }
  }

  it('the right CA: connects over mqtts:// and readings flow', async () => {
    const m = await tlsBroker(false);
    const cfg = mqttConfig(`mqtts://127.0.0.1:${m.port}`, { tls: { ca_file: pki.caFile, reject_unauthorized: true } });
    const { ingest } = gateway(cfg);
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 8000, 'subscribed over TLS');
    await publishOne(cfg);
    await waitFor(() => ingest.status().readings_ingested === 1, 5000, 'reading over TLS');
    expect(ingest.gridSamples()).toMatchObject([{ source: 'meters:north', role: 'load', unit: 'W', value: 460 }]);
  });

  it('a wrong CA is refused: never connected', async () => {
    const m = await tlsBroker(false);
    const cfg = mqttConfig(`mqtts://127.0.0.1:${m.port}`, { tls: { ca_file: pki.wrongCaFile, reject_unauthorized: true } });
    const { ingest } = gateway(cfg);
    await ingest.start();
    // Wait for several attempts (50..500 ms backoff): none may succeed.
    await waitFor(() => ingest.status().reconnects >= 2, 15_000, 'two reconnect attempts');
    expect(ingest.status().connected).toBe(false);
    await expect(mqtt.connectAsync(cfg.url, { ...mqttClientOptions(cfg, { clean: true }), connectTimeout: 3000 }))
      .rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it('mutual TLS: with the client certificate it connects, without one the broker refuses', async () => {
    const m = await tlsBroker(true);
    const url = `mqtts://127.0.0.1:${m.port}`;
    const withCert = mqttConfig(url, { tls: { ca_file: pki.caFile, cert_file: pki.clientCert, key_file: pki.clientKey, reject_unauthorized: true } });
    const { ingest } = gateway(withCert);
    await ingest.start();
    await waitFor(() => ingest.status().subscribed, 8000, 'subscribed with mutual TLS');
    await publishOne(withCert);
    await waitFor(() => ingest.status().readings_ingested === 1, 5000, 'reading over mutual TLS');

    const noCert = mqttConfig(url, { tls: { ca_file: pki.caFile, reject_unauthorized: true } });
    const other = gateway(noCert).ingest;
    await other.start();
    await waitFor(() => other.status().reconnects >= 2, 15_000, 'two reconnect attempts without a certificate');
    expect(other.status().connected).toBe(false);
  });

  it('cert_file without key_file is a config error naming both', () => {
    expect(() => mqttClientOptions(mqttConfig('mqtts://127.0.0.1:1', { tls: { ca_file: pki.caFile, cert_file: pki.clientCert, reject_unauthorized: true } })))
      .toThrow(/cert_file and key_file/);
    expect(() => mqttClientOptions(mqttConfig('mqtts://127.0.0.1:1', { tls: { ca_file: '/nonexistent/ca.pem', reject_unauthorized: true } })))
      .toThrow(/ca_file: cannot read '\/nonexistent\/ca.pem'/);
  });
});
