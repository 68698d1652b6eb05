// Mappings in the schema DSL: objects with declared keys (unknown keys get a did-you-mean),
// string-keyed records, and unions tagged by a `kind:` key.
import type { Node, Pair } from 'yaml';
import { isMap, isScalar } from 'yaml';
import { hint } from './did-you-mean.js';
import { INVALID, describeNode, formatDuration, type Json, type NodeKind, type Out, type Schema } from './schema-dsl.js';
import { FORBIDDEN_KEYS, type FileCtx } from './yaml-source.js';

export interface Field {
  s: Schema;
  required?: boolean;
  /** Output value when the key is absent (in output units: ms for durations). */
  default?: unknown;
  /** Absent nested object: build it from its own defaults. */
  defaults?: boolean;
  /** Output key; durations default to `<key>_ms`. */
  as?: string;
  doc?: string;
  /** Appended to the "missing required key" message: why the key matters. */
  why?: string;
  /**
   * With `required`: not required when another key of the same mapping holds one of these values
   * (without `values`: when the other key is there at all).
   */
  requiredUnless?: { key: string; values?: readonly string[] };
}

export type Fields = Record<string, Field>;
export type Obj = Record<string, unknown>;

export interface ObjOpts {
  doc?: string;
  /** Cross-key checks and derived values; runs only when every key parsed. */
  post?: (out: Obj, ctx: FileCtx, node: Node, path: string) => void;
}

export interface ObjSchema extends Schema<Obj> {
  readonly fields: Fields;
  /** The object built from defaults alone (for an absent optional section). */
  fromDefaults(path: string, ctx: FileCtx, at: Node | undefined): Out<Obj>;
}

function outKey(key: string, f: Field): string {
  return f.as ?? (f.s.kind === 'duration' && !key.endsWith('_ms') ? `${key}_ms` : key);
}

function keyName(pair: Pair): string | undefined {
  return isScalar(pair.key) && (typeof pair.key.value === 'string' || typeof pair.key.value === 'number')
    ? String(pair.key.value) : undefined;
}

/** A key as it appears in a path; one with control characters quoted (a raw CR would rewrite the line). */
function pathKey(key: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  return /[\u0000-\u001f\u007f]/.test(key) ? JSON.stringify(key) : key;
}

function childPath(path: string, key: string): string {
  return path === '' ? pathKey(key) : `${path}.${pathKey(key)}`;
}

function defaultOf(key: string, f: Field, path: string, ctx: FileCtx, at: Node | undefined): unknown {
  if (f.default !== undefined) return structuredClone(f.default);
  if (f.defaults && 'fromDefaults' in f.s) {
    const v = (f.s as ObjSchema).fromDefaults(childPath(path, key), ctx, at);
    return v === INVALID ? undefined : v;
  }
  return undefined;
}

function exempt(f: Field, pairs: ReadonlyMap<string, { value: Node | null | undefined }>): boolean {
  const u = f.requiredUnless;
  if (u === undefined) return false;
  const got = pairs.get(u.key);
  if (u.values === undefined) return got !== undefined;
  const v = got?.value;
  return isScalar(v) && u.values.includes(String(v.value));
}

export function obj(fields: Fields, o: ObjOpts = {}): ObjSchema {
  const keys = Object.keys(fields);
  const build = (pairs: Map<string, { pair: Pair; value: Node | null | undefined }>, node: Node | undefined, path: string, ctx: FileCtx): Out<Obj> => {
    const out: Obj = {};
    let bad = false;
    for (const [key, f] of Object.entries(fields)) {
      const got = pairs.get(key);
      if (got === undefined) {
        if (f.required && !exempt(f, pairs)) { ctx.error(node, path, `missing required key ${JSON.stringify(key)}${f.why ? `: ${f.why}` : ''}`); bad = true; continue; }
        const d = defaultOf(key, f, path, ctx, node);
        if (d !== undefined) out[outKey(key, f)] = d;
        continue;
      }
      const v = f.s.parse(got.value, childPath(path, key), ctx);
      if (v === INVALID) bad = true; else out[outKey(key, f)] = v;
    }
    if (node) ctx.origins.set(out, { node, path });
    if (bad) return INVALID;
    if (o.post && node) {
      const before = ctx.problems.errorCount;
      o.post(out, ctx, node, path);
      if (ctx.problems.errorCount > before) return INVALID;
    }
    return out;
  };
  return {
    kind: 'object', accepts: ['map'], fields,
    parse(node, path, ctx) {
      if (!isMap(node)) { ctx.error(node, path, `expected a mapping, got ${describeNode(node)}`); return INVALID; }
      const pairs = new Map<string, { pair: Pair; value: Node | null | undefined }>();
      let bad = false;
      for (const pair of node.items) {
        const key = keyName(pair);
        const kp = childPath(path, key ?? '?');
        if (key === undefined) { ctx.error(pair.key as Node, path, `keys must be plain words, got ${describeNode(pair.key as Node)}`); bad = true; continue; }
        if (FORBIDDEN_KEYS.has(key)) { ctx.error(pair.key as Node, kp, `key ${JSON.stringify(key)} is not allowed`); bad = true; continue; }
        if (!(key in fields) || !Object.hasOwn(fields, key)) {
          ctx.error(pair.key as Node, kp, `unknown key ${JSON.stringify(key)}${hint(key, keys)}`);
          bad = true;
          continue;
        }
        pairs.set(key, { pair, value: ctx.deref(pair.value, kp) });
      }
      const out = build(pairs, node, path, ctx);
      return bad ? INVALID : out;
    },
    fromDefaults(path, ctx, at) { return build(new Map(), at, path, ctx); },
    json(): Json {
      const properties: Json = {};
      const required: string[] = [];
      const conditional: Json[] = [];
      for (const [key, f] of Object.entries(fields)) {
        const j = { ...f.s.json() };
        if (f.doc) j['description'] = f.doc;
        if (f.default !== undefined) j['default'] = f.s.kind === 'duration' && typeof f.default === 'number' ? formatDuration(f.default) : f.default;
        properties[key] = j;
        const u = f.requiredUnless;
        if (f.required && u !== undefined) {
          // `properties` beside `required`: ajv's strictRequired wants the key declared in the same subschema.
          const unless: Json = u.values === undefined ? { not: { properties: { [u.key]: true }, required: [u.key] } } : { properties: { [u.key]: { not: { enum: [...u.values] } } } };
          conditional.push({ if: unless, then: { properties: { [key]: true }, required: [key] } });
        } else if (f.required) required.push(key);
      }
      return {
        type: 'object', additionalProperties: false, properties, ...(required.length ? { required } : {}),
        ...(conditional.length ? { allOf: conditional } : {}), ...(o.doc ? { description: o.doc } : {}),
      };
    },
  };
}

