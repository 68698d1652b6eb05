// The state-file writer: the content arrives whole, with the asked mode, without a temporary file
// left behind; a write that fails leaves what was there untouched.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/runtime/atomic-file.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ems-atomic-'));
  dirs.push(d);
  return d;
}

describe.each([
  ['writeFileAtomicSync', (p: string, d: string, mode?: number): Promise<void> => new Promise<void>((resolve) => { writeFileAtomicSync(p, d, mode === undefined ? {} : { mode }); resolve(); })],
  ['writeFileAtomic', (p: string, d: string, mode?: number): Promise<void> => writeFileAtomic(p, d, mode === undefined ? {} : { mode })],
])('%s', (_name, write) => {
  it('replaces the file whole, creates missing folders, leaves no temporary file', async () => {
    const dir = tempDir();
    const path = join(dir, 'state', 'nested', 'a.json');
    await write(path, '{"v":1}');
    await write(path, '{"v":2,"more":"x"}');
    expect(readFileSync(path, 'utf8')).toBe('{"v":2,"more":"x"}');
    expect(readdirSync(join(dir, 'state', 'nested'))).toEqual(['a.json']);
  });

  it('creates a new file with the mode asked for', async () => {
    const path = join(tempDir(), 'secret.json');
    await write(path, '{}', 0o600);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('a failed write keeps the old content and removes its temporary file', async () => {
    const dir = tempDir();
    // A folder where the file should be: the rename over it fails.
    const path = join(dir, 'taken');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'old');
    await expect(write(path, 'new')).rejects.toThrow();
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});
