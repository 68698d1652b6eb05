// Reading records reused after hand-off (reading-pool.ts): a sink that copies what it keeps
// (ReadingSink.copiesReadings) gets records that are reused for later batches, and still sees
// every reading's own values at write time; a sink that keeps the records it was given never sees
// them change afterwards; a failed write is retried with its records untouched; a reading the
// dedupe state refused is reused without its rejection losing its meter id.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterIngest } from '../../src/meters/ingest.js';
import { MAX_FREE_READINGS, ReadingPool } from '../../src/meters/reading-pool.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { ingestWithSink, waitFor } from './harness.js';

type Values = Omit<ValidReading, 'arrived_at'>;
const valuesOf = (r: ValidReading): Values => ({
  meter_id: r.meter_id, region: r.region, timestamp_ms: r.timestamp_ms, kwh: r.kwh, voltage: r.voltage, current: r.current,
  power_factor: r.power_factor, power_w: r.power_w,
});

/** Copies each reading's values at write time (as the spool does); remembers the record objects it was given. */
class CopyingSink implements ReadingSink {
  readonly copiesReadings = true;
  readonly copied: Values[] = [];
  readonly records = new Set<ValidReading>();
  recordsGiven = 0;
  failures = 0;
  /** The meter ids of the dropped readings handed over with the batches. */
  readonly droppedIds: Array<string | undefined> = [];
  async write(batch: readonly ValidReading[], dropped: Parameters<ReadingSink['write']>[1] = []): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('spool unavailable');
    }
    for (const d of dropped) this.droppedIds.push((d as { meter_id?: string }).meter_id);
    for (const r of batch) {
      this.copied.push(valuesOf(r));
      this.records.add(r);
      this.recordsGiven++;
    }
  }
}

/** Keeps the records themselves (copiesReadings unset). */
class KeepingSink implements ReadingSink {
  readonly kept: ValidReading[] = [];
  readonly copied: Values[] = [];
  write(batch: readonly ValidReading[]): Promise<void> {
    for (const r of batch) { this.kept.push(r); this.copied.push(valuesOf(r)); }
    return Promise.resolve();
  }
}

const T0 = Date.now() - 60_000;
/** Message m: 10 readings of meters m*10 .. m*10+9, distinct values each. */
function message(m: number): { topic: string; payload: string; values: Values[] } {
  const values: Values[] = [];
  for (let k = 0; k < 10; k++) {
    const i = m * 10 + k;
    const v = 220 + (i % 20);
    const c = 1 + (i % 7) / 10;
    const pf = 0.9 + (i % 9) / 100;
    values.push({ meter_id: `m-${i}`, region: 'north', timestamp_ms: T0 + i, kwh: 1000 + i / 4, voltage: v, current: c, power_factor: pf, power_w: v * c * pf });
  }
  const payload = JSON.stringify(values.map((x) => ({
    meter_id: x.meter_id, timestamp: x.timestamp_ms, kwh: x.kwh, voltage: x.voltage, current: x.current, power_factor: x.power_factor, region: x.region,
  })));
  return { topic: 'meters/north/batch', payload, values };
}

describe('reading records reused after hand-off', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function setup(sink: ReadingSink): Promise<{ ingest: MeterIngest; pub: mqtt.MqttClient }> {
    return ingestWithSink(sink, { batch_max_size: 20 }, cleanups);
  }

  /** Publishes the messages one after another (each acknowledged: handed off) so records come back in between. */
  async function publishInTurn(pub: mqtt.MqttClient, ingest: MeterIngest, messages: number): Promise<Values[]> {
    const want: Values[] = [];
    for (let m = 0; m < messages; m++) {
      const msg = message(m);
      await pub.publishAsync(msg.topic, msg.payload, { qos: 1 });
      want.push(...msg.values);
      await waitFor(() => ingest.status().readings_ingested === want.length, 10_000, `message ${m} handed off`);
    }
    return want;
  }

  it('a copying sink gets reused records, each with the values of its own reading at write time', async () => {
    const sink = new CopyingSink();
    const { ingest, pub } = await setup(sink);
    const want = await publishInTurn(pub, ingest, 30);
    expect(sink.copied).toEqual(want);
    // Reused: 300 readings in far fewer record objects (one message's worth plus what was in flight).
    expect(sink.recordsGiven).toBe(300);
    expect(sink.records.size).toBeLessThan(100);
  });

  it('a sink that keeps the records never sees them change', async () => {
    const sink = new KeepingSink();
    const { ingest, pub } = await setup(sink);
    const want = await publishInTurn(pub, ingest, 30);
    expect(sink.copied).toEqual(want);
    expect(sink.kept.map(valuesOf)).toEqual(want); // still the same values after 29 later messages
    expect(new Set(sink.kept).size).toBe(300);
  });

  it('a failed write is retried with its records untouched', async () => {
    const sink = new CopyingSink();
    sink.failures = 2;
    const { ingest, pub } = await setup(sink);
    const msgs = [0, 1, 2].map(message);
    await pub.publishAsync(msgs[0]!.topic, msgs[0]!.payload, { qos: 1 });
    await waitFor(() => ingest.status().sink_errors === 1, 10_000, 'the first write failed');
    // Readings parsed while the failed batch waits for its retry must not take its records.
    await Promise.all(msgs.slice(1).map((m) => pub.publishAsync(m.topic, m.payload, { qos: 1 })));
    await waitFor(() => ingest.status().readings_ingested === 30, 15_000, 'handed off after the retries');
    expect(ingest.status().sink_errors).toBe(2);
    expect(sink.copied).toEqual(msgs.flatMap((m) => m.values));
  });

  it('a refused duplicate is reused; its rejection keeps its meter id and the readings after it their values', async () => {
    const sink = new CopyingSink();
    const { ingest, pub } = await setup(sink);
    const want = await publishInTurn(pub, ingest, 3);
    const dup = message(1); // the same readings again: 10 duplicates
    await pub.publishAsync(dup.topic, dup.payload, { qos: 1 });
    await waitFor(() => ingest.status().readings_dropped === 10, 10_000, 'duplicates dropped');
    const next = message(3);
    await pub.publishAsync(next.topic, next.payload, { qos: 1 });
    await waitFor(() => ingest.status().readings_ingested === 40, 10_000, 'the next message handed off');
    expect(sink.copied).toEqual([...want, ...next.values]);
    expect(ingest.status().drops_by_reason).toEqual({ duplicate: 10 });
    expect(sink.droppedIds).toEqual(dup.values.map((v) => v.meter_id));
  });
});

describe('ReadingPool', () => {
  it('hands out given records again, and keeps at most MAX_FREE_READINGS', () => {
    const pool = new ReadingPool();
    const take = (): ValidReading => pool.take('m-1', 'north', 1, 1, 230, 1, 1, 230, 0);
    const a = take();
    const b = take();
    expect(a).not.toBe(b);
    pool.give(a);
    expect(take()).toBe(a);
    pool.giveAll(Array.from({ length: MAX_FREE_READINGS + 10 }, take));
    expect(pool.available).toBe(MAX_FREE_READINGS);
  });
});
