// The external programs the suite talks to, in one place: which Debian package brings each, and
// the cheap check that proves it starts (or, for Python, imports). The preflight (vitest global
// setup) runs every check before any test; tests that need a peer skip only outside CI.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's python3, with python3-pymodbus: not the pyenv python3 that may come first on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export interface Peer {
  /** What the tests call it. */
  readonly name: string;
  /** The Debian package that brings it (the one to install when the check fails). */
  readonly debian: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Exit codes that mean "it ran" (mosquitto -h and mbpoll -h print their usage with a non-zero code). */
  readonly okExit?: readonly number[];
  /** For checks whose output names a more precise missing package (the Python imports). */
  readonly missingFrom?: (output: string) => string | undefined;
}

// pymodbus 3.0 from Debian imports serial and serial_asyncio at server import time: a missing
// python3-serial-asyncio shows only as a failed import of pymodbus.server.async_io.
export const PYTHON_IMPORTS: ReadonlyArray<readonly [module: string, debian: string]> = [
  ['serial', 'python3-serial'],
  ['serial_asyncio', 'python3-serial-asyncio'],
  ['pymodbus.server.async_io', 'python3-pymodbus'],
];
const pythonProbe = [
  'import importlib, sys',
  `for m in ${JSON.stringify(PYTHON_IMPORTS.map(([m]) => m))}:`,
  '    try: importlib.import_module(m)',
  '    except Exception as e: print("missing " + m + ": " + repr(e)); sys.exit(1)',
].join('\n');

export const PEERS: readonly Peer[] = [
  { name: 'pymodbus', debian: 'python3-pymodbus', command: DEBIAN_PYTHON, args: ['-c', pythonProbe],
    missingFrom: (out) => PYTHON_IMPORTS.find(([m]) => out.includes(`missing ${m}:`))?.[1] },
  { name: 'mosquitto', debian: 'mosquitto', command: '/usr/sbin/mosquitto', args: ['-h'], okExit: [0, 3] },
  { name: 'mosquitto_passwd', debian: 'mosquitto', command: '/usr/bin/mosquitto_passwd', args: ['-h'], okExit: [0, 1] },
  { name: 'mbpoll', debian: 'mbpoll', command: '/usr/bin/mbpoll', args: ['-h'], okExit: [0, 1] },
  // Pseudo-terminal pairs for Modbus RTU tests (the gateway on one end, a simulator or pymodbus on the other).
  { name: 'socat', debian: 'socat', command: '/usr/bin/socat', args: ['-V'] },
  { name: 'promtool', debian: 'prometheus', command: '/usr/bin/promtool', args: ['--version'] },
  { name: 'protoc', debian: 'protobuf-compiler', command: '/usr/bin/protoc', args: ['--version'] },
  { name: 'chromium', debian: 'chromium', command: '/usr/bin/chromium', args: ['--version'] },
  { name: 'openssl', debian: 'openssl', command: '/usr/bin/openssl', args: ['version'] },
  { name: 'systemd-analyze', debian: 'systemd', command: '/usr/bin/systemd-analyze', args: ['--version'] },
  // Real upstream stores for reading delivery (bench/lib/store-peers.ts starts each on a free port).
  { name: 'postgres', debian: 'postgresql', command: '/usr/lib/postgresql/15/bin/postgres', args: ['--version'] },
  { name: 'influxd', debian: 'influxdb', command: '/usr/bin/influxd', args: ['version'] },
  { name: 'victoria-metrics', debian: 'victoria-metrics', command: '/usr/bin/victoria-metrics', args: ['--version'] },
  // The status page screenshot needs a real font; Chromium renders boxes without one.
  { name: 'fonts-liberation', debian: 'fonts-liberation', command: '/usr/bin/test', args: ['-d', '/usr/share/fonts/truetype/liberation'] },
];

/** A quick, synchronous "is it there" for a test's skipIf: the preflight has already run the real check. */
export function hasPeer(name: string): boolean {
  const p = PEERS.find((x) => x.name === name);
  if (p === undefined) throw new Error(`unknown test peer '${name}' (test/peers.ts lists them)`);
  return existsSync(p.command);
}

/** Set in the environment by the preflight when it failed; the closing-line reporter counts it. */
export const PREFLIGHT_FAILED = 'EMS_TEST_PREFLIGHT_FAILED';

export interface PeerProblem { peer: Peer; debian: string; detail: string }

/** Runs one peer's check; resolves with the problem, or undefined when it ran. */
export function checkPeer(peer: Peer, timeoutMs = 20_000): Promise<PeerProblem | undefined> {
  return new Promise((resolve) => {
    execFile(peer.command, [...peer.args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : undefined;
      if (code !== undefined && (peer.okExit ?? [0]).includes(code)) return resolve(undefined);
      const why = code === undefined ? (err?.code === 'ENOENT' ? `${peer.command} not found` : String(err?.message)) : `exit ${code}`;
      const firstLine = out.trim().split('\n').at(-1) ?? '';
      resolve({ peer, debian: peer.missingFrom?.(out) ?? peer.debian, detail: firstLine ? `${why}: ${firstLine.slice(0, 200)}` : why });
    });
  });
}
