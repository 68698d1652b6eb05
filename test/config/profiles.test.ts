// Every shipped profile in devices/ loads and keeps the invariants the rest of the gateway
// relies on (zigbee-herdsman-converters style: one test walks every definition).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblems } from '../../src/config/errors.js';
import { DEFAULT_DEVICES_DIR } from '../../src/config/load.js';
import { loadProfile, loadProfiles, parseProfile } from '../../src/modbus/profile-load.js';
import { Problems } from '../../src/config/yaml-source.js';
import { pointWidth, wireAddress, type DeviceProfile, type PointDef } from '../../src/config/profile-types.js';
import { decodePoint, encodePoint } from '../../src/modbus/codec.js';
import { planIdentityReads, planReads } from '../../src/modbus/read-plan.js';
import { DEVICE_METRICS } from '../../src/telemetry/semconv.js';

const files = readdirSync(DEFAULT_DEVICES_DIR).filter((f) => f.endsWith('.yaml')).sort();
const all = (p: DeviceProfile): PointDef[] => [...p.points, ...p.controls];

describe('devices/*.yaml', () => {
  it('ships the four reference profiles', () => {
    expect(files).toEqual(expect.arrayContaining([
      'generic-bms-float32.yaml', 'generic-grid-meter.yaml', 'generic-load-controller.yaml', 'sunspec-inverter-3ph.yaml']));
  });

  it('loadProfiles loads the whole folder', async () => {
    const profiles = await loadProfiles(DEFAULT_DEVICES_DIR);
    expect([...profiles.keys()].sort()).toEqual(files.map((f) => f.replace(/\.yaml$/, '')).sort());
  });

  for (const f of files) {
    describe(f, () => {
      let p: DeviceProfile;
      it('loads', async () => {
        p = await loadProfile(join(DEFAULT_DEVICES_DIR, f));
        expect(p.profile).toBe(f.replace(/\.yaml$/, ''));
      });

      it('keeps the point invariants', () => {
        const ids = new Set<string>();
        for (const pt of all(p)) {
          expect(ids.has(pt.id), `unique id ${pt.id}`).toBe(false);
          ids.add(pt.id);
          const wire = wireAddress(p, pt);
          expect(wire).toBeGreaterThanOrEqual(0);
          expect(wire + pointWidth(pt) - 1).toBeLessThanOrEqual(65535);
          expect(pt.name, `${pt.id} carries its datasheet name`).toBeTruthy();
          if (pt.metric !== undefined) {
            expect(pt.unit, `${pt.id}: a metric has a unit`).toBeDefined();
            expect(Object.keys(DEVICE_METRICS), `${pt.id}: ${pt.metric} is in DEVICE_METRICS`).toContain(pt.metric);
            expect(pt.unit, `${pt.id}: ${pt.metric} unit`).toBe(DEVICE_METRICS[pt.metric as keyof typeof DEVICE_METRICS]);
          }
          if (pt.scale_factor !== undefined) {
            const sf = p.points.find((x) => x.id === pt.scale_factor);
            expect(sf?.type, `${pt.id}: scale factor is an int16 point`).toBe('int16');
            expect(sf?.role).toBe('scale_factor');
          }
          if (pt.role === 'scale_factor') expect(pt.type).toBe('int16');
        }
      });

      it('animates every cyclic point in the simulators', () => {
        for (const pt of p.points) expect(pt.simulate, `${pt.id} has simulate:`).toBeDefined();
      });

      it('bounds every control and verifies it', () => {
        for (const c of p.controls) {
          expect(c.min).toBeLessThanOrEqual(c.max);
          expect(c.verify.timeout_ms).toBeGreaterThan(0);
          expect(['holding', 'coil']).toContain(c.table);
        }
      });

      it('declares the physical range of frequencies, voltages, states of charge, power factors and float values, and simulates inside it', () => {
        for (const pt of p.points) {
          const needs = ['frequency', 'voltage', 'state_of_charge'].includes(pt.role ?? '') || pt.metric === 'ems.device.power_factor'
            || ((pt.type === 'float32' || pt.type === 'float64') && pt.role !== 'identity');
          if (needs) expect(pt.valid_range, `${pt.id} declares valid_range`).toBeDefined();
          const r = pt.valid_range;
          const sim = pt.simulate;
          if (r === undefined || sim === undefined) continue;
          const span: [number, number] | undefined = sim.kind === 'constant' && typeof sim.value === 'number' ? [sim.value, sim.value]
            : sim.kind === 'sine' ? [sim.mean - sim.amplitude, sim.mean + sim.amplitude]
            : sim.kind === 'random_walk' ? [sim.min, sim.max]
            : sim.kind === 'solar' ? [0, sim.peak]
            : sim.kind === 'soc' ? [0, 100] : undefined;
          if (span === undefined) continue;
          expect(span[0], `${pt.id}: simulated ${span[0]} >= ${r[0]}`).toBeGreaterThanOrEqual(r[0]);
          expect(span[1], `${pt.id}: simulated ${span[1]} <= ${r[1]}`).toBeLessThanOrEqual(r[1]);
        }
      });

      it('compiles to a read plan within Modbus limits, scale factors in the same read', () => {
        const plan = planReads(p);
        expect(plan.requests.length).toBeGreaterThan(0);
        for (const r of plan.requests) {
          expect(r.count).toBeLessThanOrEqual(r.table === 'coil' || r.table === 'discrete' ? 2000 : p.quirks.max_registers_per_request);
          for (const pt of r.points) {
            if (pt.scale_factor === undefined) continue;
            expect(r.points.map((x) => x.id), `${pt.id} read with ${pt.scale_factor}`).toContain(pt.scale_factor);
          }
        }
        const planned = new Set(plan.requests.flatMap((r) => r.points.map((x) => x.id)));
        for (const pt of p.points) if (pt.role !== 'identity') expect(planned.has(pt.id), `${pt.id} planned`).toBe(true);
        expect(planIdentityReads(p).requests.every((r) => r.points.every((x) => x.role === 'identity'))).toBe(true);
      });
    });
  }
});

