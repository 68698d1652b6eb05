// The meter dedupe state across restarts: written on a graceful stop, read on start, so readings
// redelivered (or re-sent) across a gateway restart are still recognised as duplicates and the kwh
// check still knows each meter's latest register. A crash skips the write: then the state is lost
// and redeliveries of already handed-off readings reach the sink again (at-least-once).
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../runtime/atomic-file.js';
import type { MeterStateSnapshot } from './meter-state.js';

/** Writes atomically and durably (writeFileAtomic): a crash mid-write never leaves a torn file. */
export async function saveMeterState(path: string, snap: MeterStateSnapshot): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(snap));
}

/** The parsed snapshot, or undefined when there is none yet. Throws with the path on a bad file. */
export async function loadMeterState(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`meter state ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`meter state ${path}: not JSON (${(err as Error).message})`);
  }
}
