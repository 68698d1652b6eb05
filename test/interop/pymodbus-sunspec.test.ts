// Acceptance, SunSpec discovery against an independent implementation: pymodbus 3.0 servers
// (test/interop/pymodbus-sunspec-server.py builds the register maps itself, with Python's struct)
// laid out unlike the team simulator: model 1 of length 65 and of 66; models 1, 103, 120, 123;
// models 1, 113, 160 without 123 at base 50000; vendor models, a longer model 103 and model 122
// in between at base 0. The gateway reads exactly what each datasheet below lists (offsets from
// the SunSpec model definitions), exports nothing for a model the device lacks, and the profile
// `ems-gateway sunspec scan --write` writes for each device reads the same values.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as sunspecCli } from '../../src/cli/sunspec.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import type { DeviceConfig, LoadedSite, SiteConfig } from '../../src/config/site-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { flatten, testMeter } from '../modbus/poller-fixtures.js';
import { DEBIAN_PYTHON } from '../peers.js';

const SCRIPT = fileURLToPath(new URL('./pymodbus-sunspec-server.py', import.meta.url));
const INT_PROFILE = fileURLToPath(new URL('../../devices/sunspec-inverter-3ph.yaml', import.meta.url));
const FLOAT_PROFILE = fileURLToPath(new URL('../../devices/sunspec-inverter-3ph-float.yaml', import.meta.url));

type Raw = [number, 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'str', number | string, number?];
interface ModelSheet { id: number; length: number; points?: Raw[] }
interface Datasheet {
  name: string;
  base: number;
  models: ModelSheet[];
  /** What the datasheet says each point reads, in engineering units, by SunSpec point name. */
  values: Record<string, number>;
  identity: { Mn: string; Md: string; SN: string };
  /** The profile that reads it (the shipped integer or float profile). */
  profile: 'int' | 'float';
}

const common = (length: 65 | 66, mn: string, md: string, vr: string, sn: string): ModelSheet => ({
  id: 1, length, points: [[2, 'str', mn, 16], [18, 'str', md, 16], [42, 'str', vr, 8], [50, 'str', sn, 16], [66, 'u16', 1]],
});

// Model 103 (integer + scale factors), offsets from the ID register.
const m103 = (length: number, v: Record<string, number>): ModelSheet => ({
  id: 103, length, points: [
    [2, 'u16', v.A!], [3, 'u16', v.AphA!], [4, 'u16', v.AphB!], [5, 'u16', v.AphC!], [6, 'i16', v.A_SF!],
    [10, 'u16', v.PhVphA!], [11, 'u16', v.PhVphB!], [12, 'u16', v.PhVphC!], [13, 'i16', v.V_SF!],
    [14, 'i16', v.W!], [15, 'i16', v.W_SF!], [16, 'u16', v.Hz!], [17, 'i16', v.Hz_SF!], [18, 'i16', v.VA!], [19, 'i16', v.VA_SF!],
    [20, 'i16', v.VAr!], [21, 'i16', v.VAr_SF!], [22, 'i16', v.PF!], [23, 'i16', v.PF_SF!], [24, 'u32', v.WH!], [26, 'i16', v.WH_SF!],
    [31, 'i16', v.DCW!], [32, 'i16', v.DCW_SF!], [33, 'i16', v.TmpCab!], [37, 'i16', v.Tmp_SF!], [38, 'u16', v.St!], [40, 'u32', v.Evt1!],
    ...(length > 50 ? [[50, 'u16', 0xbeef], [51, 'u16', 0xdead]] as Raw[] : []),
  ],
});

const m123 = (pct: number, sf: number): ModelSheet => ({ id: 123, length: 24, points: [[5, 'u16', pct], [7, 'u16', 0], [9, 'u16', 1], [23, 'i16', sf]] });

