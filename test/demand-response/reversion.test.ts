// Reversion and re-assertion with an injected clock: duration end, device revert timer, restart
// (still active -> re-asserted; ended while down -> restored), controller reboot -> re-asserted.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { drSpansPerController } from '../../src/config/dr-targets.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { createSimulatedDevice, startModbusServer } from '../../simulators/modbus/index.js';
import { freePort } from '../helpers/ports.js';
import { KEYS, SITE_ID, TestClock, device, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

function withRevertTimer(): DeviceProfile {
  const p = loadControllerProfile({ revert_timer: { point: 'revert_s' } });
  // The timer is a control of its own (bounds, verify): only controls can be written.
  p.controls.push({ id: 'revert_s', table: 'holding', address: 11, type: 'uint16', unit: 's', min: 0, max: 3600, verify: {} });
  return p;
}

describe('DR reversion and re-assertion', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  async function curtail(r: Rig, clock: TestClock, id: string, minutes = 15): Promise<void> {
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: minutes, commandId: id, nowMs: clock.now() }), KEYS.privateKey);
    await r.service?.handleMessage(Buffer.from(msg), { retained: false });
    expect(r.acks.at(-1)).toMatchObject({ status: 'completed', command_id: id, ack_count: 2 });
  }

  const limits = (r: Rig): Array<number | undefined> => ['lc1', 'lc2'].map((id) => r.unit(id).numberOf('power_limit_kw'));

  it('restores and verifies when the duration ends, and sets the device revert timer', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: withRevertTimer(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-end');
    expect(limits(rig)).toEqual([50, 50]);
    expect(rig.unit('lc1').numberOf('load_kw')).toBe(50);
    // The device's own reversion timer holds the remaining duration: a dead gateway cannot leave it curtailed.
    expect(rig.servers[0]?.writes.filter((w) => w.address === 11).map((w) => w.values[0])).toEqual([900, 900]);
    // Setpoint and revert timer: four spans per controller (validate's span queue warning counts on it).
    expect(drSpansPerController(withRevertTimer())).toBe(4);
    expect(rig.spans.getFinishedSpans()).toHaveLength(1 + 2 * drSpansPerController(withRevertTimer()));
    const persisted = JSON.parse(readFileSync(rig.stateFile, 'utf8')) as { active: Array<{ command_id: string }> };
    expect(persisted.active.map((a) => a.command_id)).toEqual(['c-end']);

    clock.advance(14 * 60_000);
    await rig.service?.idle();
    expect(limits(rig)).toEqual([50, 50]);
    clock.advance(60_000);
    await rig.waitFor(() => rig?.acks.some((a) => a.status === 'ended') === true, 'the end ack');
    await rig.service?.idle();
    expect(limits(rig)).toEqual([500, 500]);
    expect(rig.unit('lc2').numberOf('load_kw')).toBe(100);
    expect(rig.acks.find((a) => a.status === 'ended')).toMatchObject({ command_id: 'c-end', reason: 'duration_ended', ack_count: 2 });
    expect(rig.service?.status().active).toEqual([]);
    expect((JSON.parse(readFileSync(rig.stateFile, 'utf8')) as { active: unknown[] }).active).toEqual([]);
  });

  it('re-asserts a still-active curtailment after a gateway restart, then ends it on time', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-restart');
    await rig.stopService();
    // While the gateway is down the controllers reboot and forget the command.
    rig.servers[0]?.reboot('*');
    expect(limits(rig)).toEqual([500, 500]);
    clock.advance(5 * 60_000);
    await rig.restartGateway();
    expect(limits(rig)).toEqual([50, 50]);
    expect(rig.acks.at(-1)).toMatchObject({ status: 'reasserted', command_id: 'c-restart', ack_count: 2 });
    clock.advance(10 * 60_000);
    await rig.waitFor(() => rig?.acks.at(-1)?.status === 'ended', 'the end ack');
    expect(limits(rig)).toEqual([500, 500]);
  });

  it('restores on start a curtailment that ended while the gateway was down', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-down');
    await rig.stopService();
    clock.advance(20 * 60_000);
    await rig.restartGateway();
    expect(limits(rig)).toEqual([500, 500]);
    expect(rig.acks.at(-1)).toMatchObject({ status: 'ended', command_id: 'c-down', reason: 'ended_while_down', ack_count: 2 });
    expect(rig.service?.status().active).toEqual([]);
  });

  it('with onStartActive "restore", restores instead of re-asserting', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-policy');
    await rig.restartGateway({ onStartActive: 'restore' });
    expect(limits(rig)).toEqual([500, 500]);
    expect(rig.acks.at(-1)).toMatchObject({ status: 'ended', reason: 'restored_on_start' });
  });

  it('re-asserts after a controller reboot that drops the connection', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-reboot');
    rig.servers[0]?.reboot(1);
    rig.servers[0]?.dropConnections();
    expect(rig.unit('lc1').numberOf('power_limit_kw')).toBe(500);
    await rig.waitFor(() => rig?.acks.some((a) => a.status === 'reasserted') === true, 'a re-assertion');
    await rig.service?.idle();
    expect(limits(rig)).toEqual([50, 50]);
    expect(rig.unit('lc1').numberOf('load_kw')).toBe(50);
  });

  it('re-asserts a controller seen reverted early by the periodic check (reboot without disconnect)', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock, checkIntervalMs: 100 });
    await curtail(rig, clock, 'c-check');
    rig.servers[0]?.reboot(2);
    await rig.waitFor(() => rig?.acks.some((a) => a.status === 'reasserted') === true, 'a re-assertion');
    await rig.service?.idle();
    expect(rig.acks.find((a) => a.status === 'reasserted')).toMatchObject({ controller_count: 1, ack_count: 1 });
    expect(limits(rig)).toEqual([50, 50]);
  });

  it('a newer curtailment of the zone supersedes the active one', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    await curtail(rig, clock, 'c-old');
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.05, durationMinutes: 5, commandId: 'c-new', nowMs: clock.now() }), KEYS.privateKey);
    await rig.service?.handleMessage(Buffer.from(msg), { retained: false });
    expect(rig.acks.find((a) => a.command_id === 'c-old' && a.status === 'ended')).toMatchObject({ reason: 'superseded' });
    expect(limits(rig)).toEqual([75, 75]);
    expect(rig.service?.status().active.map((a) => a.command_id)).toEqual(['c-new']);
    clock.advance(15 * 60_000);
    await rig.waitFor(() => rig?.acks.at(-1)?.status === 'ended' && rig.acks.at(-1)?.command_id === 'c-new', 'the end of c-new');
    expect(limits(rig)).toEqual([500, 500]);
  });

  it('reports an unreachable controller, and curtails it once its endpoint comes up', async () => {
    const clock = new TestClock();
    const profile = loadControllerProfile();
    rig = await Rig.start({ profile, servers: [[1, 2]], clock });
    const port = await freePort();
    await rig.stopService();
    rig.devices.push({ ...device('late', port, 7), profile: profile.profile });
    await rig.startService();
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.15, durationMinutes: 15, commandId: 'c-late', nowMs: clock.now() }), KEYS.privateKey);
    await rig.service?.handleMessage(Buffer.from(msg), { retained: false });
    const done = rig.acks.at(-1);
    expect(done).toMatchObject({ status: 'completed', controller_count: 3, ack_count: 2 });
    expect(done?.status === 'completed' ? done.controllers.find((c) => c.controller_id === 'late')?.outcome : undefined).toBe('unreachable');
    const unit = createSimulatedDevice(profile, { clock });
    const late = await startModbusServer({ units: new Map([[7, unit]]), port });
    try {
      await rig.waitFor(() => rig?.acks.some((a) => a.status === 'reasserted' && a.ack_count === 1) === true, 'the late controller re-asserted');
      expect(unit.numberOf('power_limit_kw')).toBe(50);
    } finally {
      await rig.stop();
      rig = undefined;
      await late.close();
    }
  });

  it('dry run: plans, acks, traces and audits, but nothing reaches the wire', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock, dr: { dry_run: true } });
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: 15, commandId: 'c-dry', nowMs: clock.now() }), KEYS.privateKey);
    await rig.service?.handleMessage(Buffer.from(msg), { retained: false });
    expect(rig.acks.map((a) => a.status)).toEqual(['accepted', 'completed']);
    const done = rig.acks[1];
    expect(done).toMatchObject({ dry_run: true, controller_count: 2, ack_count: 0 });
    expect(done?.status === 'completed' ? done.controllers.map((c) => c.outcome) : []).toEqual(['dry_run', 'dry_run']);
    expect(await rig.counter()).toEqual([{ attrs: { outcome: 'dry_run', zone: 'zone-a' }, value: 2 }]);
    clock.advance(15 * 60_000);
    await rig.waitFor(() => rig?.acks.at(-1)?.status === 'ended', 'the dry end');
    expect(rig.writes()).toBe(0);
    expect(rig.service?.status()).toMatchObject({ dry_run: true, active: [] });
  });

  it('plans from measured load, adding back the share the active curtailment already sheds', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock });
    const r = rig;
    await r.stopService();
    await r.startService({ loadKw: (id) => r.unit(id).numberOf('load_kw') });
    await curtail(r, clock, 'm-1');
    expect(['lc1', 'lc2'].map((id) => r.unit(id).numberOf('load_kw'))).toEqual([50, 50]);
    const msg = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.05, durationMinutes: 5, commandId: 'm-2', nowMs: clock.now() }), KEYS.privateKey);
    await r.service?.handleMessage(Buffer.from(msg), { retained: false });
    // 0.05 MW in total from 2 x 100 kW (not from the 2 x 50 kW measured under m-1): 25 kW each.
    expect(['lc1', 'lc2'].map((id) => r.unit(id).numberOf('load_kw'))).toEqual([75, 75]);
  });
});
