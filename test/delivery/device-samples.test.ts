// Device samples (`record: true`) end to end: the gateway (the real composition root) polls a
// Modbus/TCP device under this test's control and its samples reach a real PostgreSQL through the
// spool. The device answers each cycle with values that name the cycle, a "not implemented"
// sentinel in one point, and an exception for the second read block on every even cycle: in the
// table, every sample carries the cycle's own values, the sentinel point never appears, and a
// failed read is absent from that cycle's sample, never repeated from the cycle before.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { startPostgres, type PostgresPeer } from '../../bench/lib/store-peers.js';
import { exceptionFrame, registersFrame, startRawServer, type RawServer } from '../modbus/endpoint-helpers.js';
import { hasPeer } from '../peers.js';
import { waitFor } from './fixture.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const PROFILE = [
  'vendor: Test', 'model: Recorded', 'kind: other', 'address_base: 0',
  'quirks: { max_gap_registers: 0, timeout: 800ms }',
  'points:',
  '  - { id: power, table: holding, address: 0, type: uint16, unit: W, metric: ems.test.power, role: other }',
  '  - { id: reserved, table: holding, address: 1, type: uint16, unit: W, metric: ems.test.reserved, role: other }',
  '  - { id: energy, table: holding, address: 100, type: uint16, unit: kWh, metric: ems.test.energy, role: other }',
  '',
].join('\n');

describe.skipIf(!hasPeer('postgres'))('device samples (record: true) through the gateway to PostgreSQL', () => {
  let pg: PostgresPeer;
  let device: RawServer;
  let gateway: Gateway | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ems-samples-'));
  /** Cycle number per first-block read; the second block answers for the cycle of the last first-block read. */
  let cycle = 0;

  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
    device = await startRawServer((r, sock) => {
      if (r.address === 0) {
        cycle += 1;
        // power = 100 + cycle; reserved = 0xFFFF, the uint16 "not implemented" sentinel.
        sock.write(registersFrame(r, [100 + cycle, 0xffff].slice(0, r.count)));
      } else if (cycle % 2 === 0) {
        sock.write(exceptionFrame(r, 4));
      } else {
        sock.write(registersFrame(r, [500 + cycle]));
      }
    });
  }, 90_000);
  afterAll(async () => {
    await gateway?.stop();
    await device?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("each poll's values arrive with the sentinel point absent and a failed read absent, not repeated", async () => {
    writeFileSync(join(dir, 'recorded-test.yaml'), PROFILE);
    const yaml = [
      'version: 1', 'site: { id: site-s, region: north, nominal_frequency_hz: 50 }', `profiles_dir: ${dir}`,
      'devices:', `  - { id: rec-1, profile: recorded-test, host: 127.0.0.1, port: ${device.port}, unit_id: 1, zone: zone-r, poll_interval: 200ms, record: true }`,
      'delivery:', `  spool: { directory: ${join(dir, 'spool')} }`,
      '  sinks:', `    postgres: { url: "${pg.url}", device_table: samples, batch_max_wait: 20ms, max_rate: 0 }`,
      'telemetry: { enabled: false }', 'status: { enabled: false }', '',
    ].join('\n');
    const loaded = await loadSiteFromString(yaml, { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env: {} });
    const gw = buildGateway(loaded, { env: {}, logger: silentLogger() });
    gateway = gw;
    await gw.start();
    const count = async (): Promise<number> => Number((await pg.query<{ n: string }>("SELECT count(DISTINCT ts) AS n FROM samples WHERE point = 'power'").catch(() => [{ n: '0' }]))[0]?.n ?? 0);
    await waitFor(async () => (await count()) >= 8, 60_000, 'eight samples in PostgreSQL');
    await gw.stop();
    gateway = undefined;

    const rows = await pg.query<{ device_id: string; point: string; t: string; zone: string; site: string; value: number }>(
      'SELECT device_id, point, (extract(epoch from ts) * 1000)::bigint AS t, zone, site, value FROM samples ORDER BY ts, point');
    expect(new Set(rows.map((r) => `${r.device_id} ${r.zone} ${r.site}`))).toEqual(new Set(['rec-1 zone-r site-s']));
    expect(new Set(rows.map((r) => r.point))).toEqual(new Set(['power', 'energy'])); // never the sentinel point
    const byTs = new Map<string, Map<string, number>>();
    for (const r of rows) {
      const m = byTs.get(r.t) ?? new Map<string, number>();
      m.set(r.point, r.value);
      byTs.set(r.t, m);
    }
    const cycles: number[] = [];
    for (const [t, m] of byTs) {
      const power = m.get('power');
      expect(power, `sample at ${t} has the power point`).toBeDefined();
      const c = (power as number) - 100;
      cycles.push(c);
      // Odd cycles read energy, of this very cycle; even cycles failed that read: absent, not the last value.
      if (c % 2 === 1) expect([...m.entries()].sort()).toEqual([['energy', 500 + c], ['power', 100 + c]]);
      else expect([...m.keys()]).toEqual(['power']);
    }
    // One sample per cycle, each cycle once, in order.
    expect(cycles).toEqual([...cycles].sort((a, b) => a - b));
    expect(new Set(cycles).size).toBe(cycles.length);
    expect(cycles.filter((c) => c % 2 === 0).length).toBeGreaterThanOrEqual(3);
    expect(cycles.filter((c) => c % 2 === 1).length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
