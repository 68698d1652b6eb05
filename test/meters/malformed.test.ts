// Hostile and broken payloads: each variant lands in its own expected error_type, nothing crashes,
// and well-formed readings sent after them are still ingested (the pump never stalls).
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { METER_ERROR_TYPES, parsePayload, type MeterErrorType, type ParseResult, type ValidationContext } from '../../src/meters/validate.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { startEmbeddedBroker } from '../../simulators/broker.js';
import { mqttConfig, TestTelemetry, waitFor } from './harness.js';

const NOW = Date.now();
const good = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  meter_id: 'm-1', timestamp: NOW - 1000, kwh: 100, voltage: 230, current: 5, power_factor: 0.95, region: 'north', ...over,
});
const json = (v: unknown): string => JSON.stringify(v);
const without = (field: string): string => { const g = good(); delete g[field]; return json(g); };

/** [name, topic, payload, expected error_type]. */
const VARIANTS: Array<[string, string, string | Buffer, MeterErrorType]> = [
  ['truncated object', 'meters/north/m', '{', 'malformed_json'],
  ['empty payload', 'meters/north/m', '', 'malformed_json'],
  ['plain text', 'meters/north/m', 'not json at all', 'malformed_json'],
  ['trailing comma', 'meters/north/m', '{"meter_id":"a",}', 'malformed_json'],
  ['invalid UTF-8 bytes', 'meters/north/m', Buffer.from([0xff, 0xfe, 0xfd]), 'malformed_json'],
  ['NaN literal', 'meters/north/m', '{"meter_id":"a","kwh":NaN}', 'malformed_json'],
  ['single quotes', 'meters/north/m', "{'meter_id':'a'}", 'malformed_json'],
  ['number', 'meters/north/m', '42', 'not_object'],
  ['string', 'meters/north/m', '"hello"', 'not_object'],
  ['null', 'meters/north/m', 'null', 'not_object'],
  ['boolean', 'meters/north/m', 'true', 'not_object'],
  ['array of number', 'meters/north/m', '[1]', 'not_object'],
  ['array of null', 'meters/north/m', '[null]', 'not_object'],
  ['deeply nested arrays', 'meters/north/m', '['.repeat(2000) + ']'.repeat(2000), 'not_object'],
  ['empty array', 'meters/north/m', '[]', 'empty_batch'],
  ['empty object', 'meters/north/m', '{}', 'missing_field'],
  ['no timestamp', 'meters/north/m', without('timestamp'), 'missing_field'],
  ['no kwh', 'meters/north/m', without('kwh'), 'missing_field'],
  ['no voltage', 'meters/north/m', without('voltage'), 'missing_field'],
  ['no current', 'meters/north/m', without('current'), 'missing_field'],
  ['no power_factor', 'meters/north/m', without('power_factor'), 'missing_field'],
  ['kwh null', 'meters/north/m', json(good({ kwh: null })), 'missing_field'],
  ['no region anywhere', 'meters', without('region'), 'missing_field'],
  ['meter_id number', 'meters/north/m', json(good({ meter_id: 17 })), 'wrong_type'],
  ['kwh as string', 'meters/north/m', json(good({ kwh: '100' })), 'wrong_type'],
  ['voltage boolean', 'meters/north/m', json(good({ voltage: true })), 'wrong_type'],
  ['timestamp boolean', 'meters/north/m', json(good({ timestamp: false })), 'wrong_type'],
  ['timestamp object', 'meters/north/m', json(good({ timestamp: { s: 1 } })), 'wrong_type'],
  ['power as string', 'meters/north/m', json(good({ power: 'lots' })), 'wrong_type'],
  ['region number', 'meters/north/m', json(good({ region: 7 })), 'wrong_type'],
  ['meter_id empty', 'meters/north/m', json(good({ meter_id: '' })), 'invalid_meter_id'],
  ['meter_id 200 chars', 'meters/north/m', json(good({ meter_id: 'x'.repeat(200) })), 'invalid_meter_id'],
  ['meter_id newline', 'meters/north/m', json(good({ meter_id: 'a\nb' })), 'invalid_meter_id'],
  ['kwh 1e400', 'meters/north/m', json(good()).replace('"kwh":100', '"kwh":1e400'), 'non_finite'],
  ['voltage -1e400', 'meters/north/m', json(good()).replace('"voltage":230', '"voltage":-1e400'), 'non_finite'],
  ['timestamp 1e400', 'meters/north/m', json(good()).replace(/"timestamp":\d+/, '"timestamp":1e400'), 'non_finite'],
  ['power_factor 1.5', 'meters/north/m', json(good({ power_factor: 1.5 })), 'out_of_range'],
  ['power_factor -1.01', 'meters/north/m', json(good({ power_factor: -1.01 })), 'out_of_range'],
  ['voltage negative', 'meters/north/m', json(good({ voltage: -1 })), 'out_of_range'],
  ['kwh negative', 'meters/north/m', json(good({ kwh: -0.001 })), 'out_of_range'],
  ['current 1e6 A', 'meters/north/m', json(good({ current: 1e6 })), 'out_of_range'],
  ['power 1e12 W', 'meters/north/m', json(good({ power_w: 1e12 })), 'out_of_range'],
  ['timestamp words', 'meters/north/m', json(good({ timestamp: 'yesterday' })), 'invalid_timestamp'],
  ['timestamp month 13', 'meters/north/m', json(good({ timestamp: '2026-13-45T00:00:00Z' })), 'invalid_timestamp'],
  ['timestamp negative', 'meters/north/m', json(good({ timestamp: -5 })), 'invalid_timestamp'],
  ['timestamp zero', 'meters/north/m', json(good({ timestamp: 0 })), 'invalid_timestamp'],
  ['timestamp numeric string', 'meters/north/m', json(good({ timestamp: '1764130000' })), 'invalid_timestamp'],
  ['timestamp without zone', 'meters/north/m', json(good({ timestamp: '2026-01-01T00:00:00' })), 'invalid_timestamp'],
  ['timestamp year 10000', 'meters/north/m', json(good({ timestamp: 253_402_400_000_000 })), 'invalid_timestamp'],
  ['timestamp a day ahead', 'meters/north/m', json(good({ timestamp: NOW + 86_400_000 })), 'future_timestamp'],
  ['region not a site region', 'meters/north/m', json(good({ region: 'atlantis' })), 'unknown_region'],
  ['topic region not a site region', 'meters/mars/m', without('region'), 'unknown_region'],
  ['payload over the size limit', 'meters/north/m', json([good({ pad: 'p'.repeat(5000) })]), 'payload_too_large'],
];

