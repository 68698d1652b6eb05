// The gateway as a production install has it (deploy/Containerfile: `npm ci --omit=dev`, dist/src
// only): no aedes (a development dependency, the demo's embedded broker) and no dist/simulators.
// `run` and `validate` work there; `demo` and `simulate` say what is missing and how to get it,
// instead of a module-resolution stack.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO } from '../runtime/cli-process.js';

let dir = '';

/** node_modules of the repository, linked package by package, without `omit`. */
function linkModules(omit: string[]): void {
  const from = join(REPO, 'node_modules');
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(from)) {
    if (name.startsWith('.') || omit.includes(name)) continue;
    symlinkSync(join(from, name), join(dir, 'node_modules', name));
  }
}

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(dir, 'dist/src/cli/main.js'), ...args], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'ems-prod-install-'));
  cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  cpSync(join(REPO, 'dist/src'), join(dir, 'dist/src'), { recursive: true });
  for (const d of ['devices', 'config', 'schemas']) symlinkSync(join(REPO, d), join(dir, d));
  linkModules(['aedes']);
});
afterAll(() => { if (dir !== '') rmSync(dir, { recursive: true, force: true }); });

describe('a production install (no dev dependencies, no dist/simulators)', () => {
  it('validates a site and answers run --help', () => {
    const v = cli(['validate', '--quiet', 'config/demo-site.yaml']);
    // The demo site's one warning (DR over MQTT 3.1.1: the demo's embedded broker speaks 3.1.1 only).
    expect(v.err).toMatch(/^config\/demo-site\.yaml:\d+:\d+ mqtt\.protocol_version: warning: demand response over MQTT 3\.1\.1[^\n]*\n$/);
    expect(v.code).toBe(0);
    expect(cli(['run', '--help']).code).toBe(0);
  });

  it('demo and simulate say the simulators are not part of this install (exit 1)', () => {
    for (const cmd of [['demo'], ['simulate', 'config/demo-site.yaml']]) {
      const r = cli(cmd);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`ems-gateway ${cmd[0] ?? ''}: not part of this install: the simulated devices (dist/simulators) are missing (the deployment image carries the gateway only); run it from a checkout of the repository after \`npm ci\` (npm run demo, npm run simulate)\n`);
    }
  });

  it('with dist/simulators but without aedes, simulate works and demo names the missing package', () => {
    cpSync(join(REPO, 'dist/simulators'), join(dir, 'dist/simulators'), { recursive: true });
    const s = cli(['simulate', '--help']);
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/^usage: ems-gateway simulate/);
    const d = cli(['demo', '--duration', '1']);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/^ems-gateway demo: not part of this install: the package aedes is missing \(the demo's embedded MQTT broker, a development dependency that `npm ci --omit=dev` leaves out\)/);
  });
});