const SHEETS: Datasheet[] = [
  {
    name: 'int-65', base: 40000, profile: 'int', identity: { Mn: 'Fronius', Md: 'Symo 10.0-3-M', SN: '31234567' },
    models: [
      common(65, 'Fronius', 'Symo 10.0-3-M', '3.14.1-10', '31234567'),
      m103(50, { A: 1234, AphA: 411, AphB: 412, AphC: 411, A_SF: -2, PhVphA: 2301, PhVphB: 2305, PhVphC: 2299, V_SF: -1, W: 4520, W_SF: 0, Hz: 5001, Hz_SF: -2,
        VA: 4600, VA_SF: 0, VAr: -120, VAr_SF: 0, PF: -985, PF_SF: -1, WH: 1234567, WH_SF: 1, DCW: 4700, DCW_SF: 0, TmpCab: 385, Tmp_SF: -1, St: 4, Evt1: 0 }),
      m123(800, -1),
    ],
    values: { A: 12.34, AphA: 4.11, AphB: 4.12, AphC: 4.11, PhVphA: 230.1, PhVphB: 230.5, PhVphC: 229.9, W: 4520, Hz: 50.01, VA: 4600, VAr: -120, PF: -0.985,
      WH: 12345670, DCW: 4700, TmpCab: 38.5, St: 4, Evt1: 0, WMaxLimPct: 80 },
  },
  {
    name: 'int-66-nameplate', base: 40000, profile: 'int', identity: { Mn: 'SMA', Md: 'STP 10.0-3AV-40', SN: '3005012345' },
    models: [
      common(66, 'SMA', 'STP 10.0-3AV-40', '4.01.15.R', '3005012345'),
      m103(50, { A: 4210, AphA: 1403, AphB: 1404, AphC: 1403, A_SF: -2, PhVphA: 2310, PhVphB: 2315, PhVphC: 2320, V_SF: -1, W: 9870, W_SF: 0, Hz: 4998, Hz_SF: -2,
        VA: 9900, VA_SF: 0, VAr: 300, VAr_SF: 0, PF: 997, PF_SF: -1, WH: 98765, WH_SF: 3, DCW: 1010, DCW_SF: 1, TmpCab: 512, Tmp_SF: -1, St: 5, Evt1: 0x81 }),
      { id: 120, length: 26, points: [[2, 'u16', 4], [3, 'u16', 10000], [4, 'i16', 0]] },
      m123(60, 0),
    ],
    values: { A: 42.1, AphA: 14.03, AphB: 14.04, AphC: 14.03, PhVphA: 231, PhVphB: 231.5, PhVphC: 232, W: 9870, Hz: 49.98, VA: 9900, VAr: 300, PF: 0.997,
      WH: 98765000, DCW: 10100, TmpCab: 51.2, St: 5, Evt1: 0x81, WMaxLimPct: 60 },
  },
  {
    name: 'float-160-no-123', base: 50000, profile: 'float', identity: { Mn: 'Huawei', Md: 'SUN2000-10KTL', SN: 'HV2211' },
    models: [
      common(66, 'Huawei', 'SUN2000-10KTL', 'V100R001', 'HV2211'),
      { id: 113, length: 60, points: [
        [2, 'f32', 21.5], [4, 'f32', 7.25], [6, 'f32', 7], [8, 'f32', 7.25], [16, 'f32', 229.5], [18, 'f32', 230.25], [20, 'f32', 231],
        [22, 'f32', 4950.5], [24, 'f32', 49.96875], [26, 'f32', 5000], [28, 'f32', -250.5], [30, 'f32', 99.5], [32, 'f32', 7654321],
        [38, 'f32', 5100.25], [40, 'f32', 41.75], [48, 'u16', 4], [50, 'u32', 0],
      ] },
      { id: 160, length: 48, points: [[2, 'i16', -2], [3, 'i16', -1], [4, 'i16', 0], [8, 'u16', 2], [10, 'u16', 1], [11, 'str', 'MPPT1', 8]] },
    ],
    values: { A: 21.5, AphA: 7.25, AphB: 7, AphC: 7.25, PhVphA: 229.5, PhVphB: 230.25, PhVphC: 231, W: 4950.5, Hz: 49.96875, VA: 5000, VAr: -250.5, PF: 0.995,
      WH: 7654321, DCW: 5100.25, TmpCab: 41.75, St: 4, Evt1: 0 },
  },
  {
    name: 'vendor-models-between', base: 0, profile: 'int', identity: { Mn: 'SolarEdge', Md: 'SE10K', SN: '7E1234AB' },
    models: [
      common(65, 'SolarEdge', 'SE10K', '0004.0018.0518', '7E1234AB'),
      { id: 64110, length: 30, points: [[2, 'str', 'SunS', 2], [4, 'u16', 103], [5, 'u16', 50], [10, 'u16', 0xffff]] },
      m103(52, { A: 2500, AphA: 833, AphB: 834, AphC: 833, A_SF: -2, PhVphA: 2288, PhVphB: 2291, PhVphC: 2290, V_SF: -1, W: 5750, W_SF: 0, Hz: 5003, Hz_SF: -2,
        VA: 5800, VA_SF: 0, VAr: 10, VAr_SF: 0, PF: 990, PF_SF: -1, WH: 4444444, WH_SF: 0, DCW: 590, DCW_SF: 1, TmpCab: 447, Tmp_SF: -1, St: 4, Evt1: 0 }),
      { id: 122, length: 44, points: [[2, 'u16', 1], [31, 'u16', 9000], [32, 'i16', 0]] },
      { id: 64900, length: 4, points: [[2, 'u16', 0x1234]] },
      m123(1000, -1),
    ],
    values: { A: 25, AphA: 8.33, AphB: 8.34, AphC: 8.33, PhVphA: 228.8, PhVphB: 229.1, PhVphC: 229, W: 5750, Hz: 50.03, VA: 5800, VAr: 10, PF: 0.99,
      WH: 4444444, DCW: 5900, TmpCab: 44.7, St: 4, Evt1: 0, WMaxLimPct: 100 },
  },
];

