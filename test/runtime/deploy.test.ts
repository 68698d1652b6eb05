// The deployment files say what docs/operations.md promises: a hardened unit and a lean non-root image.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasPeer } from '../peers.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const unit = readFileSync(new URL('../../deploy/ems-gateway.service', import.meta.url), 'utf8');
const containerfile = readFileSync(new URL('../../deploy/Containerfile', import.meta.url), 'utf8');
const directives = new Map<string, string[]>();
for (const line of unit.split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
  if (m?.[1] !== undefined && m[2] !== undefined) directives.set(m[1], [...(directives.get(m[1]) ?? []), m[2]]);
}
const one = (k: string): string | undefined => directives.get(k)?.at(-1);
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

describe('systemd unit', () => {
  it('runs the built CLI against /etc/ems-gateway/site.yaml as an unprivileged user', () => {
    expect(one('ExecStart')).toMatch(/dist\/src\/cli\/main\.js run --config \/etc\/ems-gateway\/site\.yaml$/);
    expect(one('DynamicUser')).toBe('yes');
    expect(one('StateDirectory')).toBe('ems-gateway');
    expect(one('ReadWritePaths')).toBe('/var/lib/ems-gateway');
    expect(one('KillSignal')).toBe('SIGTERM');
  });

  it('is hardened', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('RestrictAddressFamilies')).toBe('AF_INET AF_INET6 AF_UNIX');
    expect(one('SystemCallFilter')).toBeDefined();
  });

  it.skipIf(!hasPeer('systemd-analyze'))('systemd-analyze rates its exposure below 2 of 10 and verifies it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-unit-'));
    try {
      const file = join(dir, 'ems-gateway.service');
      writeFileSync(file, unit);
      const out = execFileSync(SYSTEMD_ANALYZE, ['security', '--offline=yes', '--no-pager', file], { encoding: 'utf8' });
      const m = /Overall exposure level for ems-gateway\.service: ([\d.]+)/.exec(out);
      expect(m).not.toBeNull();
      expect(Number(m?.[1])).toBeLessThan(2);
      // verify checks ExecStart's binary exists: only meaningful where node is where the unit expects it.
      if (existsSync('/usr/bin/node')) execFileSync(SYSTEMD_ANALYZE, ['verify', file], { encoding: 'utf8', stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Containerfile', () => {
  it('builds on node:20-slim, installs production dependencies only and runs as non-root', () => {
    expect(containerfile).toMatch(/^FROM docker\.io\/library\/node:20-slim AS build$/m);
    expect(containerfile).toContain('npm ci --omit=dev');
    const lastUser = [...containerfile.matchAll(/^USER (\S+)$/gm)].at(-1)?.[1];
    expect(lastUser).toBe('node');
    expect(containerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
    // The gateway only: not dist/simulators or dist/bench (the demo and simulate say so when run there).
    const fromBuild = [...containerfile.matchAll(/^COPY --from=build (\S+) \S+$/gm)].map((m) => m[1]);
    expect(fromBuild).toEqual(['/src/dist/src']);
    // Every path it copies exists in the repository (or is built in the first stage).
    expect(containerfile).not.toMatch(/^COPY .*config(\/keys)? /m);
    for (const m of containerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const p of (m[1] ?? '').split(/\s+/)) expect(existsSync(new URL(`../../${p}`, import.meta.url)), p).toBe(true);
    }
  });
});

describe('box layout', () => {
  it('the documented state_file line resolves to the systemd state directory', async () => {
    const { loadSiteFromString } = await import('../../src/config/load.js');
    const file = new URL('../../config/demo-site.yaml', import.meta.url).pathname;
    const text = readFileSync(file, 'utf8').replace(/^(\s*state_file:).*$/m, '$1 ${STATE_DIRECTORY:-/var/lib/ems-gateway}/dr-state.json');
    const withEnv = await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file, env: { STATE_DIRECTORY: '/srv/state' } });
    expect(withEnv.site.mqtt?.demand_response?.state_file).toBe('/srv/state/dr-state.json');
    const withoutEnv = await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file, env: {} });
    expect(withoutEnv.site.mqtt?.demand_response?.state_file).toBe('/var/lib/ems-gateway/dr-state.json');
  });

  it('the documented password_file line reads the secret systemd hands over in CREDENTIALS_DIRECTORY', async () => {
    const { loadSiteFromString } = await import('../../src/config/load.js');
    const dir = mkdtempSync(join(tmpdir(), 'ems-cred-'));
    try {
      writeFileSync(join(dir, 'mqtt-password'), 's3cret');
      const text = [
        'version: 1', 'site: { id: box, region: north, nominal_frequency_hz: 50 }', 'devices: []', 'mqtt:',
        '  url: mqtt://127.0.0.1:1883', '  username: gateway', '  password_file: ${CREDENTIALS_DIRECTORY}/mqtt-password',
        '  meters: { topics: [meters/+/readings] }', '',
      ].join('\n');
      const loaded = await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: join(dir, 'site.yaml'), env: { CREDENTIALS_DIRECTORY: dir } });
      expect(loaded.site.mqtt?.password).toBe('s3cret');
      expect(unit).toContain('#LoadCredential=mqtt-password:/etc/ems-gateway/mqtt-password');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
