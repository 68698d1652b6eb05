// The shipped devices/generic-load-controller.yaml: setpoint + enable flag, verified on the
// acknowledge register (equals 1 after 100 ms); restore writes max and the enable's own restore (0).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import { drSpansPerController } from '../../src/config/dr-targets.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { systemClock } from '../../src/runtime/clock.js';
import { KEYS, SITE_ID } from './fixtures.js';
import { Rig } from './harness.js';

describe('DR with devices/generic-load-controller.yaml', () => {
  let rig: Rig;
  let profile: DeviceProfile;
  beforeAll(async () => {
    profile = await loadProfile(new URL('../../devices/generic-load-controller.yaml', import.meta.url).pathname);
    rig = await Rig.start({ profile, servers: [[1, 2]], clock: systemClock, capacityKw: 300 });
  });
  afterAll(async () => { await rig.stop(); });

  const send = async (type: 'curtail' | 'restore', id: string, reductionMw = 0.2): Promise<void> => {
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type, reductionMw, durationMinutes: 15, commandId: id });
    await rig.service?.handleMessage(Buffer.from(signedMessage(cmd, KEYS.privateKey)), { retained: false });
  };

  it('curtails through setpoint + enable and acknowledges on the status register', async () => {
    expect(rig.unit('lc1').numberOf('load_power')).toBe(400);
    await send('curtail', 'real-1');
    expect(rig.acks.at(-1)).toMatchObject({ status: 'completed', ack_count: 2, achieved_mw: 0.2 });
    for (const id of ['lc1', 'lc2']) {
      expect(rig.unit(id).numberOf('setpoint_readback')).toBe(200);
      expect(rig.unit(id).numberOf('enabled')).toBe(1);
      expect(rig.unit(id).numberOf('load_power')).toBe(200);
    }
    // Wire addresses (address_base 1): 40003 -> 40002 setpoint raw 2000, 40004 -> 40003 enable 1.
    expect(rig.servers[0]?.writes.filter((w) => w.unitId === 1).map((w) => [w.address, [...w.values]])).toEqual([[40002, [2000]], [40003, [1]]]);
    // Setpoint and enable: four spans per controller (validate's span queue warning counts on it).
    expect(drSpansPerController(profile)).toBe(4);
    expect(rig.spans.getFinishedSpans()).toHaveLength(1 + 2 * drSpansPerController(profile));
  });

  it('restores to max with the enable flag off (after the 1 s rate limit)', async () => {
    await send('restore', 'real-1-restore');
    expect(rig.acks.at(-1)).toMatchObject({ status: 'completed', command_type: 'restore', ack_count: 2, ended_command_ids: ['real-1'] });
    for (const id of ['lc1', 'lc2']) {
      expect(rig.unit(id).numberOf('setpoint_readback')).toBe(500);
      expect(rig.unit(id).numberOf('enabled')).toBe(0);
      expect(rig.unit(id).numberOf('load_power')).toBe(400);
    }
    const t = rig.servers[0]?.writes.filter((w) => w.unitId === 1 && w.address === 40002).map((w) => w.at) ?? [];
    expect((t[1] ?? 0) - (t[0] ?? 0)).toBeGreaterThanOrEqual(990);
  });

  it('serves a reduction larger than the zone can give partly, down to the essential load, and says so', async () => {
    await send('curtail', 'real-2', 10);
    const accepted = rig.acks.find((a) => a.command_id === 'real-2' && a.status === 'accepted');
    // Two controllers of 300 kW capacity, each keeps its 50 kW essential load (control min).
    expect(accepted).toMatchObject({ requested_mw: 10, planned_mw: 0.5, partial: true, controller_count: 2 });
    expect(rig.acks.at(-1)).toMatchObject({ status: 'completed', achieved_mw: 0.5, partial: true, ack_count: 2 });
    for (const id of ['lc1', 'lc2']) expect(rig.unit(id).numberOf('load_power')).toBe(50);
  });

  it('does not take a latched acknowledge register for a restore the device ignored', async () => {
    // lc2 still shows ACCEPTED (1) from the last curtailment; now it answers writes but ignores them.
    const lc2 = rig.unit('lc2');
    expect(lc2.numberOf('ack_status')).toBe(1);
    lc2.write = () => 0;
    await send('restore', 'real-2-restore');
    const done = rig.acks.at(-1);
    expect(done).toMatchObject({ command_type: 'restore', ack_count: 1 });
    const outcome = (done as { controllers: Array<{ controller_id: string; outcome: string }> }).controllers.map((c) => [c.controller_id, c.outcome]);
    expect(outcome).toEqual([['lc1', 'acknowledged'], ['lc2', 'not_acknowledged']]);
    expect(lc2.numberOf('load_power')).toBe(50);
  });
});
