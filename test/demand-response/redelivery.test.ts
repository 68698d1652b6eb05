// A broker redelivery (DUP) of a command that is active is not the EMS replaying it: the command was
// answered and is running, so no 'rejected: replayed' ack goes out for it. A replay that is not a
// redelivery is still answered as one.
import { afterEach, describe, expect, it } from 'vitest';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { systemClock } from '../../src/runtime/clock.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

describe('DR command redelivered by the broker', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('answers the first delivery, stays silent on a DUP redelivery of the active command, and rejects a real replay', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock });
    const msg = Buffer.from(signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 15, commandId: 'dup-1' }), KEYS.privateKey));
    await rig.service?.handleMessage(msg, { retained: false });
    const afterFirst = rig.acks.length;
    expect(rig.acks.some((a) => a.status === 'rejected')).toBe(false);
    const writes = rig.servers[0]?.writes.length ?? 0;

    await rig.service?.handleMessage(msg, { retained: false, dup: true });
    expect(rig.acks.length).toBe(afterFirst);
    expect(rig.servers[0]?.writes.length).toBe(writes);

    await rig.service?.handleMessage(msg, { retained: false, dup: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'dup-1', status: 'rejected', reason: 'replayed' });
    expect(rig.servers[0]?.writes.length).toBe(writes);
  });
});
