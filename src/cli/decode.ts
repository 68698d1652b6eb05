// `ems-gateway decode [--type float32] 0x4148 0x0000`: registers decoded in all four word/byte
// orders, the field notes' troubleshooting aid for "my value is garbage" (usually the order, or an
// address one off: try the registers either side too).
import { NUMERIC_TYPES, WORD_ORDERS, numericWidth, wordsToRaw, type NumericType } from '../modbus/codec-words.js';
import { defineCommand, parseCommand, UsageError } from './args.js';

const USAGE = `usage: ems-gateway decode [--type <type>] <register> [<register> ...]
  Registers as read from the wire, in order (hex 0x4148 or decimal 16712). Prints each type that
  fits (or only --type: ${NUMERIC_TYPES.join(', ')}) decoded as ABCD, CDAB, BADC and DCBA.
  example: ems-gateway decode --type float32 0x4148 0x0000   -> ABCD 12.5
`;

export function parseRegister(text: string): number | undefined {
  const n = /^0x[0-9a-f]{1,4}$/i.test(text) ? parseInt(text.slice(2), 16) : /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : undefined;
}

/** The table `decode` prints, one line per type; an error message instead when the input is bad. */
const ARGS = defineCommand({
  command: 'decode',
  usage: USAGE,
  options: { type: { type: 'string', short: 't' } },
  positionals: { max: Infinity },
});

/** The table `decode` prints, one line per type; an error message instead when the input is bad (or the usage for --help). */
export function decodeTable(args: string[]): string | { error: string } {
  let parsed;
  try {
    parsed = parseCommand(args, ARGS);
  } catch (err) {
    if (err instanceof UsageError) return { error: err.message };
    throw err;
  }
  if (parsed === 'help') return USAGE;
  const t = parsed.values.type;
  if (t !== undefined && !(NUMERIC_TYPES as readonly string[]).includes(t)) return { error: `unknown --type ${JSON.stringify(t)}: one of ${NUMERIC_TYPES.join(', ')}` };
  const type = t as NumericType | undefined;
  const words: number[] = [];
  for (const a of parsed.positionals) {
    const w = parseRegister(a);
    if (w === undefined) return { error: `not a 16-bit register value: ${JSON.stringify(a)} (use 0x1234 or 0..65535)` };
    words.push(w);
  }
  if (words.length === 0) return { error: 'no registers given' };
  const types = type ? [type] : NUMERIC_TYPES.filter((t) => numericWidth(t) <= words.length);
  if (type && numericWidth(type) > words.length) return { error: `${type} needs ${numericWidth(type)} registers, got ${words.length}` };
  const regs = Uint16Array.from(words);
  const lines = [`registers: ${words.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ')}`];
  lines.push(`${'type'.padEnd(8)} ${WORD_ORDERS.map((o) => o.padEnd(24)).join(' ')}`.trimEnd());
  for (const t of types) {
    // The raw value, not decodeAllOrders' double: 64-bit integers print exactly.
    lines.push(`${t.padEnd(8)} ${WORD_ORDERS.map((o) => String(wordsToRaw(t, regs, 0, o)).padEnd(24)).join(' ')}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

export async function run(args: string[]): Promise<number> {
  const out = decodeTable(args);
  if (typeof out !== 'string') {
    process.stderr.write(`ems-gateway decode: ${out.error}\n${USAGE}`);
    return 2;
  }
  process.stdout.write(out);
  return 0;
}
