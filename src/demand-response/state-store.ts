// What DR must not forget across a restart: every authenticated command id with the verdict it got
// (accepted or the rejection reason), kept for as long as the command could still be valid, so no
// id ever runs twice or runs after it was refused; and the active curtailments (so they are
// re-asserted or ended after a restart). One JSON file, replaced atomically and durably
// (writeFileAtomicSync), so a crash or power cut leaves either the old or the new state.
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../runtime/atomic-file.js';
import type { Verdict } from './command.js';

interface ControllerPlanRecord {
  device_id: string;
  control: string;
  /** Setpoint in the control's scaled unit. */
  setpoint: number;
  reduction_kw: number;
}

export interface ActiveCommandRecord {
  command_id: string;
  zone: string;
  reduction_mw: number;
  duration_minutes: number;
  accepted_at: number;   // epoch ms
  ends_at: number;       // epoch ms: the curtailment is reverted at this time
  traceparent?: string;
  controllers: ControllerPlanRecord[];
  /** Set when the end (restore) did not verify on every controller: those left are retried. */
  restore_pending?: boolean;
}

/** What the gateway answered for one command id, remembered until `until` (epoch ms). */
export interface SeenRecord {
  until: number;
  verdict: Verdict;
}

interface StateFile {
  version: 1;
  /** command id -> its record; a bare number (files written before verdicts were kept) is an accepted command's `until`. */
  seen: Record<string, SeenRecord | number>;
  active: ActiveCommandRecord[];
}

/** Far above any real command rate; bounds the file if a key holder floods the gateway. */
const MAX_SEEN = 100_000;

class StateStoreError extends Error {
  readonly code = 'DR_STATE_FILE';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StateStoreError';
  }
}

export class DrStateStore {
  private readonly path: string;
  private seen = new Map<string, SeenRecord>();
  private active = new Map<string, ActiveCommandRecord>();

  constructor(path: string) {
    this.path = path;
  }

  /** Reads the file; a missing file is an empty state, a corrupt one is an error (never silently empty: that would re-open replays). */
  load(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StateStoreError(`DR state file ${this.path}: ${(err as Error).message}`, err);
    }
    let data: StateFile;
    try {
      data = JSON.parse(text) as StateFile;
      if (data.version !== 1 || typeof data.seen !== 'object' || !Array.isArray(data.active)) throw new Error('unexpected shape');
    } catch (err) {
      throw new StateStoreError(`DR state file ${this.path} is corrupt: ${(err as Error).message}`, err);
    }
    this.seen = new Map();
    for (const [id, v] of Object.entries(data.seen)) {
      if (typeof v === 'number') this.seen.set(id, { until: v, verdict: 'accepted' });
      else if (typeof v === 'object' && v !== null && typeof v.until === 'number' && typeof v.verdict === 'string') this.seen.set(id, { until: v.until, verdict: v.verdict });
      else throw new StateStoreError(`DR state file ${this.path} is corrupt: seen[${JSON.stringify(id)}] is ${JSON.stringify(v)}`);
    }
    this.active = new Map(data.active.map((a) => [a.command_id, a]));
  }

  /** The verdict a command id got, while it is remembered. */
  verdictOf(commandId: string, nowMs: number): SeenRecord | undefined {
    const rec = this.seen.get(commandId);
    return rec !== undefined && rec.until >= nowMs ? rec : undefined;
  }

  /**
   * Records a command id with its verdict and persists before returning: the id is durable before
   * anything acts on it. A record already past `untilMs` is not written (the command could never
   * be valid again anyway).
   */
  record(commandId: string, verdict: Verdict, untilMs: number, nowMs: number): void {
    if (untilMs < nowMs) return;
    this.prune(nowMs);
    this.seen.set(commandId, { until: untilMs, verdict });
    this.save();
  }

  activeCommands(): ActiveCommandRecord[] {
    return [...this.active.values()];
  }

  getActive(commandId: string): ActiveCommandRecord | undefined {
    return this.active.get(commandId);
  }

  putActive(rec: ActiveCommandRecord): void {
    this.active.set(rec.command_id, rec);
    this.save();
  }

  removeActive(commandId: string): void {
    if (this.active.delete(commandId)) this.save();
  }

  private prune(nowMs: number): void {
    for (const [id, rec] of this.seen) if (rec.until < nowMs) this.seen.delete(id);
    if (this.seen.size >= MAX_SEEN) {
      // Forget the ids that expire soonest: they are the closest to being un-replayable anyway.
      const sorted = [...this.seen.entries()].sort((a, b) => a[1].until - b[1].until);
      for (const [id] of sorted.slice(0, this.seen.size - MAX_SEEN + 1)) this.seen.delete(id);
    }
  }

  private save(): void {
    const data: StateFile = { version: 1, seen: Object.fromEntries(this.seen), active: [...this.active.values()] };
    try {
      writeFileAtomicSync(this.path, JSON.stringify(data), { mode: 0o600 });
    } catch (err) {
      throw new StateStoreError(`cannot write DR state file ${this.path}: ${(err as Error).message}`, err);
    }
  }
}