describe('reference profiles say what the field needs', () => {
  const load = (name: string): Promise<DeviceProfile> => loadProfile(join(DEFAULT_DEVICES_DIR, `${name}.yaml`));

  it('SunSpec inverter: placed by model (1, 103, 123 from SunS at 40000), scale factors, model 123 limit that never writes 0', async () => {
    const p = await load('sunspec-inverter-3ph');
    expect(p.sunspec_base).toBe(40000);
    expect(p.sunspec_models).toEqual([{ id: 1, length: 66 }, { id: 103, length: 50, or: [101, 102] }, { id: 123, length: 24 }]);
    // Addresses in the reference chain, as the SunSpec model definitions place them.
    const at = (name: string): number | undefined => { const x = [...p.points, ...p.controls].find((y) => y.name === name); return x && wireAddress(p, x); };
    expect([at('Mn'), at('SN'), at('W'), at('WH'), at('St'), at('Evt1'), at('WMaxLimPct'), at('WMaxLim_Ena'), at('WMaxLimPct_SF')])
      .toEqual([40004, 40052, 40084, 40094, 40108, 40110, 40127, 40131, 40145]);
    expect(p.points.every((x) => x.sunspec !== undefined)).toBe(true);
    for (const n of ['A', 'PhVphA', 'PhVphB', 'PhVphC', 'W', 'Hz', 'VA', 'VAr', 'PF', 'WH', 'DCW', 'TmpCab']) {
      const pt = p.points.find((x) => x.name === n);
      expect(pt?.scale_factor, `${n} has a scale factor`).toBeDefined();
    }
    expect(p.points.find((x) => x.name === 'St')?.enum?.['4']).toBe('MPPT');
    expect(p.points.find((x) => x.name === 'Evt1')?.bits?.['0']).toBe('GROUND_FAULT');
    const lim = p.controls.find((c) => c.name === 'WMaxLimPct');
    expect(lim?.never_write).toContain(0);
    expect(lim?.min).toBeGreaterThan(0);
    expect(lim?.revert_timer?.point).toBe('set_power_limit_revert_s');
    expect(lim?.enable).toEqual({ point: 'set_power_limit_enable', value: 1 });
    expect(p.points.find((x) => x.role === 'generation')?.metric).toBe('ems.device.ac_power');
  });

  it('SunSpec PF (model 103: int16 in Pct with PF_SF) is exported as a ratio -1..1, unit 1', async () => {
    const p = await load('sunspec-inverter-3ph');
    const pf = p.points.find((x) => x.name === 'PF');
    expect(pf).toMatchObject({ metric: 'ems.device.power_factor', unit: '1', scale_factor: 'pf_sf' });
    expect(DEVICE_METRICS['ems.device.power_factor']).toBe('1');
    const at = (raw: number, sf: number): unknown => decodePoint(p, pf!, Uint16Array.of(raw & 0xffff), 0, sf);
    expect(at(99, 0)).toMatchObject({ ok: true, value: 0.99 });
    expect(at(-850, -1)).toMatchObject({ ok: true, value: -0.85 });
    expect(at(10000, -2)).toMatchObject({ ok: true, value: 1 });
    // and the simulators serve 0.99 as the raw 99 the device would send
    expect(Array.from(encodePoint(p, pf!, 0.99, 0))).toEqual([99]);
  });

  it('BMS: float32 word-swapped input registers, SoC integrating battery power, alarm bits', async () => {
    const p = await load('generic-bms-float32');
    expect(p.default_order).toBe('CDAB');
    const soc = p.points.find((x) => x.role === 'state_of_charge');
    expect(soc).toMatchObject({ table: 'input', type: 'float32', unit: '%' });
    expect(soc?.simulate).toMatchObject({ kind: 'soc', power_point: 'battery_power' });
    expect(p.points.find((x) => x.role === 'battery_power')?.unit).toBe('kW');
    expect(Object.keys(p.points.find((x) => x.role === 'alarm')?.bits ?? {}).length).toBeGreaterThan(3);
    expect(p.quirks.connect_delay_ms).toBeGreaterThan(0);
  });

  it('grid meter: frequency, import and export power', async () => {
    const p = await load('generic-grid-meter');
    for (const role of ['frequency', 'grid_import', 'grid_export', 'voltage', 'energy'] as const) {
      expect(p.points.some((x) => x.role === role), role).toBe(true);
    }
  });

  it('load controller: load, bounded setpoint verified by its ack register, enable flag, restore max', async () => {
    const p = await load('generic-load-controller');
    expect(p.kind).toBe('load_controller');
    expect(p.points.find((x) => x.role === 'load')?.unit).toBe('kW');
    const sp = p.controls.find((c) => c.role === 'setpoint');
    expect(sp).toMatchObject({ unit: 'kW', restore: 'max', enable: { point: 'curtailment_enable', value: 1 } });
    expect(sp?.verify).toMatchObject({ point: 'ack_status', equals: 1 });
    expect(p.points.find((x) => x.id === 'ack_status')?.simulate).toEqual({ kind: 'ack', control: 'curtailment_setpoint', value: 1 });
  });
});