const ctx: ValidationContext = { regions: new Set(['north', 'south']), regionTopicLevel: 1, maxPayloadBytes: 4096, futureSkewMs: 300_000 };

describe('payload validation', () => {
  it('has at least 30 variants and covers every stateless error_type', () => {
    expect(VARIANTS.length).toBeGreaterThanOrEqual(30);
    const covered = new Set(VARIANTS.map((v) => v[3]));
    for (const t of METER_ERROR_TYPES) if (t !== 'duplicate' && t !== 'kwh_decreasing' && t !== 'spool_evicted') expect(covered.has(t), t).toBe(true);
  });

  it.each(VARIANTS)('%s -> expected error_type', (_name, topic, payload, expected) => {
    const out: ParseResult = { readings: [], rejections: [] };
    parsePayload(Buffer.isBuffer(payload) ? payload : Buffer.from(payload), topic, ctx, NOW, 0, out);
    expect(out.readings).toEqual([]);
    expect(out.rejections.map((r) => r.error_type)).toEqual([expected]);
    // Metric attributes stay low-cardinality: only site regions or 'unknown'.
    expect(['north', 'south', 'unknown']).toContain(out.rejections[0]?.region);
  });

  it('accepts epoch seconds, epoch milliseconds and RFC 3339 as the same instant', () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    for (const ts of [t, t / 1000, '2026-01-02T03:04:05.678Z', '2026-01-02T04:04:05.678+01:00']) {
      const out: ParseResult = { readings: [], rejections: [] };
      parsePayload(Buffer.from(json(good({ timestamp: ts }))), 'meters/north/m', ctx, t + 1000, 0, out);
      expect(out.readings[0]?.timestamp_ms).toBeCloseTo(t, 3);
    }
  });

  it('a bad reading in a batch drops that reading only; power from V x I x PF unless a power field is given', () => {
    const out: ParseResult = { readings: [], rejections: [] };
    const batch = [good({ meter_id: 'a' }), good({ meter_id: 'b', kwh: 'x' }), good({ meter_id: 'c', power_w: 1234 })];
    parsePayload(Buffer.from(json(batch)), 'meters/north/m', ctx, NOW, 0, out);
    expect(out.readings.map((r) => [r.meter_id, r.power_w])).toEqual([['a', 230 * 5 * 0.95], ['c', 1234]]);
    expect(out.rejections).toMatchObject([{ error_type: 'wrong_type', meter_id: 'b', region: 'north' }]);
  });
});

describe('malformed payloads through the broker', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('every variant is counted under its error_type, plus duplicate and kwh_decreasing; good readings still flow', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const tel = new TestTelemetry();
    cleanups.push(() => tel.shutdown());
    const ingest = new MeterIngest({
      mqtt: mqttConfig(broker.url, { protocol_version: 4 }, { max_payload_bytes: 4096, topics: ['meters/#', 'meters'] }),
      clock: systemClock, logger: silentLogger(), meter: tel.meter, tracer: tel.tracer, producer: tel.producer,
    });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    await waitFor(() => ingest.status().subscribed, 5000, 'subscription');
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    for (const [, topic, payload] of VARIANTS) await pub.publishAsync(topic, payload, { qos: 1 });
    const first = json(good({ meter_id: 'ok-1', kwh: 200 }));
    await pub.publishAsync('meters/north/ok-1', first, { qos: 1 });
    await pub.publishAsync('meters/north/ok-1', first, { qos: 1 }); // duplicate
    await pub.publishAsync('meters/north/ok-1', json(good({ meter_id: 'ok-1', kwh: 150, timestamp: NOW })), { qos: 1 }); // kwh_decreasing
    await pub.publishAsync('meters/south/ok-2', json(good({ meter_id: 'ok-2', region: 'south' })), { qos: 1 });
    const expected: Record<string, number> = { duplicate: 1, kwh_decreasing: 1 };
    for (const v of VARIANTS) expected[v[3]] = (expected[v[3]] ?? 0) + 1;
    const total = VARIANTS.length + 2;
    await waitFor(() => ingest.status().readings_dropped >= total && ingest.status().readings_ingested >= 2, 10_000, 'all counted');
    expect(await tel.counterBy(METRICS.meterReadingsDropped, 'error_type')).toEqual(expected);
    expect(await tel.counterBy(METRICS.meterReadingsIngested, 'region')).toEqual({ north: 1, south: 1 });
    expect(ingest.status().connected).toBe(true);
  });
});
