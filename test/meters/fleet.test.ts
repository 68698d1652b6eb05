// The meter fleet simulator: deterministic with a seed, reports what it sent per category, scales
// to 100k meters, and publishes to an embedded broker when no URL is given.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetGenerator, type GeneratorOptions } from '../../simulators/meter-fleet/generator.js';
import { MeterFleet } from '../../simulators/meter-fleet/fleet.js';

const base: GeneratorOptions = {
  meters: 200, regions: ['north', 'south'], seed: 5, batchSize: 3, topicPrefix: 'meters', regionInPayload: true,
  faults: { duplicate: 0.1, malformed_json: 0.05, out_of_range: 0.05, clock_skew: 0.05, stale: 0.05 }, now: () => 1_764_000_000_000,
};

describe('meter fleet simulator', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

  it('is deterministic: the same seed gives the same messages and report, another seed does not', () => {
    const run = (seed: number): { msgs: string[]; report: unknown } => {
      const g = new FleetGenerator({ ...base, seed });
      const msgs: string[] = [];
      for (let i = 0; i < 300; i++) for (const m of g.next()) msgs.push(`${m.topic} ${m.payload}`);
      return { msgs, report: g.report };
    };
    const a = run(5);
    expect(run(5)).toEqual(a);
    expect(run(6).msgs).not.toEqual(a.msgs);
  });

  it('the report adds up: readings = sum of categories = ingested + dropped', () => {
    const g = new FleetGenerator(base);
    for (let i = 0; i < 500; i++) g.next();
    const r = g.report;
    const byCat = Object.values(r.by_category).reduce((a, b) => a + b, 0);
    const expected = r.expected.ingested + Object.values(r.expected.dropped).reduce((a, b) => a + b, 0);
    expect(byCat).toBe(r.readings);
    expect(expected).toBe(r.readings);
    expect(r.by_category.duplicate).toBeGreaterThan(0);
    expect(r.expected.dropped['future_timestamp']).toBe(r.by_category.clock_skew);
    expect(r.readings).toBeGreaterThanOrEqual(1500);
  });

  it('handles 100k meters', () => {
    const g = new FleetGenerator({ ...base, meters: 100_000, batchSize: 100, faults: {} });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) for (const m of g.next()) for (const r of JSON.parse(m.payload) as Array<{ meter_id: string }>) ids.add(r.meter_id);
    expect(g.report.readings).toBe(5000);
    expect(ids.size).toBeGreaterThan(4800); // spread over the fleet
  });

  it('without a URL it starts an embedded broker; a burst adds messages; a subscriber sees all of them', async () => {
    const fleet = new MeterFleet({ meters: 20, seed: 2, messages: 200, rate: 100, burstEveryMs: 50, burstMessages: 40 });
    cleanups.push(() => fleet.stop());
    await fleet.start();
    expect(fleet.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const sub = await mqtt.connectAsync(fleet.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    let got = 0;
    sub.on('message', () => { got++; });
    await sub.subscribeAsync('meters/#', { qos: 1 });
    const report = await fleet.run();
    expect(report.messages).toBeGreaterThanOrEqual(200);
    expect(report.publish_errors).toBe(0);
    // Bursts of 40 every 50 ms come on top of the paced stream: they happened, and the steady
    // stream alone kept its pace (100 msg/s: a lower bound on time, which a loaded machine cannot break).
    expect(report.burst_messages).toBeGreaterThanOrEqual(40);
    const steady = report.messages - report.burst_messages;
    expect(report.duration_ms).toBeGreaterThanOrEqual(((steady - 1) / 100) * 1000 - 20);
    const deadline = Date.now() + 5000;
    while (got < report.messages && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(report.messages);
  });
});

describe('meter fleet CLI', () => {
  it('runs against an embedded broker and prints the report as the last line; refuses bad fault options', async () => {
    const { main } = await import('../../simulators/meter-fleet/main.js');
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string) => { out.push(String(chunk)); return true; }) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await main(['--meters', '50', '--messages', '40', '--rate', '0', '--batch', '5', '--seed', '3', '--fault', 'out_of_range=0.2'])).toBe(0);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    const report = JSON.parse(out.join('').trim().split('\n').pop() ?? '{}') as { messages: number; readings: number; by_category: Record<string, number> };
    expect(report.messages).toBe(40);
    expect(report.readings).toBe(200);
    expect(report.by_category['out_of_range']).toBeGreaterThan(0);
    await expect(main(['--fault', 'gremlins=0.1'])).rejects.toThrow(/unknown category/);
    await expect(main(['--fault', 'duplicate=2'])).rejects.toThrow(/\[0, 1\]/);
  });
});
