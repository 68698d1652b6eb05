// Simulated device behaviours with a manual clock: no server, no real time.
import { describe, expect, it } from 'vitest';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { solarAt, socStep, walkStep, seededRandom } from '../../simulators/modbus/behaviours.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { QUIRKS, manualClock, testBehaviours, testInverter } from './fixtures.js';

describe('simulated device behaviours', () => {
  it('soc integrates the battery power point (+ = discharge)', () => {
    const clock = manualClock();
    const d = createSimulatedDevice(testBehaviours(), { clock });
    expect(d.numberOf('soc')).toBe(50);
    clock.advance(360_000); // 6 min at 10 kW discharge = 1 kWh of 20 kWh = 5 %
    d.tick();
    expect(d.numberOf('soc')).toBeCloseTo(45, 2);
    d.set('bat_kw', -20); // charging
    clock.advance(360_000);
    d.tick();
    expect(d.numberOf('soc')).toBeCloseTo(55, 2);
    expect(socStep(99, -100, 3_600_000, 10)).toBe(100);
  });

  it('follow_setpoint: load capped by the curtailment setpoint only while enabled', () => {
    const clock = manualClock();
    const d = createSimulatedDevice(testBehaviours(), { clock });
    expect(d.numberOf('load_kw')).toBe(80); // setpoint 100 (max), not enabled
    expect(d.write('holding', 10, [300])).toBe(0); // 30 kW
    expect(d.numberOf('load_kw')).toBe(80);
    expect(d.write('holding', 11, [1])).toBe(0); // enable
    expect(d.numberOf('load_kw')).toBe(30);
    d.reset(); // reboot forgets the curtailment
    expect(d.numberOf('load_kw')).toBe(80);
    expect(d.numberOf('curtail_on')).toBe(0);
  });

  it('sum, sine and bounded random walk', () => {
    const clock = manualClock(0);
    const d = createSimulatedDevice(testBehaviours(), { clock, seed: 42 });
    expect(d.numberOf('l2')).toBe(200);
    expect(d.numberOf('total')).toBe(300);
    clock.advance(10_000); // a quarter of the 40 s period: sine at its peak
    d.tick();
    expect(d.numberOf('l2')).toBe(300);
    expect(d.numberOf('total')).toBe(400);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      clock.advance(1000);
      d.tick();
      const v = d.numberOf('walk') ?? NaN;
      expect(v).toBeGreaterThanOrEqual(-10);
      expect(v).toBeLessThanOrEqual(10);
      seen.add(v);
    }
    expect(seen.size).toBeGreaterThan(5);
    const r = seededRandom(1);
    expect(walkStep(10, { kind: 'random_walk', start: 0, step: 100, min: -1, max: 10 }, r)).toBeLessThanOrEqual(10);
  });

  it('solar: zero at night, peak at 13:00 local time', () => {
    const at = (h: number): number => new Date(2026, 5, 21, h, 0, 0).getTime();
    expect(solarAt(at(3), 5000)).toBe(0);
    expect(solarAt(at(13), 5000)).toBeCloseTo(5000, 6);
    expect(solarAt(at(9), 5000)).toBeGreaterThan(0);
    expect(solarAt(at(21), 5000)).toBe(0);
  });

  it('ack and revert timer: the device acknowledges a command and undoes it when the timer runs out', () => {
    const clock = manualClock();
    const d = createSimulatedDevice(testInverter(), { clock });
    expect(d.numberOf('status')).toBe(0);
    expect(d.write('holding', 40021, [60])).toBe(0); // lim_rvrt: 60 s
    expect(d.write('holding', 40019, [500])).toBe(0); // lim_pct: 50 %
    expect(d.numberOf('status')).toBe(1);
    clock.advance(59_000);
    d.tick();
    expect(d.numberOf('lim_pct')).toBe(50);
    clock.advance(2_000);
    d.tick();
    expect(d.numberOf('lim_pct')).toBe(100);
  });

  it('writes outside controls are refused with exception 2; reads outside the image too', () => {
    const d = createSimulatedDevice(testInverter());
    expect(d.write('holding', 40002, [1])).toBe(2);
    expect(d.write('coil', 5, [1])).toBe(2);
    expect(d.read('holding', 0, 1)).toBe(2);
    expect(d.read('input', 30000, 3)).toBe(2);
  });

  it('set/setRaw pin values (NaN and raw sentinels read as not implemented); unpin resumes', () => {
    const clock = manualClock();
    const d = createSimulatedDevice(testInverter(), { clock });
    d.set('hz', NaN);
    expect(d.get('hz')).toEqual({ ok: false, reason: 'not_implemented' });
    d.setRaw('w_sf', -32768);
    expect(d.get('w')).toEqual({ ok: false, reason: 'scale_factor_not_implemented' });
    d.set('v', 231.25);
    expect(d.numberOf('v')).toBe(231.25);
    d.unpin('hz');
    d.reset();
    expect(d.numberOf('hz')).toBe(50.02);
  });

  it('a simulate block the type cannot hold never breaks the device: the last value stays', () => {
    const profile: DeviceProfile = {
      profile: 'odd', vendor: 'v', model: 'm', kind: 'other', address_base: 0, default_order: 'ABCD', quirks: QUIRKS, controls: [], source: 'odd.yaml',
      points: [
        { id: 'text', table: 'holding', address: 0, type: 'int16', simulate: { kind: 'constant', value: 'abc' } },
        { id: 'big', table: 'holding', address: 1, type: 'int16', simulate: { kind: 'constant', value: 100_000 } },
        { id: 'nosf', table: 'holding', address: 2, type: 'int16', scale_factor: 'missing_sf', simulate: { kind: 'constant', value: 5 } },
        { id: 'ok', table: 'holding', address: 3, type: 'int16', simulate: { kind: 'sine', mean: 0, amplitude: 1e9, period_s: 10 } },
      ],
    };
    const clock = manualClock(2500);
    const d = createSimulatedDevice(profile, { clock });
    expect(d.get('text')).toMatchObject({ ok: true, value: 0 });
    expect(d.get('big')).toMatchObject({ ok: true, value: 0 });
    expect(d.read('holding', 0, 4)).toBeInstanceOf(Uint16Array);
  });
});

