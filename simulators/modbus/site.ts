// Every Modbus device of a site, simulated on loopback: devices are grouped by host:port as in the
// site file and each endpoint gets one server with its unit ids (an RTU gateway behind one port).

import type { LoadedSite } from '../../src/config/site-types.js';
import type { Clock } from '../../src/runtime/clock.js';
import { createSimulatedDevice, type SimulatedDevice } from './device.js';
import { startModbusServer, type ModbusSimServer } from './server.js';

export interface SiteEndpoint {
  key: string;                       // host:port as written in the site file
  devices: { id: string; unitId: number; profile: string }[];
  server: ModbusSimServer;           // server.port is the port actually listened on
}

export interface SiteSimulators {
  endpoints: SiteEndpoint[];
  /** The simulated device behind a site device id. */
  device(id: string): SimulatedDevice | undefined;
  close(): Promise<void>;
}

export interface SiteSimulatorOptions {
  host?: string;            // where to listen; default 127.0.0.1 whatever the site file says
  /** Port override: 0 for tests (any free port), or a function of the site's port. */
  port?: number | ((sitePort: number, key: string) => number);
  clock?: Clock;
  tickMs?: number;
  /** Refuse connections beyond the profiles' quirks.max_connections (the smallest at an endpoint). */
  enforceMaxConnections?: boolean;
}

export type SiteSimulatorErrorCode = 'unknown_profile' | 'duplicate_unit' | 'listen_failed';

export class SiteSimulatorError extends Error {
  readonly code: SiteSimulatorErrorCode;
  constructor(code: SiteSimulatorErrorCode, message: string) {
    super(message);
    this.name = 'SiteSimulatorError';
    this.code = code;
  }
}

export async function startSiteSimulators(loaded: LoadedSite, opts: SiteSimulatorOptions = {}): Promise<SiteSimulators> {
  const groups = new Map<string, { sitePort: number; units: Map<number, SimulatedDevice>; devices: SiteEndpoint['devices']; maxConnections: number }>();
  const byDevice = new Map<string, SimulatedDevice>();
  let seed = 1;
  for (const d of loaded.site.devices) {
    const profile = loaded.profiles.get(d.profile);
    if (!profile) throw new SiteSimulatorError('unknown_profile', `device ${JSON.stringify(d.id)}: profile ${JSON.stringify(d.profile)} not loaded`);
    const key = `${d.host}:${d.port}`;
    const g = groups.get(key) ?? { sitePort: d.port, units: new Map<number, SimulatedDevice>(), devices: [] as SiteEndpoint['devices'], maxConnections: Infinity };
    if (g.units.has(d.unit_id)) {
      throw new SiteSimulatorError('duplicate_unit', `device ${JSON.stringify(d.id)}: unit ${d.unit_id} at ${key} is already simulated`);
    }
    const device = createSimulatedDevice(profile, { clock: opts.clock, seed: seed++, tickMs: opts.tickMs });
    g.units.set(d.unit_id, device);
    g.devices.push({ id: d.id, unitId: d.unit_id, profile: d.profile });
    g.maxConnections = Math.min(g.maxConnections, profile.quirks.max_connections);
    groups.set(key, g);
    byDevice.set(d.id, device);
  }
  const endpoints: SiteEndpoint[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(endpoints.map((e) => e.server.close()));
  };
  try {
    for (const [key, g] of groups) {
      const port = typeof opts.port === 'function' ? opts.port(g.sitePort, key) : opts.port ?? g.sitePort;
      const host = opts.host ?? '127.0.0.1';
      const server = await startModbusServer({
        host, port, units: g.units, clock: opts.clock,
        ...(opts.enforceMaxConnections && Number.isFinite(g.maxConnections) ? { maxConnections: g.maxConnections } : {}),
      }).catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        throw new SiteSimulatorError('listen_failed', `cannot listen on ${host}:${port} for ${key} (${g.devices.map((d) => d.id).join(', ')}): ${why}`);
      });
      endpoints.push({ key, devices: g.devices, server });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return { endpoints, device: (id) => byDevice.get(id), close: closeAll };
}
