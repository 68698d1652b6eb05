// The latest decoded value of every point of every polled device, with the time it was read.
// Pollers write it; device gauges, the grid state and the status page read it, so a metric
// collection never triggers Modbus I/O. A value that could not be read in the last cycle is
// removed, not kept: stale is never reported as fresh (TB-GW#2065), absent beats wrong (HA#51103).
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { GridRole, GridSample, GridSampleSource } from '../grid/sources.js';

interface PointValue {
  value: number | string | boolean;
  /** Wall-clock epoch ms when the response carrying it arrived. */
  readAtMs: number;
}

const GRID_ROLES: ReadonlySet<string> = new Set<GridRole>(['generation', 'load', 'battery_power', 'grid_import', 'grid_export', 'frequency']);

interface DeviceEntry {
  device: DeviceConfig;
  profile: DeviceProfile;
  values: Map<string, PointValue>;
  gridPoints: PointDef[];
}

export class DeviceSnapshot implements GridSampleSource {
  private readonly devices = new Map<string, DeviceEntry>();

  register(device: DeviceConfig, profile: DeviceProfile): void {
    const gridPoints = profile.points.filter((p) => p.role !== undefined && GRID_ROLES.has(p.role));
    this.devices.set(device.id, { device, profile, values: new Map(), gridPoints });
  }

  set(deviceId: string, pointId: string, value: number | string | boolean, readAtMs: number): void {
    const e = this.devices.get(deviceId);
    if (e === undefined) return;
    const v = e.values.get(pointId);
    if (v === undefined) e.values.set(pointId, { value, readAtMs });
    else {
      v.value = value;
      v.readAtMs = readAtMs;
    }
  }

  delete(deviceId: string, pointId: string): void {
    this.devices.get(deviceId)?.values.delete(pointId);
  }

  /** Forget every value of a device (it went down, or its poller stopped). */
  clear(deviceId: string): void {
    this.devices.get(deviceId)?.values.clear();
  }

  get(deviceId: string, pointId: string): PointValue | undefined {
    return this.devices.get(deviceId)?.values.get(pointId);
  }

  /** Point id -> value of one device (read-only view; for the status page and tests). */
  values(deviceId: string): ReadonlyMap<string, PointValue> {
    return this.devices.get(deviceId)?.values ?? new Map();
  }

  deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  /** The grid roles of every registered device's points, read or not (src/grid: absent until read, not 0). */
  gridRoles(): Set<GridRole> {
    const out = new Set<GridRole>();
    for (const e of this.devices.values()) for (const p of e.gridPoints) out.add(p.role as GridRole);
    return out;
  }

  /** Samples for src/grid: every fresh numeric value of a point whose role the grid uses. */
  gridSamples(): GridSample[] {
    const out: GridSample[] = [];
    for (const [id, e] of this.devices) {
      for (const p of e.gridPoints) {
        const v = e.values.get(p.id);
        if (v === undefined || typeof v.value !== 'number' || !Number.isFinite(v.value)) continue;
        out.push({ source: id, point: p.id, role: p.role as GridRole, value: v.value, unit: p.unit ?? '', observedAtMs: v.readAtMs });
      }
    }
    return out;
  }
}
