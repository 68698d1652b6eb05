// The export sent when the gateway stops (SIGTERM) carries the device gauges and availability of
// the last poll: telemetry stops last, and the pollers' figures must still be there when it does.
// Real parts: a simulated SunSpec inverter on loopback Modbus TCP, the composition root, and an
// OTLP receiver decoding the protobuf; the export interval is long, so the only export is the last.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { PullMetricReader } from '../../src/telemetry/pull-reader.js';
import type { StatusReport } from '../../src/status/status-model.js';
import { pollBudgetWarnings } from '../../src/modbus/poll-budget.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';
import { DEVICE_METRICS, METRICS } from '../../src/telemetry/semconv.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { startCli } from './cli-process.js';

describe('the export at shutdown', () => {
  let receiver: OtlpReceiver | undefined;
  let sims: SiteSimulators | undefined;
  let gw: Gateway | undefined;
  /** One simulated inverter polled every 200 ms, exported every 10 min to a fresh receiver (only the last export counts). */
  async function simulatedInverterSite(): Promise<{ loaded: Awaited<ReturnType<typeof loadSiteFromString>>; rx: OtlpReceiver }> {
    const rx = await OtlpReceiver.start();
    receiver = rx;
    const loaded = await loadSiteFromString(`version: 1
site: { id: final-export, region: north, nominal_frequency_hz: 50 }
devices:
  - { id: inverter-1, profile: sunspec-inverter-3ph, host: 127.0.0.1, port: 1502, poll_interval: 200ms }
telemetry: { otlp_endpoint: "${rx.url}", export_interval: 10m, export_timeout: 5s }
status: { host: 127.0.0.1, port: 0 }
`, { file: 'final-export.yaml', env: {}, metrics: DEVICE_METRICS, pollBudget: pollBudgetWarnings, profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0 });
    loaded.site.devices[0]!.port = sims.endpoints[0]!.server.port;
    return { loaded, rx };
  }
  afterEach(async () => {
    await gw?.stop();
    await sims?.close();
    await receiver?.stop();
    gw = undefined; sims = undefined; receiver = undefined;
  });

  it('carries ems.device.* and ems.modbus.device.up of the last poll', async () => {
    const { loaded, rx } = await simulatedInverterSite();
    gw = buildGateway(loaded, { env: {}, logger: silentLogger(), statusPort: 0 });
    await gw.start();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const st = (await (await fetch(`${gw.statusUrl()}status`)).json()) as StatusReport;
      const d = Array.isArray(st.devices) ? st.devices.find((x) => x.id === 'inverter-1') : undefined;
      if (d?.up === true && d.last_good_age_s !== null) break;
      if (Date.now() > deadline) throw new Error(`inverter-1 never came up: ${JSON.stringify(st.devices)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300)); // a full cycle with every point read
    expect(rx.metric(METRICS.modbusDeviceUp)).toEqual([]); // nothing exported yet: the interval is 10 min

    await gw.stop();
    gw = undefined;
    const up = rx.metric(METRICS.modbusDeviceUp).flatMap((m) => m.points);
    expect(up.map((p) => [p.attributes['device_id'], p.value])).toEqual([['inverter-1', 1]]);
    const power = rx.metric('ems.device.ac_power').flatMap((m) => m.points);
    expect(power.map((p) => p.attributes['device_id'])).toEqual(['inverter-1']);
    expect(rx.metric('ems.device.ac_frequency').flatMap((m) => m.points)[0]?.value).toBeGreaterThan(49);
  }, 40_000);

  it('a modbus part stopped at run time (isolated, not a shutdown) reports no frozen figures', async () => {
    const { loaded } = await simulatedInverterSite();
    const reader = new PullMetricReader();
    gw = buildGateway(loaded, { env: {}, logger: silentLogger(), statusPort: 0, extraMetricReaders: [reader] });
    reader.addProducer(gw.telemetry.gaugeProducer);   // the device gauges' path (only the OTLP reader has it built in)
    await gw.start();
    const names = async (): Promise<string[]> => {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics).filter((m) => m.dataPoints.length > 0).map((m) => m.descriptor.name)
        .filter((n) => n === METRICS.modbusDeviceUp || n.startsWith('ems.device.'));
    };
    const deadline = Date.now() + 20_000;
    while (!(await names()).includes('ems.device.ac_power')) {
      if (Date.now() > deadline) throw new Error('inverter-1 was never read');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await names()).toContain(METRICS.modbusDeviceUp);
    gw.lifecycle.reportFailure('modbus', new Error('test: the modbus part broke'));
    while (gw.lifecycle.health().find((h) => h.name === 'modbus')?.state !== 'failed' || gw.pollers.status().length > 0) {
      if (Date.now() > deadline) throw new Error('the modbus part did not stop');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The gateway keeps running; no poller refreshes the devices' values, so none is reported.
    expect(await names()).toEqual([]);
  }, 40_000);

  it('SIGTERM to `ems-gateway run` (built CLI): the last export carries them too', async () => {
    receiver = await OtlpReceiver.start();
    const site = (port: number): string => `version: 1
site: { id: final-export, region: north, nominal_frequency_hz: 50 }
devices:
  - { id: inverter-1, profile: sunspec-inverter-3ph, host: 127.0.0.1, port: ${port}, poll_interval: 200ms }
telemetry: { otlp_endpoint: "${receiver!.url}", export_interval: 10m, export_timeout: 5s }
status: { host: 127.0.0.1, port: 0 }
`;
    const loaded = await loadSiteFromString(site(1502), { file: 'final-export.yaml', env: {}, metrics: DEVICE_METRICS, pollBudget: pollBudgetWarnings, profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'ems-final-export-'));
    try {
      const file = join(dir, 'site.yaml');
      writeFileSync(file, site(sims.endpoints[0]!.server.port));
      const proc = startCli(['run', '--config', file], { LOG_LEVEL: 'info', OTEL_SDK_DISABLED: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' });
      try {
        await proc.waitFor(/"msg":"gateway running"/, 20_000);
        const url = (JSON.parse(proc.stdout().split('\n').find((l) => l.includes('"gateway running"')) ?? '{}') as { status_url: string }).status_url;
        const deadline = Date.now() + 20_000;
        while ((await fetch(`${url}readyz`)).status !== 200) {
          if (Date.now() > deadline) throw new Error('inverter-1 never came up');
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 300));
        expect(receiver.metric(METRICS.modbusDeviceUp)).toEqual([]);
        proc.kill('SIGTERM');
        expect(await proc.exited()).toBe(0);
      } finally {
        proc.kill('SIGKILL');
      }
      expect(receiver.metric(METRICS.modbusDeviceUp).flatMap((m) => m.points).map((p) => [p.attributes['device_id'], p.value])).toEqual([['inverter-1', 1]]);
      expect(receiver.metric('ems.device.ac_power').flatMap((m) => m.points).map((p) => p.attributes['device_id'])).toEqual(['inverter-1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
