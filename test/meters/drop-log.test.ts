// Drop log lines are rate-limited per error_type and say how many were suppressed.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DropLog } from '../../src/meters/drop-log.js';
import { parsePayload, type ParseResult, type ValidationContext } from '../../src/meters/validate.js';
import type { Clock } from '../../src/runtime/clock.js';
import { pino } from 'pino';

describe('DropLog', () => {
  it('one line per error_type per interval, with the suppressed count', () => {
    const lines: Array<Record<string, unknown>> = [];
    const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
    let t = 0;
    const clock: Clock = { now: () => t, monotonic: () => t, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (x) => clearTimeout(x) };
    const log = new DropLog(pino({ level: 'info' }, dest), clock, 10_000);
    const bad = { error_type: 'malformed_json' as const, region: 'north', detail: 'Unexpected end of JSON input' };
    for (let i = 0; i < 1000; i++) log.note(bad, 'meters/north/m-1');
    log.note({ error_type: 'duplicate', region: 'south', meter_id: 'm-2', detail: 'x' }, 'meters/south/m-2');
    t = 10_001;
    log.note(bad, 'meters/north/m-1');
    expect(lines.map((l) => [l['error_type'], l['suppressed_since_last']])).toEqual([['malformed_json', 0], ['duplicate', 0], ['malformed_json', 999]]);
    expect(lines[1]).toMatchObject({ meter_id: 'm-2', region: 'south', topic: 'meters/south/m-2', level: 40 });
  });
});

describe('hostile readings make bounded log lines and span attributes', () => {
  it('cuts meter ids and echoed values to a bound and says how long they were', () => {
    const lines: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
    let t = 0;
    const clock: Clock = { now: () => t, monotonic: () => t, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (x) => clearTimeout(x) };
    const log = new DropLog(pino({ level: 'info' }, dest), clock, 10_000);
    const ctx: ValidationContext = { regions: new Set(['north']), regionTopicLevel: undefined, maxPayloadBytes: 4 * 1024 * 1024, futureSkewMs: 300_000 };
    const big = 'x'.repeat(600_000);
    const ok = { meter_id: 'm-1', timestamp: new Date(1_700_000_000_000).toISOString(), kwh: 1, voltage: 230, current: 1, power_factor: 0.9, region: 'north' };
    const cases: Array<[string, Record<string, unknown>]> = [
      ['invalid_meter_id', { ...ok, meter_id: big }],
      ['wrong_type', { ...ok, meter_id: Array.from({ length: 100_000 }, (_, i) => i) }],
      ['invalid_timestamp', { ...ok, timestamp: big }],
      ['wrong_type', { ...ok, kwh: big }],
      ['wrong_type', { ...ok, region: { a: big } }],
    ];
    for (const [type, reading] of cases) {
      const out: ParseResult = { readings: [], rejections: [] };
      parsePayload(Buffer.from(JSON.stringify(reading)), 'meters/north/readings', ctx, 1_700_000_000_000, 1_700_000_000_000, out);
      const r = out.rejections[0]!;
      expect(r.error_type).toBe(type);
      expect(r.meter_id === undefined || r.meter_id.length <= 160, `${type}: meter_id on the span is bounded`).toBe(true);
      expect(r.detail.length, `${type}: detail is bounded`).toBeLessThanOrEqual(400);
      t += 20_000;
      log.note(r, 'meters/north/readings');
      expect(lines.at(-1)!.length, `${type}: one log line`).toBeLessThan(1200);
    }
    expect(lines[0]).toMatch(/x{100}…\(600000 chars\)/);
  });
});
