// Every Modbus device of a site, simulated on loopback: devices are grouped as the gateway groups
// them (endpointKey: host:port, or the serial port). A TCP endpoint gets one server with its unit
// ids (an RTU gateway behind one port; raw RTU frames for rtu_over_tcp); a serial line is served on
// a path the caller names (a pseudo-terminal end), or on a pty pair made here with socat.

import type { DeviceProfile } from '../../src/config/profile-types.js';
import type { LoadedSite, ModbusTransport } from '../../src/config/site-types.js';
import { endpointKey } from '../../src/config/endpoint-key.js';
import type { Clock } from '../../src/runtime/clock.js';
import { createSimulatedDevice, type SimulatedDevice } from './device.js';
import { openPtyPair, type PtyPair } from './pty.js';
import { startRtuSerialServer, type RtuSerialServer } from './serial-server.js';
import { startModbusServer, type ModbusSimServer } from './server.js';

type Units = SiteEndpoint['devices'];

export interface SiteEndpoint {
  key: string;                       // host:port as written in the site file
  transport: Exclude<ModbusTransport, 'rtu'>;
  devices: { id: string; unitId: number; profile: string }[];
  server: ModbusSimServer;           // server.port is the port actually listened on
}

export interface SiteSerialLine {
  key: string;                       // serial.device as written in the site file
  devices: Units;
  server: RtuSerialServer;           // server.path: where it is served
  /** With `pty`: the pseudo-terminal end the gateway opens instead of `key`. */
  gateway?: string;
}

export interface SiteSimulators {
  endpoints: SiteEndpoint[];
  lines: SiteSerialLine[];
  /** The simulated device behind a site device id. */
  device(id: string): SimulatedDevice | undefined;
  close(): Promise<void>;
}

export interface SiteSimulatorOptions {
  host?: string;            // where to listen; default 127.0.0.1 whatever the site file says
  /** Port override: 0 for tests (any free port), or a function of the site's port. */
  port?: number | ((sitePort: number, key: string) => number);
  /** Where to serve a serial line of the site (its serial.device -> a path, e.g. a pty end). */
  serial?: ReadonlyMap<string, string>;
  /** Serve the serial lines without a `serial` path on pseudo-terminal pairs made with socat. */
  pty?: boolean;
  clock?: Clock;
  tickMs?: number;
  /** Refuse connections beyond the profiles' quirks.max_connections (the smallest at an endpoint). */
  enforceMaxConnections?: boolean;
}

export type SiteSimulatorErrorCode = 'unknown_profile' | 'duplicate_unit' | 'listen_failed' | 'no_serial_path';

export class SiteSimulatorError extends Error {
  readonly code: SiteSimulatorErrorCode;
  constructor(code: SiteSimulatorErrorCode, message: string) {
    super(message);
    this.name = 'SiteSimulatorError';
    this.code = code;
  }
}

/**
 * What tells two devices of one profile apart on the wire: a SunSpec common model's serial number
 * (`SN`) from the site's device id and its device address (`DA`) from the unit id, instead of the
 * profile's one constant for every copy (two inverters both reporting SN0001 at address 1).
 */
export function deviceIdentity(profile: DeviceProfile, deviceId: string, unitId: number): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const p of profile.points) {
    if (p.role !== 'identity' || p.simulate?.kind !== 'constant') continue;
    if (p.name === 'SN' && p.type === 'string') out[p.id] = `SN-${deviceId}`.slice(0, (p.length ?? 1) * 2);
    if (p.name === 'DA' && typeof p.simulate.value === 'number') out[p.id] = unitId;
  }
  return out;
}

interface Group {
  transport: ModbusTransport;
  sitePort: number;
  serial: { baud: number; parity: 'none' | 'even' | 'odd'; stop_bits: 1 | 2 } | undefined;
  units: Map<number, SimulatedDevice>;
  devices: Units;
  maxConnections: number;
}

