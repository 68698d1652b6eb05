// Username/password against mosquitto's password file: the right password connects and readings
// flow; a wrong one is refused at CONNACK, retried with backoff, and crashes nothing.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { mqttConfig, TestTelemetry, waitFor } from '../meters/harness.js';

describe('MQTT username/password (mosquitto)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('the right password connects; a wrong one is refused and retried without crashing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-mqtt-auth-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pwfile = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-b', '-c', pwfile, 'gateway', 's3cret'], { stdio: 'ignore', timeout: 10_000 });
    chmodSync(dir, 0o755); // mosquitto started as root reads it after dropping privileges
    chmodSync(pwfile, 0o644);
    const m = await startMosquitto({ listenerConf: ['listener {port} 127.0.0.1', 'allow_anonymous false', `password_file ${pwfile}`] });
    cleanups.push(() => m.stop());

    const start = async (password: string): Promise<MeterIngest> => {
      const tel = new TestTelemetry();
      const ingest = new MeterIngest({
        mqtt: mqttConfig(m.url, { username: 'gateway', password }), clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
      });
      cleanups.push(() => tel.shutdown(), () => ingest.stop());
      await ingest.start();
      return ingest;
    };
    const good = await start('s3cret');
    const bad = await start('wrong');
    await waitFor(() => good.status().subscribed, 5000, 'authenticated gateway subscribed');
    const pub = await mqtt.connectAsync(m.url, { username: 'gateway', password: 's3cret', reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    await pub.publishAsync('meters/north/m-1', JSON.stringify({ meter_id: 'm-1', timestamp: Date.now(), kwh: 1, voltage: 230, current: 1, power_factor: 1 }), { qos: 1 });
    await waitFor(() => good.status().readings_ingested === 1, 5000, 'reading');
    await waitFor(() => bad.status().reconnects >= 2, 5000, 'refused gateway retries');
    expect(bad.status().connected).toBe(false);
  });
});
