// Building blocks of the config DSL: durations, did-you-mean, formatting.
import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from '../../src/config/did-you-mean.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { ConfigError, formatProblem } from '../../src/config/errors.js';

describe('durations', () => {
  it.each([
    ['500ms', 500], ['1s', 1000], ['1.5s', 1500], ['15m', 900_000], ['1h', 3_600_000], ['1d', 86_400_000], ['0s', 0], [' 2s ', 2000],
  ])('%s = %i ms', (text, ms) => { expect(parseDuration(text)).toBe(ms); });

  it.each(['1000', '1 s', '-1s', '1S', 's', '1sec', '1e3ms', ''])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([[500, '500ms'], [1000, '1s'], [1500, '1.5s'], [900_000, '15m'], [3_600_000, '1h'], [1234, '1234ms']])('%i ms prints as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('did-you-mean', () => {
  it('measures edits', () => {
    expect(editDistance('poll_interval', 'pol_interval')).toBe(1);
    expect(editDistance('ABCD', 'ABDC')).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests close words only', () => {
    expect(didYouMean('pol_interval', ['port', 'poll_interval', 'profile'])).toBe('poll_interval');
    expect(didYouMean('Hz', ['hz', 'kW'])).toBe('hz');
    expect(didYouMean('frobnicate', ['port', 'host'])).toBeUndefined();
  });
});

describe('problem format', () => {
  it('is file:line:col path: message, warnings marked, unknown positions left out', () => {
    expect(formatProblem({ file: '/a/site.yaml', line: 3, col: 7, path: 'devices[0].port', message: 'must be >= 1, got 0', severity: 'error' }, '/a'))
      .toBe('site.yaml:3:7 devices[0].port: must be >= 1, got 0');
    expect(formatProblem({ file: 'x.yaml', line: 0, col: 0, path: '', message: 'file is too big', severity: 'error' })).toBe('x.yaml: file is too big');
    expect(formatProblem({ file: 'x.yaml', line: 2, col: 1, path: 'grid', message: 'hmm', severity: 'warning' })).toBe('x.yaml:2:1 grid: warning: hmm');
  });

  it('ConfigError carries a stable code, every problem, and errors in its message', () => {
    const e = new ConfigError([
      { file: 'x.yaml', line: 1, col: 1, path: 'a', message: 'bad', severity: 'error' },
      { file: 'x.yaml', line: 2, col: 1, path: 'b', message: 'meh', severity: 'warning' },
    ]);
    expect(e.code).toBe('EMS_CONFIG_INVALID');
    expect(e.problems).toHaveLength(2);
    expect(e.message).toBe('x.yaml:1:1 a: bad');
  });
});
