// The site file's mqtt section drives the ingest: loaded with the config loader, two gateways in one
// `$share/<group>/` subscription on mosquitto split the meter stream, with the region taken from the
// topic level counted after the $share prefix; together they account for every reading once.
import { afterEach, describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import type { MqttConfig } from '../../src/config/site-types.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { MeterFleet } from '../../simulators/meter-fleet/fleet.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { TestTelemetry, waitFor } from './harness.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

function siteYaml(url: string, clientId: string): string {
  return `version: 1
site: { id: share-test, region: eu, nominal_frequency_hz: 50 }
devices: []
mqtt:
  url: ${url}
  client_id: ${clientId}
  reconnect_min: 50ms
  reconnect_max: 500ms
  meters:
    topics: [$share/gateways/meters/+/+]
    region_topic_level: 1
    regions: [north, south]
    batch_max_wait: 20ms
`;
}

describe('shared subscription from the site file', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('two gateways split one stream; ingested + dropped == sent; both got a share', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    const gateways: Array<{ ingest: MeterIngest; tel: TestTelemetry }> = [];
    for (const id of ['gw-a', 'gw-b']) {
      const loaded = await loadSiteFromString(siteYaml(m.url, id), { profileChecks: modbusProfileChecks, file: 'share-site.yaml', env: {} });
      const mqttCfg = loaded.site.mqtt as MqttConfig;
      expect(mqttCfg.meters?.batch_max_wait_ms).toBe(20);
      expect(mqttCfg.meters?.dedupe_window_ms).toBe(600_000); // loader default
      const tel = new TestTelemetry();
      const ingest = new MeterIngest({ mqtt: mqttCfg, clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer });
      cleanups.push(() => tel.shutdown(), () => ingest.stop());
      await ingest.start();
      gateways.push({ ingest, tel });
    }
    await waitFor(() => gateways.every((g) => g.ingest.status().subscribed), 5000, 'both subscribed');
    const fleet = new MeterFleet({
      url: m.url, meters: 30, seed: 4, messages: 400, regionInPayload: false, faults: { out_of_range: 0.05, malformed_json: 0.05 },
    });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    const report = await fleet.run();
    await waitFor(() => gateways.reduce((n, g) => n + g.ingest.status().readings_ingested + g.ingest.status().readings_dropped, 0) >= report.readings, 10_000, 'all accounted');
    let ingested = 0;
    const dropped: Record<string, number> = {};
    for (const g of gateways) {
      const own = await g.tel.counterSum(METRICS.meterReadingsIngested);
      expect(own).toBeGreaterThan(0);
      ingested += own;
      for (const [k, v] of Object.entries(await g.tel.counterBy(METRICS.meterReadingsDropped, 'error_type'))) dropped[k] = (dropped[k] ?? 0) + v;
      // The region came from the topic (the payload has none), counted after the $share prefix.
      expect(Object.keys(await g.tel.counterBy(METRICS.meterReadingsIngested, 'region')).sort()).toEqual(['north', 'south']);
    }
    expect({ ingested, dropped }).toEqual({ ingested: report.expected.ingested, dropped: report.expected.dropped });
  });
});
