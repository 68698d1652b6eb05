// The README tells a newcomer the truth: its npm scripts and ems-gateway subcommands exist, its
// site example validates, and the commands that are safe to run here do what it says.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { PEERS, PYTHON_IMPORTS } from '../peers.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const ROOT = packageRoot();
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'ems-readme-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('README.md', () => {
  it('names only npm scripts that exist', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const named = [...README.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1] ?? '');
    expect(named.length).toBeGreaterThanOrEqual(5);
    expect(named.filter((n) => !(n in scripts))).toEqual([]);
    expect(README).toContain('npm ci');
    expect(README).toContain('npm test');
  });

  it('lists the same Debian test peers as test/peers.ts, and .ci/setup installs each of them', () => {
    const setup = readFileSync(join(ROOT, '.ci/setup'), 'utf8');
    const apt = /APT_PACKAGES=\(([^)]*)\)/.exec(setup)?.[1]?.split(/\s+/).filter((p) => p !== '') ?? [];
    const needed = new Set([...PEERS.map((p) => p.debian), ...PYTHON_IMPORTS.map(([, debian]) => debian)]);
    expect(needed.size).toBeGreaterThanOrEqual(10);
    for (const p of needed) {
      expect(apt, `.ci/setup installs ${p}`).toContain(p);
      expect(README, `README names ${p}`).toContain(`\`${p}\``);
    }
    expect(apt.filter((p) => !needed.has(p)), 'packages .ci/setup installs that no test peer needs').toEqual([]);
  });

  it('names only ems-gateway subcommands that exist', () => {
    const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    const registered = new Set([...help.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]));
    const named = [...README.matchAll(/ems-gateway ([a-z]+)/g)].map((m) => m[1] ?? '');
    expect(named.length).toBeGreaterThanOrEqual(6);
    expect(named.filter((n) => !registered.has(n))).toEqual([]);
  });

  it('its site example validates', async () => {
    const block = /```yaml\n(version: 1\n[\s\S]*?)```/.exec(README)?.[1];
    expect(block).toBeDefined();
    const dir = join(tmp, 'site');
    mkdirSync(join(dir, 'keys'), { recursive: true });
    const { publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'keys/ems.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const loaded = await loadSiteFromString(block ?? '', { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env: { MQTT_PASSWORD: 'secret' } });
    expect(loaded.site.devices.map((d) => d.id)).toEqual(['inverter-1', 'load-ctl-a']);
    expect(loaded.site.mqtt?.password).toBe('secret');
    expect(loaded.site.mqtt?.meters?.topics).toEqual(['$share/gw/meters/+/readings']);
  });

  it('validate, schemas --check and decode work as shown', () => {
    const v = cli(['validate', 'config/demo-site.yaml']);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain('inverter-1');
    const s = cli(['schemas', '--check']);
    expect(s.code, s.out).toBe(0);
    const d = cli(['decode', '--type', 'float32', '0x4148', '0x0000']);
    expect(d.code, d.out).toBe(0);
    expect(d.out).toMatch(/float32\s+12\.5\s/);
    // probe needs a live device (test/interop/probe-pymodbus.test.ts); here: its help, and a refused device id.
    const p = cli(['probe', '--help']);
    expect(p.code, p.out).toBe(0);
    expect(p.out).toContain('ems-gateway probe --config <site.yaml> --device <id>');
    const bad = cli(['probe', '--config', 'config/demo-site.yaml', '--device', 'nope']);
    expect(bad.code, bad.out).toBe(2);
    expect(bad.out).toMatch(/no device "nope" in config\/demo-site\.yaml \(devices: inverter-1, /);
    // `sunspec scan` against a device: test/interop/pymodbus-sunspec.test.ts; here its usage.
    const h = cli(['sunspec', 'scan', '--help']);
    expect(h.code, h.out).toBe(0);
    expect(h.out).toMatch(/--write devices\/<vendor>-<model>\.yaml/);
  });

  it('validate whose reader has gone (| head) exits quietly', async () => {
    const child = spawn(process.execPath, [CLI, 'validate', 'config/demo-site.yaml'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // The reader goes away before the output is written (the whole output fits a pipe buffer, so
    // closing after the first chunk would not reach the write that fails).
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });

  it('dr keygen writes a key pair', () => {
    const r = cli(['dr', 'keygen', '--out', join(tmp, 'ems')]);
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(tmp, 'ems.key'))).toBe(true);
    expect(readFileSync(join(tmp, 'ems.pub'), 'utf8')).toContain('BEGIN PUBLIC KEY');
  });
});
