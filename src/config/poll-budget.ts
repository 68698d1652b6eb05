// Poll budget: one connection per host:port carries one request at a time, so the requests per
// second of every unit behind it must fit in what one connection can carry. A rough estimate,
// reported as a warning: a device answering slower than assumed is reported at run time.
import { planReads } from '../modbus/read-plan.js';
import type { DeviceProfile } from './profile-types.js';
import type { DeviceConfig } from './site-types.js';

/** Assumed round trip of one Modbus TCP request on a LAN, before the device's own request_gap. */
export const ASSUMED_REQUEST_MS = 20;
/** Warn above this share of the connection's time: retries and slow replies need headroom. */
export const BUDGET_WARN_UTILISATION = 0.5;

export interface EndpointLoad {
  endpoint: string;           // host:port
  devices: string[];
  requests_per_s: number;
  capacity_per_s: number;     // requests one connection carries at the assumed timing
  utilisation: number;        // requests_per_s / capacity_per_s
}

export function endpointLoads(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>): EndpointLoad[] {
  const by = new Map<string, { devices: string[]; busyMsPerS: number; requestsPerS: number }>();
  for (const d of devices) {
    const p = profiles.get(d.profile);
    if (!d.enabled || !p) continue;
    const reqs = planReads(p).requests.length;
    const perS = (reqs * 1000) / d.poll_interval_ms;
    const costMs = ASSUMED_REQUEST_MS + p.quirks.request_gap_ms;
    const key = `${d.host}:${d.port}`;
    const e = by.get(key) ?? { devices: [], busyMsPerS: 0, requestsPerS: 0 };
    e.devices.push(d.id);
    e.busyMsPerS += perS * costMs;
    e.requestsPerS += perS;
    by.set(key, e);
  }
  return [...by.entries()].map(([endpoint, e]) => {
    const utilisation = e.busyMsPerS / 1000;
    const capacity = e.requestsPerS === 0 ? Infinity : e.requestsPerS / Math.max(utilisation, 1e-9);
    return { endpoint, devices: e.devices, requests_per_s: e.requestsPerS, capacity_per_s: capacity, utilisation };
  });
}
