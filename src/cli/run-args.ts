// Argument parsing shared by `run` and `demo`: a small, strict parser (an unknown flag is an error
// naming the flag, never ignored) so a typo in a systemd unit fails loudly at start.

export class UsageError extends Error {
  readonly code = 'GW_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagKind = 'string' | 'port' | 'boolean' | 'number';

export type ParsedFlags = Record<string, string | number | boolean | undefined>;

/** Parses `--name value`, `--name=value` and boolean `--name`. Positional arguments are returned apart. */
export function parseFlags(args: string[], spec: Record<string, FlagKind>): { flags: ParsedFlags; positional: string[] } {
  const flags: ParsedFlags = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const kind = spec[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name} (known: ${Object.keys(spec).map((k) => `--${k}`).join(', ')})`);
    if (kind === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = args[i + 1];
      i += 1;
    }
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (kind === 'string') flags[name] = value;
    else {
      const n = Number(value);
      if (kind === 'port' && (!Number.isInteger(n) || n < 0 || n > 65535)) throw new UsageError(`--${name} must be a port 0-65535, got ${JSON.stringify(value)}`);
      if (kind === 'number' && !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(value)}`);
      flags[name] = n;
    }
  }
  return { flags, positional };
}

export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function numberFlag(flags: ParsedFlags, name: string): number | undefined {
  const v = flags[name];
  return typeof v === 'number' ? v : undefined;
}