/** The chain each datasheet implies: [id, start, length]. */
function chainOf(s: Datasheet): Array<[number, number, number]> {
  let at = s.base + 2;
  return s.models.map((m) => { const r: [number, number, number] = [m.id, at, m.length]; at += 2 + m.length; return r; });
}

let child: ChildProcess | undefined;
let dir = '';
const ports = new Map<string, number>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ems-sunspec-'));
  for (const s of SHEETS) ports.set(s.name, await freePort());
  const spec = { devices: SHEETS.map((s) => ({ port: ports.get(s.name), base: s.base, models: s.models })) };
  await writeFile(join(dir, 'spec.json'), JSON.stringify(spec));
  const proc = spawn(DEBIAN_PYTHON, [SCRIPT, join(dir, 'spec.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  const ready = await waitFor(() => out.includes('ready') || proc.exitCode !== null, 15_000);
  if (!ready || proc.exitCode !== null) throw new Error(`pymodbus SunSpec server did not start: ${out}${err}`);
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

const device = (s: Datasheet, profile: string): DeviceConfig => ({
  id: s.name, profile, host: '127.0.0.1', port: ports.get(s.name) ?? 0, unit_id: 1, zone: 'z1', poll_interval_ms: 200, labels: {}, enabled: true,
});

/** Polls the devices until each has every value its datasheet lists; returns the poller set (stopped by the caller). */
async function pollAll(pairs: Array<{ sheet: Datasheet; profile: DeviceProfile }>): Promise<{ set: PollerSet; stop: () => Promise<void>; collect: () => ReturnType<typeof flatten> }> {
  const profiles = new Map(pairs.map((p) => [p.profile.profile, p.profile]));
  const loaded: Pick<LoadedSite, 'site' | 'profiles'> = {
    site: { site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, devices: pairs.map((p) => device(p.sheet, p.profile.profile)) } as unknown as SiteConfig,
    profiles,
  };
  const { provider, reader } = testMeter();
  const set = new PollerSet(loaded, { clock: systemClock, logger: silentLogger(), meter: provider.getMeter('sunspec') });
  set.start();
  const complete = (): boolean => pairs.every(({ sheet, profile }) => Object.keys(sheet.values).every((n) => {
    const pt = profile.points.find((p) => p.name === n && p.role !== 'scale_factor');
    return pt === undefined || set.snapshot.get(sheet.name, pt.id) !== undefined;
  }));
  const ok = await waitFor(complete, 15_000);
  const stop = async (): Promise<void> => { await set.stop(); await provider.shutdown(); };
  if (!ok) {
    await stop();
    throw new Error(`not every datasheet value was read: ${JSON.stringify(set.status())}`);
  }
  let last: ReturnType<typeof flatten> = [];
  const collect = (): ReturnType<typeof flatten> => last;
  last = flatten((await reader.collect()).resourceMetrics);
  return { set, stop, collect };
}

/** readByName once it matches the datasheet (bounded: a read lost to a loaded machine is retried next cycle); the last reading otherwise. */
async function settledByName(set: PollerSet, sheet: Datasheet, profile: DeviceProfile): Promise<Record<string, unknown>> {
  let last = readByName(set, sheet, profile);
  await waitFor(() => { last = readByName(set, sheet, profile); return JSON.stringify(last) === JSON.stringify(sheet.values); }, 10_000);
  return last;
}

/** What the gateway read, by SunSpec point name, for the names the datasheet lists and the profile reads. */
function readByName(set: PollerSet, sheet: Datasheet, profile: DeviceProfile): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of Object.keys(sheet.values)) {
    const pt = profile.points.find((p) => p.name === n && p.role !== 'scale_factor');
    if (pt !== undefined) out[n] = set.snapshot.get(sheet.name, pt.id)?.value;
  }
  return out;
}

describe('acceptance: SunSpec devices served by pymodbus, laid out unlike our simulator', () => {
  it('reads exactly each datasheet, finds each chain, and exports nothing for the model a device lacks', async () => {
    const int = await loadProfile(INT_PROFILE);
    const float = await loadProfile(FLOAT_PROFILE);
    const pairs = SHEETS.map((sheet) => ({ sheet, profile: sheet.profile === 'int' ? int : float }));
    const { set, stop, collect } = await pollAll(pairs);
    try {
      for (const { sheet, profile } of pairs) {
        const st = set.status().find((s) => s.deviceId === sheet.name)!;
        expect(st.sunspec?.models.map((m) => [m.id, m.start, m.length]), sheet.name).toEqual(chainOf(sheet));
        expect(st.identity, sheet.name).toMatchObject({ manufacturer: sheet.identity.Mn, model_name: sheet.identity.Md, serial_number: sheet.identity.SN });
        expect(await settledByName(set, sheet, profile), sheet.name).toEqual(sheet.values);
      }
      // The float device has no model 123: no limit value, no gauge, no control handle, and the reason in /status.
      const noLimit = 'float-160-no-123';
      expect(set.snapshot.get(noLimit, 'power_limit_pct')).toBeUndefined();
      const gauges = collect();
      expect(gauges.some((p) => p.name === 'ems.device.power_limit' && p.attrs['device_id'] === noLimit)).toBe(false);
      expect(gauges.filter((p) => p.name === 'ems.device.power_limit').map((p) => p.attrs['device_id']).sort()).toEqual(['int-65', 'int-66-nameplate', 'vendor-models-between']);
      expect(gauges.find((p) => p.name === 'ems.device.ac_power' && p.attrs['device_id'] === noLimit)?.value).toBe(4950.5);
      expect(set.deviceProfile(noLimit)?.controls).toEqual([]);
      const st = set.status().find((s) => s.deviceId === noLimit)!;
      expect(st.sunspec?.absent).toEqual([expect.objectContaining({ model: 123, reason: "model 123 (controls) is not in the device's SunSpec chain" })]);
      // Model lengths unlike the profile's are reported with both lengths.
      expect(set.status().find((s) => s.deviceId === 'int-65')!.sunspec?.length_mismatches).toEqual([{ model: 1, device_length: 65, profile_length: 66 }]);
      expect(set.status().find((s) => s.deviceId === 'vendor-models-between')!.sunspec?.length_mismatches)
        .toEqual([{ model: 1, device_length: 65, profile_length: 66 }, { model: 103, device_length: 52, profile_length: 50 }]);
      // The limit control of a device is at the address its own chain puts it.
      expect(set.deviceProfile('int-66-nameplate')?.controls.find((c) => c.id === 'set_power_limit_pct')?.address).toBe(40002 + 68 + 52 + 28 + 5);
    } finally {
      await stop();
    }
  });

  it('`sunspec scan` prints each chain and identity, and --write writes a profile that validates and reads the same values', async () => {
    const written: Array<{ sheet: Datasheet; profile: DeviceProfile }> = [];
    for (const sheet of SHEETS) {
      const file = join(dir, 'devices', `scanned-${sheet.name}.yaml`);
      let stdout = '';
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout += String(chunk); return true; });
      let code: number;
      try {
        code = await sunspecCli(['scan', '--host', '127.0.0.1', '--port', String(ports.get(sheet.name)), '--unit', '1', '--write', file]);
      } finally {
        spy.mockRestore();
      }
      expect(code, stdout).toBe(0);
      for (const [id, start, length] of chainOf(sheet)) expect(stdout).toMatch(new RegExp(`\\n  ${id}\\s+\\S+\\s+${start}\\s+${length}\\n`));
      expect(stdout).toContain(`Mn  ${sheet.identity.Mn}`);
      expect(stdout).toContain(`SN  ${sheet.identity.SN}`);
      // The same loader as `ems-gateway validate`.
      const profile = await loadProfile(file);
      expect(profile.sunspec_models?.map((m) => [m.id, m.length])).toEqual(sheet.models.map((m) => [m.id, m.length]));
      expect(profile.controls.length > 0).toBe(sheet.models.some((m) => m.id === 123));
      written.push({ sheet, profile });
    }
    const { set, stop } = await pollAll(written);
    try {
      for (const { sheet, profile } of written) expect(await settledByName(set, sheet, profile), sheet.name).toEqual(sheet.values);
    } finally {
      await stop();
    }
    // WRtg of model 120 is what the scan offers as the limit's reference.
    expect(written.find((w) => w.sheet.name === 'int-66-nameplate')?.profile.controls[0]?.description).toMatch(/WRtg \(model 120\) 10000 W/);
  });
});
