#!/usr/bin/env node
// ems-gateway: the command-line entry point. Subcommands register in src/cli/commands.ts.
import { runCli } from './commands.js';

runCli(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`ems-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
