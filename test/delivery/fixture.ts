// Shared wiring of the delivery tests: a site with a delivery section (loaded through the real
// schema, so defaults and secrets resolve as in production), a seeded set of valid readings as the
// meter ingest hands them on, and a DeliveryService on a temp spool.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { loadSiteFromString } from '../../src/config/load.js';
import type { SiteConfig } from '../../src/config/site-types.js';
import { DeliveryService } from '../../src/delivery/delivery-service.js';
import type { ValidReading } from '../../src/meters/types.js';
import { parsePayload, type ParseResult } from '../../src/meters/validate.js';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { FleetGenerator } from '../../simulators/meter-fleet/generator.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

export async function deliverySite(sinksYaml: string, spoolYaml = '', env: NodeJS.ProcessEnv = {}): Promise<{ site: SiteConfig; dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-delivery-'));
  const yaml = [
    'version: 1', 'site: { id: site-d, region: north, nominal_frequency_hz: 50 }',
    'delivery:', '  spool:', `    directory: ${join(dir, 'spool')}`, ...spoolYaml.split('\n').filter((l) => l.trim() !== '').map((l) => `    ${l}`),
    '  sinks:', ...sinksYaml.split('\n').filter((l) => l.trim() !== '').map((l) => `    ${l}`), '',
  ].join('\n');
  const loaded = await loadSiteFromString(yaml, { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env });
  return { site: loaded.site, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `n` valid readings of a seeded fleet, as the ingest hands them to its sink (current timestamps). */
export function seededReadings(n: number, seed = 11, now = Date.now()): ValidReading[] {
  let tick = 0;
  const gen = new FleetGenerator({
    meters: Math.min(n, 2000), regions: ['north', 'south'], seed, batchSize: 100, faults: {}, topicPrefix: 'meters',
    regionInPayload: true, now: () => now - 60_000 + Math.floor(tick++ / 10),
  });
  const out: ValidReading[] = [];
  const scratch: ParseResult = { readings: [], rejections: [] };
  const ctx = { regions: new Set(['north', 'south']), regionTopicLevel: undefined, maxPayloadBytes: 1 << 20, futureSkewMs: 300_000 };
  while (out.length < n) {
    for (const m of gen.next()) {
      scratch.readings.length = 0;
      scratch.rejections.length = 0;
      parsePayload(Buffer.from(m.payload), m.topic, ctx, now, performance.now(), scratch);
      out.push(...scratch.readings);
    }
  }
  return out.slice(0, n);
}

export function newDelivery(site: SiteConfig, opts: { clock?: Clock; env?: NodeJS.ProcessEnv } = {}): { service: DeliveryService; meterProvider: MeterProvider } {
  const meterProvider = new MeterProvider();
  const delivery = site.delivery;
  if (!delivery) throw new Error('site has no delivery section');
  const service = new DeliveryService({
    config: delivery, site, env: opts.env ?? {}, meter: meterProvider.getMeter('test'), clock: opts.clock ?? systemClock, logger: silentLogger(),
  });
  return { service, meterProvider };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
