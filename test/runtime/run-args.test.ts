import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../src/cli/run-args.js';

const spec = { config: 'string', 'status-port': 'port', quiet: 'boolean', rate: 'number' } as const;

describe('CLI flags', () => {
  it('parses --name value, --name=value, booleans and positionals', () => {
    const r = parseFlags(['site.yaml', '--status-port', '8781', '--config=x.yaml', '--quiet', '--rate', '2.5'], spec);
    expect(r.flags).toEqual({ 'status-port': 8781, config: 'x.yaml', quiet: true, rate: 2.5 });
    expect(r.positional).toEqual(['site.yaml']);
  });

  it.each([
    [['--stauts-port', '1'], 'unknown option --stauts-port'],
    [['--status-port', '70000'], '--status-port must be a port 0-65535, got "70000"'],
    [['--status-port'], '--status-port needs a value'],
    [['--quiet=yes'], '--quiet takes no value'],
    [['--rate', 'fast'], '--rate must be a number, got "fast"'],
  ])('%j is refused: %s', (args, message) => {
    expect(() => parseFlags(args, spec)).toThrow(UsageError);
    expect(() => parseFlags(args, spec)).toThrow(message);
  });
});
