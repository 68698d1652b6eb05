// The byte-level fast path of payload parsing (payload-scan.ts, rfc3339.ts) against the reference
// it must never differ from: JSON.parse of the payload, then diagnoseReading (the slow, exact
// validation) for each reading. Compared on the fleet generator's payloads with every fault, and on
// tens of thousands of generated and mutated payloads; the RFC 3339 fast path against
// parseTimestamp (the RFC 3339 pattern and Date.parse) on a large generated set of strings.
import { describe, expect, it } from 'vitest';
import { PayloadScanner } from '../../src/meters/payload-scan.js';
import { rfc3339Ms } from '../../src/meters/rfc3339.js';
import { SlotTable } from '../../src/meters/slot-table.js';
import type { ValidReading } from '../../src/meters/types.js';
import {
  describeRejection, diagnoseReading, parsePayload, parseTimestamp, type DroppedReading, type ParseResult, type ValidationContext,
} from '../../src/meters/validate.js';
import { regionFromTopic } from '../../src/mqtt/topics.js';
import { FleetGenerator } from '../../simulators/meter-fleet/generator.js';
import { seededRandom } from '../../simulators/random.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const REGIONS = ['north', 'south', 'east', 'west'];

/** A table of known meters as the ingest has one: half the generated test ids and the fleet's first 150. */
function knownMeters(): SlotTable {
  const t = new SlotTable({ maxSize: 1000, forgetAfterMs: 1e9, activeMs: 1e9 });
  for (let i = 0; i < 50; i += 2) t.add(`m-${i}`, 0);
  for (let i = 0; i < 150; i++) t.add(`m-${String(i).padStart(6, '0')}`, 0);
  return t;
}

function contexts(): ValidationContext[] {
  return [
    { regions: new Set(REGIONS), regionTopicLevel: 1, maxPayloadBytes: 1 << 20, futureSkewMs: 300_000 },
    { regions: new Set(), regionTopicLevel: undefined, maxPayloadBytes: 1 << 20, futureSkewMs: 1000 },
    // Known meter ids looked up by their bytes: the verdicts must not change.
    { regions: new Set(REGIONS), regionTopicLevel: 1, maxPayloadBytes: 1 << 20, futureSkewMs: 300_000, meterIds: knownMeters() },
  ];
}

/** Readings whose meter the scanner found in ctx.meterIds (the hint was checked in actual()). */
let hinted = 0;

type Flat = ValidReading | (Omit<DroppedReading, 'detail'> & { detail: string });

/** The reference: what parsePayload did before the fast path (JSON.parse, then the exact checks). */
function reference(payload: Buffer, topic: string, ctx: ValidationContext): Flat[] {
  const raw = regionFromTopic(topic, ctx.regionTopicLevel);
  const known = (r: string | undefined): string | undefined => {
    if (r === undefined) return undefined;
    return ctx.regions.size > 0 ? (ctx.regions.has(r) ? r : undefined) : /^[A-Za-z0-9_.-]{1,64}$/.test(r) ? r : undefined;
  };
  const topicRegion = known(raw);
  const fallback = topicRegion ?? raw;
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return [{ error_type: 'malformed_json', region: topicRegion ?? 'unknown', detail: (err as Error).message.slice(0, 200), arrived_at: 7 }];
  }
  if (Array.isArray(doc) && doc.length === 0) return [{ error_type: 'empty_batch', region: topicRegion ?? 'unknown', detail: 'empty array of readings', arrived_at: 7 }];
  const items = Array.isArray(doc) ? doc : [doc];
  return items.map((item) => flat(diagnoseReading(item, fallback, ctx, NOW, 7)));
}

function flat(r: ValidReading | DroppedReading): Flat {
  return 'error_type' in r ? { ...r, detail: describeRejection(r) } : r;
}

