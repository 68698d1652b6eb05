// The import rules of ARCHITECTURE.md, checked against every import of src/: the layer table is
// read from the document itself (so the document is the rule), and its list of known exceptions
// must match the exceptions that exist: a new one fails, and one that is gone must leave the list.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/runtime/package-root.js';
import { readGraph } from './module-graph.js';

const root = packageRoot();
const doc = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
const graph = readGraph(root);

/** The backticked names of a table cell. */
const names = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);

function tableAfter(heading: RegExp): string[][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) throw new Error(`ARCHITECTURE.md: no line matching ${heading}`);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('|')) {
      inTable = true;
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      if (!/^-+$/.test(cells[0] ?? '') && cells[0] !== 'layer' && cells[0] !== 'module') rows.push(cells);
    } else if (inTable) break;
  }
  return rows;
}

interface Layer { name: string; allowed: Set<string> | 'all' }

function layers(): Layer[] {
  const out: Layer[] = [];
  for (const [nameCell = '', , mayCell = ''] of tableAfter(/^## Layers/)) {
    const name = names(nameCell)[0];
    if (name === undefined) throw new Error(`ARCHITECTURE.md: a layer row without a name: ${nameCell}`);
    let allowed: Layer['allowed'];
    if (/^everything/.test(mayCell)) allowed = 'all';
    else if (/every layer above/.test(mayCell)) allowed = new Set(out.map((l) => l.name));
    else allowed = new Set(names(mayCell));
    out.push({ name, allowed });
  }
  return out;
}

function exceptions(): Set<string> {
  const out = new Set<string>();
  for (const [moduleCell = '', importsCell = ''] of tableAfter(/^Known exceptions/)) {
    const from = names(moduleCell)[0];
    if (from === undefined) continue;
    for (const to of names(importsCell)) out.add(`${from} -> ${to}`);
  }
  return out;
}

/** src/meters/ingest.ts -> src/meters; src/gateway.ts stays itself; simulators/x -> simulators. */
function layerOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : file;
  return parts[0] as string;
}

describe('ARCHITECTURE.md import rules', () => {
  const table = layers();
  const byName = new Map(table.map((l) => [l.name, l]));
  const listed = exceptions();

  function edges(): { violations: string[]; excepted: Set<string> } {
    const violations: string[] = [];
    const excepted = new Set<string>();
    for (const m of graph.values()) {
      if (!m.file.startsWith('src/')) continue;
      const own = layerOf(m.file);
      const layer = byName.get(own);
      for (const target of m.imports.keys()) {
        const to = layerOf(target);
        if (to === own) continue;
        const allowed = layer !== undefined && (layer.allowed === 'all' ? !['test', 'bench'].includes(to) : layer.allowed.has(to));
        if (allowed) continue;
        const edge = `${m.file} -> ${target}`;
        if (listed.has(edge)) excepted.add(edge);
        else violations.push(edge);
      }
    }
    return { violations, excepted };
  }

  it('the table places every folder of src/', () => {
    expect(table.length).toBeGreaterThan(10);
    const folders = new Set([...graph.keys()].filter((f) => f.startsWith('src/')).map(layerOf));
    expect([...folders].filter((f) => !byName.has(f))).toEqual([]);
  });

  it('no module imports a layer its row does not name (besides the listed exceptions)', () => {
    expect(edges().violations).toEqual([]);
  });

  it('every listed exception still exists (a fixed one leaves the list)', () => {
    // The list is empty today: its table (header only) must still follow the heading, so that a
    // row added later is read from it and not from some other table further down.
    expect(doc).toMatch(/^Known exceptions[^|]*\n\| module \| imports \|/m);
    const { excepted } = edges();
    expect([...listed].filter((e) => !excepted.has(e))).toEqual([]);
  });

  it('only the demo and the simulate command import simulators/ (the gateway never loads them)', () => {
    const importers = [...graph.values()]
      .filter((m) => m.file.startsWith('src/') && [...m.imports.keys()].some((t) => t.startsWith('simulators/')))
      .map((m) => m.file);
    expect(importers.length).toBeGreaterThan(0);
    expect(importers.filter((f) => !f.startsWith('src/demo/') && f !== 'src/cli/simulate.ts')).toEqual([]);
  });

  it('the embedded broker (aedes, a dev dependency) is imported by simulators/broker.ts alone', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.dependencies['aedes']).toBeUndefined();
    expect(pkg.devDependencies['aedes']).toBeDefined();
    const importers = [...graph.values()]
      .filter((m) => !m.file.startsWith('test/') && /from '(aedes|aedes\/[^']*)'|import\('aedes'\)/.test(readFileSync(join(root, m.file), 'utf8')))
      .map((m) => m.file);
    expect(importers).toEqual(['simulators/broker.ts']);
  });

  it('the module graph sees static, type-only, re-exported and dynamic imports', () => {
    // A self-check of the reader on files whose imports are known.
    const commands = graph.get('src/cli/commands.ts');
    expect(commands?.imports.get('src/cli/run.ts')).toEqual(new Set(['*']));
    const gateway = graph.get('src/gateway.ts');
    expect(gateway?.imports.get('src/config/site-types.ts')?.has('LoadedSite')).toBe(true);
    expect(gateway?.imports.get('src/meters/ingest.ts')?.has('MeterIngest')).toBe(true);
  });
});
