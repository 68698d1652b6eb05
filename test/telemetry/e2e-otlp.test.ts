// End to end: the demo site (simulated Modbus devices on loopback, an embedded MQTT broker, a
// meter fleet, a signed DR command) runs through the real composition root for a few seconds and
// exports OTLP/HTTP protobuf to a receiver started here, which decodes the bytes with protobufjs
// against the vendored official OTLP .proto files (never the SDK's in-memory objects). Asserts
// every seed metric and span: exact names, units, kinds, attribute keys, and the resource.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERTS } from '../../src/alerts/definitions.js';
import { loadSite } from '../../src/config/load.js';
import type { LoadedSite } from '../../src/config/site-types.js';
import { buildCommand, sendCommand, signedMessage } from '../../src/demand-response/sender.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { BUCKETS, METRICS, RESOURCE_ATTRS, SPANS, SPAN_ATTRS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { MeterFleet } from '../../simulators/meter-fleet/fleet.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import { OtlpReceiver, type ReceivedMetric, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The seed contract (product.md): name -> kind, unit, metric attribute keys (exact sets). */
const SEED_METRICS: Record<string, { kind: ReceivedMetric['kind']; unit: string; attrs: string[][] }> = {
  [METRICS.meterReadingsIngested]: { kind: 'sum', unit: '{reading}', attrs: [['region']] },
  [METRICS.meterReadingsDropped]: { kind: 'sum', unit: '{reading}', attrs: [['error_type', 'region']] },
  [METRICS.meterIngestionLatency]: { kind: 'histogram', unit: 'ms', attrs: [['region']] },
  [METRICS.meterDataAge]: { kind: 'histogram', unit: 's', attrs: [['region']] },
  [METRICS.gridFrequency]: { kind: 'gauge', unit: 'Hz', attrs: [[]] },
  [METRICS.gridTotalGeneration]: { kind: 'gauge', unit: 'MW', attrs: [[]] },
  [METRICS.gridTotalLoad]: { kind: 'gauge', unit: 'MW', attrs: [[]] },
};

const SEED_SPANS: Record<string, { required: string[]; optional?: string[] }> = {
  [SPANS.meterProcessBatch]: { required: [SPAN_ATTRS.batchSize, SPAN_ATTRS.batchSuccess, SPAN_ATTRS.batchFailed, SPAN_ATTRS.batchDurationMs] },
  [SPANS.meterProcessReading]: { required: [SPAN_ATTRS.meterId, SPAN_ATTRS.region, SPAN_ATTRS.writeLatencyMs], optional: [SPAN_ATTRS.validation] },
  [SPANS.drSend]: {
    required: [SPAN_ATTRS.drCommandType, SPAN_ATTRS.drTargetZone, SPAN_ATTRS.drReductionMw, SPAN_ATTRS.drDurationMinutes,
      SPAN_ATTRS.drControllerCount, SPAN_ATTRS.drAckCount, SPAN_ATTRS.drAckRate],
  },
  [SPANS.drControllerCmd]: { required: [SPAN_ATTRS.controllerId, SPAN_ATTRS.controllerType, SPAN_ATTRS.cmdLatencyMs, SPAN_ATTRS.cmdAcknowledged] },
  [SPANS.gridStateUpdate]: {
    required: [SPAN_ATTRS.gridGenerationMw, SPAN_ATTRS.gridLoadMw, SPAN_ATTRS.gridImbalanceMw, SPAN_ATTRS.gridImbalancePct,
      SPAN_ATTRS.gridFrequencyHz, SPAN_ATTRS.gridFrequencyDeviationHz],
  },
};

describe('end-to-end OTLP export of a running site', () => {
  let receiver: OtlpReceiver;
  let broker: EmbeddedBroker;
  let sims: SiteSimulators;
  let gateway: Gateway | undefined;
  let loaded: LoadedSite;
  const tmp = mkdtempSync(path.join(tmpdir(), 'ems-e2e-'));

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    broker = await startEmbeddedBroker();
    loaded = await loadSite(path.join(ROOT, 'config/demo-site.yaml'), { profileChecks: modbusProfileChecks, env: {} });
    sims = await startSiteSimulators(loaded, { port: 0 });
    const { site } = loaded;
    // The demo site on the ports the simulators got, exporting fast to this test's receiver.
    for (const ep of sims.endpoints) {
      for (const d of ep.devices) {
        const dev = site.devices.find((x) => x.id === d.id);
        if (dev) dev.port = ep.server.port;
      }
    }
    const mqtt = site.mqtt;
    if (!mqtt?.meters || !mqtt.demand_response) throw new Error('demo site lost its mqtt.meters / demand_response sections');
    mqtt.url = broker.url;
    mqtt.client_id = 'e2e-gateway';
    mqtt.meters.reading_span_ratio = 0.5;
    // The fleet simulator publishes to meters/<region>/<meter_id>; the demo file subscribes meters/+/readings.
    mqtt.meters.topics = ['meters/+/+'];
    mqtt.demand_response.state_file = path.join(tmp, 'dr-state.json');
    mqtt.meters.state_file = path.join(tmp, 'meter-state.json');
    site.telemetry = { ...site.telemetry, enabled: true, otlp_endpoint: receiver.url, export_interval_ms: 1000, export_timeout_ms: 1000 };
    // (1 s: a shorter export timeout fails on a loaded machine, and the test asserts a healthy run has no failed export)
    site.grid.update_interval_ms = 300;
    site.alerts.evaluate_interval_ms = 300;
    site.status.enabled = false;

    const gw = buildGateway(loaded, { env: {}, logger: silentLogger() });
    gateway = gw;
    await gw.start();

    // Meter traffic with a few faults, so readings are both ingested and dropped.
    const fleet = new MeterFleet({
      url: broker.url, protocolVersion: 4, meters: 40, regions: ['north', 'south'], messages: 300, rate: 300, seed: 7,
      faults: { malformed_json: 0.03, out_of_range: 0.03, stale: 0.05 },
    });
    await fleet.start();
    try {
      await fleet.run();
    } finally {
      await fleet.stop();
    }

    // One signed curtailment for zone-a (the demo key: config/keys/README.md).
    const key = createPrivateKey(readFileSync(path.join(ROOT, 'config/keys/demo-dr.key')));
    const cmd = buildCommand({ siteId: site.site.id, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: 5 });
    const gatewayKey = createPublicKey(createPrivateKey(readFileSync(path.join(ROOT, 'config/keys/demo-gateway.key'))));
    const res = await sendCommand({
      mqtt: { ...mqtt, client_id: 'e2e-ems' }, dr: mqtt.demand_response, siteId: site.site.id, commandId: cmd.command_id,
      message: signedMessage(cmd, key), timeoutMs: 10_000, gatewayKeys: [gatewayKey],
    });
    expect(res.timedOut).toBe(false);

    await receiver.waitFor((r) => {
      const names = r.metricNames();
      const spans = r.spanNames();
      return Object.keys(SEED_METRICS).every((n) => names.has(n)) && Object.keys(SEED_SPANS).every((n) => spans.has(n))
        && r.metric(METRICS.gridFrequency).length > 0 && r.metric(METRICS.alertFiring).length > 0;
    }, 15_000, () => {
      const names = receiver.metricNames();
      const spans = receiver.spanNames();
      return `every seed metric and span; missing: ${[...Object.keys(SEED_METRICS).filter((n) => !names.has(n)), ...Object.keys(SEED_SPANS).filter((n) => !spans.has(n))].join(', ')}`
        + `; got metrics ${[...names].join(', ')}`;
    });
  }, 40_000);

  afterAll(async () => {
    await gateway?.stop();
    await sims?.close();
    await broker?.close();
    await receiver?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('exports all seven seed metrics with exact names, kinds, units and attribute keys', () => {
    for (const [name, want] of Object.entries(SEED_METRICS)) {
      const occurrences = receiver.metric(name);
      expect(occurrences.length, name).toBeGreaterThan(0);
      for (const m of occurrences) {
        expect(m.kind, name).toBe(want.kind);
        expect(m.unit, name).toBe(want.unit);
        expect(m.scope, name).toBe('ems-gateway');
        for (const p of m.points) expect(want.attrs, `${name} attribute keys`).toContainEqual(Object.keys(p.attributes).sort());
        if (m.kind === 'sum') expect(m).toMatchObject({ monotonic: true, temporality: 2 });
      }
    }
    const latency = receiver.metric(METRICS.meterIngestionLatency).flatMap((m) => m.points);
    expect(latency[0]?.explicitBounds).toEqual(BUCKETS.ingestionLatencyMs);
    expect(receiver.metric(METRICS.meterDataAge)[0]?.points[0]?.explicitBounds).toEqual(BUCKETS.dataAgeSeconds);
    // Values are the site's, in the right units: frequency about 50 Hz; generation and load in MW, not kW.
    const last = (name: string): number => receiver.metric(name).flatMap((m) => m.points).at(-1)?.value ?? Number.NaN;
    expect(Math.abs(last(METRICS.gridFrequency) - 50)).toBeLessThan(0.5);
    // (the simulated PV follows the sun, so generation may be 0 at night; load never is)
    expect(last(METRICS.gridTotalGeneration)).toBeGreaterThanOrEqual(0);
    expect(last(METRICS.gridTotalGeneration)).toBeLessThan(50);
    expect(last(METRICS.gridTotalLoad)).toBeGreaterThan(0);
    expect(last(METRICS.gridTotalLoad)).toBeLessThan(50);
    const dropped = receiver.metric(METRICS.meterReadingsDropped).flatMap((m) => m.points).map((p) => p.attributes['error_type']);
    expect(dropped).toContain('malformed_json');
  });

  it('exports the device gauges of the profiles: unit from the profile, device attributes, site on the resource only', async () => {
    const deviceIds = (): Set<unknown> => new Set([...receiver.metricNames()].filter((n) => n.startsWith('ems.device.'))
      .flatMap((n) => receiver.metric(n).flatMap((m) => m.points.map((p) => p.attributes['device_id']))));
    const all = ['inverter-1', 'inverter-2', 'bms-1', 'grid-meter-1', 'load-controller-a', 'load-controller-b'];
    // Every device of the demo site feeds at least one gauge (the BMS is polled every 2 s).
    await receiver.waitFor(() => all.every((id) => deviceIds().has(id)), 10_000,
      () => `a device gauge from every demo device; got ${[...deviceIds()].join(', ')}`);
    const freq = receiver.metric('ems.device.ac_frequency');
    expect(freq.length).toBeGreaterThan(0);
    for (const m of freq) {
      expect(m.kind).toBe('gauge');
      expect(m.unit).toBe('Hz');
      for (const p of m.points) expect(Object.keys(p.attributes).sort()).toEqual(['device_id', 'point', 'role', 'zone']);
    }
    const meter = freq.flatMap((m) => m.points).find((p) => p.attributes['device_id'] === 'grid-meter-1');
    // `role` is the device's role in the site file (the point's own role is in the profile).
    expect(meter?.attributes).toMatchObject({ point: 'frequency', role: 'pcc-meter', zone: 'zone-a' });
    expect(Math.abs((meter?.value ?? 0) - 50)).toBeLessThan(0.5);
  }, 20_000);

  it('exports all five seed spans with their attribute keys', () => {
    const spans = receiver.spans();
    for (const [name, want] of Object.entries(SEED_SPANS)) {
      const ofName = spans.filter((s) => s.name === name);
      expect(ofName.length, name).toBeGreaterThan(0);
      const complete = ofName.find((s) => want.required.every((k) => k in s.attributes));
      expect(complete, `${name} with ${want.required.join(', ')}; got ${JSON.stringify(ofName[0]?.attributes)}`).toBeDefined();
    }
    // Parent links: readings under their batch, controller commands under their DR send.
    const byId = new Map<string, ReceivedSpan>(spans.map((s) => [s.spanId, s]));
    const reading = spans.find((s) => s.name === SPANS.meterProcessReading);
    expect(byId.get(reading?.parentSpanId ?? '')?.name).toBe(SPANS.meterProcessBatch);
    const cmd = spans.find((s) => s.name === SPANS.drControllerCmd);
    expect(byId.get(cmd?.parentSpanId ?? '')?.name).toBe(SPANS.drSend);
    const send = spans.find((s) => s.name === SPANS.drSend && SPAN_ATTRS.drAckRate in s.attributes);
    expect(send?.attributes).toMatchObject({ [SPAN_ATTRS.drCommandType]: 'curtail', [SPAN_ATTRS.drTargetZone]: 'zone-a' });
    // A failed reading carries ems.validation.
    const failed = spans.filter((s) => s.name === SPANS.meterProcessReading && SPAN_ATTRS.validation in s.attributes);
    expect(failed.length).toBeGreaterThan(0);
  });

  it('puts the site, service and host on the resource of every request', () => {
    const resources = receiver.resourceAttributes();
    expect(resources.length).toBeGreaterThan(2);
    for (const r of resources) {
      expect(r).toMatchObject({
        'service.name': 'ems-gateway', [RESOURCE_ATTRS.siteId]: 'demo-substation', [RESOURCE_ATTRS.siteRegion]: 'north',
      });
      for (const k of ['service.version', 'service.instance.id', 'host.name']) expect(typeof r[k], k).toBe('string');
    }
    expect(gateway?.telemetry.exporterHealth()).toMatchObject({ metrics: { state: 'ok', failures: 0 }, traces: { state: 'ok', failures: 0 } });
  });

  it('exports the local alert evaluation too: ems.alert.firing for every alert, and the status section', () => {
    const alertNames = new Set(receiver.metric(METRICS.alertFiring).flatMap((m) => m.points).map((p) => p.attributes['alert']));
    expect([...alertNames].sort()).toEqual(ALERTS.map((a) => a.id).sort());
    expect([...alertNames]).toEqual(expect.arrayContaining(['dr_not_acknowledged', 'frequency_excursion', 'ingestion_drops', 'slow_ingestion', 'stale_meter_data']));
    // The fleet's 3 % malformed and 3 % out-of-range readings put drops far above 0.1 %: pending (for: 5m), not yet firing.
    // The status endpoint's alerts section: always every alert, from the same evaluation.
    const section = gateway?.status().alerts;
    expect(Array.isArray(section) ? section.map((a) => a.name).sort() : section).toEqual([...alertNames].sort());
    expect(gateway?.alerts.states().find((s) => s.alert === 'ingestion_drops' && s.state !== 'inactive')?.state).toBe('pending');
  });
});
