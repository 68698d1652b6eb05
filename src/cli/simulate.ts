// `ems-gateway simulate <site.yaml>`: every Modbus device of a site, simulated on loopback at the
// ports of the site file (or any free port), until SIGINT/SIGTERM.
import { ConfigError, loadSite } from '../config/load.js';
import { formatProblems } from '../config/errors.js';
import { handleShutdownSignals } from '../runtime/signals.js';
import { defineCommand, parseCommand, UsageError } from './args.js';
import type { ModbusFault } from '../../simulators/modbus/server.js';
import { SiteSimulatorError, startSiteSimulators, type SiteEndpoint, type SiteSerialLine, type SiteSimulators } from '../../simulators/modbus/site.js';
import { LOAD_CHECKS } from './load-checks.js';

const USAGE = `usage: ems-gateway simulate <site.yaml> [--host 127.0.0.1] [--any-port] [--port-offset N]
       [--devices-dir <dir>] [--enforce-max-connections] [--json] [--fault <device>:<fault>[,<fault>...]]...
       [--serial <site serial.device>=<path>]... [--pty]
  Serves every Modbus device of the site from its profile (devices/<profile>.yaml), one server per
  host:port of the site file with its unit ids, on loopback (raw RTU frames for rtu_over_tcp).
  --any-port listens on free ports (printed); --port-offset adds N to every site port (run beside a
  real device on 502). A serial line of the site (transport rtu) is served on the path --serial
  names (e.g. one end of a socat pseudo-terminal pair), or with --pty on a new pseudo-terminal pair
  (needs socat): the gateway end is printed.
  --json prints the endpoints as one JSON line. Stops cleanly on Ctrl-C / SIGTERM.
  --fault injects a fault into one device (its unit id on its endpoint): latency=<ms>, drop,
  exception=<code>, disconnect-after=<n>, single-client, garble, short, late=<ms>, crc (RTU).
  e.g. --fault inverter-2:exception=6   --fault bms-1:latency=300,disconnect-after=50
`;

interface SimulateArgs {
  site: string;
  host: string;
  anyPort: boolean;
  portOffset: number;
  devicesDir: string | undefined;
  enforceMaxConnections: boolean;
  json: boolean;
  faults: { device: string; fault: ModbusFault }[];
  /** Site serial.device -> where to serve that line. */
  serial: Map<string, string>;
  pty: boolean;
}

/** `latency=200,drop,exception=6,...` -> a ModbusFault, or an error message. */
export function parseFault(spec: string): ModbusFault | string {
  const fault: ModbusFault = {};
  for (const item of spec.split(',')) {
    const [key = '', raw] = item.split('=', 2);
    const n = raw === undefined ? NaN : Number(raw);
    const needN = (min: number): boolean => Number.isInteger(n) && n >= min;
    switch (key) {
      case 'drop': fault.drop = true; break;
      case 'single-client': fault.singleClient = true; break;
      case 'garble': fault.garble = true; break;
      case 'short': fault.short = true; break;
      case 'crc': fault.crc = true; break;
      case 'latency': if (!needN(0)) return `latency needs milliseconds: ${JSON.stringify(item)}`; fault.latencyMs = n; break;
      case 'late': if (!needN(1)) return `late needs milliseconds: ${JSON.stringify(item)}`; fault.late = { delayMs: n }; break;
      case 'exception': if (!needN(1) || n > 255) return `exception needs a code 1..255: ${JSON.stringify(item)}`; fault.exception = n; break;
      case 'disconnect-after': if (!needN(1)) return `disconnect-after needs a count: ${JSON.stringify(item)}`; fault.disconnectAfter = n; break;
      default: return `unknown fault ${JSON.stringify(item)}: latency=<ms>, drop, exception=<code>, disconnect-after=<n>, single-client, garble, short, late=<ms>, crc`;
    }
  }
  return fault;
}

const ARGS = defineCommand({
  command: 'simulate',
  usage: USAGE,
  options: {
    host: { type: 'string' }, 'any-port': { type: 'boolean' }, 'port-offset': { type: 'string', kind: 'port' }, 'devices-dir': { type: 'string' },
    'enforce-max-connections': { type: 'boolean' }, json: { type: 'boolean' }, pty: { type: 'boolean' },
    serial: { type: 'string', multiple: true }, fault: { type: 'string', multiple: true },
  },
  positionals: { min: 1, max: 1, missing: 'a site file is required' },
});

