// The generated JSON Schemas do what editors need: the shipped files pass, broken ones fail.
// Checked with ajv 8 (draft-07), a dev dependency of its own.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateSchemas } from '../../src/config/json-schema.js';
import { packageRoot } from '../../src/runtime/package-root.js';

const ROOT = packageRoot();
const a = new Ajv({ allErrors: true, strict: true });
const schemas = generateSchemas();
const yamlOf = (f: string): unknown => parse(readFileSync(join(ROOT, f), 'utf8'));

describe('JSON Schemas against real and broken files (ajv draft-07)', () => {
  const site = a.compile(JSON.parse(schemas.get('site.schema.json') ?? '{}') as object);
  const profile = a.compile(JSON.parse(schemas.get('device-profile.schema.json') ?? '{}') as object);

  it('accepts the shipped site files', () => {
    for (const f of ['config/demo-site.yaml', 'config/example-site.yaml']) {
      expect(site(yamlOf(f)), `${f}: ${JSON.stringify(site.errors)}`).toBe(true);
    }
  });

  it('accepts every shipped profile', () => {
    for (const f of readdirSync(join(ROOT, 'devices')).filter((x) => x.endsWith('.yaml'))) {
      expect(profile(yamlOf(join('devices', f))), `${f}: ${JSON.stringify(profile.errors)}`).toBe(true);
    }
  });

  it('rejects what validate rejects at the schema level', () => {
    const cases = ['unknown-key-did-you-mean', 'wrong-type', 'bad-duration', 'nominal-frequency', 'missing-version-and-site'];
    for (const c of cases) expect(site(yamlOf(`test/fixtures/config-cases/${c}/site.yaml`)), c).toBe(false);
    expect(profile(yamlOf('test/fixtures/config-cases/bad-word-order/devices/test-device.yaml'))).toBe(false);
    expect(profile(yamlOf('test/fixtures/config-cases/control-without-bounds/devices/test-device.yaml'))).toBe(false);
  });

  it('lets ${ENV} stand in for numbers and patterned strings', () => {
    const doc = { version: 1, site: { id: '${SITE}', region: 'r', nominal_frequency_hz: 50 },
      devices: [{ id: 'd', profile: 'generic-grid-meter', host: '${HOST}', port: '${PORT}' }] };
    expect(site(doc), JSON.stringify(site.errors)).toBe(true);
  });

  it('asks for host unless the device is on a serial line (transport rtu)', () => {
    const siteWith = (device: object): unknown => ({ version: 1, site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, devices: [{ id: 'd', profile: 'p', ...device }] });
    expect(site(siteWith({ transport: 'rtu', serial: { device: '/dev/ttyUSB0', baud: 9600 } })), JSON.stringify(site.errors)).toBe(true);
    expect(site(siteWith({ transport: 'rtu_over_tcp', serial: { baud: 9600 } }))).toBe(false);
    expect(site(siteWith({}))).toBe(false);
    expect(site(siteWith({ transport: 'rtu', serial: { device: '/dev/ttyUSB0' } }))).toBe(false); // no baud
  });
});
