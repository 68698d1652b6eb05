// The project's module graph, read with the TypeScript compiler's parser (no type check): for each
// source file under src/, simulators/, bench/ and test/, what it exports and what it imports from
// which other file. Used by the architecture tests (exports nothing imports; layer rules).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOTS = ['src', 'simulators', 'bench', 'test'] as const;

export interface ModuleInfo {
  /** Path relative to the package root, e.g. src/meters/ingest.ts. */
  file: string;
  /** Names this module exports itself (declarations and `export { a }` lists; not re-exports). */
  exports: Set<string>;
  /** Imported file -> names taken from it ('*' for a namespace or dynamic import, or `export *`). */
  imports: Map<string, Set<string>>;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'fixtures' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
}

/** `./x.js` from `from` -> the .ts file it names, relative to `root`; undefined for packages. */
function resolveSpecifier(root: string, from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const abs = resolve(dirname(join(root, from)), spec).replace(/\.js$/, '.ts');
  return relative(root, abs);
}

function isExported(node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

/**
 * The names a dynamic import takes: `const { a, b } = await import(x)` -> a, b;
 * `(await import(x)).a` -> a; anything else (the module object passed on) -> '*'.
 */
function dynamicImportNames(call: ts.CallExpression): string[] {
  let node: ts.Node = call;
  const up = (): ts.Node => node.parent;
  if (ts.isAwaitExpression(up())) node = up();
  while (ts.isParenthesizedExpression(up())) node = up();
  const parent = up();
  if (ts.isPropertyAccessExpression(parent) && parent.expression === node) return [parent.name.text];
  if (ts.isVariableDeclaration(parent) && parent.initializer === node && ts.isObjectBindingPattern(parent.name)) {
    const names: string[] = [];
    for (const el of parent.name.elements) {
      if (el.dotDotDotToken) return ['*'];
      const key = el.propertyName ?? el.name;
      if (!ts.isIdentifier(key)) return ['*'];
      names.push(key.text);
    }
    return names;
  }
  return ['*'];
}

export function readModule(root: string, file: string): ModuleInfo {
  const text = readFileSync(join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const info: ModuleInfo = { file, exports: new Set(), imports: new Map() };
  const take = (spec: string, names: string[]): void => {
    const target = resolveSpecifier(root, file, spec);
    if (target === undefined) return;
    const set = info.imports.get(target) ?? new Set<string>();
    for (const n of names) set.add(n);
    info.imports.set(target, set);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const names: string[] = [];
      if (clause?.name) names.push('default');
      const nb = clause?.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) names.push('*');
      if (nb && ts.isNamedImports(nb)) for (const el of nb.elements) names.push((el.propertyName ?? el.name).text);
      take(node.moduleSpecifier.text, names);
    } else if (ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        // A re-export uses the names it passes on (and `export *` all of them).
        const names = node.exportClause && ts.isNamedExports(node.exportClause)
          ? node.exportClause.elements.map((el) => (el.propertyName ?? el.name).text) : ['*'];
        take(node.moduleSpecifier.text, names);
      } else if (node.exportClause && ts.isNamedExports(node.exportClause)) {
        for (const el of node.exportClause.elements) info.exports.add(el.name.text);
      }
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteral(arg)) take(arg.text, dynamicImportNames(node));
    } else if (isExported(node)) {
      if (ts.isVariableStatement(node)) {
        for (const d of node.declarationList.declarations) if (ts.isIdentifier(d.name)) info.exports.add(d.name.text);
      } else if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node)
        || ts.isTypeAliasDeclaration(node) || ts.isEnumDeclaration(node)) && node.name) {
        const isDefault = (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
        info.exports.add(isDefault ? 'default' : node.name.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return info;
}

/** Every module of the project, keyed by its path relative to `root`. */
export function readGraph(root: string): Map<string, ModuleInfo> {
  const files: string[] = [];
  for (const r of ROOTS) walk(join(root, r), files);
  const graph = new Map<string, ModuleInfo>();
  for (const f of files) {
    const rel = relative(root, f);
    graph.set(rel, readModule(root, rel));
  }
  return graph;
}
