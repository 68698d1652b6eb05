// Walks every shipped device profile (devices/*.yaml) through the simulator: every simulated
// point decodes to a value, every planned read is answerable, every control accepts a write and
// passes its own read-back check. And the demo site starts.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ControlDef, DeviceProfile } from '../../src/config/profile-types.js';
import { DEFAULT_DEVICES_DIR, loadSite } from '../../src/config/load.js';
import { loadProfiles } from '../../src/modbus/profile-load.js';
import { decodeRead } from '../../src/modbus/codec-read.js';
import { encodePoint } from '../../src/modbus/codec.js';
import { planIdentityReads, planReads } from '../../src/modbus/read-plan.js';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import { manualClock } from './fixtures.js';
import { RawClient, readPdu } from './raw-client.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

let profiles = new Map<string, DeviceProfile>();
beforeAll(async () => {
  profiles = await loadProfiles(DEFAULT_DEVICES_DIR);
});

/** A value inside [min, max] that is not forbidden and differs from the restore value. */
function commandValue(c: ControlDef): number {
  const candidates = [Math.round((c.min + c.max) / 2), c.min, c.max];
  return candidates.find((v) => !(c.never_write ?? []).includes(v)) ?? c.max;
}

describe('every shipped device profile in the simulator', () => {
  it('there are profiles to check', () => {
    expect(profiles.size).toBeGreaterThan(0);
  });

  it('every simulated point decodes to a value; every planned read is served', () => {
    let checked = 0;
    for (const [name, profile] of profiles) {
      const device = createSimulatedDevice(profile, { clock: manualClock() });
      for (const p of profile.points) {
        if (!p.simulate) continue;
        expect(device.get(p.id), `${name}.${p.id}`).toMatchObject({ ok: true });
        checked++;
      }
      for (const read of [...planReads(profile).requests, ...planIdentityReads(profile).requests]) {
        const words = device.read(read.table, read.address, read.count);
        expect(typeof words, `${name} ${read.table} ${read.address}+${read.count}`).not.toBe('number');
        if (typeof words === 'number') continue;
        for (const [id, v] of decodeRead(profile, read, words)) {
          const simulated = profile.points.find((x) => x.id === id)?.simulate !== undefined;
          if (simulated) expect(v, `${name}.${id} through the plan`).toMatchObject({ ok: true });
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('every control accepts a write of an allowed value and passes its own verify check', () => {
    for (const [name, profile] of profiles) {
      for (const c of profile.controls) {
        const device = createSimulatedDevice(profile, { clock: manualClock() });
        if (c.enable) {
          const en = profile.controls.find((x) => x.id === c.enable?.point);
          if (en) expect(device.write('holding', en.address - profile.address_base, encodePoint(profile, en, c.enable.value))).toBe(0);
        }
        const value = commandValue(c);
        const sf = c.scale_factor === undefined ? undefined : device.numberOf(c.scale_factor);
        const words = encodePoint(profile, c, value, sf);
        const table = c.table === 'coil' ? 'coil' : 'holding';
        expect(device.write(table, c.address - profile.address_base, words), `${name}.${c.id} write`).toBe(0);
        const readBack = c.verify.point ?? c.id;
        const got = device.numberOf(readBack);
        if (c.verify.equals !== undefined) expect(got, `${name}.${c.id} ack`).toBe(c.verify.equals);
        else expect(Math.abs((got ?? NaN) - value), `${name}.${c.id} read back ${String(got)}`).toBeLessThanOrEqual(c.verify.tolerance ?? 0);
      }
    }
  });

  it('a write to a measurement register of any profile is refused', () => {
    for (const [name, profile] of profiles) {
      const device = createSimulatedDevice(profile);
      const controlled = new Set(profile.controls.map((c) => `${c.table}:${c.address}`));
      const m = profile.points.find((p) => (p.table === 'holding') && !controlled.has(`${p.table}:${p.address}`));
      if (!m) continue;
      expect(device.write('holding', m.address - profile.address_base, [1]), `${name}.${m.id}`).toBe(2);
    }
  });
});

describe('the demo site', () => {
  let sims: SiteSimulators | undefined;
  afterEach(async () => {
    await sims?.close();
    sims = undefined;
  });

  it('starts every device of config/demo-site.yaml and answers on each endpoint', async () => {
    const loaded = await loadSite(join(DEFAULT_DEVICES_DIR, '..', 'config', 'demo-site.yaml'), { profileChecks: modbusProfileChecks });
    sims = await startSiteSimulators(loaded, { port: 0 });
    const devices = sims.endpoints.flatMap((e) => e.devices);
    expect(devices.map((d) => d.id).sort()).toEqual(loaded.site.devices.map((d) => d.id).sort());
    for (const e of sims.endpoints) {
      const c = await RawClient.connect(e.server.port);
      try {
        for (const d of e.devices) {
          const profile = loaded.profiles.get(d.profile);
          const first = profile ? planReads(profile).requests[0] : undefined;
          if (!first) continue;
          const fc = { coil: 1, discrete: 2, holding: 3, input: 4 }[first.table];
          const f = await c.request(d.unitId, d.unitId, readPdu(fc, first.address, first.count));
          expect(f?.fc, `${d.id} ${first.table} ${first.address}+${first.count}`).toBe(fc);
        }
      } finally {
        c.close();
      }
    }
  });
});
