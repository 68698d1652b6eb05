// The closing line tells the truth: a real vitest run over fixture files that fail in each way
// (a failed test, a file that throws at import, a beforeAll that throws) and, with CI=true, a skip
// that test/allowed-skips.ts does not list; each is counted as failed and the run exits non-zero.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIR = fileURLToPath(new URL('../fixtures/closing-line/', import.meta.url));
const VITEST = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));

function run(testCase: string, ci: boolean): { code: number | null; last: string; out: string } {
  const env = { ...process.env, CLOSING_LINE_CASE: testCase, CI: ci ? 'true' : '' };
  const r = spawnSync(process.execPath, [VITEST, 'run', '--root', DIR], { cwd: DIR, env, encoding: 'utf8', timeout: 60_000 });
  const out = r.stdout.trim();
  return { code: r.status, last: out.split('\n').at(-1) ?? '', out };
}

describe('closing line', () => {
  it('a file that throws at import and a failing hook are failed suites, with a failed test beside them', () => {
    const r = run('*.fixture.ts', false);
    expect(r.last).toBe('tests: 1 passed, 3 failed (2 suites failed to run), 2 skipped');
    expect(r.out).toContain('failed to run: test/fixtures/closing-line/throws-at-import.fixture.ts');
    expect(r.out).toContain('failed to run: test/fixtures/closing-line/hook-fails.fixture.ts');
    expect(r.code).toBe(1);
  });

  it('a clean run passes; in CI an unlisted skip fails it', () => {
    const local = run('passes.fixture.ts', false);
    expect(local).toMatchObject({ code: 0, last: 'tests: 1 passed, 0 failed, 1 skipped' });
    const ci = run('passes.fixture.ts', true);
    expect(ci.last).toBe('tests: 1 passed, 1 failed (1 unexpected skip in CI), 1 skipped');
    expect(ci.out).toContain('skipped in CI and not in test/allowed-skips.ts: test/fixtures/closing-line/passes.fixture.ts > is skipped');
    expect(ci.code).toBe(1);
  });
});
