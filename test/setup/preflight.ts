// Vitest global setup: before any test runs, every external peer of test/peers.ts must start (or,
// for Python, import). A missing one fails the run with one line naming the Debian package to
// install, and the closing line counts it (test/reporters/closing-line.ts reads PREFLIGHT_FAILED).
// Outside CI, EMS_TEST_PEERS=optional turns that into a warning: the tests needing it then skip,
// which the closing line counts.
import { checkPeer, PEERS, PREFLIGHT_FAILED } from '../peers.js';

export default async function preflight(): Promise<void> {
  const problems = (await Promise.all(PEERS.map((p) => checkPeer(p)))).filter((p) => p !== undefined);
  if (problems.length === 0) return;
  const lines = problems.map((p) => `preflight: test peer '${p.peer.name}' is missing: install the Debian package ${p.debian} (${p.detail})`);
  const ci = process.env['CI'] === 'true' || process.env['CI'] === '1';
  if (!ci && process.env['EMS_TEST_PEERS'] === 'optional') {
    for (const l of lines) console.warn(`${l}; EMS_TEST_PEERS=optional: its tests skip`);
    return;
  }
  const pkgs = [...new Set(problems.map((p) => p.debian))].join(' ');
  for (const l of lines) console.error(l);
  console.error(`preflight: run 'bash .ci/setup' (or apt-get install ${pkgs}); outside CI, EMS_TEST_PEERS=optional skips what needs them`);
  process.env[PREFLIGHT_FAILED] = `${problems.length} test ${problems.length === 1 ? 'peer' : 'peers'} missing: ${pkgs}`;
  const err = new Error(`preflight failed: ${process.env[PREFLIGHT_FAILED]}`);
  err.stack = err.message; // the lines above say everything; no stack trace under them
  throw err;
}