/** parsePayload's verdicts in payload order (readings and rejections interleaved as the reference has them). */
function actual(payload: Buffer, topic: string, ctx: ValidationContext): Flat[] {
  const out: ParseResult & { slots: number[] } = { readings: [], rejections: [], slots: [] };
  parsePayload(payload, topic, ctx, NOW, 7, out);
  // One slot hint per reading: -1, or the slot of exactly this meter, whose id string is the table's own.
  // (plain comparisons first: expect() per reading would slow the 30,000 payloads down a lot)
  if (out.slots.length !== out.readings.length) expect(out.slots).toHaveLength(out.readings.length);
  out.readings.forEach((r, i) => {
    const s = out.slots[i] as number;
    if (s < 0) return;
    if (ctx.meterIds?.keyOf(s) !== r.meter_id) expect(ctx.meterIds?.keyOf(s)).toBe(r.meter_id);
    hinted++;
  });
  return [...out.readings, ...out.rejections.map(flat)];
}

function sortedLike(ref: Flat[]): Flat[] {
  return [...ref.filter((r) => !('error_type' in r)), ...ref.filter((r) => 'error_type' in r)];
}

function expectSame(payload: Buffer, topic: string): void {
  for (const ctx of contexts()) {
    const want = sortedLike(reference(payload, topic, ctx));
    const got = actual(payload, topic, ctx);
    if (JSON.stringify(got) !== JSON.stringify(want) || !Object.is(got.length, want.length)) {
      expect({ payload: payload.toString('latin1').slice(0, 400), got }).toEqual({ payload: payload.toString('latin1').slice(0, 400), got: want });
    }
    // -0 and the like: JSON.stringify hides the sign of zero.
    got.forEach((g, i) => {
      const w = want[i] as Flat;
      for (const k of ['kwh', 'voltage', 'current', 'power_factor', 'power_w', 'timestamp_ms'] as const) {
        if (k in g) expect(Object.is((g as ValidReading)[k], (w as ValidReading)[k]), `${k} of ${payload.toString('latin1').slice(0, 200)}`).toBe(true);
      }
    });
  }
}

const NUMBERS = [
  '0', '-0', '1', '-1', '230', '230.1', '0.97', '0.9700000000000001', '1e3', '1E3', '1e+3', '1e-3', '-1.5e2', '01', '1.', '-', '.5', '+1',
  '123456789012345', '1234567890123456', '12345678901234567', '9007199254740993', '1e400', '-1e400', '1e-400', '0.000001234', '1796679227988',
  '1796679227.988', '99999999999', '100000000000', '253402300799999', '253402300800000', '0.1', '0.30000000000000004', '1.7976931348623157e308',
  '5e-324', '00', '-01', '1e', '1e+', '2.50', '1000000000000', '1000000000000.5', '-100000', '100001', '0.0',
  // around 2^53, the end of the exact digits
  '0.9500000000000001', '9007199254740991', '9007199254740992', '9007199254740995', '0.9007199254740991', '0.9007199254740993',
  '900719925474099.3', '0.12345678901234567', '4503599627370497.5', '0.00000000000000000000001', '-0.0000000000000000000001',
];
const STRINGS = [
  '"m-1"', '""', '"north"', '"south"', '"atlantis"', '"a\\nb"', '"\\u0041"', '"é"', '"\u007f"', '"x\ty"', '"a b"', `"${'x'.repeat(200)}"`,
  '"2026-06-01T11:59:00Z"', '"2026-06-01T11:59:00.123456Z"', '"2026-06-01t11:59:00z"', '"2026-06-01 11:59:00+02:00"', '"2026-02-30T00:00:00Z"',
  '"2026-06-01T24:00:00Z"', '"1970-01-01T00:00:00Z"', '"1969-12-31T23:59:59.999Z"', '"not a date"', '"2026-06-01T11:59:00.1234567890Z"', '"\\"q"',
];
const OTHERS = ['true', 'false', 'null', '{}', '[]', '{"a":1}', '[1,2]', 'NaN', 'undefined', "'x'"];
const FIELDS = [
  'meter_id', 'timestamp', 'kwh', 'voltage', 'current', 'power_factor', 'region', 'power_w', 'power', 'extra', 'kwhx', 'voltagf', 'meter_iD',
  'power_fact', 'powe', 'p', 'power_w_', 'regio', 'timestamp_', 'c', 'kw\\u0068', 'meter\\u005fid',
];