/** The arguments of `simulate`, or the text to print: the usage (for --help) or an error and the usage. */
export function parseSimulateArgs(args: string[]): SimulateArgs | string {
  let parsed;
  try {
    parsed = parseCommand(args, ARGS);
  } catch (err) {
    if (err instanceof UsageError) return `${err.message}\n${USAGE}`;
    throw err;
  }
  if (parsed === 'help') return USAGE;
  const v = parsed.values;
  const out: SimulateArgs = {
    site: parsed.positionals[0] ?? '', host: v.host ?? '127.0.0.1', anyPort: v['any-port'] === true, portOffset: v['port-offset'] ?? 0,
    devicesDir: v['devices-dir'], enforceMaxConnections: v['enforce-max-connections'] === true, json: v.json === true, faults: [],
    serial: new Map(), pty: v.pty === true,
  };
  for (const s of v.serial ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0 || eq === s.length - 1) return `--serial needs <site serial.device>=<path>, got ${JSON.stringify(s)}\n${USAGE}`;
    out.serial.set(s.slice(0, eq), s.slice(eq + 1));
  }
  for (const f of v.fault ?? []) {
    const colon = f.indexOf(':');
    if (colon <= 0) return `--fault needs <device>:<fault>, got ${JSON.stringify(f)}\n${USAGE}`;
    const fault = parseFault(f.slice(colon + 1));
    if (typeof fault === 'string') return `--fault ${f}: ${fault}\n${USAGE}`;
    out.faults.push({ device: f.slice(0, colon), fault });
  }
  return out;
}

/** Start the site's simulators and print the endpoints; the caller decides when to close. */
export async function startSimulate(a: SimulateArgs, out: NodeJS.WritableStream): Promise<SiteSimulators> {
  const loaded = await loadSite(a.site, { ...LOAD_CHECKS, ...(a.devicesDir === undefined ? {} : { devicesDir: a.devicesDir }) });
  const sims = await startSiteSimulators(loaded, {
    host: a.host,
    port: a.anyPort ? 0 : (sitePort) => sitePort + a.portOffset,
    enforceMaxConnections: a.enforceMaxConnections,
    serial: a.serial,
    pty: a.pty,
  });
  const where = (e: SiteEndpoint | SiteSerialLine): string => ('port' in e.server ? `${e.server.host}:${e.server.port}` : e.server.path);
  for (const f of a.faults) {
    const e = [...sims.endpoints, ...sims.lines].find((x) => x.devices.some((d) => d.id === f.device));
    const unit = e?.devices.find((d) => d.id === f.device)?.unitId;
    if (!e || unit === undefined) {
      await sims.close();
      throw new Error(`--fault: no device ${JSON.stringify(f.device)} in ${a.site}`);
    }
    e.server.setFault(unit, f.fault);
    if (!a.json) out.write(`fault on ${f.device} (unit ${unit} at ${where(e)}): ${JSON.stringify(f.fault)}\n`);
  }
  if (a.json) {
    out.write(`${JSON.stringify({
      endpoints: sims.endpoints.map((e) => ({ key: e.key, transport: e.transport, host: e.server.host, port: e.server.port, units: e.devices })),
      lines: sims.lines.map((l) => ({ key: l.key, path: l.server.path, ...(l.gateway === undefined ? {} : { gateway: l.gateway }), units: l.devices })),
      faults: a.faults,
    })}\n`);
  } else {
    const units = (e: SiteEndpoint | SiteSerialLine): string => e.devices.map((d) => `unit ${d.unitId} ${d.id} (${d.profile})`).join(', ');
    for (const e of sims.endpoints) out.write(`modbus${e.transport === 'rtu_over_tcp' ? ' rtu over tcp' : ''} ${where(e)} [site ${e.key}]: ${units(e)}\n`);
    for (const l of sims.lines) {
      out.write(`modbus rtu on ${l.server.path} [site ${l.key}]${l.gateway === undefined ? '' : `, gateway end ${l.gateway}`}: ${units(l)}\n`);
    }
    const n = [...sims.endpoints, ...sims.lines].reduce((s, e) => s + e.devices.length, 0);
    const m = sims.endpoints.length + sims.lines.length;
    out.write(`simulating ${n} device${n === 1 ? '' : 's'} on ${m} endpoint${m === 1 ? '' : 's'}; Ctrl-C to stop\n`);
  }
  return sims;
}

export async function run(args: string[]): Promise<number> {
  const a = parseSimulateArgs(args);
  if (typeof a === 'string') {
    if (a === USAGE) {
      process.stdout.write(a);
      return 0;
    }
    process.stderr.write(`ems-gateway simulate: ${a}`);
    return 2;
  }
  let sims: SiteSimulators;
  try {
    sims = await startSimulate(a, process.stdout);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${formatProblems(err.problems, process.cwd())}\n`);
      return 1;
    }
    if (err instanceof SiteSimulatorError) {
      process.stderr.write(`ems-gateway simulate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  // The handlers stay until the servers are closed: the same Ctrl-C delivered twice (terminal and
  // `npm run`) is one stop, and only a later second signal forces the exit.
  let removeSignals = (): void => undefined;
  await new Promise<void>((resolve) => { removeSignals = handleShutdownSignals({ onSignal: () => resolve() }); });
  await sims.close();
  removeSignals();
  process.stderr.write('simulators stopped\n');
  return 0;
}
