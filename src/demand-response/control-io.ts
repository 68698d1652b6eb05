// DR's bridge to the point codec: a control value to a write request, a read-back to a number.
// Scale, offset, word order and SunSpec scale factors are the codec's (src/modbus/codec.ts); this
// module only picks the table and address and turns decoded values into numbers.
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import { pointWidth, wireAddress } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { CodecError, decodePoint, encodePoint } from '../modbus/codec.js';
import { ModbusError, type ModbusEndpointClient } from '../modbus/types.js';

export type EncodedWrite =
  | { table: 'holding'; address: number; values: Uint16Array }
  | { table: 'coil'; address: number; values: boolean[] };

export function findPoint(profile: DeviceProfile, id: string): PointDef | undefined {
  return profile.controls.find((c) => c.id === id) ?? profile.points.find((p) => p.id === id);
}

/** The write request body (without unit id) for `value` in the point's scaled unit. */
export function encodeControl(profile: DeviceProfile, point: PointDef, value: number, sf: number | undefined): EncodedWrite {
  const address = wireAddress(profile, point);
  if (point.table === 'coil') return { table: 'coil', address, values: [value !== 0] };
  if (point.table !== 'holding') {
    throw new ModbusError('rejected_write', `${profile.profile} ${point.id}: table ${point.table} is not writable`);
  }
  try {
    return { table: 'holding', address, values: encodePoint(profile, point, value, sf) };
  } catch (err) {
    // A value the register cannot carry is refused before the wire, like an out-of-bounds one.
    if (err instanceof CodecError) throw new ModbusError('rejected_write', `${profile.profile} ${point.id}: ${err.code}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** A decoded value as a number; undefined for sentinels ("not implemented") and non-numbers. */
export function decodeControl(profile: DeviceProfile, point: PointDef, words: Uint16Array | Uint8Array, sf: number | undefined): number | undefined {
  if (point.table === 'coil' || point.table === 'discrete') return words[0] === undefined ? undefined : words[0] ? 1 : 0;
  const v: unknown = decodePoint(profile, point, Uint16Array.from(words), 0, sf);
  return asNumber(v);
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object' && v !== null && 'value' in v) return asNumber((v as { value: unknown }).value);
  return undefined;
}

/** Reads one point with DR's priority (ahead of queued polls) and decodes it. */
export async function readPoint(endpoint: ModbusEndpointClient, device: DeviceConfig, profile: DeviceProfile, point: PointDef, sf: number | undefined): Promise<number | undefined> {
  const words = await endpoint.read(
    { unitId: device.unit_id, table: point.table, address: wireAddress(profile, point), count: pointWidth(point) },
    { priority: 'high', deviceId: device.id },
  );
  return decodeControl(profile, point, words, sf);
}

