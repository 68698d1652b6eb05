import { describe, expect, it } from 'vitest';
import { alertTransitions, formatSummary, quantileOfIncrease } from '../../src/demo/summary.js';
import { concreteTopic } from '../../src/demo/site.js';
import { gatherStatus } from '../../src/status/status-model.js';
import { sampleContext, sampleProviders } from '../status/fixture.js';

describe('demo summary', () => {
  it('p99 of the increase between two collections, interpolated within the bucket', () => {
    const before = { boundaries: [1, 5, 15], counts: [10, 0, 0, 0] };
    const now = { boundaries: [1, 5, 15], counts: [10, 99, 1, 0] };
    // 100 new observations: 99 in (1,5], 1 in (5,15]; rank 99 is the last of (1,5].
    expect(quantileOfIncrease(0.99, now, before)).toBeCloseTo(5, 6);
    expect(quantileOfIncrease(0.5, now, before)).toBeCloseTo(1 + 4 * (50 / 99), 6);
    expect(quantileOfIncrease(0.99, now, now)).toBeNull();
    expect(quantileOfIncrease(0.99, undefined, before)).toBeNull();
  });

  it('prints readings/s, drops by reason, data age, grid, devices down, DR and alerts', () => {
    const status = gatherStatus(sampleContext(sampleProviders(Date.now())));
    const lines = formatSummary({ elapsedMs: 75_000, status, dataAgeP99S: 2.4 });
    expect(lines[0]).toBe('[01:15] meters   1,843 readings/s  ingested 120,331  dropped 57 (malformed_json 40, duplicate 17)  data age p99 2.4 s');
    expect(lines[1]).toContain('50.012 Hz  generation 3.210 MW  load 2.980 MW  devices 2/3 up (down: load-ctl-north)');
    expect(lines[2]).toContain('DR ack rate 100 % (1 command, 1 active: demo-curtail-0001 0.40 MW in zone-b)');
    expect(lines[2]).toContain('alerts FIRING: ingestion_drops (pending: slow_ingestion)');
  });

  it('reports each alert transition once', () => {
    const status = gatherStatus(sampleContext(sampleProviders(Date.now())));
    const first = alertTransitions(new Set(), status);
    expect(first.lines).toEqual(['» alert ingestion_drops FIRING: ']);
    expect(alertTransitions(first.firing, status).lines).toEqual([]);
    const resolved = alertTransitions(new Set(['frequency_excursion']), status);
    expect(resolved.lines).toContain('» alert frequency_excursion resolved: ');
  });

  it('builds fleet topics that match the site filter', () => {
    expect(concreteTopic('meters/+/readings', 1, 'north', 'm-1')).toBe('meters/north/readings');
    expect(concreteTopic('$share/gw/meters/+/+', 1, 'south', 'm-2')).toBe('meters/south/m-2');
    expect(concreteTopic('site/meters/#', undefined, 'x', 'm-3')).toBe('site/meters/m-3');
  });
});
