// Poll budget: one connection per host:port, or one serial line, carries one request at a time, so
// the requests per second of every unit behind it must fit in what it can carry. A rough estimate,
// reported as a warning: a device answering slower than assumed is reported at run time. The site
// loader (src/config, which may not import this layer) receives it as LoadOptions.pollBudget.
import { endpointKey } from '../config/endpoint-key.js';
import type { PollBudgetWarning } from '../config/load.js';
import type { DeviceProfile } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { lineTiming, rtuBytes } from './framing-rtu.js';
import { planReads, type PlannedRead } from './read-plan.js';

/** Assumed round trip of one Modbus TCP request on a LAN, before the device's own request_gap. */
const ASSUMED_REQUEST_MS = 20;
/** Assumed time an RTU device takes to start answering, on top of the bytes and silences on the line. */
const ASSUMED_RTU_TURNAROUND_MS = 5;
/** Warn above this share of the connection's time: retries and slow replies need headroom. */
const BUDGET_WARN_UTILISATION = 0.5;

interface EndpointLoad {
  endpoint: string;           // host:port, or the serial port
  devices: string[];
  requests_per_s: number;
  capacity_per_s: number;     // requests one connection carries at the assumed timing
  utilisation: number;        // requests_per_s / capacity_per_s
}

/** Time one planned read holds the line: a LAN round trip, or (RTU) its bytes at the line's baud, two silences and a turnaround. */
function requestCostMs(d: Pick<DeviceConfig, 'transport' | 'serial'>, r: Pick<PlannedRead, 'table' | 'count'>): number {
  const s = d.serial;
  if ((d.transport ?? 'tcp') === 'tcp' || s === undefined) return ASSUMED_REQUEST_MS;
  const t = lineTiming(s);
  const bits = r.table === 'coil' || r.table === 'discrete';
  const n = rtuBytes(5, 2 + (bits ? Math.ceil(r.count / 8) : 2 * r.count));
  return (n.request + n.answer) * t.charMs + 2 * t.silenceMs + s.turnaround_ms + ASSUMED_RTU_TURNAROUND_MS;
}

function endpointLoads(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>): EndpointLoad[] {
  const by = new Map<string, { devices: string[]; busyMsPerS: number; requestsPerS: number }>();
  for (const d of devices) {
    const p = profiles.get(d.profile);
    if (!d.enabled || !p) continue;
    const reqs = planReads(p).requests;
    const cycleMs = reqs.reduce((sum, r) => sum + requestCostMs(d, r) + p.quirks.request_gap_ms, 0);
    const key = endpointKey(d);
    const e = by.get(key) ?? { devices: [], busyMsPerS: 0, requestsPerS: 0 };
    e.devices.push(d.id);
    e.busyMsPerS += (cycleMs * 1000) / d.poll_interval_ms;
    e.requestsPerS += (reqs.length * 1000) / d.poll_interval_ms;
    by.set(key, e);
  }
  return [...by.entries()].map(([endpoint, e]) => {
    const utilisation = e.busyMsPerS / 1000;
    const capacity = e.requestsPerS === 0 ? Infinity : e.requestsPerS / Math.max(utilisation, 1e-9);
    return { endpoint, devices: e.devices, requests_per_s: e.requestsPerS, capacity_per_s: capacity, utilisation };
  });
}

/** The endpoints above BUDGET_WARN_UTILISATION, each as a warning on its first device's poll_interval. */
export function pollBudgetWarnings(devices: readonly DeviceConfig[], profiles: ReadonlyMap<string, DeviceProfile>): PollBudgetWarning[] {
  const out: PollBudgetWarning[] = [];
  for (const e of endpointLoads(devices, profiles)) {
    if (e.utilisation <= BUDGET_WARN_UTILISATION) continue;
    const first = devices.find((d) => d.id === e.devices[0]);
    const line = first?.transport === 'rtu' || first?.transport === 'rtu_over_tcp' ? `the serial line at ${first.serial?.baud ?? '?'} baud` : 'one connection';
    const message = `poll budget: ${e.endpoint} (${e.devices.join(', ')}) needs ${e.requests_per_s.toFixed(1)} requests/s, `
      + `about ${Math.round(e.utilisation * 100)}% of ${line}: raise poll_interval or merge reads`;
    if (first) out.push({ device: first, message });
  }
  return out;
}
