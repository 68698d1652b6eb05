import { describe, expect, it } from 'vitest';
import { snapshotLoadProvider } from '../../src/demand-response/load-provider.js';
import { TestClock, device, loadControllerProfile, siteWith } from './fixtures.js';

describe('DR load provider (pollers snapshot)', () => {
  it('gives the load point in kW while fresh, and nothing once older than three poll intervals', () => {
    const clock = new TestClock();
    const profile = loadControllerProfile();
    const values = new Map<string, { value: number | string | boolean; readAtMs: number }>([['lc1/load_kw', { value: 42.5, readAtMs: clock.now() }]]);
    const provider = snapshotLoadProvider({ get: (d, p) => values.get(`${d}/${p}`) }, siteWith([device('lc1', 1, 1), device('lc2', 1, 2)]), new Map([[profile.profile, profile]]), clock);
    expect(provider('lc1')).toBe(42.5);
    expect(provider('lc2')).toBeUndefined();
    expect(provider('nope')).toBeUndefined();
    clock.advance(3001);
    expect(provider('lc1')).toBeUndefined();
  });

  it('converts W and MW load points to kW', () => {
    const clock = new TestClock();
    const profile = loadControllerProfile();
    const load = profile.points[0];
    if (!load) throw new Error('fixture');
    load.unit = 'W';
    const provider = snapshotLoadProvider({ get: () => ({ value: 12_000, readAtMs: clock.now() }) }, siteWith([device('lc1', 1, 1)]), new Map([[profile.profile, profile]]), clock);
    expect(provider('lc1')).toBe(12);
    load.unit = 'MW';
    expect(provider('lc1')).toBe(12_000_000);
  });
});
