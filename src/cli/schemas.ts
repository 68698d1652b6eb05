// `ems-gateway schemas --write|--check [dir]`: write or check the JSON Schemas of site files and
// device profiles (schemas/*.json), generated from the validating declarations.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSchemas } from '../config/json-schema.js';
import { packageRoot } from '../runtime/package-root.js';

const USAGE = 'usage: ems-gateway schemas --write|--check [dir]   (default dir: the package\'s schemas/)\n';

export async function run(args: string[]): Promise<number> {
  const mode = args.find((a) => a === '--write' || a === '--check');
  const dir = args.find((a) => !a.startsWith('-')) ?? join(packageRoot(), 'schemas');
  if (!mode) { process.stderr.write(USAGE); return 2; }
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
