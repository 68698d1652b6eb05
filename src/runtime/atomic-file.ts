// The one way a state file is written: to a temporary file beside it, fsynced, renamed over the
// old one, then the directory fsynced. A crash or power cut at any point leaves either the old or
// the new content under `path`, never a torn file; the directory fsync makes the rename itself
// durable (without it a power cut can bring the old file back after the write was reported done).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

let counter = 0;
/** Unique per process and call, so two writers of one path never share a temporary file. */
function tempPath(path: string): string {
  return `${path}.${process.pid}.${++counter}.tmp`;
}

interface AtomicWriteOptions {
  /** File mode of a new file (default 0o644; state holding secrets or verdicts use 0o600). */
  mode?: number;
}

/** Writes `data` to `path` atomically and durably; creates the directory when missing. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = tempPath(path);
  try {
    const fd = openSync(tmp, 'w', opts.mode ?? 0o644);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dir);
}

/** The asynchronous twin of writeFileAtomicSync, same guarantees. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = tempPath(path);
  try {
    const fh = await open(tmp, 'w', opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