describe('valid_range is checked where it is declared', () => {
  const parse = (points: string): string => {
    const problems = new Problems();
    parseProfile(`vendor: t\nmodel: t\nkind: other\naddress_base: 0\npoints:\n${points}`, join(DEFAULT_DEVICES_DIR, 'range-test.yaml'), problems);
    return formatProblems(problems.list);
  };

  it('accepts [min, max] on a number point', () => {
    expect(parse("  - { id: soc, table: input, address: 0, type: float32, unit: '%', valid_range: [0, 100] }\n")).toBe('');
  });

  it('names file, line and point for a range on a string or a bit, min > max, and a list of three', () => {
    const out = parse([
      '  - { id: serial, table: holding, address: 0, type: string, length: 4, valid_range: [0, 1] }',
      '  - { id: flag, table: holding, address: 4, type: bit, bit: 0, valid_range: [0, 1] }',
      "  - { id: hz, table: holding, address: 5, type: uint16, scale: 0.01, unit: Hz, valid_range: [65, 45] }",
      "  - { id: v, table: holding, address: 6, type: uint16, unit: V, valid_range: [0, 1, 2] }",
      '',
    ].join('\n'));
    expect(out).toMatch(/range-test\.yaml:6:\d+ .*valid_range applies to numbers, not to a string point/);
    expect(out).toMatch(/range-test\.yaml:7:\d+ .*valid_range applies to numbers, not to a bit point/);
    expect(out).toMatch(/range-test\.yaml:8:\d+ .*valid_range \[65, 45\]: min is greater than max/);
    expect(out).toMatch(/range-test\.yaml:9:\d+ .*points\[3\]\.valid_range.*takes at most 2 items, got 3/);
  });
});
