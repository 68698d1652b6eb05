// One YAML file parsed with positions, guarded against hostile input (alias bombs, huge files,
// prototype keys), plus the reporting context the schema DSL writes problems into.
import { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, visit, type Alias, type Document, type Node } from 'yaml';
import type { ConfigProblem } from './site-types.js';
import { excessiveNesting } from './yaml-nesting.js';

const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases are handy for a few shared blocks; thousands of expansions are an attack (billion laughs). */
const MAX_ALIAS_EXPANSIONS = 100;
const MAX_SYNTAX_PROBLEMS = 20;
/** Deeper nesting (block or flow) only serves to exhaust the parser's stack; no config needs it. */
const MAX_NESTING = 64;
const STACK_OVERFLOW = /Maximum call stack size exceeded/;
const TOO_DEEP = `YAML: nested too deeply (more than the parser can read): refusing`;
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

interface SourceFile {
  file: string;
  doc: Document.Parsed | undefined; // undefined when the text could not be parsed at all
  lines: LineCounter;
}

/** Where output objects came from, so semantic checks can point at the right line. */
interface Origin { node: Node; path: string }

export class Problems {
  readonly list: ConfigProblem[] = [];
  get errorCount(): number { return this.list.filter((p) => p.severity === 'error').length; }
  add(p: ConfigProblem): void { this.list.push(p); }
}

/** Context of one file being validated. */
export class FileCtx {
  aliasExpansions = 0;
  constructor(
    readonly src: SourceFile,
    readonly problems: Problems,
    readonly env: NodeJS.ProcessEnv,
    readonly baseDir: string,
    readonly origins: WeakMap<object, Origin> = new WeakMap(),
  ) {}

  /** A context whose problems are kept apart (alternatives are tried in one). */
  scratch(): FileCtx {
    const c = new FileCtx(this.src, new Problems(), this.env, this.baseDir, this.origins);
    c.aliasExpansions = this.aliasExpansions;
    return c;
  }

  /** Takes over what a successful scratch context found (warnings, alias count). */
  adopt(scratch: FileCtx): void {
    for (const p of scratch.problems.list) this.problems.add(p);
    this.aliasExpansions = scratch.aliasExpansions;
  }

  position(node: Node | undefined | null): { line: number; col: number } {
    const off = node?.range?.[0];
    if (off === undefined) return { line: 0, col: 0 };
    const p = this.src.lines.linePos(off);
    return { line: p.line, col: p.col };
  }

  error(node: Node | undefined | null, path: string, message: string): void {
    this.problems.add({ file: this.src.file, ...this.position(node), path, message, severity: 'error' });
  }

  warn(node: Node | undefined | null, path: string, message: string): void {
    this.problems.add({ file: this.src.file, ...this.position(node), path, message, severity: 'warning' });
  }

  /** The node of `key` inside the map an output object was parsed from (or the map itself). */
  nodeOf(obj: object, key?: string): { node: Node | undefined; path: string } {
    const o = this.origins.get(obj);
    if (!o) return { node: undefined, path: key ?? '' };
    if (key !== undefined && isSeq(o.node) && /^[0-9]+$/.test(key)) {
      return { node: (o.node.items[Number(key)] as Node | undefined) ?? o.node, path: `${o.path}[${key}]` };
    }
    const path = key === undefined ? o.path : o.path === '' ? key : `${o.path}.${key}`;
    if (key === undefined || !isMap(o.node)) return { node: o.node, path };
    for (const pair of o.node.items) {
      if (isScalar(pair.key) && String(pair.key.value) === key) {
        return { node: (pair.value as Node | null) ?? (pair.key as Node), path };
      }
    }
    return { node: o.node, path };
  }

  /** Whether the map an output object came from spells `key` (false when it took a default). */
  hasKey(obj: object, key: string): boolean {
    const o = this.origins.get(obj);
    return o !== undefined && isMap(o.node) && o.node.items.some((p) => isScalar(p.key) && String(p.key.value) === key);
  }

  errorAt(obj: object, key: string | undefined, message: string): void {
    const { node, path } = this.nodeOf(obj, key);
    this.error(node, path, message);
  }

  warnAt(obj: object, key: string | undefined, message: string): void {
    const { node, path } = this.nodeOf(obj, key);
    this.warn(node, path, message);
  }

  /** Follows an alias, counting expansions so a bomb stops early instead of eating memory. */
  deref(node: unknown, path: string): Node | null | undefined {
    if (!isAlias(node)) return node as Node | null | undefined;
    this.aliasExpansions++;
    if (this.aliasExpansions > MAX_ALIAS_EXPANSIONS) {
      if (this.aliasExpansions === MAX_ALIAS_EXPANSIONS + 1) {
        this.error(node, path, `more than ${MAX_ALIAS_EXPANSIONS} alias expansions: refusing (alias bomb?)`);
      }
      return undefined;
    }
    const target = this.src.doc === undefined ? undefined : node.resolve(this.src.doc);
    if (target === undefined) this.error(node, path, `unresolved alias *${node.source}`);
    return target;
  }
}