function goodFields(rnd: () => number): Array<[string, string]> {
  const ts = String(NOW - Math.floor(rnd() * 100_000));
  return [
    ['meter_id', `"m-${Math.floor(rnd() * 50)}"`], ['timestamp', rnd() < 0.3 ? `"${new Date(Number(ts)).toISOString()}"` : ts],
    ['kwh', String(Math.round(rnd() * 1e6) / 100)], ['voltage', '230.1'], ['current', String(Math.round(rnd() * 400) / 10)],
    ['power_factor', '0.97'], ['region', `"${REGIONS[Math.floor(rnd() * 4)] as string}"`],
  ];
}

function pick<T>(rnd: () => number, xs: readonly T[]): T { return xs[Math.floor(rnd() * xs.length)] as T; }

/** One reading object as text: a good one, then a few fields replaced, dropped, duplicated or added. */
function objectText(rnd: () => number): string {
  const fields = goodFields(rnd);
  const edits = Math.floor(rnd() * 3);
  for (let e = 0; e < edits; e++) {
    const what = rnd();
    const value = (): string => { const k = rnd(); return k < 0.45 ? pick(rnd, NUMBERS) : k < 0.85 ? pick(rnd, STRINGS) : pick(rnd, OTHERS); };
    if (what < 0.5) fields[Math.floor(rnd() * fields.length)] = [pick(rnd, FIELDS), value()];
    else if (what < 0.7) fields.splice(Math.floor(rnd() * fields.length), 1);
    else fields.push([pick(rnd, FIELDS), value()]);
  }
  const ws = (): string => (rnd() < 0.1 ? pick(rnd, [' ', '\n', '\t', '\r\n ', '\u00a0']) : '');
  return `{${ws()}${fields.map(([k, v]) => `"${k}"${ws()}:${ws()}${v}`).join(`,${ws()}`)}${ws()}}`;
}

function payloadText(rnd: () => number): string {
  if (rnd() < 0.3) return objectText(rnd);
  const n = 1 + Math.floor(rnd() * 5);
  const parts = Array.from({ length: n }, () => (rnd() < 0.05 ? pick(rnd, [...NUMBERS.slice(0, 3), ...OTHERS]) : objectText(rnd)));
  return ` [${parts.join(rnd() < 0.02 ? ',,' : ',')}${rnd() < 0.02 ? ',' : ''}] `;
}

function mutate(rnd: () => number, b: Buffer): Buffer {
  const k = rnd();
  if (k < 0.3) return b.subarray(0, Math.floor(rnd() * b.length)); // truncated
  const c = Buffer.from(b);
  const i = Math.floor(rnd() * c.length);
  c[i] = pick(rnd, [0x22, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x2e, 0x2d, 0x65, 0x30, 0x20, 0x5c, 0x00, 0xc3, 0xff, Math.floor(rnd() * 256)]);
  return c;
}

