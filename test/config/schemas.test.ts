// The checked-in JSON Schemas are generated from the validating declarations; a stale file fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSchemas } from '../../src/config/json-schema.js';
import { packageRoot } from '../../src/runtime/package-root.js';

describe('schemas/*.json', () => {
  const generated = generateSchemas();

  for (const [name, text] of generated) {
    it(`${name} is up to date (ems-gateway schemas --write)`, () => {
      const checkedIn = readFileSync(join(packageRoot(), 'schemas', name), 'utf8');
      expect(checkedIn).toBe(text);
    });
  }

  it('are closed objects with descriptions, durations as unit strings', () => {
    const site = JSON.parse(generated.get('site.schema.json') ?? '{}') as {
      additionalProperties: boolean; required: string[]; properties: Record<string, { properties?: Record<string, { default?: unknown; pattern?: string }> }>;
    };
    expect(site.additionalProperties).toBe(false);
    expect(site.required).toEqual(['version', 'site']);
    const alerts = site.properties['alerts']?.properties ?? {};
    expect(alerts['stale_meter_data_age']?.default).toBe('15m');
    expect(alerts['ingestion_latency_p99']?.default).toBe('5s');
    expect(alerts['stale_meter_data_age']?.pattern).toMatch(/ms\|s\|m\|h/);
  });

  it('the shipped YAML files point editors at them', () => {
    for (const f of ['config/demo-site.yaml', 'config/example-site.yaml']) {
      expect(readFileSync(join(packageRoot(), f), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\.\/schemas\/site\.schema\.json/);
    }
    for (const f of ['sunspec-inverter-3ph', 'generic-bms-float32', 'generic-grid-meter', 'generic-load-controller']) {
      expect(readFileSync(join(packageRoot(), 'devices', `${f}.yaml`), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\.\/schemas\/device-profile\.schema\.json/);
    }
  });
});
