import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/no-unhandled.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real brokers and Modbus servers on port 0; two cores: keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