describe('payload fast path: same verdicts as JSON.parse and the exact checks', () => {
  it('fleet payloads with every fault, batches of 1 and 100, timestamps in all three encodings', () => {
    for (const batchSize of [1, 100]) {
      let tick = 0;
      const gen = new FleetGenerator({
        meters: 300, regions: REGIONS, seed: 5, batchSize, topicPrefix: 'meters', regionInPayload: batchSize === 100,
        faults: {
          duplicate: 0.02, kwh_decreasing: 0.02, missing_field: 0.03, wrong_type: 0.03, out_of_range: 0.03, unknown_region: 0.03,
          not_object: 0.02, malformed_json: 0.02, clock_skew: 0.03, stale: 0.03,
        },
        now: () => NOW - 3_600_000 + Math.floor(tick++ / 3),
      });
      let messages = 0;
      while (messages < (batchSize === 1 ? 3000 : 150)) {
        for (const m of gen.next()) { expectSame(Buffer.from(m.payload), m.topic); messages++; }
      }
    }
    expect(hinted).toBeGreaterThan(1000); // the known meters' readings came with their slots
  }, 120_000); // seconds of work, several times that on a loaded machine

  it('tens of thousands of generated and mutated payloads', () => {
    const rnd = seededRandom(20261207);
    let scanned = 0;
    const scanner = new PayloadScanner();
    for (let i = 0; i < 30_000; i++) {
      let b: Buffer = Buffer.from(payloadText(rnd), 'utf8');
      if (rnd() < 0.25) b = mutate(rnd, b);
      const topic = rnd() < 0.8 ? `meters/${pick(rnd, [...REGIONS, 'atlantis', 'a b'])}/m` : 'meters';
      expectSame(b, topic);
      if (scanner.scan(b)) scanned++;
    }
    // Not vacuous: most payloads take the fast path, and many do not.
    expect(scanned).toBeGreaterThan(5000);
    expect(scanned).toBeLessThan(25_000);
  }, 120_000);

  it('the records of a huge batch are not all kept afterwards', () => {
    const b = Buffer.from(`[${Array.from({ length: 5000 }, () => '{}').join(',')}]`);
    const out: ParseResult = { readings: [], rejections: [] };
    parsePayload(b, 'meters/north/m', contexts()[0] as ValidationContext, NOW, 0, out);
    expect(out.rejections).toHaveLength(5000);
    expect(out.rejections.every((r) => r.error_type === 'missing_field')).toBe(true);
  });
});

describe('payload fast path: numbers', () => {
  it('decimals of up to 19 significant digits read to the same double as JSON.parse', () => {
    const rnd = seededRandom(53);
    const scanner = new PayloadScanner();
    let compared = 0;
    for (let i = 0; i < 50_000; i++) {
      const digits = 1 + Math.floor(rnd() * 19);
      let d = '';
      for (let k = 0; k < digits; k++) d += String(Math.floor(rnd() * 10));
      d = d.replace(/^0+(?=\d)/, '');
      const point = Math.floor(rnd() * (d.length + 1));
      const text = `${rnd() < 0.2 ? '-' : ''}${point === 0 ? '0' : d.slice(0, point)}${point < d.length ? `.${d.slice(point)}` : ''}`;
      const payload = Buffer.from(`{"kwh":${text}}`);
      expect(scanner.scan(payload), text).toBe(true);
      const got = (scanner.readings[0] as { kwhN: number }).kwhN;
      scanner.release();
      const want = JSON.parse(text) as number;
      if (!Object.is(got, want)) expect(got, text).toBe(want);
      compared++;
    }
    expect(compared).toBe(50_000);
  });

  it('numbers off the fast path (exponents, 17 digits) read the same each time, whatever was read in between', () => {
    const rnd = seededRandom(256);
    const digits = (n: number): string => Array.from({ length: n }, () => String(Math.floor(rnd() * 10))).join('');
    // More distinct texts than the scanner remembers: some repeat from its memory, some collide there.
    const pool = Array.from({ length: 2000 }, (_, i) => {
      switch (i % 5) {
        case 0: return `0.9${digits(16)}`;
        case 1: return `${1 + Math.floor(rnd() * 9)}${digits(16)}`;
        case 2: return `-${1 + Math.floor(rnd() * 9)}${digits(1)}.${digits(3)}e${rnd() < 0.5 ? '-' : '+'}${Math.floor(rnd() * 330)}`;
        case 3: return `${digits(1)}E${Math.floor(rnd() * 400)}`;
        default: return rnd() < 0.5 ? '-0e0' : `0.${'0'.repeat(20 + Math.floor(rnd() * 10))}${digits(3)}`;
      }
    });
    const scanner = new PayloadScanner();
    for (let i = 0; i < 30_000; i++) {
      const text = pick(rnd, pool);
      expect(scanner.scan(Buffer.from(`[{"voltage":${text}}]`)), text).toBe(true);
      const got = (scanner.readings[0] as { voltageN: number }).voltageN;
      scanner.release();
      const want = JSON.parse(text) as number;
      if (!Object.is(got, want)) expect(got, text).toBe(want);
    }
  });
});

