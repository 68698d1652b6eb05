// Mappings in the schema DSL: objects with declared keys (unknown keys get a did-you-mean),
// string-keyed records, and unions tagged by a `kind:` key.
import type { Node, Pair } from 'yaml';
import { isMap, isScalar } from 'yaml';
import { hint } from './did-you-mean.js';
import { INVALID, describeNode, formatDuration, type Infer, type Json, type NodeKind, type Out, type Schema } from './schema-dsl.js';
import { FORBIDDEN_KEYS, type FileCtx } from './yaml-source.js';

interface Field<S extends Schema = Schema> {
  s: S;
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

/**
 * Fields declared apart from obj() (shared or spread): keeps their literal types (`required: true`,
 * `as: 'x'`) for inference; without it `required: true` widens to boolean and the key reads optional.
 */
export function fields<const F extends Fields>(f: F): F {
  return f;
}

type Simplify<T> = { -readonly [K in keyof T]: T[K] } & {};

/** The output key of a field: `as`, else `<key>_ms` for a duration, else the key (as outKey() does). */
type OutKey<K extends string, F> = F extends { as: infer A extends string } ? A
  : F extends { s: { kind: 'duration' } } ? (K extends `${string}_ms` ? K : `${K}_ms`) : K;

/** Whether the output always has the key: required (unconditionally), or given a default. */
type Always<F> = F extends { requiredUnless: object } ? false
  : F extends { required: true } ? true : F extends { default: unknown } ? true : F extends { defaults: true } ? true : false;

/** The validated object a mapping of fields yields. */
export type InferObj<F extends Fields> = Simplify<
  { [K in keyof F & string as Always<F[K]> extends true ? OutKey<K, F[K]> : never]: Infer<F[K]['s']> }
  & { [K in keyof F & string as Always<F[K]> extends true ? never : OutKey<K, F[K]>]?: Infer<F[K]['s']> }>;

/**
 * `K` of `T` may be left out: keys the loader always sets (defaults) that configs and profiles
 * built in code (tests, the demo, benchmarks) may omit. Consumers handle their absence.
 */
export type Omissible<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

interface ObjOpts<T, R> {
  doc?: string;
  /**
   * Cross-key checks and derived values; runs only when every key parsed. It may change `out` in
   * place, or return the object to yield instead (whose type is then the schema's: keys it drops
   * or adds, such as a secret read from a `*_file`, are typed that way).
   */
  post?: (out: T, ctx: FileCtx, node: Node, path: string) => R;
}

export interface ObjSchema<T = Obj, F extends Fields = Fields> extends Schema<T> {
  readonly fields: F;
  /** The object built from defaults alone (for an absent optional section). */
  fromDefaults(path: string, ctx: FileCtx, at: Node | undefined): Out<T>;
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
  if (f.defaults && isObjSchema(f.s)) {
    const v = f.s.fromDefaults(childPath(path, key), ctx, at);
    return v === INVALID ? undefined : v;
  }
  return undefined;
}

/** A copy of a parsed object without the keys a `post` hook consumed (e.g. `password_file` once read). */
export function without<T extends object, K extends keyof T>(o: T, ...keys: K[]): Omit<T, K> {
  const copy = { ...o };
  for (const k of keys) delete copy[k];
  return copy;
}

/** An object schema (the one kind with fromDefaults): what it builds from defaults is what it parses. */
export function isObjSchema<T>(s: Schema<T>): s is ObjSchema<T> {
  return 'fromDefaults' in s && 'fields' in s;
}

function exempt(f: Field, pairs: ReadonlyMap<string, { value: Node | null | undefined }>): boolean {
  const u = f.requiredUnless;
  if (u === undefined) return false;
  const got = pairs.get(u.key);
  if (u.values === undefined) return got !== undefined;
  const v = got?.value;
  return isScalar(v) && u.values.includes(String(v.value));
}

export function obj<const F extends Fields, R extends object>(fields: F, o: ObjOpts<InferObj<F>, R> & { post: unknown }): ObjSchema<R, F>;
export function obj<const F extends Fields>(fields: F, o?: ObjOpts<InferObj<F>, void>): ObjSchema<InferObj<F>, F>;
export function obj(fields: Fields, o: ObjOpts<Obj, Obj | void> = {}): ObjSchema<Obj> {
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
      const posted = o.post(out, ctx, node, path) ?? out;
      if (ctx.problems.errorCount > before) return INVALID;
      if (posted !== out) ctx.origins.set(posted, { node, path });
      return posted;
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

/** The union a tagged() schema yields: each variant's object with its tag. */
type InferTagged<T extends string, V extends Record<string, Fields>> =
  { [K in keyof V & string]: Simplify<{ [P in T]: K } & InferObj<V[K]>> }[keyof V & string];

/** A union of objects told apart by a tag key (`kind: sine`); the tag is kept in the output. */
export function tagged<const T extends string, const V extends Record<string, Fields>>(tag: T, variants: V, doc?: string): Schema<InferTagged<T, V>>;
export function tagged(tag: string, variants: Record<string, Fields>, doc?: string): Schema<Obj> {
  const names = Object.keys(variants);
  const schemas = new Map<string, ObjSchema<Obj>>(names.map((n) => [n, obj<Fields>({ [tag]: { s: constant(n), required: true }, ...variants[n] })]));
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
