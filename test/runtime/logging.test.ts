import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { componentLogger, createLogger, resolveLogLevel } from '../../src/runtime/logger.js';
import { rateLimitedLogger, RepeatLimiter } from '../../src/runtime/rate-limit.js';
import { ManualClock } from './manual-clock.js';

function capture(): { dest: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const dest = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk.toString()); cb(); } });
  return { dest, lines: () => chunks.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('LOG_LEVEL wins over the site file; junk falls back', () => {
    expect(resolveLogLevel({ LOG_LEVEL: 'debug' }, 'warn')).toBe('debug');
    expect(resolveLogLevel({}, 'warn')).toBe('warn');
    expect(resolveLogLevel({ LOG_LEVEL: 'loud' }, 'error')).toBe('error');
    expect(resolveLogLevel({}, undefined)).toBe('info');
  });

  it('writes JSON with component and device bindings and redacts secrets', () => {
    const c = capture();
    const log = createLogger({ destination: c.dest, env: { LOG_LEVEL: 'info' } });
    const dev = componentLogger(log, 'modbus', { device: 'inv-1' });
    dev.info({ mqtt: { password: 'hunter2', url: 'mqtt://x' }, token: 'abc' }, 'connected');
    dev.debug('not at info');
    const [line, ...rest] = c.lines();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ component: 'modbus', device: 'inv-1', msg: 'connected', token: '[redacted]', mqtt: { password: '[redacted]', url: 'mqtt://x' } });
    expect(JSON.stringify(line)).not.toContain('hunter2');
  });
});

describe('rate-limited logging', () => {
  it('a dead device polled 100 times in a minute writes two lines, the second counting the repeats', () => {
    const clock = new ManualClock();
    const c = capture();
    const rl = rateLimitedLogger(createLogger({ destination: c.dest, env: {} }), clock, { intervalMs: 60_000 });
    for (let i = 0; i < 100; i++) {
      rl.warn('inv-2:timeout', { device: 'inv-2' }, 'poll failed');
      clock.advance(1000);
    }
    const lines = c.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).not.toHaveProperty('suppressed');
    expect(lines[1]).toMatchObject({ device: 'inv-2', suppressed: 59 });
  });

  it('different keys are limited separately and reset lets the next line through at once', () => {
    const clock = new ManualClock();
    const lim = new RepeatLimiter(clock, { intervalMs: 1000 });
    expect(lim.hit('a')).toBe(0);
    expect(lim.hit('b')).toBe(0);
    expect(lim.hit('a')).toBeUndefined();
    expect(lim.reset('a')).toBe(1);
    expect(lim.hit('a')).toBe(0);
  });

  it('remembers a bounded number of keys', () => {
    const lim = new RepeatLimiter(new ManualClock(), { maxKeys: 3 });
    for (let i = 0; i < 10; i++) lim.hit(`k${i}`);
    expect(lim.size).toBe(3);
  });
});
