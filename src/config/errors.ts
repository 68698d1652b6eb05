// Config problems: collected, never thrown one by one, so a user sees every mistake at once
// (field-notes: "every config error at once, with file and line, before anything starts").
import { relative } from 'node:path';
import type { ConfigProblem } from './site-types.js';

/** `file:line:col path: message`; `file` is shown relative to `relativeTo` when given. */
export function formatProblem(p: ConfigProblem, relativeTo?: string): string {
  const file = relativeTo === undefined ? p.file : relative(relativeTo, p.file) || p.file;
  const where = p.line > 0 ? `${file}:${p.line}:${p.col}` : file;
  const path = p.path === '' ? '' : ` ${p.path}`;
  const tag = p.severity === 'warning' ? 'warning: ' : '';
  return `${where}${path}: ${tag}${p.message}`;
}

export function formatProblems(problems: readonly ConfigProblem[], relativeTo?: string): string {
  return problems.map((p) => formatProblem(p, relativeTo)).join('\n');
}

/** Thrown by loadSite/loadProfile when any error was found; carries every problem (errors and warnings). */
export class ConfigError extends Error {
  readonly code = 'EMS_CONFIG_INVALID';
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems.filter((p) => p.severity === 'error')));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Stable ordering: by file, then line, then column, errors before warnings at the same place. */
export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) =>
    a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col ||
    (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}
