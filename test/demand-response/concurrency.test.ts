// Controllers are commanded concurrently (bounded), interleaved by endpoint, not one after another.
import { afterEach, describe, expect, it } from 'vitest';
import type { ResultAck } from '../../src/demand-response/ack.js';
import { interleaveBy, runBounded } from '../../src/demand-response/concurrency.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { systemClock } from '../../src/runtime/clock.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

describe('DR concurrency', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('interleaves by endpoint and never exceeds the bound', async () => {
    expect(interleaveBy(['a1', 'a2', 'a3', 'b1', 'c1', 'c2'], (s) => s[0] ?? '')).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3']);
    let inFlight = 0;
    let peak = 0;
    const out = await runBounded([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak).toBe(3);
  });

  it('commands controllers behind different endpoints at the same time', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2], [1, 2], [1, 2], [1, 2], [1, 2]], clock: systemClock });
    // Every answer takes 50 ms: one after another, 10 controllers x (write + read-back) = 1 s.
    for (const s of rig.servers) s.setFault('*', { latencyMs: 50 });
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.5, durationMinutes: 15, commandId: 'conc-1' }), KEYS.privateKey);
    // Requests outstanding at once across the endpoints, sampled while the command runs: one after
    // another would never show more than one (each answer is held 50 ms, so a sample every few ms sees it).
    const servers = rig.servers;
    const outstanding = (): number => servers.reduce((n, s) => n + s.stats.requests - s.stats.responses, 0);
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, outstanding()); }, 3);
    try {
      await rig.service?.handleMessage(Buffer.from(msg), { retained: false });
    } finally {
      clearInterval(sampler);
    }
    const ack = rig.acks.at(-1) as ResultAck;
    expect(ack).toMatchObject({ status: 'completed', controller_count: 10, ack_count: 10 });
    expect(peak).toBeGreaterThanOrEqual(3);
  });
});
