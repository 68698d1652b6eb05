// Subcommand table. Each subcommand lives in its own module under src/cli/ and exports
// `run(args: string[]): Promise<number>` (the exit code). Keep this table the only dispatcher.
import { gatewayVersion } from '../runtime/version.js';

type Command = { summary: string; load: () => Promise<{ run: (args: string[]) => Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  // validate, run, simulate, demo, dr, schemas: added by their modules.
  validate: { summary: 'validate a site file and its device profiles; print the read plan', load: () => import('./validate.js') },
  schemas: { summary: 'write or check the JSON Schemas of site files and device profiles', load: () => import('./schemas.js') },
  simulate: { summary: 'serve every Modbus device of a site from its profiles on loopback', load: () => import('./simulate.js') },
  probe: { summary: 'one live read of a device: raw registers, values, units and verdicts (reads only, never writes)', load: () => import('./probe.js') },
  decode: { summary: 'show registers decoded in all four word orders (ABCD, CDAB, BADC, DCBA)', load: () => import('./decode.js') },
  run: { summary: 'run the gateway for a site: ems-gateway run --config <site.yaml> [--status-port N]', load: () => import('./run.js') },
  demo: { summary: 'the demo site on this machine: simulators, broker, meter fleet, gateway, live summary', load: () => import('./demo.js') },
  dr: { summary: 'demand response: keygen, send a signed command and print its acks', load: () => import('./dr.js') },
  sunspec: { summary: 'sunspec scan --host H [--port P] --unit U [--write devices/x.yaml]: the model chain, identity, a profile', load: () => import('./sunspec.js') },
};

/**
 * What a command's module could not load, when it is a part a production install leaves out: the
 * embedded broker of the demo (aedes, a development dependency) or the simulators (dist/simulators,
 * not in the container image). Undefined for anything else (a real bug: rethrown).
 */
function missingPart(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || typeof e.message !== 'string') return undefined;
  const checkout = 'run it from a checkout of the repository after `npm ci` (npm run demo, npm run simulate)';
  const pkg = /Cannot find package '([^']+)'/.exec(e.message)?.[1];
  if (pkg === 'aedes') return `the package ${pkg} is missing (the demo's embedded MQTT broker, a development dependency that \`npm ci --omit=dev\` leaves out); ${checkout}`;
  const file = /Cannot find module '([^']+)'/.exec(e.message)?.[1];
  if (file !== undefined && /[/\\]simulators[/\\]/.test(file)) return `the simulated devices (dist/simulators) are missing (the deployment image carries the gateway only); ${checkout}`;
  return undefined;
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: ems-gateway <command> [options]\n\ncommands:\n${lines.join('\n')}\n  --version  print the version\n`;
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${gatewayVersion()}\n`);
    return 0;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (name === undefined) {
    process.stderr.write(`ems-gateway: a command is needed\n${usage()}`);
    return 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`ems-gateway: unknown command ${JSON.stringify(name)}\n${usage()}`);
    return 2;
  }
  let mod;
  try {
    mod = await cmd.load();
  } catch (err) {
    const missing = missingPart(err);
    if (missing === undefined) throw err;
    process.stderr.write(`ems-gateway ${name}: not part of this install: ${missing}\n`);
    return 1;
  }
  return mod.run(rest);
}
