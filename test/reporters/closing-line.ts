// The suite's closing line, the one people (and CI) read first: 'tests: N passed, N failed, N skipped'.
// Failed counts every way a run can fail, not only failed test cases: a test file that could not
// be loaded, a hook that threw, an error outside any test, and (with CI=true) a skip that is not
// in test/allowed-skips.ts; a run that never started a test file (the preflight failed) is a
// failure too. When anything but failed test cases is counted, the line says so,
// e.g. 'tests: 657 passed, 1 failed (1 suite failed to run), 1 skipped', and the run exits non-zero.
import path from 'node:path';
import type { Reporter, SerializedError, TestCase, TestModule, TestSuite } from 'vitest/node';
import { ALLOWED_SKIPS } from '../allowed-skips.js';
import { PREFLIGHT_FAILED } from '../peers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Tally {
  passed: number;
  failedTests: number;
  skipped: number;
  failedSuites: string[];
  unexpectedSkips: string[];
  unhandled: number;
  /** Why the run failed before any test file ran (the preflight), if it did. */
  notStarted: string | undefined;
}

export function tally(modules: ReadonlyArray<TestModule>, unhandled: number, ci: boolean, preflight?: string): Tally {
  const notStarted = preflight !== undefined && preflight !== '' ? `preflight failed: ${preflight}` : modules.length === 0 ? 'no test file ran' : undefined;
  const t: Tally = { passed: 0, failedTests: 0, skipped: 0, failedSuites: [], unexpectedSkips: [], unhandled, notStarted };
  for (const m of modules) {
    const file = path.relative(ROOT, m.moduleId);
    // A file that failed to load, or a hook that threw, leaves its errors on the module or suite,
    // not on a test case.
    const broken = [m, ...m.children.allSuites()].filter((s: TestModule | TestSuite) => s.errors().length > 0);
    for (const s of broken) t.failedSuites.push(s.type === 'module' ? file : `${file} > ${s.fullName}`);
    const before = t.failedTests;
    for (const c of m.children.allTests()) count(t, c, file, ci);
    // Failed with nothing to show for it: still a failure, never silence.
    if (m.state() === 'failed' && broken.length === 0 && t.failedTests === before) t.failedSuites.push(file);
  }
  return t;
}

function count(t: Tally, c: TestCase, file: string, ci: boolean): void {
  const state = c.result().state;
  if (state === 'passed') t.passed += 1;
  else if (state === 'failed') t.failedTests += 1;
  else {
    // skipped, or pending (never ran: the run was cut short)
    t.skipped += 1;
    if (ci && !ALLOWED_SKIPS.some((a) => a.file === file && a.test === c.fullName)) t.unexpectedSkips.push(`${file} > ${c.fullName}`);
  }
}

export function closingLine(t: Tally): { line: string; failed: number; details: string[] } {
  const extra: string[] = t.notStarted !== undefined ? [t.notStarted] : [];
  const details: string[] = [];
  const n = (k: number, one: string, many: string): string => `${k} ${k === 1 ? one : many}`;
  if (t.failedSuites.length > 0) {
    extra.push(`${n(t.failedSuites.length, 'suite', 'suites')} failed to run`);
    for (const s of t.failedSuites) details.push(`failed to run: ${s}`);
  }
  if (t.unhandled > 0) extra.push(`${n(t.unhandled, 'error', 'errors')} outside tests`);
  if (t.unexpectedSkips.length > 0) {
    extra.push(`${n(t.unexpectedSkips.length, 'unexpected skip', 'unexpected skips')} in CI`);
    for (const s of t.unexpectedSkips) details.push(`skipped in CI and not in test/allowed-skips.ts: ${s}`);
  }
  const failed = t.failedTests + t.failedSuites.length + t.unhandled + t.unexpectedSkips.length + (t.notStarted !== undefined ? 1 : 0);
  const why = extra.length > 0 ? ` (${extra.join(', ')})` : '';
  return { line: `tests: ${t.passed} passed, ${failed} failed${why}, ${t.skipped} skipped`, failed, details };
}

export default class ClosingLineReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const ci = process.env['CI'] === 'true' || process.env['CI'] === '1';
    const { line, failed, details } = closingLine(tally(modules, unhandledErrors.length, ci, process.env[PREFLIGHT_FAILED]));
    for (const d of details) process.stdout.write(`${d}\n`);
    process.stdout.write(`${line}\n`);
    if (failed > 0) process.exitCode = 1;
  }
}
