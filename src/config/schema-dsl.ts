// A small schema DSL: one declaration both validates a YAML node tree (with positions, every
// problem reported, unknown keys with did-you-mean) and emits the JSON Schema editors use.
// The site and profile schemas are written in it, so validation and schemas/ cannot drift apart,
// and each schema's type (Infer<typeof schema>) is the type of what it validates.
import type { Node } from 'yaml';
import { isMap, isScalar, isSeq } from 'yaml';
import { hint } from './did-you-mean.js';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.js';
import type { FileCtx } from './yaml-source.js';

export type Json = Record<string, unknown>;
export const INVALID: unique symbol = Symbol('invalid');
export type Out<T> = T | typeof INVALID;
export type NodeKind = 'scalar' | 'map' | 'seq';

export interface Schema<T = unknown> {
  readonly kind: string;
  /** Node kinds this schema can accept (used by alt() to choose). */
  readonly accepts: readonly NodeKind[];
  parse(node: Node | null | undefined, path: string, ctx: FileCtx): Out<T>;
  json(): Json;
}

/** The validated value a schema yields: `Infer<typeof siteSchema>` is the site's type. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** A duration schema: its output key is `<key>_ms` (schema-object.ts), so its type says what it is. */
interface DurationSchema extends Schema<number> { readonly kind: 'duration' }

export function describeNode(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (node.value === null) return 'null';
    const text = JSON.stringify(node.value);
    return text.length > 60 ? `${text.slice(0, 57)}…"` : text;
  }
  return 'an unknown node';
}

const ENV_RE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const ENV_JSON_PATTERN = '^\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}$';

/** `${VAR}` / `${VAR:-default}` interpolation; `$${` is a literal `${`. Unset variables are errors. */
function interpolate(text: string, node: Node, path: string, ctx: FileCtx): string | undefined {
  if (!text.includes('${')) return text;
  let ok = true;
  const out = text.replace(ENV_RE, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === '$${') return '${';
    const v = name === undefined ? undefined : ctx.env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    ok = false;
    ctx.error(node, path, `environment variable ${JSON.stringify(name)} is not set`);
    return '';
  });
  return ok ? out : undefined;
}

interface ScalarValue { value: unknown; interpolated: boolean }

function scalarOf(node: Node | null | undefined, path: string, ctx: FileCtx, expected: string): Out<ScalarValue> {
  if (node === null || node === undefined || !isScalar(node)) {
    ctx.error(node, path, `expected ${expected}, got ${describeNode(node)}`);
    return INVALID;
  }
  if (typeof node.value === 'string' && node.value.includes('${')) {
    const v = interpolate(node.value, node, path, ctx);
    return v === undefined ? INVALID : { value: v, interpolated: true };
  }
  return { value: node.value, interpolated: false };
}

/** Also accept `${ENV_VAR}` in editors; the description stays on the outside where editors show it. */
/** The value as the user should see it: after substitution, saying where it came from. */
function shown(node: Node | null | undefined, sv: ScalarValue): string {
  if (!sv.interpolated || !isScalar(node)) return describeNode(node);
  return `${JSON.stringify(sv.value)} (from ${String(node.value)})`;
}

function withEnv(j: Json): Json {
  const { description, ...rest } = j;
  return { anyOf: [rest, { type: 'string', pattern: ENV_JSON_PATTERN }], ...(description !== undefined ? { description } : {}) };
}

interface StrOpts { pattern?: string; patternHint?: string; minLength?: number; maxLength?: number; doc?: string }

export function str(o: StrOpts = {}): Schema<string> {
  const re = o.pattern === undefined ? undefined : new RegExp(o.pattern);
  return {
    kind: 'string', accepts: ['scalar'],
    parse(node, path, ctx) {
      const s = scalarOf(node, path, ctx, 'a string');
      if (s === INVALID) return INVALID;
      const v = s.value;
      if (typeof v !== 'string') {
        // Numbers and booleans written bare (`id: 42`) are meant as text; nulls are not.
        if (typeof v === 'number' || typeof v === 'boolean') return checkStr(String(v));
        ctx.error(node, path, `expected a string, got ${describeNode(node)}`);
        return INVALID;
      }
      return checkStr(v);
      function checkStr(t: string): Out<string> {
        if (o.minLength !== undefined && t.length < o.minLength) {
          ctx.error(node, path, o.minLength === 1 ? 'must not be empty' : `must be at least ${o.minLength} characters, got ${JSON.stringify(t)}`);
          return INVALID;
        }
        if (o.maxLength !== undefined && t.length > o.maxLength) {
          ctx.error(node, path, `must be at most ${o.maxLength} characters, got ${t.length}`);
          return INVALID;
        }
        if (re && !re.test(t)) {
          ctx.error(node, path, `${JSON.stringify(t)} is not ${o.patternHint ?? `matching ${o.pattern}`}`);
          return INVALID;
        }
        return t;
      }
    },
    json: () => {
      const j: Json = { type: 'string', ...(o.pattern ? { pattern: o.pattern } : {}), ...(o.minLength ? { minLength: o.minLength } : {}),
        ...(o.maxLength ? { maxLength: o.maxLength } : {}), ...(o.doc ? { description: o.doc } : {}) };
      // A patterned string may still be written as ${ENV_VAR}; editors must not flag that.
      return o.pattern ? withEnv(j) : j;
    },
  };
}

