// The configuration docs stay truthful: their YAML examples validate, and every key of the
// schemas is documented (docs/*.md) and explained in config/example-site.yaml.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { parseProfile } from '../../src/modbus/profile-load.js';
import { profileSchema } from '../../src/config/profile-schema.js';
import type { ArrSchema, Schema } from '../../src/config/schema-dsl.js';
import type { Fields, ObjSchema } from '../../src/config/schema-object.js';
import { siteSchema } from '../../src/config/site-schema.js';
import { Problems } from '../../src/config/yaml-source.js';
import { formatProblems } from '../../src/config/errors.js';
import { validateReading } from '../../src/meters/validate.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const ROOT = packageRoot();
const read = (f: string): string => readFileSync(join(ROOT, f), 'utf8');

function examples(markdown: string, kind: 'site' | 'profile'): string[] {
  const blocks = [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return blocks.filter((b) => b.startsWith(`# example: ${kind}\n`));
}

/** Every key of a schema, recursively through objects and lists of objects. */
function keys(fields: Fields, out = new Set<string>()): Set<string> {
  for (const [k, f] of Object.entries(fields)) {
    out.add(k);
    let s: Schema = f.s;
    while (s.kind === 'array') s = (s as ArrSchema<unknown>).item;
    if (s.kind === 'object') keys((s as ObjSchema).fields, out);
  }
  return out;
}

describe('docs/configuration.md', () => {
  const md = read('docs/configuration.md');
  const blocks = examples(md, 'site');

  it('has site examples, and each validates', async () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const b of blocks) {
      const { site } = await loadSiteFromString(b, { profileChecks: modbusProfileChecks, file: join(ROOT, 'config', 'docs-example.yaml'), env: {} });
      expect(site.version).toBe(1);
    }
  });

  it('documents every site key', () => {
    for (const k of keys(siteSchema.fields)) expect(md, `docs/configuration.md mentions \`${k}\``).toContain(`\`${k}\``);
  });

  it('config/example-site.yaml tells the truth about readings without a region', () => {
    // The site region is not a fallback: such a reading is dropped unless a topic level carries it.
    const ctx = { regions: new Set<string>(), regionTopicLevel: undefined, maxPayloadBytes: 65536, futureSkewMs: 60_000 };
    const reading = { meter_id: 'm-1', timestamp: new Date(1_700_000_000_000).toISOString(), kwh: 1, voltage: 230, current: 1, power_factor: 0.9 };
    const r = validateReading(reading, undefined, ctx, 1_700_000_000_000, 1_700_000_000_000);
    expect(r).toMatchObject({ error_type: 'missing_field' });
    const lines = read('config/example-site.yaml').split('\n');
    const at = lines.findIndex((l) => /^\s+region: north\b/.test(l));
    let end = at + 1;
    while (/^\s+#/.test(lines[end] ?? '')) end++;
    const line = lines.slice(at, end).join(' '); // the key's comment, continued on the lines below
    expect(line).not.toMatch(/readings without one/);
    expect(line).toMatch(/region_topic_level/);
  });

  it('config/example-site.yaml shows every site key', () => {
    const ex = read('config/example-site.yaml');
    for (const k of keys(siteSchema.fields)) expect(ex, `example-site.yaml has ${k}:`).toMatch(new RegExp(`(^|[\\s{#])${k}:`, 'm'));
  });
});

describe('docs/device-profiles.md', () => {
  const md = read('docs/device-profiles.md');

  it('has a profile example that validates', () => {
    const blocks = examples(md, 'profile');
    expect(blocks).toHaveLength(1);
    const problems = new Problems();
    const p = parseProfile(blocks[0] ?? '', join(ROOT, 'devices', 'docs-example.yaml'), problems);
    expect(formatProblems(problems.list)).toBe('');
    expect(p?.controls[0]?.never_write).toEqual([0]);
  });

  it('documents every profile key', () => {
    for (const k of keys(profileSchema.fields)) expect(md, `docs/device-profiles.md mentions \`${k}\``).toContain(`\`${k}\``);
  });
});

/** Keys of a schema whose value is a duration (the loader hands them on as `<key>_ms`). */
function durationKeys(fields: Fields, out = new Set<string>()): Set<string> {
  for (const [k, f] of Object.entries(fields)) {
    let s: Schema = f.s;
    if (s.kind === 'duration') out.add(k);
    while (s.kind === 'array') s = (s as ArrSchema<unknown>).item;
    if (s.kind === 'object') durationKeys((s as ObjSchema).fields, out);
  }
  return out;
}

describe('docs name the keys a site or profile file accepts', () => {
  const durations = new Set([...durationKeys(siteSchema.fields), ...durationKeys(profileSchema.fields)]);
  const all = new Set([...keys(siteSchema.fields), ...keys(profileSchema.fields)]);
  for (const f of ['docs/modbus.md', 'docs/configuration.md', 'docs/device-profiles.md', 'docs/operations.md', 'docs/meters.md', 'README.md']) {
    it(`${f}: no internal \`<duration>_ms\` names (the file spells \`timeout: 1s\`)`, () => {
      const bad = [...read(f).matchAll(/`([a-z_]+(?:\.[a-z_]+)*)`/g)].map((m) => m[1] ?? '')
        .filter((k) => { const last = k.split('.').at(-1) ?? ''; return last.endsWith('_ms') && durations.has(last.slice(0, -3)) && !all.has(last); });
      expect(bad).toEqual([]);
    });
  }

  it('docs/modbus.md: every `quirks.<key>` and `serial.<key>` it names is a key of the profile or site file', () => {
    const quirks = Object.keys(((profileSchema.fields['quirks']?.s) as ObjSchema).fields);
    const named = [...read('docs/modbus.md').matchAll(/`(quirks|serial)\.([a-z_]+)`/g)];
    expect(named.length).toBeGreaterThan(5);
    for (const [, section, key] of named) {
      if (section === 'quirks') expect(quirks, `quirks.${key}`).toContain(key);
      else expect([...all], `serial.${key}`).toContain(key);
    }
  });
});
