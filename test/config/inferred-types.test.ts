// The site and profile types are what their schemas yield (Infer<typeof schema>), not a second
// description: the type assertions here are checked by `npm run typecheck`, the rest at run time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ControlDef, DeviceProfile, PointDef, SimBehaviour, SunSpecModelRef, UnplacedPoint } from '../../src/config/profile-types.js';
import { arr, duration, INVALID, num, oneOf, str, type Infer } from '../../src/config/schema-dsl.js';
import { obj, tagged } from '../../src/config/schema-object.js';
import type { DemandResponseConfig, DeviceConfig, MqttConfig, ParsedSite, SiteConfig } from '../../src/config/site-types.js';
import { FileCtx, parseYaml, Problems } from '../../src/config/yaml-source.js';

const sample = obj({
  name: { s: str(), required: true },
  poll: { s: duration(), default: 1000 },
  timeout_ms: { s: duration() },
  label: { s: str(), as: 'tag' },
  mode: { s: oneOf(['a', 'b'] as const), default: 'a' },
  range: { s: arr(num(), { minItems: 2, maxItems: 2 }) },
  host: { s: str(), required: true, requiredUnless: { key: 'mode', values: ['b'] } },
  shape: { s: tagged('kind', { dot: { r: { s: num(), required: true } }, none: {} }) },
});

function parse(text: string): Infer<typeof sample> | undefined {
  const problems = new Problems();
  const src = parseYaml(text, '/tmp/sample.yaml', problems);
  if (!src.doc) return undefined;
  const ctx = new FileCtx(src, problems, {}, '/tmp');
  const out = sample.parse(ctx.deref(src.doc.contents, ''), '', ctx);
  return out === INVALID ? undefined : out;
}

describe('schema-inferred types', () => {
  it('an object schema yields the keys its type names: durations as *_ms, `as`, defaults filled', () => {
    type Sample = Infer<typeof sample>;
    expectTypeOf<Sample>().toEqualTypeOf<{
      name: string; poll_ms: number; mode: 'a' | 'b';
      timeout_ms?: number; tag?: string; range?: [number, number]; host?: string;
      shape?: { kind: 'dot'; r: number } | { kind: 'none' };
    }>();
    const v = parse('name: x\ntimeout_ms: 2s\nlabel: l\nrange: [1, 2]\nhost: h\nshape: { kind: dot, r: 3 }\n');
    expect(v).toEqual({ name: 'x', poll_ms: 1000, timeout_ms: 2000, tag: 'l', mode: 'a', range: [1, 2], host: 'h', shape: { kind: 'dot', r: 3 } });
    expect(Object.keys(parse('name: y\nmode: b\n') ?? {}).sort()).toEqual(['mode', 'name', 'poll_ms']);
  });

  it('the exported config types are the schemas\' output, with what the loader derives (checked by npm run typecheck)', () => {
    expectTypeOf<SiteConfig['devices'][number]['poll_interval_ms']>().toEqualTypeOf<number>();
    expectTypeOf<DeviceConfig['transport']>().toEqualTypeOf<'tcp' | 'rtu' | 'rtu_over_tcp' | undefined>();
    expectTypeOf<MqttConfig['client_id']>().toEqualTypeOf<string>();
    expectTypeOf<NonNullable<ParsedSite['mqtt']>['client_id']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<SiteConfig['grid']['stale_after_ms']>().toEqualTypeOf<number>();
    expectTypeOf<DemandResponseConfig['public_keys']>().toEqualTypeOf<string[]>();
    expectTypeOf<DemandResponseConfig['gateway_key']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<DemandResponseConfig>().not.toHaveProperty('gateway_key_file');
    expectTypeOf<MqttConfig>().not.toHaveProperty('password_file');
    expectTypeOf<PointDef['valid_range']>().toEqualTypeOf<[number, number] | undefined>();
    // A `sunspec` point gives no address (requiredUnless) and may name its point instead of the
    // offset: the loader fills both in once the point is placed in the reference chain.
    expectTypeOf<UnplacedPoint['address']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<NonNullable<UnplacedPoint['sunspec']>>().toEqualTypeOf<{ model: number; offset?: number; point?: string }>();
    expectTypeOf<PointDef['address']>().toEqualTypeOf<number>();
    expectTypeOf<ControlDef['address']>().toEqualTypeOf<number>();
    expectTypeOf<NonNullable<PointDef['sunspec']>['offset']>().toEqualTypeOf<number>();
    expectTypeOf<SunSpecModelRef>().toEqualTypeOf<{ id: number; length: number; or?: number[] }>();
    expectTypeOf<ControlDef['verify']['timeout_ms']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<DeviceProfile['quirks']['request_gap_ms']>().toEqualTypeOf<number>();
    expectTypeOf<Extract<SimBehaviour, { kind: 'sine' }>>().toEqualTypeOf<{ kind: 'sine'; mean: number; amplitude: number; period_s: number }>();
  });

  it('no cast stands between validated config and its types in src/config', () => {
    const dir = join(import.meta.dirname, '../../src/config');
    const offenders = readdirSync(dir).filter((f) => f.endsWith('.ts') && readFileSync(join(dir, f), 'utf8').includes('as unknown as'));
    expect(offenders).toEqual([]);
  });
});
