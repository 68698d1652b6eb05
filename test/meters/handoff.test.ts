// The hand-off under a failing or slow sink: messages stay unacknowledged while the sink fails,
// nothing is lost or handed off twice, and the backlog in memory stays bounded (backpressure).
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { GROUP_BACKLOG_READINGS } from '../../src/meters/hand-off.js';
import { MeterIngest } from '../../src/meters/ingest.js';
import type { ReadingSink, ValidReading } from '../../src/meters/types.js';
import { ingestWithSink, waitFor } from './harness.js';

class FlakySink implements ReadingSink {
  readonly seen = new Map<string, number>();
  failures: number;
  delayMs: number;
  writes = 0;
  constructor(failures: number, delayMs: number) { this.failures = failures; this.delayMs = delayMs; }
  async write(batch: readonly ValidReading[]): Promise<void> {
    this.writes++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failures > 0) {
      this.failures--;
      throw new Error('database unavailable');
    }
    for (const r of batch) this.seen.set(`${r.meter_id}|${r.timestamp_ms}`, (this.seen.get(`${r.meter_id}|${r.timestamp_ms}`) ?? 0) + 1);
  }
}

const reading = (i: number): string => JSON.stringify({ meter_id: `m-${i}`, timestamp: Date.now() - 1000, kwh: i, voltage: 230, current: 1, power_factor: 1, region: 'north' });

describe('hand-off', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  async function setup(sink: ReadingSink, batchMax: number, qos: 0 | 1 = 1): Promise<{ ingest: MeterIngest; pub: mqtt.MqttClient }> {
    return ingestWithSink(sink, { batch_max_size: batchMax, qos }, cleanups);
  }

  it('a failing sink is retried with the messages unacknowledged; then every reading is handed off once', async () => {
    const sink = new FlakySink(2, 0);
    const { ingest, pub } = await setup(sink, 500);
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publishAsync(`meters/north/m-${i}`, reading(i), { qos: 1 })));
    await waitFor(() => ingest.status().readings_ingested === 20, 10_000, 'handed off after retries');
    expect(ingest.status().sink_errors).toBe(2);
    expect([...sink.seen.values()].every((n) => n === 1)).toBe(true);
    expect(sink.seen.size).toBe(20);
    // With a custom sink the grid source still sees the meters' power.
    expect(ingest.gridSamples()).toMatchObject([{ source: 'meters:north', value: 20 * 230 }]);
  });

  it('a slow sink applies backpressure: the in-memory backlog stays within four batches, nothing is lost', async () => {
    const sink = new FlakySink(0, 40);
    const { ingest, pub } = await setup(sink, 20);
    let maxQueued = 0;
    const timer = setInterval(() => { maxQueued = Math.max(maxQueued, ingest.status().queued_readings); }, 2);
    cleanups.push(async () => clearInterval(timer));
    const n = 600;
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`meters/north/m-${i}`, reading(i), { qos: 1 })));
    await waitFor(() => ingest.status().readings_ingested === n, 15_000, 'all handed off');
    clearInterval(timer);
    expect(sink.seen.size).toBe(n);
    expect(maxQueued).toBeGreaterThan(20); // the sink really was behind
    expect(maxQueued).toBeLessThanOrEqual(4 * 20 + 1);
    // Group commit: far fewer writes than messages.
    expect(sink.writes).toBeLessThan(n / 5);
  });

  it('a sink that takes several writes at once: they overlap, a failed one is retried, every reading is handed off once', async () => {
    class GroupSink extends FlakySink {
      readonly concurrentWrites = 4;
      inFlight = 0;
      maxInFlight = 0;
      override async write(batch: readonly ValidReading[]): Promise<void> {
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try { await super.write(batch); } finally { this.inFlight--; }
      }
    }
    const sink = new GroupSink(1, 30);
    const { ingest, pub } = await setup(sink, 20);
    const n = 400;
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`meters/north/m-${i}`, reading(i), { qos: 1 })));
    await waitFor(() => ingest.status().readings_ingested === n, 15_000, 'all handed off');
    expect(sink.maxInFlight).toBeGreaterThan(1);
    expect(sink.maxInFlight).toBeLessThanOrEqual(4);
    expect(ingest.status().sink_errors).toBe(1);
    expect(sink.seen.size).toBe(n);
    expect([...sink.seen.values()].every((c) => c === 1)).toBe(true);
    expect(ingest.status().queued_readings).toBe(0);
  });

  it('a group-committing sink: the backlog is bounded in readings (more than four batches), full batches ride along while a write is in flight', async () => {
    class GroupSink extends FlakySink {
      readonly concurrentWrites = 16;
      inFlight = 0;
      maxInFlight = 0;
      sizes: number[] = [];
      override async write(batch: readonly ValidReading[]): Promise<void> {
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        this.sizes.push(batch.length);
        try { await super.write(batch); } finally { this.inFlight--; }
      }
    }
    const sink = new GroupSink(0, 40);
    const batchMax = 500;
    const { ingest, pub } = await setup(sink, batchMax);
    let maxQueued = 0;
    const timer = setInterval(() => { maxQueued = Math.max(maxQueued, ingest.status().queued_readings); }, 2);
    cleanups.push(async () => clearInterval(timer));
    // 150 messages of 100 readings: 15,000 readings, more than the bound.
    const messages = 150;
    const per = 100;
    const payload = (m: number): string => JSON.stringify(Array.from({ length: per }, (_, j) => ({
      meter_id: `m-${m}-${j}`, timestamp: Date.now() - 1000, kwh: j, voltage: 230, current: 1, power_factor: 1, region: 'north',
    })));
    await Promise.all(Array.from({ length: messages }, (_, m) => pub.publishAsync(`meters/north/m-${m}`, payload(m), { qos: 1 })));
    await waitFor(() => ingest.status().readings_ingested === messages * per, 30_000, 'all handed off');
    clearInterval(timer);
    expect(sink.seen.size).toBe(messages * per);
    expect([...sink.seen.values()].every((c) => c === 1)).toBe(true);
    // More than four batches waited (larger groups under load), never more than the bound plus one message.
    expect(maxQueued).toBeGreaterThan(4 * batchMax + per);
    expect(maxQueued).toBeLessThanOrEqual(GROUP_BACKLOG_READINGS + per);
    expect(sink.maxInFlight).toBeGreaterThan(4);
    expect(sink.maxInFlight).toBeLessThanOrEqual(16);
    // Under load the batches filled up while earlier writes were in flight.
    expect(sink.sizes.filter((n) => n === batchMax).length).toBeGreaterThan(sink.sizes.length / 2);
    expect(ingest.status().queued_readings).toBe(0);
  });

  it('a QoS 0 subscription ingests too (at-most-once: nothing to acknowledge)', async () => {
    const sink = new FlakySink(0, 0);
    const { ingest, pub } = await setup(sink, 500, 0);
    await Promise.all(Array.from({ length: 10 }, (_, i) => pub.publishAsync(`meters/north/m-${i}`, reading(i), { qos: 0 })));
    await waitFor(() => ingest.status().readings_ingested === 10, 5000, 'QoS 0 readings');
    expect(ingest.status().stale_acks).toBe(0);
  });
});
