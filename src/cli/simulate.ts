// `ems-gateway simulate <site.yaml>`: every Modbus device of a site, simulated on loopback at the
// ports of the site file (or any free port), until SIGINT/SIGTERM.
import { ConfigError, loadSite } from '../config/load.js';
import { formatProblems } from '../config/errors.js';
import { handleShutdownSignals } from '../runtime/signals.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';

const USAGE = `usage: ems-gateway simulate <site.yaml> [--host 127.0.0.1] [--any-port] [--port-offset N]
       [--devices-dir <dir>] [--enforce-max-connections] [--json]
  Serves every Modbus device of the site from its profile (devices/<profile>.yaml), one server per
  host:port of the site file with its unit ids, on loopback. --any-port listens on free ports
  (printed); --port-offset adds N to every site port (run beside a real device on 502).
  --json prints the endpoints as one JSON line. Stops cleanly on Ctrl-C / SIGTERM.
`;

export interface SimulateArgs {
  site: string;
  host: string;
  anyPort: boolean;
  portOffset: number;
  devicesDir: string | undefined;
  enforceMaxConnections: boolean;
  json: boolean;
}

export function parseSimulateArgs(args: string[]): SimulateArgs | string {
  const out: SimulateArgs = { site: '', host: '127.0.0.1', anyPort: false, portOffset: 0, devicesDir: undefined, enforceMaxConnections: false, json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const value = (): string | undefined => args[++i];
    switch (a) {
      case '--host': out.host = value() ?? ''; break;
      case '--any-port': out.anyPort = true; break;
      case '--port-offset': out.portOffset = Number(value()); break;
      case '--devices-dir': out.devicesDir = value(); break;
      case '--enforce-max-connections': out.enforceMaxConnections = true; break;
      case '--json': out.json = true; break;
      case '-h': case '--help': return USAGE;
      default:
        if (a.startsWith('-') || out.site !== '') return `unexpected argument ${JSON.stringify(a)}\n${USAGE}`;
        out.site = a;
    }
  }
  if (out.site === '') return `a site file is required\n${USAGE}`;
  if (out.host === '') return `--host needs a value\n${USAGE}`;
  if (!Number.isInteger(out.portOffset) || out.portOffset < 0 || out.portOffset > 65535) return `--port-offset must be an integer 0..65535\n${USAGE}`;
  return out;
}

/** Start the site's simulators and print the endpoints; the caller decides when to close. */
export async function startSimulate(a: SimulateArgs, out: NodeJS.WritableStream): Promise<SiteSimulators> {
  const loaded = await loadSite(a.site, a.devicesDir === undefined ? {} : { devicesDir: a.devicesDir });
  const sims = await startSiteSimulators(loaded, {
    host: a.host,
    port: a.anyPort ? 0 : (sitePort) => sitePort + a.portOffset,
    enforceMaxConnections: a.enforceMaxConnections,
  });
  if (a.json) {
    out.write(`${JSON.stringify({
      endpoints: sims.endpoints.map((e) => ({ key: e.key, host: e.server.host, port: e.server.port, units: e.devices })),
    })}\n`);
  } else {
    for (const e of sims.endpoints) {
      const units = e.devices.map((d) => `unit ${d.unitId} ${d.id} (${d.profile})`).join(', ');
      out.write(`modbus ${e.server.host}:${e.server.port} [site ${e.key}]: ${units}\n`);
    }
    const n = sims.endpoints.reduce((s, e) => s + e.devices.length, 0);
    out.write(`simulating ${n} device${n === 1 ? '' : 's'} on ${sims.endpoints.length} endpoint${sims.endpoints.length === 1 ? '' : 's'}; Ctrl-C to stop\n`);
  }
  return sims;
}

export async function run(args: string[]): Promise<number> {
  const a = parseSimulateArgs(args);
  if (typeof a === 'string') {
    const help = args.includes('-h') || args.includes('--help');
    (help ? process.stdout : process.stderr).write(a);
    return help ? 0 : 2;
  }
  let sims: SiteSimulators;
  try {
    sims = await startSimulate(a, process.stdout);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${formatProblems(err.problems, process.cwd())}\n`);
      return 1;
    }
    throw err;
  }
  await new Promise<void>((resolve) => {
    const remove = handleShutdownSignals({ onSignal: () => { remove(); resolve(); } });
  });
  await sims.close();
  process.stderr.write('simulators stopped\n');
  return 0;
}
