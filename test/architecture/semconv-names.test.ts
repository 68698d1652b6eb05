// Metric, span, attribute and event names (`ems.*`) are written in one place, src/telemetry/semconv.ts
// (the telemetry contract of docs/product.md): every other module takes them from there. A string
// literal of src/ that begins with `ems.` anywhere else fails; comments and prose that merely
// mention a name (`'a metric name like "ems.device.ac_power"'`) do not.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/runtime/package-root.js';

const ROOT = packageRoot();
const SEMCONV = 'src/telemetry/semconv.ts';

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** `file:line text` for every string or template literal of `text` that begins with `ems.`. */
function emsLiterals(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node)) && node.text.startsWith('ems.')) {
      found.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1} ${node.getText(sf)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('telemetry names', () => {
  it('`ems.` string literals appear only in src/telemetry/semconv.ts', () => {
    const files = sources(join(ROOT, 'src')).map((f) => relative(ROOT, f));
    const outside = files.filter((f) => f !== SEMCONV).flatMap((f) => emsLiterals(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(outside).toEqual([]);
  });

  it('the check sees quoted and template literals, and not comments or prose', () => {
    const sample = [
      "// ems.meter.readings in a comment",
      "const a = 'ems.device.up';",
      'const b = "ems.grid.frequency";',
      'const c = `ems.dr.${kind}`;',
      "const d = 'a metric name like \"ems.device.ac_power\"';",
      '/** `ems.alert.firing` in a doc comment */',
    ].join('\n');
    expect(emsLiterals('x.ts', sample)).toEqual(["x.ts:2 'ems.device.up'", 'x.ts:3 "ems.grid.frequency"', 'x.ts:4 `ems.dr.${']);
    expect(emsLiterals(SEMCONV, readFileSync(join(ROOT, SEMCONV), 'utf8')).length).toBeGreaterThan(20);
  });
});
