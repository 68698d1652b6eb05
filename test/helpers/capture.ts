// Capturing what a test's code under test prints: stdout/stderr of a CLI command, or the JSON lines
// of a pino logger.
import { Writable } from 'node:stream';
import { vi } from 'vitest';

/** Captures process.stdout and process.stderr writes until vi.restoreAllMocks(). */
export function captureStdio(): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
  return { out: () => out, err: () => err };
}

/** A pino destination whose JSON lines are parsed into `lines` as they are written. */
export function jsonLines<T>(): { lines: T[]; sink: Writable } {
  const lines: T[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as T);
      cb();
    },
  });
  return { lines, sink };
}