/**
 * Parses YAML keeping positions. Syntax errors, oversized input and alias bombs become problems;
 * the returned doc is undefined when validation of the content cannot go on. `maxNesting`: the
 * scan's bound (tests raise it to reach the net below the scan).
 */
export function parseYaml(text: string, file: string, problems: Problems, maxNesting = MAX_NESTING): SourceFile {
  const lines = new LineCounter();
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_CONFIG_BYTES) {
    problems.add({ file, line: 0, col: 0, path: '', severity: 'error',
      message: `file is ${size} bytes; config files are limited to ${MAX_CONFIG_BYTES} bytes (1 MiB)` });
    return { file, doc: undefined, lines };
  }
  const deep = excessiveNesting(text, maxNesting);
  if (deep !== undefined) {
    const what = deep.kind === 'flow' ? 'brackets nest' : 'blocks (indentation, `- `) nest';
    problems.add({ file, line: deep.line, col: deep.col, path: '', severity: 'error', message: `YAML: ${what} more than ${maxNesting} levels deep: refusing` });
    return { file, doc: undefined, lines };
  }
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (err) {
    // The scan above should have refused what the parser cannot read; this is the net below it.
    const message = err instanceof RangeError && STACK_OVERFLOW.test(err.message) ? TOO_DEEP : `YAML: cannot be read: ${(err as Error).message}`;
    problems.add({ file, line: 0, col: 0, path: '', severity: 'error', message });
    return { file, doc: undefined, lines };
  }
  const errs = doc.errors;
  // The parser catches its own stack overflow and reports it as an error: also the net below the
  // scan, said once, in words a user can act on.
  const overflow = errs.find((e) => STACK_OVERFLOW.test(e.message));
  if (overflow !== undefined) {
    const p = lines.linePos(overflow.pos[0]);
    problems.add({ file, line: p.line, col: p.col, path: '', severity: 'error', message: TOO_DEEP });
    return { file, doc: undefined, lines };
  }
  for (const e of errs.slice(0, MAX_SYNTAX_PROBLEMS)) {
    const p = lines.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0] ?? e.message;
    problems.add({ file, line: p.line, col: p.col, path: '', severity: 'error', message: `YAML: ${msg}` });
  }
  if (errs.length > MAX_SYNTAX_PROBLEMS) {
    problems.add({ file, line: 0, col: 0, path: '', severity: 'error', message: `YAML: ${errs.length - MAX_SYNTAX_PROBLEMS} more syntax errors not shown` });
  }
  if (errs.length > 0) return { file, doc: undefined, lines };
  // Billion laughs: yaml's own expansion counter stops it after a bounded amount of work.
  try {
    doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS });
  } catch (err) {
    let first: Node | undefined;
    let undefinedAlias: Alias | undefined;
    visit(doc, {
      Alias(_k, n) {
        first ??= n;
        if (n.resolve(doc) === undefined) { undefinedAlias = n; return visit.BREAK; }
        return undefined;
      },
    });
    const at = undefinedAlias ?? first;
    const p = at?.range ? lines.linePos(at.range[0]) : { line: 0, col: 0 };
    const why = undefinedAlias !== undefined
      ? `alias *${undefinedAlias.source} has no anchor &${undefinedAlias.source} before it`
      : err instanceof ReferenceError && /alias/i.test(err.message)
        ? `aliases expand more than ${MAX_ALIAS_EXPANSIONS} times: refusing (alias bomb?)`
        : `cannot be read: ${(err as Error).message}`;
    problems.add({ file, line: p.line, col: p.col, path: '', severity: 'error', message: `YAML: ${why}` });
    return { file, doc: undefined, lines };
  }
  return { file, doc, lines };
}

/** Reads a file with the size check before the read, so 10 MB of junk is refused without loading it. */
export async function readConfigText(file: string, problems: Problems): Promise<string | undefined> {
  const { stat, readFile } = await import('node:fs/promises');
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      problems.add({ file, line: 0, col: 0, path: '', severity: 'error', message: 'not a regular file' });
      return undefined;
    }
    if (st.size > MAX_CONFIG_BYTES) {
      problems.add({ file, line: 0, col: 0, path: '', severity: 'error',
        message: `file is ${st.size} bytes; config files are limited to ${MAX_CONFIG_BYTES} bytes (1 MiB)` });
      return undefined;
    }
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    problems.add({ file, line: 0, col: 0, path: '', severity: 'error', message: `cannot read file (${code})` });
    return undefined;
  }
}

