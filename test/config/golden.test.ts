// Golden config cases (telegraf's testcases/ style): each folder under test/fixtures/config-cases
// holds a site.yaml (and optionally its own devices/ and env.json); expected.txt holds the exact
// problem lines, `file:line:col path: message`, paths relative to the case folder.
// Regenerate after an intended change with UPDATE_GOLDEN=1, then review the diff.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblems } from '../../src/config/errors.js';
import { DEFAULT_DEVICES_DIR, loadSite } from '../../src/config/load.js';
import { pollBudgetWarnings } from '../../src/modbus/poll-budget.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';
import { DEVICE_METRICS } from '../../src/telemetry/semconv.js';

const CASES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'config-cases');
const cases = readdirSync(CASES).filter((c) => existsSync(join(CASES, c, 'site.yaml'))).sort();

async function problemsOf(dir: string): Promise<string> {
  const env = existsSync(join(dir, 'env.json')) ? JSON.parse(readFileSync(join(dir, 'env.json'), 'utf8')) as Record<string, string> : {};
  const devicesDir = existsSync(join(dir, 'devices')) ? join(dir, 'devices') : DEFAULT_DEVICES_DIR;
  try {
    const loaded = await loadSite(join(dir, 'site.yaml'), { env, devicesDir, metrics: DEVICE_METRICS, pollBudget: pollBudgetWarnings, profileChecks: modbusProfileChecks }); // as validate loads it
    return formatProblems(loaded.warnings, dir);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return formatProblems(err.problems, dir);
  }
}

describe('golden config cases', () => {
  it('has at least 15 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  for (const c of cases) {
    it(c, async () => {
      const dir = join(CASES, c);
      const got = `${await problemsOf(dir)}\n`;
      const expectedFile = join(dir, 'expected.txt');
      if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(expectedFile, got);
      expect(got).toBe(readFileSync(expectedFile, 'utf8'));
      expect(got.trim()).not.toBe(''); // every case shows at least one problem
    });
  }
});
