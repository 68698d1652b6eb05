// DR's read side of the point codec: read-backs, scale factors and current values as numbers.
// Writes never go through here: they take a CheckedWrite from a writable-control handle
// (src/modbus/write-controls.ts). Scale, offset, word order and SunSpec scale factors are the
// codec's (src/modbus/codec.ts).
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import { pointWidth, wireAddress } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { decodePoint, numericValue } from '../modbus/codec.js';
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