interface NumOpts { int?: boolean; min?: number; max?: number; exclusiveMin?: number; doc?: string }

export function num(o: NumOpts = {}): Schema<number> {
  const what = o.int ? 'an integer' : 'a number';
  return {
    kind: 'number', accepts: ['scalar'],
    parse(node, path, ctx) {
      const s = scalarOf(node, path, ctx, what);
      if (s === INVALID) return INVALID;
      let v = s.value;
      if (s.interpolated && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
      if (typeof v !== 'number' || Number.isNaN(v)) {
        ctx.error(node, path, `expected ${what}, got ${shown(node, s)}`);
        return INVALID;
      }
      if (o.int && !Number.isInteger(v)) { ctx.error(node, path, `expected an integer, got ${v}`); return INVALID; }
      if (o.min !== undefined && v < o.min) { ctx.error(node, path, `must be >= ${o.min}, got ${v}`); return INVALID; }
      if (o.max !== undefined && v > o.max) { ctx.error(node, path, `must be <= ${o.max}, got ${v}`); return INVALID; }
      if (o.exclusiveMin !== undefined && v <= o.exclusiveMin) { ctx.error(node, path, `must be > ${o.exclusiveMin}, got ${v}`); return INVALID; }
      return v;
    },
    json: () => withEnv({ type: o.int ? 'integer' : 'number', ...(o.min !== undefined ? { minimum: o.min } : {}),
      ...(o.max !== undefined ? { maximum: o.max } : {}), ...(o.exclusiveMin !== undefined ? { exclusiveMinimum: o.exclusiveMin } : {}),
      ...(o.doc ? { description: o.doc } : {}) }),
  };
}

export function bool(doc?: string): Schema<boolean> {
  return {
    kind: 'boolean', accepts: ['scalar'],
    parse(node, path, ctx) {
      const s = scalarOf(node, path, ctx, 'true or false');
      if (s === INVALID) return INVALID;
      if (typeof s.value === 'boolean') return s.value;
      if (s.interpolated && (s.value === 'true' || s.value === 'false')) return s.value === 'true';
      ctx.error(node, path, `expected true or false, got ${shown(node, s)}`);
      return INVALID;
    },
    json: () => withEnv({ type: 'boolean', ...(doc ? { description: doc } : {}) }),
  };
}

/** One of a closed set of words or numbers, with a did-you-mean for typos. */
export function oneOf<T extends string | number>(values: readonly T[], doc?: string): Schema<T> {
  const list = values.map((v) => JSON.stringify(v)).join(', ');
  return {
    kind: 'enum', accepts: ['scalar'],
    parse(node, path, ctx) {
      const s = scalarOf(node, path, ctx, `one of ${list}`);
      if (s === INVALID) return INVALID;
      let v = s.value;
      if (s.interpolated && typeof values[0] === 'number' && typeof v === 'string') v = Number(v);
      const found = values.find((x) => x === v);
      if (found !== undefined) return found;
      const h = typeof v === 'string' ? hint(v, values.map(String)) : '';
      ctx.error(node, path, `${shown(node, s)} is not one of ${list}${h}`);
      return INVALID;
    },
    json: () => ({ enum: [...values], ...(doc ? { description: doc } : {}) }),
  };
}

/** A duration with a unit (`500ms`, `1s`, `15m`, `1h`) as milliseconds. */
export function duration(o: { min_ms?: number; doc?: string } = {}): DurationSchema {
  return {
    kind: 'duration', accepts: ['scalar'],
    parse(node, path, ctx) {
      const s = scalarOf(node, path, ctx, 'a duration like "500ms" or "1s"');
      if (s === INVALID) return INVALID;
      const ms = typeof s.value === 'string' ? parseDuration(s.value) : undefined;
      if (ms === undefined) {
        const extra = typeof s.value === 'number' ? ` (add a unit: "${s.value}ms" or "${s.value}s")` : '';
        ctx.error(node, path, `expected a duration like "500ms", "1s", "15m", got ${describeNode(node)}${extra}`);
        return INVALID;
      }
      if (o.min_ms !== undefined && ms < o.min_ms) {
        ctx.error(node, path, `must be at least ${formatDuration(o.min_ms)}, got ${JSON.stringify(s.value)}`);
        return INVALID;
      }
      return ms;
    },
    json: () => ({ type: 'string', pattern: DURATION_PATTERN, ...(o.doc ? { description: o.doc } : {}) }),
  };
}

export interface ArrSchema<T, V extends readonly T[] = T[]> extends Schema<V> { readonly item: Schema<T> }

interface ArrOpts { minItems?: number; maxItems?: number; doc?: string }
type Tuple<T, N extends number, Acc extends T[] = []> = Acc['length'] extends N ? Acc : Tuple<T, N, [...Acc, T]>;
/** A list whose minItems and maxItems are one literal number is a tuple (`valid_range: [min, max]`). */
type ArrOut<T, O> = O extends { minItems: infer A extends number; maxItems: infer B extends number }
  ? ([A] extends [B] ? ([B] extends [A] ? (number extends A ? T[] : Tuple<T, A>) : T[]) : T[]) : T[];

export function arr<T, const O extends ArrOpts = Record<never, never>>(item: Schema<T>, o?: O): ArrSchema<T, ArrOut<T, O>>;
export function arr<T>(item: Schema<T>, o: ArrOpts = {}): ArrSchema<T> {
  return {
    kind: 'array', accepts: ['seq'], item,
    parse(node, path, ctx) {
      if (!isSeq(node)) { ctx.error(node, path, `expected a list, got ${describeNode(node)}`); return INVALID; }
      const out: T[] = [];
      let bad = false;
      node.items.forEach((raw, i) => {
        const p = `${path}[${i}]`;
        const v = item.parse(ctx.deref(raw, p), p, ctx);
        if (v === INVALID) bad = true; else out.push(v);
      });
      if (o.minItems !== undefined && node.items.length < o.minItems) {
        ctx.error(node, path, `needs at least ${o.minItems} item${o.minItems === 1 ? '' : 's'}`);
        return INVALID;
      }
      if (o.maxItems !== undefined && node.items.length > o.maxItems) {
        ctx.error(node, path, `takes at most ${o.maxItems} item${o.maxItems === 1 ? '' : 's'}, got ${node.items.length}`);
        return INVALID;
      }
      ctx.origins.set(out, { node, path });
      return bad ? INVALID : out;
    },
    json: () => ({
      type: 'array', items: item.json(), ...(o.minItems ? { minItems: o.minItems } : {}), ...(o.maxItems !== undefined ? { maxItems: o.maxItems } : {}),
      ...(o.doc ? { description: o.doc } : {}),
    }),
  };
}

/** Picks the first option that validates without problems; reports `expected` otherwise. */
export function alt<const S extends readonly Schema[]>(options: S, expected: string, doc?: string): Schema<Infer<S[number]>>;
export function alt(options: readonly Schema[], expected: string, doc?: string): Schema {
  return {
    kind: 'alt', accepts: [...new Set(options.flatMap((o) => o.accepts))],
    parse(node, path, ctx) {
      const kind: NodeKind | undefined = isMap(node) ? 'map' : isSeq(node) ? 'seq' : isScalar(node) ? 'scalar' : undefined;
      const fitting = options.filter((o) => kind !== undefined && o.accepts.includes(kind));
      for (const o of fitting) {
        const scratch = ctx.scratch();
        const v = o.parse(node, path, scratch);
        if (v !== INVALID && scratch.problems.errorCount === 0) { ctx.adopt(scratch); return v; }
      }
      // A single structural fit gives the precise messages of that option.
      if (fitting.length === 1 && fitting[0] && kind !== 'scalar') return fitting[0].parse(node, path, ctx);
      ctx.error(node, path, `expected ${expected}, got ${describeNode(node)}`);
      return INVALID;
    },
    json: () => ({ anyOf: options.map((o) => o.json()), ...(doc ? { description: doc } : {}) }),
  };
}

export { formatDuration };
