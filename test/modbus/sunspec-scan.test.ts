// `ems-gateway sunspec scan` against the team simulator: reads only (no write reaches the device),
// the profile it writes loads and places every model of the device, and bad flags are refused
// with what to do, before anything is read.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../../simulators/modbus/index.js';
import { run as probe } from '../../src/cli/probe.js';
import { run } from '../../src/cli/sunspec.js';
import { loadProfile } from '../../src/modbus/profile-load.js';

const SUNSPEC = fileURLToPath(new URL('../../devices/sunspec-inverter-3ph.yaml', import.meta.url));
let server: ModbusSimServer;
let dir = '';

beforeAll(async () => {
  const profile = await loadProfile(SUNSPEC);
  const sim = createSimulatedDevice(profile, { sunspecLayout: { models: [{ id: 1, length: 66 }, { id: 103, length: 50 }, { id: 121, length: 30 }, { id: 123, length: 24 }] } });
  server = await startModbusServer({ units: new Map([[1, sim]]) });
  dir = await mkdtemp(join(tmpdir(), 'ems-scan-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], cmd: (a: string[]) => Promise<number> = run): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true; });
  try {
    return { code: await cmd(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('ems-gateway sunspec scan', () => {
  it('prints the chain, writes a profile that places every model, and never writes to the device', async () => {
    const file = join(dir, 'devices', 'ems-demo-sim-3ph-10k.yaml');
    const r = await cli(['scan', '--host', '127.0.0.1', '--port', String(server.port), '--unit', '1', '--write', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/\n {2}121\s+settings\s+40122\s+30\n/);
    expect(r.out).toContain("'SunS' at 40000");
    const p = await loadProfile(file);
    expect(p.sunspec_models?.map((m) => m.id)).toEqual([1, 103, 121, 123]);
    expect(p.controls.map((c) => c.id)).toEqual(['set_power_limit_pct', 'set_power_limit_revert_s', 'set_power_limit_enable']);
    expect(p.points.find((x) => x.name === 'W')).toMatchObject({ scale_factor: 'w_sf', unit: 'W', metric: 'ems.device.ac_power', sunspec: { model: 103, point: 'W', offset: 14 } });
    expect(p.points.find((x) => x.name === 'WH')?.sentinel).toEqual({ values: [0] });
    expect(server.writes).toEqual([]);
    // Not replaced without --force.
    const again = await cli(['scan', '--host', '127.0.0.1', '--port', String(server.port), '--write', file]);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/exists; add --force/);
  });

  it('a chain that repeats a model (two 160s): the written profile lists each model once and loads', async () => {
    const profile = await loadProfile(SUNSPEC);
    const twice = createSimulatedDevice(profile, { sunspecLayout: { models: [{ id: 1, length: 66 }, { id: 103, length: 50 }, { id: 160, length: 48 }, { id: 160, length: 48 }, { id: 123, length: 24 }] } });
    const other = await startModbusServer({ units: new Map([[1, twice]]) });
    try {
      const file = join(dir, 'devices', 'twice-160.yaml');
      const r = await cli(['scan', '--host', '127.0.0.1', '--port', String(other.port), '--unit', '1', '--write', file]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).not.toMatch(/does not validate/);
      const p = await loadProfile(file);
      expect(p.sunspec_models?.map((m) => m.id)).toEqual([1, 103, 160, 123]);
      expect(p.controls.map((c) => c.id)).toEqual(['set_power_limit_pct', 'set_power_limit_revert_s', 'set_power_limit_enable']);
      expect(readFileSync(file, 'utf8')).toMatch(/model 160 again at 40\d+ \(length 48\)/);
      expect(other.writes).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('refuses bad flags with what to do', async () => {
    await writeFile(join(dir, 'x.txt'), '');
    const cases: Array<[string[], RegExp]> = [
      [['scan'], /--host is required/],
      [['scan', '--host', 'h', '--unit', '0'], /--unit "0" is not a unit id \(1\.\.247; 0 is broadcast, never read\)/],
      [['scan', '--host', 'h', '--port', '70000'], /--port must be a port 0-65535, got "70000"/],
      [['scan', '--host', 'h', '--port', '0'], /--port must be 1-65535, got 0/],
      [['scan', '--host', 'h', '--write', 'devices/Bad Name.yaml'], /a profile file is <kebab-case-name>\.yaml/],
      [['scan', '--host', 'h', '--hots', 'x'], /unknown option --hots \(known: --host <value>/],
      [['probe'], /ems-gateway sunspec: unknown subcommand "probe" \(known: scan\)/],
      [[], /a subcommand is needed \(scan\)/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(re);
    }
  });

  it('a host that does not answer: exit 1 with the error type', async () => {
    const r = await cli(['scan', '--host', '127.0.0.1', '--port', '1', '--timeout', '300ms']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/127\.0\.0\.1:1 unit 1: connect_failed/);
  });

  it('probe reads a SunSpec profile where the device has each model, and says what it lacks', async () => {
    const profile = await loadProfile(SUNSPEC);
    const other = await startModbusServer({ units: new Map([[1, createSimulatedDevice(profile, { sunspecLayout: { base: 50000, models: [{ id: 1, length: 65 }, { id: 64001, length: 4 }, { id: 103, length: 50 }] } })]]) });
    try {
      const r = await cli(['--host', '127.0.0.1', '--port', String(other.port), '--unit', '1', '--profile', SUNSPEC], probe);
      expect(r.out).toContain("SunSpec chain ('SunS' at 50000): 1 common @50002+65, 64001 vendor @50069+4, 103 inverter_three_phase @50075+50");
      expect(r.out).toMatch(/not read: power_limit_pct, wmaxlimpct_sf, set_power_limit_pct, set_power_limit_revert_s, set_power_limit_enable: model 123 \(controls\) is not in the device's SunSpec chain/);
      expect(r.out).toMatch(/\noperating_state\s+50113\s+0x0004\s+4 MPPT\s/);
      expect(other.writes).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
