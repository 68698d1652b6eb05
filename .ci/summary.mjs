// Prints the plain closing line CI reads ('N passed, N failed, N skipped') from vitest's JSON report.
import { readFileSync } from 'node:fs';

try {
  const r = JSON.parse(readFileSync(new URL('../.tmp/vitest-results.json', import.meta.url), 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
} catch (err) {
  console.log(`tests: no vitest report (${err instanceof Error ? err.message : String(err)})`);
  process.exitCode = 1;
}
