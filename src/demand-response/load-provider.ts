// Planning input: each load controller's current load in kW, from the pollers' snapshot (never a
// Modbus read at command time: 1,000 controllers would cost 1,000 extra requests). A value older
// than three poll intervals is treated as unknown, and the planner falls back to capacity_kw.
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import type { SiteConfig } from '../config/site-types.js';
import type { Clock } from '../runtime/clock.js';
import type { LoadProvider } from './planner.js';

/** What the provider needs of src/modbus/snapshot.ts DeviceSnapshot. */
interface PointValueReader {
  get(deviceId: string, pointId: string): { value: number | string | boolean; readAtMs: number } | undefined;
}

const KW_PER: Record<string, number> = { W: 0.001, kW: 1, MW: 1000 };

/** The device's `role: load` point with a power unit, if its profile has one. */
function loadPoint(profile: DeviceProfile): (PointDef & { unit: string }) | undefined {
  const p = profile.points.find((x) => x.role === 'load' && x.unit !== undefined && x.unit in KW_PER);
  return p as (PointDef & { unit: string }) | undefined;
}

export function snapshotLoadProvider(snapshot: PointValueReader, site: SiteConfig, profiles: ReadonlyMap<string, DeviceProfile>, clock: Clock): LoadProvider {
  const byId = new Map(site.devices.map((d) => [d.id, d]));
  return (deviceId) => {
    const device = byId.get(deviceId);
    const profile = device ? profiles.get(device.profile) : undefined;
    const point = profile ? loadPoint(profile) : undefined;
    if (!device || !point) return undefined;
    const v = snapshot.get(deviceId, point.id);
    if (!v || typeof v.value !== 'number' || !Number.isFinite(v.value)) return undefined;
    if (clock.now() - v.readAtMs > 3 * device.poll_interval_ms) return undefined;
    return v.value * (KW_PER[point.unit] ?? 1);
  };
}
