// The shared command-line parser (src/cli/args.ts, node:util parseArgs in strict mode): what every
// command accepts and how it refuses the rest.
import { describe, expect, it } from 'vitest';
import { defineCommand, parseCommand, parseCommandArgs, runSubcommand, UsageError } from '../../src/cli/args.js';

const spec = defineCommand({
  command: 'test',
  usage: 'usage: ems-gateway test [--config F] [--status-port N] [--quiet] [--rate R] [--fault F]...',
  options: {
    config: { type: 'string' }, 'status-port': { type: 'string', kind: 'port' }, quiet: { type: 'boolean', short: 'q' },
    rate: { type: 'string', kind: 'number' }, fault: { type: 'string', multiple: true },
  },
  positionals: { max: 1 },
});

function io(): { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: { write: (s) => out.push(s) > 0 }, stderr: { write: (s) => err.push(s) > 0 }, out, err };
}

describe('CLI arguments (parseArgs, strict)', () => {
  it('parses --name value, --name=value, booleans, short flags, repeated options and a positional', () => {
    const r = parseCommand(['site.yaml', '--status-port', '8781', '--config=x.yaml', '-q', '--rate', '2.5', '--fault', 'a', '--fault', 'b'], spec);
    expect(r).toEqual({ values: { 'status-port': 8781, config: 'x.yaml', quiet: true, rate: 2.5, fault: ['a', 'b'] }, positionals: ['site.yaml'] });
  });

  it.each([
    [['--stauts-port', '1'], 'unknown option --stauts-port (known: --config <value>, --status-port <value>, --quiet, --rate <value>, --fault <value>)'],
    [['--status-port', '70000'], '--status-port must be a port 0-65535, got "70000"'],
    [['--status-port', '-1'], '--status-port needs a value'],
    [['--status-port'], '--status-port needs a value'],
    [['--config='], '--config needs a value'],
    [['--quiet=yes'], '--quiet takes no value'],
    [['--rate', 'fast'], '--rate must be a number, got "fast"'],
    [['a.yaml', 'b.yaml'], 'unexpected argument "b.yaml"'],
  ])('%j is refused: %s', (args, message) => {
    expect(() => parseCommand(args, spec)).toThrow(UsageError);
    expect(() => parseCommand(args, spec)).toThrow(message);
  });

  it('--help and -h win over every other mistake on the line, and over a missing required option', () => {
    const needsOut = defineCommand({ command: 'dr keygen', usage: 'usage: ems-gateway dr keygen --out <prefix>', options: { out: { type: 'string', required: true } } });
    expect(parseCommand(['--help'], needsOut)).toBe('help');
    expect(parseCommand(['--bogus', '-h'], needsOut)).toBe('help');
    expect(() => parseCommand([], needsOut)).toThrow('--out is required');
    // After `--`, --help is an argument like any other.
    expect(() => parseCommand(['--out', 'k', '--', '--help'], needsOut)).toThrow('unexpected argument "--help"');
  });

  it('a missing positional gets the command\'s own message', () => {
    const needsFile = defineCommand({ command: 'validate', usage: 'usage: v', options: {}, positionals: { min: 1, max: 1, missing: 'a site file is required' } });
    expect(() => parseCommand([], needsFile)).toThrow('a site file is required');
    expect(() => parseCommand(['--x'], needsFile)).toThrow('unknown option --x (this command takes no options)');
  });

  it('parseCommandArgs prints the usage for --help (stdout, 0) and the error with the usage for a mistake (stderr, 2)', () => {
    const a = io();
    expect(parseCommandArgs(['--help'], spec, a)).toBe(0);
    expect(a.out.join('')).toBe(`${spec.usage}\n`);
    expect(a.err).toEqual([]);
    const b = io();
    expect(parseCommandArgs(['--stauts-port', '1'], spec, b)).toBe(2);
    expect(b.out).toEqual([]);
    expect(b.err.join('')).toBe(`ems-gateway test: unknown option --stauts-port (known: --config <value>, --status-port <value>, --quiet, --rate <value>, --fault <value>)\n${spec.usage}\n`);
  });

  it('--help cannot be declared by a command (the parser adds it)', () => {
    expect(() => defineCommand({ command: 'x', usage: 'usage: x', options: { help: { type: 'boolean' } } })).toThrow(/--help is added by the parser/);
  });

  it('runSubcommand runs the named one with the rest, prints the usage for --help, refuses none or an unknown one', async () => {
    const calls: string[][] = [];
    const spec = { command: 'sunspec', usage: 'usage: ems-gateway sunspec scan [...]', subcommands: { scan: (rest: string[]) => { calls.push(rest); return 7; } } };
    const a = io();
    expect(await runSubcommand(['scan', '--host', 'x'], spec, a)).toBe(7);
    expect(calls).toEqual([['--host', 'x']]);
    expect(await runSubcommand(['--help'], spec, a)).toBe(0);
    expect(a.out.join('')).toBe('usage: ems-gateway sunspec scan [...]\n');
    const b = io();
    expect(await runSubcommand([], spec, b)).toBe(2);
    expect(await runSubcommand(['toString'], spec, b)).toBe(2);
    expect(b.err.join('')).toBe('ems-gateway sunspec: a subcommand is needed (scan)\nusage: ems-gateway sunspec scan [...]\n'
      + 'ems-gateway sunspec: unknown subcommand "toString" (known: scan)\nusage: ems-gateway sunspec scan [...]\n');
    expect(calls).toHaveLength(1);
  });
});
