// The start-up rehearsal of the DR path (src/demand-response/warm-up.ts): it runs the real intake,
// coordinator and executor, and nothing of it reaches a device, the state file, the spans, the
// acks or the metrics; the first real command afterwards runs as usual.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResultAck } from '../../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { warmUp } from '../../src/demand-response/warm-up.js';
import { systemClock } from '../../src/runtime/clock.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { KEYS, SITE_ID, loadControllerProfile, siteWith } from './fixtures.js';
import { Rig } from './harness.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('DR warm-up at start-up', () => {
  it('rehearses every controller\'s commands in memory: no request to any device, no state file, span, ack or metric', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2, 3], [4, 5]], clock: systemClock });
    // Rig.start ran the service's start(), warm-up included (the default).
    for (const s of rig.servers) {
      expect(s.stats.requests).toBe(0);
      expect(s.writes).toHaveLength(0);
    }
    expect(existsSync(rig.stateFile)).toBe(false);
    expect(rig.spans.getFinishedSpans()).toHaveLength(0);
    expect(rig.acks).toHaveLength(0);
    const collected = await rig.reader.collect();
    const names = collected.resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics).filter((m) => m.dataPoints.length > 0).map((m) => m.descriptor.name);
    expect(names).not.toContain(METRICS.drControllerCommands);
    expect(names).not.toContain(METRICS.drCommands);

    // The rehearsal itself: every controller curtailed and restored, rounds repeated on a small site, all answered in memory.
    const r = await warmUp({ site: siteWith(rig.devices), profiles: new Map([[loadControllerProfile().profile, loadControllerProfile()]]), config: rig.drConfig(), clock: systemClock });
    expect(r.rounds).toBeGreaterThan(1);
    expect(r.tasks).toBe(r.rounds * 2 * 5);
    expect(r.requests).toBeGreaterThanOrEqual(r.tasks * 2);
    for (const s of rig.servers) expect(s.stats.requests).toBe(0);
    expect(existsSync(rig.stateFile)).toBe(false);
  }, 60_000);

  it('the first real command after it is carried out and verified as usual', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock: systemClock });
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: 15, commandId: 'after-warm-up' });
    await rig.service?.handleMessage(Buffer.from(signedMessage(cmd, KEYS.privateKey)), { retained: false });
    const done = rig.acks.find((a) => a.status === 'completed') as ResultAck | undefined;
    expect(done).toMatchObject({ command_id: 'after-warm-up', controller_count: 2, ack_count: 2 });
    expect(rig.writes()).toBeGreaterThanOrEqual(2);
    expect(existsSync(rig.stateFile)).toBe(true);
  }, 60_000);
});
