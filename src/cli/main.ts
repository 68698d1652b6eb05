#!/usr/bin/env node
// ems-gateway: the command-line entry point. Subcommands register in src/cli/commands.ts.
import { runCli } from './commands.js';

// `ems-gateway validate site.yaml | head`: a reader that closed the pipe is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

runCli(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`ems-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
