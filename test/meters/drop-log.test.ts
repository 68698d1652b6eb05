// Drop log lines are rate-limited per error_type and say how many were suppressed.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DropLog } from '../../src/meters/drop-log.js';
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
