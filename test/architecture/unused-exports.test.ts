// Every export of src/ is imported by some other module (of src/, simulators/, bench/ or test/):
// an export nothing imports is dead code or should not be exported. Two lists may excuse one:
// PUBLIC_API (what the package offers outside this repository) and KNOWN_UNUSED (what existed when
// this test was written; it may only shrink: an entry that is now used or gone fails the test).
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/runtime/package-root.js';
import { readGraph } from './module-graph.js';
import { KNOWN_UNUSED } from './unused-exports.known.js';

/**
 * The package's interface outside this repository is its command line (package.json `bin`, no
 * `main` or `exports`): no module export is public API today. A library entry point would list
 * its exports here, as `file name`.
 */
const PUBLIC_API: readonly string[] = [];

/**
 * The command table (src/cli/commands.ts) loads each command module with import() and calls its
 * `run`: that is the one name the dispatcher takes, not every export of the module.
 */
const DISPATCHER = 'src/cli/commands.ts';

const graph = readGraph(packageRoot());

function unusedExports(): string[] {
  const used = new Map<string, Set<string>>();
  for (const m of graph.values()) {
    for (const [target, names] of m.imports) {
      if (target === m.file) continue;
      const set = used.get(target) ?? new Set<string>();
      const taken = m.file === DISPATCHER && names.has('*') ? new Set(['run']) : names;
      for (const n of taken) set.add(n);
      used.set(target, set);
    }
  }
  const out: string[] = [];
  for (const m of graph.values()) {
    if (!m.file.startsWith('src/')) continue;
    const u = used.get(m.file) ?? new Set<string>();
    if (u.has('*')) continue;
    for (const name of m.exports) if (!u.has(name)) out.push(`${m.file} ${name}`);
  }
  return out.sort();
}

describe('exports of src/', () => {
  const unused = unusedExports();
  const excused = new Set([...PUBLIC_API, ...KNOWN_UNUSED]);

  it('every export is imported by another module (or listed as public API)', () => {
    expect(unused.filter((e) => !excused.has(e))).toEqual([]);
  });

  it('the list of known unused exports only shrinks: an entry now imported, or gone, leaves it', () => {
    const now = new Set(unused);
    expect(KNOWN_UNUSED.filter((e) => !now.has(e))).toEqual([]);
    expect(new Set(KNOWN_UNUSED).size).toBe(KNOWN_UNUSED.length);
  });

  it('sees exports and their importers (a self-check of the reader)', () => {
    expect(graph.get('src/cli/args.ts')?.exports.has('defineCommand')).toBe(true);
    expect(unused).not.toContain('src/cli/args.ts defineCommand');
    // The command modules' `run` is taken by the dispatcher; their other exports need an importer.
    expect(unused).not.toContain('src/cli/validate.ts run');
  });
});