/** A mapping of free keys (labels, enum values, bit names) to values of one schema. */
export function record<T>(value: Schema<T>, o: { keyPattern?: string; keyHint?: string; doc?: string } = {}): Schema<Record<string, T>> {
  const re = o.keyPattern === undefined ? undefined : new RegExp(o.keyPattern);
  return {
    kind: 'record', accepts: ['map'] as readonly NodeKind[],
    parse(node, path, ctx) {
      if (!isMap(node)) { ctx.error(node, path, `expected a mapping, got ${describeNode(node)}`); return INVALID; }
      const out: Record<string, T> = {};
      let bad = false;
      for (const pair of node.items) {
        const key = keyName(pair);
        const kp = childPath(path, key ?? '?');
        if (key === undefined || FORBIDDEN_KEYS.has(key)) {
          ctx.error(pair.key as Node, kp, key === undefined ? `keys must be plain words, got ${describeNode(pair.key as Node)}` : `key ${JSON.stringify(key)} is not allowed`);
          bad = true; continue;
        }
        if (re && !re.test(key)) { ctx.error(pair.key as Node, kp, `key ${JSON.stringify(key)} is not ${o.keyHint ?? `matching ${o.keyPattern}`}`); bad = true; continue; }
        const v = value.parse(ctx.deref(pair.value, kp), kp, ctx);
        if (v === INVALID) bad = true; else out[key] = v;
      }
      ctx.origins.set(out, { node, path });
      return bad ? INVALID : out;
    },
    json: () => ({ type: 'object', additionalProperties: value.json(), ...(o.keyPattern ? { propertyNames: { pattern: o.keyPattern } } : {}),
      ...(o.doc ? { description: o.doc } : {}) }),
  };
}

/** A union of objects told apart by a tag key (`kind: sine`); the tag is kept in the output. */
export function tagged(tag: string, variants: Record<string, Fields>, doc?: string): Schema<Obj> {
  const names = Object.keys(variants);
  const schemas = new Map<string, ObjSchema>(names.map((n) => [n, obj({ [tag]: { s: constant(n), required: true }, ...variants[n] })]));
  return {
    kind: 'tagged', accepts: ['map'],
    parse(node, path, ctx) {
      if (!isMap(node)) { ctx.error(node, path, `expected a mapping with ${JSON.stringify(tag)}, got ${describeNode(node)}`); return INVALID; }
      const tagNode = node.items.find((p) => keyName(p) === tag)?.value as Node | undefined;
      const t = tagNode && isScalar(tagNode) ? String(tagNode.value) : undefined;
      const s = t === undefined ? undefined : schemas.get(t);
      if (!s) {
        const shown = names.map((n) => JSON.stringify(n)).join(', ');
        if (t === undefined) ctx.error(node, path, `missing required key ${JSON.stringify(tag)} (one of ${shown})`);
        else ctx.error(tagNode, childPath(path, tag), `${JSON.stringify(t)} is not one of ${shown}${hint(t, names)}`);
        return INVALID;
      }
      return s.parse(node, path, ctx);
    },
    json: () => ({ oneOf: [...schemas.values()].map((s) => s.json()), ...(doc ? { description: doc } : {}) }),
  };
}

function constant(value: string): Schema<string> {
  return {
    kind: 'const', accepts: ['scalar'],
    parse: (node) => (isScalar(node) && node.value === value ? value : INVALID),
    json: () => ({ const: value }),
  };
}
