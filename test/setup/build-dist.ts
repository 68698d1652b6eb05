// Vitest global setup: tests that run what an operator runs (the CLI, the benchmarks) use dist/.
// `npm test` builds it first; a bare `npx vitest run` on a fresh clone builds it here instead of
// failing or skipping those tests.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** One built file per entry point the tests start. */
const NEEDED = ['dist/src/cli/main.js', 'dist/bench/modbus.js'];

export default function buildDist(): void {
  if (NEEDED.every((f) => existsSync(path.join(ROOT, f)))) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit', timeout: 300_000 });
}
