// A rejection waiting for its batch (the spool's backpressure can hold ~2,000 queued) keeps only a
// bounded copy of what it quotes: not the parsed payload, not a slice of a 1 MiB string (V8 keeps
// a sliced string's parent alive). Measured on the heap after a forced GC.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { describeRejection, parsePayload, type ParseResult, type ValidationContext } from '../../src/meters/validate.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const BIG = 256 * 1024;
const ctx: ValidationContext = { regions: new Set(), regionTopicLevel: 1, maxPayloadBytes: 1024 * 1024, futureSkewMs: 300_000 };
const ok = { timestamp: 1_767_225_600_000, kwh: 1, voltage: 230, current: 1, power_factor: 1 };

/** One large payload per way a rejection can quote an untrusted value. */
function payloads(i: number): Array<[string, Buffer]> {
  const s = (c: string): string => `${c}${i}`.padEnd(BIG, c);
  const j = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  return [
    ['invalid_meter_id', j({ ...ok, meter_id: s('m') })],
    ['wrong_type', j({ ...ok, meter_id: [s('a')] })],
    ['invalid_timestamp', j({ ...ok, meter_id: 'm-1', timestamp: s('t') })],
    ['wrong_type', j({ ...ok, meter_id: 'm-1', kwh: s('k') })],
    ['wrong_type', j({ ...ok, meter_id: 'm-1', power_w: { big: s('p') } })],
    ['wrong_type', j({ ...ok, meter_id: 'm-1', region: [s('r')] })],
    ['unknown_region', j({ ...ok, meter_id: 'm-1', region: s('u') })],
    ['malformed_json', Buffer.from(`{"meter_id":"${s('x')}"  "kwh": 1}`)],
  ];
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('rejections retained while queued', () => {
  it('hold bounded copies: 400 rejections of 256 KiB payloads keep under 8 MB of heap', () => {
    const out: ParseResult = { readings: [], rejections: [] };
    const before = heapAfterGc();
    for (let i = 0; i < 50; i++) {
      for (const [type, p] of payloads(i)) {
        const n = out.rejections.length;
        parsePayload(p, 'meters/north/m-1', ctx, 1_767_225_600_000, 0, out);
        expect(out.rejections.length, type).toBe(n + 1);
        expect(out.rejections[n]?.error_type).toBe(type);
      }
    }
    const retained = heapAfterGc() - before;
    expect(out.rejections.length).toBe(400);
    expect(retained, `${(retained / 1e6).toFixed(1)} MB retained`).toBeLessThan(8e6);
    // What they say is still there, cut to a bounded length.
    for (const r of out.rejections) {
      const d = describeRejection(r);
      expect(d.length).toBeLessThan(400);
      if (r.meter_id !== undefined) expect(r.meter_id.length).toBeLessThan(200);
    }
    expect(describeRejection(out.rejections[0]!)).toMatch(/^meter_id "m0m{125}…\(262146 chars\) is empty, too long or has control characters$/);
    expect(describeRejection(out.rejections[6]!)).toMatch(/^region "u0u{78}" is not a site region$/);
  });
});