/** Strings around the RFC 3339 form: every field at, inside and beyond its range, and mutations. */
function timestampStrings(rnd: () => number): string[] {
  const two = (n: number): string => String(n).padStart(2, '0');
  const out: string[] = [];
  for (let i = 0; i < 60_000; i++) {
    const y = pick(rnd, [0, 1, 1969, 1970, 2000, 2024, 2026, 2100, 9999, Math.floor(rnd() * 10_000)]);
    const mo = Math.floor(rnd() * 14);
    const d = Math.floor(rnd() * 33);
    const h = Math.floor(rnd() * 26);
    const mi = Math.floor(rnd() * 61);
    const s = Math.floor(rnd() * 61);
    const fracDigits = pick(rnd, [0, 0, 1, 2, 3, 4, 6, 9, 10]);
    const frac = fracDigits === 0 ? (rnd() < 0.05 ? '.' : '') : `.${Array.from({ length: fracDigits }, () => Math.floor(rnd() * 10)).join('')}`;
    const zone = pick(rnd, ['Z', 'Z', 'z', `+${two(Math.floor(rnd() * 26))}:${two(Math.floor(rnd() * 61))}`, `-${two(Math.floor(rnd() * 26))}:${two(Math.floor(rnd() * 61))}`, '+0100', '', '+01']);
    const sep = pick(rnd, ['T', 'T', 'T', ' ', 't', '_']);
    let str = `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}${sep}${two(h)}:${two(mi)}:${two(s)}${frac}${zone}`;
    if (rnd() < 0.1) {
      const at = Math.floor(rnd() * str.length);
      str = rnd() < 0.5 ? str.slice(0, at) + str.slice(at + 1) : str.slice(0, at) + pick(rnd, ['0', '9', '-', ':', ' ', 'T', '.']) + str.slice(at);
    }
    out.push(str);
  }
  return out;
}

describe('RFC 3339 fast path', () => {
  it('answers what parseTimestamp answers whenever it answers, on 60,000 generated strings', () => {
    const rnd = seededRandom(3339);
    let fast = 0;
    for (const s of [...timestampStrings(rnd), '2023-02-30T00:00:00Z', '2023-01-01T00:00:00.9999Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z']) {
      const ms = rfc3339Ms(Buffer.from(s, 'latin1'), 0, s.length);
      if (Number.isNaN(ms)) continue;
      fast++;
      const want = parseTimestamp(s);
      expect(ms > 0 ? ms : 'invalid_timestamp', s).toBe(want);
    }
    expect(fast).toBeGreaterThan(10_000);
  });

  it('leaves the unusual forms to the slow path', () => {
    for (const s of ['2023-01-01t00:00:00Z', '2023-01-01T00:00:00z', '2023-01-01T24:00:00Z', '2023-01-01T23:59:60Z', '2023-01-01T00:00:00.1234567890Z', '2023-01-01T00:00:00+24:00']) {
      expect(rfc3339Ms(Buffer.from(s, 'latin1'), 0, s.length), s).toBeNaN();
    }
    const inner = '2023-01-01T00:00:00.5+01:30';
    expect(rfc3339Ms(Buffer.from(`x"${inner}"`, 'latin1'), 2, 2 + inner.length)).toBe(Date.parse(inner));
  });
});
