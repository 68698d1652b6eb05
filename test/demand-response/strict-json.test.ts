// The strict JSON reader of signed messages: the values JSON.parse gives, plus what JSON.parse hides
// (duplicate keys, non-canonical numbers), and RFC 3339 times that exist on the calendar.
import { describe, expect, it } from 'vitest';
import { CommandRejection, parseTime } from '../../src/demand-response/command.js';
import { isCanonicalNumber, parseStrictJson, StrictJsonError } from '../../src/demand-response/strict-json.js';

/** A seeded generator of JSON values without duplicate keys (mulberry32). */
function generator(seed: number): () => unknown {
  let a = seed;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const str = (): string => Array.from({ length: Math.floor(rnd() * 6) }, () => String.fromCharCode([0x22, 0x5c, 0x0a, 0x41, 0xe9, 0x2603, 0x1f][Math.floor(rnd() * 7)] ?? 0x41)).join('') + (rnd() < 0.1 ? '\ud83d\ude00' : '');
  const num = (): number => [0, 1, -1, 0.1, 1e21, 1e-7, 123456.789, -2.5e-10, Number.MAX_SAFE_INTEGER, 5e-324][Math.floor(rnd() * 10)] ?? 0;
  const value = (depth: number): unknown => {
    const k = rnd();
    if (depth > 3 || k < 0.3) return [null, true, false, num(), str()][Math.floor(rnd() * 5)];
    if (k < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < rnd() * 5; i++) o[`${str()}${i}`] = value(depth + 1);
    return o;
  };
  return () => value(0);
}

describe('strict JSON', () => {
  it('gives the values JSON.parse gives, for 2,000 generated documents (whitespace varied)', () => {
    const next = generator(7);
    for (let i = 0; i < 2000; i++) {
      const text = JSON.stringify(next(), null, i % 3);
      const { value, issues } = parseStrictJson(text);
      expect(issues).toEqual([]);
      expect(JSON.stringify(value)).toBe(JSON.stringify(JSON.parse(text)));
    }
  });

  it('reports duplicate keys, compared after unescaping, with their path', () => {
    expect(parseStrictJson('{"a":1,"b":{"c":1,"c":2},"a":3}').issues.map((i) => [i.kind, i.path])).toEqual([['duplicate_key', 'b.c'], ['duplicate_key', 'a']]);
    expect(parseStrictJson('{"site_id":"x","site\\u005fid":"y"}').issues[0]).toMatchObject({ kind: 'duplicate_key', path: 'site_id' });
    // The first occurrence is the value returned (JSON.parse returns the last).
    expect(parseStrictJson('{"a":1,"a":2}').value).toEqual({ a: 1 });
  });

  it('treats "__proto__" as a plain key', () => {
    const { value } = parseStrictJson('{"__proto__":{"polluted":true}}') as { value: Record<string, unknown> };
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(value['__proto__']).toEqual({ polluted: true });
  });

  it.each(['1.0', '1e0', '1E3', '0.10', '-0', '100e-2', '9007199254740993', '1e400', '0.1000000000000000055511151231257827'])('reports the non-canonical number %s', (t) => {
    expect(isCanonicalNumber(t)).toBe(false);
    expect(parseStrictJson(`{"n":${t}}`).issues).toMatchObject([{ kind: 'non_canonical_number', path: 'n' }]);
  });

  it.each(['0', '1', '-1', '1.5', '15', '0.25', '1e-7', '1e+21', '123456.789', '9007199254740991'])('accepts the canonical number %s', (t) => {
    expect(isCanonicalNumber(t)).toBe(true);
    expect(parseStrictJson(t).issues).toEqual([]);
  });

  it.each([
    ['trailing comma', '{"a":1,}'], ['single quotes', "{'a':1}"], ['leading zero', '01'], ['plus sign', '+1'], ['bare NaN', 'NaN'],
    ['unterminated string', '"abc'], ['raw newline in a string', '"a\nb"'], ['bad escape', '"\\x41"'], ['short \\u escape', '"\\u12"'],
    ['lone high surrogate', '"\\ud800"'], ['lone low surrogate', '"a\\udc00b"'], ['byte order mark', '\ufeff{}'], ['two values', '{} {}'],
    ['nesting 17 deep', '['.repeat(17) + ']'.repeat(17)], ['empty', ''],
  ])('refuses %s as a syntax error', (_name, text) => {
    expect(() => parseStrictJson(text)).toThrow(StrictJsonError);
  });

  it('refuses nesting far beyond the limit without exhausting the stack', () => {
    expect(() => parseStrictJson('['.repeat(100_000))).toThrow(/nesting deeper than 16/);
  });
});

describe('RFC 3339 times of a command', () => {
  it.each([
    ['2026-06-01T12:00:00Z', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01T12:00:00.5Z', Date.UTC(2026, 5, 1, 12, 0, 0, 500)],
    ['2026-06-01T12:00:00.123456789Z', Date.UTC(2026, 5, 1, 12, 0, 0, 123)],
    ['2026-06-01T14:00:00+02:00', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01T00:30:00-01:30', Date.UTC(2026, 5, 1, 2)],
    ['2028-02-29T00:00:00Z', Date.UTC(2028, 1, 29)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
  ])('reads %s', (text, ms) => {
    expect(parseTime('issued_at', text)).toBe(ms);
    expect(parseTime('issued_at', text)).toBe(Date.parse(text));
  });

  it.each([
    '2026-11-31T12:00:00Z', '2026-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-06-00T00:00:00Z',
    '2026-06-01T24:00:00Z', '2026-06-01T23:60:00Z', '2026-06-01T23:59:60Z', '2026-06-01T12:00:00+24:00', '2026-06-01T12:00:00+01:60',
    '2026-06-01T12:00:00', '2026-06-01 12:00:00Z', '2026-06-01t12:00:00z', '1969-12-31T23:59:59Z',
  ])('refuses %s', (text) => {
    expect(() => parseTime('issued_at', text)).toThrow(CommandRejection);
  });
});
