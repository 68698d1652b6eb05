// Any uncaught exception or unhandled rejection during a test run fails the suite:
// nothing a device, the broker or a config file sends may crash the process.
import { afterAll } from 'vitest';

const problems: string[] = [];
const onRejection = (reason: unknown): void => {
  problems.push(`unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
};
const onException = (err: Error): void => {
  problems.push(`uncaughtException: ${err.stack ?? err.message}`);
};
process.on('unhandledRejection', onRejection);
process.on('uncaughtException', onException);

afterAll(() => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  if (problems.length > 0) {
    throw new Error(`process-level errors during this test file:\n${problems.join('\n')}`);
  }
});
