// `ems-gateway schemas --write|--check [dir]`: write or check the JSON Schemas of site files and
// device profiles (schemas/*.json), generated from the validating declarations.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSchemas } from '../config/json-schema.js';
import { packageRoot } from '../runtime/package-root.js';
import { defineCommand, parseCommandArgs, usageFailure } from './args.js';

const USAGE = 'usage: ems-gateway schemas --write|--check [dir]   (default dir: the package\'s schemas/)\n';

const ARGS = defineCommand({
  command: 'schemas',
  usage: USAGE,
  options: { write: { type: 'boolean' }, check: { type: 'boolean' } },
  positionals: { max: 1 },
});

export async function run(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, ARGS);
  if (typeof parsed === 'number') return parsed;
  const { write, check } = parsed.values;
  if (write === check) return usageFailure(ARGS, write ? 'either --write or --check, not both' : '--write or --check is needed');
  const mode = write ? '--write' : '--check';
  const dir = parsed.positionals[0] ?? join(packageRoot(), 'schemas');
  const generated = generateSchemas();
  let stale = 0;
  if (mode === '--write') await mkdir(dir, { recursive: true });
  for (const [name, text] of generated) {
    const path = join(dir, name);
    if (mode === '--write') {
      await writeFile(path, text);
      process.stdout.write(`wrote ${path}\n`);
      continue;
    }
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current !== text) {
      stale++;
      process.stderr.write(`${path} is ${current === undefined ? 'missing' : 'stale'}: run \`ems-gateway schemas --write\`\n`);
    }
  }
  if (mode === '--check' && stale === 0) process.stdout.write('schemas up to date\n');
  return stale === 0 ? 0 : 1;
}
