// Command-line arguments for every command, over node:util parseArgs in strict mode: an unknown
// option is an error naming it and the command's usage (exit 2), never ignored, so a typo in a
// systemd unit fails loudly at start; `--help`/`-h` prints the usage (exit 0) before anything is
// checked, so `dr keygen --help` is help, not "--out is required".
//
// A command declares its options once:
//   const ARGS = defineCommand({ command: 'probe', usage: USAGE,
//     options: { config: { type: 'string', required: true }, port: { type: 'string', kind: 'port' } },
//     positionals: { max: 0 } });
//   export async function run(args: string[]): Promise<number> {
//     const a = parseCommandArgs(args, ARGS);
//     if (typeof a === 'number') return a;          // help printed (0) or usage error printed (2)
//     a.values.config; a.values.port;               // string; number | undefined
// A command with subcommands (`dr keygen|send`) gives each its own spec and dispatches with
// runSubcommand (`dr --help` lists them; `dr` alone or `dr sned` is a usage error).
import { parseArgs } from 'node:util';

/** A mistake in the command line: printed as `ems-gateway <command>: <message>` and the usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once; the values come as an array in command-line order. */
  multiple?: boolean;
  /** A string option's value checked and converted: a TCP port 0-65535, or any finite number. */
  kind?: 'port' | 'number';
  /** Missing is a usage error (`--name is required`), checked after `--help`. */
  required?: boolean;
}

interface CommandSpec<O extends Record<string, OptionSpec>> {
  /** As typed after `ems-gateway`: `run`, `dr keygen`. */
  command: string;
  /** The usage text (starts with `usage:`), printed for --help and after a usage error. */
  usage: string;
  options: O;
  /** Positional arguments accepted (default none). */
  positionals?: { min?: number; max: number; missing?: string };
}

type Scalar<S extends OptionSpec> = S['type'] extends 'boolean' ? boolean : S extends { kind: 'port' | 'number' } ? number : string;
type Value<S extends OptionSpec> = S extends { multiple: true } ? Scalar<S>[] : Scalar<S>;

export type OptionValues<O extends Record<string, OptionSpec>> =
  { [K in keyof O as O[K] extends { required: true } ? K : never]: Value<O[K]> } &
  { [K in keyof O as O[K] extends { required: true } ? never : K]?: Value<O[K]> };

interface ParsedArgs<O extends Record<string, OptionSpec>> {
  values: OptionValues<O>;
  positionals: string[];
}

/** Declares a command's arguments (the `const` keeps option types literal for OptionValues). */
export function defineCommand<const O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): CommandSpec<O> {
  if ('help' in spec.options) throw new Error(`${spec.command}: --help is added by the parser`);
  return spec;
}

/** The first quoted name in a parseArgs error (`Unknown option '--x'`), or the message itself. */
function quoted(err: Error): string {
  return /'([^']+)'/.exec(err.message)?.[1]?.replace(/ <value>$/, '').replace(/^-\w, /, '') ?? err.message;
}

function convert(name: string, kind: OptionSpec['kind'], raw: string): string | number {
  if (raw === '') throw new UsageError(`--${name} needs a value`);
  if (kind === undefined) return raw;
  const n = Number(raw);
  if (kind === 'port' && (!/^\d+$/.test(raw) || n > 65535)) throw new UsageError(`--${name} must be a port 0-65535, got ${JSON.stringify(raw)}`);
  if (kind === 'number' && !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Parses `args` against the spec: `'help'` when --help/-h is among them, else the values (converted
 * and checked) and positionals. Throws UsageError naming the unknown option, the missing value, the
 * extra argument or the missing required option.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(args: string[], spec: CommandSpec<O>): ParsedArgs<O> | 'help' {
  // Help first: `--help` anywhere wins over every other mistake on the line.
  const end = args.indexOf('--');
  if ((end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')) return 'help';
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const known = Object.entries(spec.options).map(([n, o]) => `--${n}${o.type === 'string' ? ' <value>' : ''}`).join(', ');
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${quoted(err)}${known === '' ? ' (this command takes no options)' : ` (known: ${known})`}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = quoted(err);
      throw new UsageError(/does not take an argument/.test(err.message) ? `${name} takes no value` : `${name} needs a value`);
    }
    throw new UsageError(err.message);
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const v = parsed.values[name];
    if (v === undefined) {
      if (o.required) throw new UsageError(`--${name} is required`);
      continue;
    }
    if (o.type === 'boolean') values[name] = v;
    else values[name] = Array.isArray(v) ? v.map((x) => convert(name, o.kind, String(x))) : convert(name, o.kind, String(v));
  }
  const { min = 0, max, missing = 'an argument is missing' } = spec.positionals ?? { max: 0 };
  const positionals = parsed.positionals;
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`);
  if (positionals.length < min) throw new UsageError(missing);
  return { values: values as OptionValues<O>, positionals };
}

interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** The usage error as every command prints it: `ems-gateway <command>: <message>`, the usage; exit 2. */
export function usageFailure(spec: CommandSpec<Record<string, OptionSpec>>, message: string, io: CliIo = process): number {
  io.stderr.write(`ems-gateway ${spec.command}: ${message}\n${spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`}`);
  return 2;
}

/**
 * parseCommand for a command's run(): the parsed arguments, or the exit code once the usage has
 * been printed (0 to stdout for --help, 2 to stderr with the error for a usage mistake).
 */
export function parseCommandArgs<O extends Record<string, OptionSpec>>(args: string[], spec: CommandSpec<O>, io: CliIo = process): ParsedArgs<O> | number {
  try {
    const parsed = parseCommand(args, spec);
    if (parsed !== 'help') return parsed;
    io.stdout.write(spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(spec as CommandSpec<Record<string, OptionSpec>>, err.message, io);
    throw err;
  }
}

/**
 * `<command> <sub> [args]`: runs the named subcommand with the rest of the arguments. `<command>
 * --help` prints `usage` (0); no subcommand or an unknown one is a usage error (2).
 */
export async function runSubcommand(
  args: string[],
  spec: { command: string; usage: string; subcommands: Record<string, (args: string[]) => number | Promise<number>> },
  io: CliIo = process,
): Promise<number> {
  const [sub, ...rest] = args;
  const usage = spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`;
  if (sub === '--help' || sub === '-h') {
    io.stdout.write(usage);
    return 0;
  }
  const handler = sub === undefined || !Object.hasOwn(spec.subcommands, sub) ? undefined : spec.subcommands[sub];
  if (handler === undefined) {
    const known = Object.keys(spec.subcommands).join(', ');
    io.stderr.write(`ems-gateway ${spec.command}: ${sub === undefined ? `a subcommand is needed (${known})` : `unknown subcommand ${JSON.stringify(sub)} (known: ${known})`}\n${usage}`);
    return 2;
  }
  return handler(rest);
}