export async function startSiteSimulators(loaded: LoadedSite, opts: SiteSimulatorOptions = {}): Promise<SiteSimulators> {
  const groups = new Map<string, Group>();
  const byDevice = new Map<string, SimulatedDevice>();
  let seed = 1;
  for (const d of loaded.site.devices) {
    const profile = loaded.profiles.get(d.profile);
    if (!profile) throw new SiteSimulatorError('unknown_profile', `device ${JSON.stringify(d.id)}: profile ${JSON.stringify(d.profile)} not loaded`);
    const key = endpointKey(d);
    const g = groups.get(key) ?? {
      transport: d.transport ?? 'tcp', sitePort: d.port, serial: d.serial, units: new Map<number, SimulatedDevice>(), devices: [], maxConnections: Infinity,
    };
    if (g.units.has(d.unit_id)) {
      throw new SiteSimulatorError('duplicate_unit', `device ${JSON.stringify(d.id)}: unit ${d.unit_id} at ${key} is already simulated`);
    }
    const device = createSimulatedDevice(profile, { clock: opts.clock, seed: seed++, tickMs: opts.tickMs, constants: deviceIdentity(profile, d.id, d.unit_id) });
    g.units.set(d.unit_id, device);
    g.devices.push({ id: d.id, unitId: d.unit_id, profile: d.profile });
    g.maxConnections = Math.min(g.maxConnections, profile.quirks.max_connections);
    groups.set(key, g);
    byDevice.set(d.id, device);
  }
  const endpoints: SiteEndpoint[] = [];
  const lines: SiteSerialLine[] = [];
  const ptys: PtyPair[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all([...endpoints, ...lines].map((e) => e.server.close()));
    await Promise.all(ptys.map((p) => p.close()));
  };
  try {
    for (const [key, g] of groups) {
      if (g.transport === 'rtu') lines.push(await serveLine(key, g, opts, ptys));
      else endpoints.push(await serveEndpoint(key, g, opts));
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return { endpoints, lines, device: (id) => byDevice.get(id), close: closeAll };
}

async function serveEndpoint(key: string, g: Group, opts: SiteSimulatorOptions): Promise<SiteEndpoint> {
  const port = typeof opts.port === 'function' ? opts.port(g.sitePort, key) : opts.port ?? g.sitePort;
  const host = opts.host ?? '127.0.0.1';
  const transport = g.transport === 'rtu_over_tcp' ? 'rtu_over_tcp' : 'tcp';
  const server = await startModbusServer({
    host, port, units: g.units, clock: opts.clock, framing: transport === 'rtu_over_tcp' ? 'rtu' : 'mbap',
    ...(opts.enforceMaxConnections && Number.isFinite(g.maxConnections) ? { maxConnections: g.maxConnections } : {}),
  }).catch((err: unknown) => {
    const why = err instanceof Error ? err.message : String(err);
    throw new SiteSimulatorError('listen_failed', `cannot listen on ${host}:${port} for ${key} (${g.devices.map((d) => d.id).join(', ')}): ${why}`);
  });
  return { key, transport, devices: g.devices, server };
}

async function serveLine(key: string, g: Group, opts: SiteSimulatorOptions, ptys: PtyPair[]): Promise<SiteSerialLine> {
  let path = opts.serial?.get(key);
  let gateway: string | undefined;
  const who = g.devices.map((d) => d.id).join(', ');
  if (path === undefined) {
    if (!opts.pty) throw new SiteSimulatorError('no_serial_path', `${who} on serial line ${key}: name where to serve it (--serial ${key}=<path>) or use --pty`);
    const pty = await openPtyPair(key.replace(/[^A-Za-z0-9_.-]/g, '_')).catch((err: unknown) => {
      throw new SiteSimulatorError('listen_failed', `serial line ${key} (${who}): ${err instanceof Error ? err.message : String(err)}`);
    });
    ptys.push(pty);
    path = pty.device;
    gateway = pty.gateway;
  }
  const at = path;
  const server = await startRtuSerialServer({ path: at, units: g.units, ...(g.serial ? { serial: g.serial } : {}), ...(opts.clock ? { clock: opts.clock } : {}) })
    .catch((err: unknown) => {
      throw new SiteSimulatorError('listen_failed', `cannot open ${at} for serial line ${key} (${who}): ${err instanceof Error ? err.message : String(err)}`);
    });
  return { key, devices: g.devices, server, ...(gateway === undefined ? {} : { gateway }) };
}
