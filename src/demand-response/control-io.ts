// DR's read side of the point codec: read-backs, scale factors and current values as numbers.
// Writes never go through here: they take a CheckedWrite from a writable-control handle
// (src/modbus/write-controls.ts). Scale, offset, word order and SunSpec scale factors are the
// codec's (src/modbus/codec.ts).
import type { DeviceProfile, PointDef, RegisterTable } from '../config/profile-types.js';
import { pointWidth, wireAddress } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { decodePoint, numericValue } from '../modbus/codec.js';
import { planPoints } from '../modbus/read-plan.js';
import type { ModbusEndpointClient } from '../modbus/types.js';

/** A point or control of the profile, to read (scale factors, read-back points). */
export function findReadPoint(profile: DeviceProfile, id: string): PointDef | undefined {
  return profile.controls.find((c) => c.id === id) ?? profile.points.find((p) => p.id === id);
}

/** A decoded value as a number; undefined for sentinels ("not implemented") and non-numbers. */
function decodeControl(profile: DeviceProfile, point: PointDef, words: Uint16Array | Uint8Array, sf: number | undefined): number | undefined {
  if (point.table === 'coil' || point.table === 'discrete') return words[0] === undefined ? undefined : words[0] ? 1 : 0;
  // The decoder only reads the registers: no copy.
  return numericValue(decodePoint(profile, point, words, 0, sf));
}

/** Reads one point with DR's priority (ahead of queued polls) and decodes it. */
export async function readPoint(endpoint: ModbusEndpointClient, device: DeviceConfig, profile: DeviceProfile, point: PointDef, sf: number | undefined): Promise<number | undefined> {
  const words = await endpoint.read(
    { unitId: device.unit_id, table: point.table, address: wireAddress(profile, point), count: pointWidth(point) },
    { priority: 'high', deviceId: device.id },
  );
  return decodeControl(profile, point, words, sf);
}

/** One read that covers a control's acknowledge point and the control's own register. */
export interface PairedReadBack {
  table: RegisterTable;
  address: number;
  count: number;
  /** Offsets of the acknowledge point and of the control's register in the words read. */
  ackOffset: number;
  ownOffset: number;
}

/**
 * The read-back of a control verified on an acknowledge register (`verify.point` + `equals`) reads
 * that register and the control's own (an acknowledge register can still hold an earlier
 * ACCEPTED). When the profile would read both in one request (its read planner: same table, within
 * quirks.max_gap_registers and max_registers_per_request, not one request per point) and neither has
 * a SunSpec scale factor, they are read together: one request instead of two, both values from the
 * same moment. Undefined: read them one by one.
 */
export function pairedReadBack(profile: DeviceProfile, ack: Readonly<PointDef>, own: Readonly<PointDef>): PairedReadBack | undefined {
  if (ack === own || ack.scale_factor !== undefined || own.scale_factor !== undefined) return undefined;
  if (ack.table === 'coil' || ack.table === 'discrete' || own.table !== ack.table) return undefined;
  let plan: ReturnType<typeof planPoints>;
  try {
    plan = planPoints(profile, [ack, own]);
  } catch {
    return undefined;
  }
  const [req, ...more] = plan.requests;
  if (req === undefined || more.length > 0) return undefined;
  return {
    table: req.table, address: req.address, count: req.count,
    ackOffset: wireAddress(profile, ack) - req.address, ownOffset: wireAddress(profile, own) - req.address,
  };
}

/** Reads a paired read-back (DR's priority) and decodes the acknowledge point and the control's register. */
export async function readPaired(endpoint: ModbusEndpointClient, device: DeviceConfig, profile: DeviceProfile, pair: PairedReadBack, ack: PointDef, own: PointDef): Promise<{ ack: number | undefined; own: number | undefined }> {
  const words = await endpoint.read(
    { unitId: device.unit_id, table: pair.table, address: pair.address, count: pair.count },
    { priority: 'high', deviceId: device.id },
  );
  return {
    ack: numericValue(decodePoint(profile, ack, words, pair.ackOffset)),
    own: numericValue(decodePoint(profile, own, words, pair.ownOffset)),
  };
}
