import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every external peer (mosquitto, pymodbus, promtool, ...) is checked once before any test;
    // dist/ is built when absent (the CLI and benchmark tests run it).
    globalSetup: ['test/setup/preflight.ts', 'test/setup/build-dist.ts'],
    setupFiles: ['test/setup/no-unhandled.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real brokers and Modbus servers on port 0; two cores: keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
    // The closing line counts failed suites and, in CI, unlisted skips (test/reporters/closing-line.ts).
    reporters: ['default', './test/reporters/closing-line.ts'],
  },
});
