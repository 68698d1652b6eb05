// The paired read-back: a control verified on an acknowledge register reads that register and its
// own in one request when the profile's read rules allow it (src/demand-response/control-io.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/modbus/profile-load.js';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import { pairedReadBack, readPaired } from '../../src/demand-response/control-io.js';
import { encodePoint } from '../../src/modbus/codec.js';
import { RehearsalEndpoint } from '../../src/modbus/rehearsal-endpoint.js';

describe('pairedReadBack / readPaired', () => {
  let profile: DeviceProfile;
  let ack: PointDef;
  let own: PointDef;
  beforeAll(async () => {
    profile = await loadProfile(new URL('../../devices/generic-load-controller.yaml', import.meta.url).pathname);
    const setpoint = profile.controls.find((c) => c.role === 'setpoint');
    const ackPoint = profile.points.find((p) => p.id === setpoint?.verify.point);
    if (setpoint === undefined || ackPoint === undefined) throw new Error('no setpoint control verified on an acknowledge point');
    ack = ackPoint;
    own = setpoint;
  });
  const quirks = (q: Partial<DeviceProfile['quirks']>): DeviceProfile => ({ ...profile, quirks: { ...profile.quirks, ...q } });

  it('the shipped load controller: acknowledge (40005) and setpoint (40003) in one read across the enable register', () => {
    // address_base 1: wire 40002..40004; the gap (40004, the enable) is within max_gap_registers 2.
    expect(pairedReadBack(profile, ack, own)).toEqual({ table: 'holding', address: 40002, count: 3, ackOffset: 2, ownOffset: 0 });
  });

  it('two reads when the profile reads no gaps, one point per request, or the registers are too far apart', () => {
    expect(pairedReadBack(quirks({ max_gap_registers: 0 }), ack, own)).toBeUndefined();
    expect(pairedReadBack(quirks({ one_request_per_point: true }), ack, own)).toBeUndefined();
    expect(pairedReadBack(quirks({ max_registers_per_request: 2 }), ack, own)).toBeUndefined();
  });

  it('two reads with a scale factor, another table, or no separate acknowledge point', () => {
    expect(pairedReadBack(profile, { ...ack, scale_factor: 'x_sf' }, own)).toBeUndefined();
    expect(pairedReadBack(profile, { ...ack, table: 'input' }, own)).toBeUndefined();
    expect(pairedReadBack(profile, own, own)).toBeUndefined();
  });

  it('decodes both values from the one read, each at its own offset', async () => {
    const pair = pairedReadBack(profile, ack, own);
    if (pair === undefined) throw new Error('expected a paired read-back');
    const ep = new RehearsalEndpoint('127.0.0.1:502');
    ep.set(7, 'holding', 40002, encodePoint(profile, own, 20));
    ep.set(7, 'holding', 40004, encodePoint(profile, ack, 1));
    const device = { id: 'lc7', unit_id: 7 } as Parameters<typeof readPaired>[1];
    expect(await readPaired(ep, device, profile, pair, ack, own)).toEqual({ ack: 1, own: 20 });
    expect(ep.requests).toBe(1);
  });
});
