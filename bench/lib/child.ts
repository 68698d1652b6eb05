// Process plumbing for the benchmark: every measured party (gateway, bare client) and the
// simulators run in their own process so process.cpuUsage() and RSS are each party's alone.
import { fork, type ChildProcess } from 'node:child_process';

export interface Msg {
  type: string;
  [k: string]: unknown;
}

export interface Child {
  proc: ChildProcess;
  /** Resolves with the next message of this type, or of one of these types (rejects if the child exits first or after timeoutMs). */
  next<T extends Msg>(type: string | readonly string[], timeoutMs: number): Promise<T>;
  send(msg: Msg): void;
  stop(): Promise<void>;
}

export function startChild(script: string, role: string, execArgv: string[] = []): Child {
  const proc = fork(script, [`--role=${role}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const inbox: Msg[] = [];
  const waiters: Array<() => void> = [];
  proc.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && 'type' in m) inbox.push(m as Msg);
    for (const w of waiters.splice(0)) w();
  });
  proc.on('exit', () => { for (const w of waiters.splice(0)) w(); });
  const next = <T extends Msg>(type: string | readonly string[], timeoutMs: number): Promise<T> => new Promise<T>((resolve, reject) => {
    const types = typeof type === 'string' ? [type] : type;
    const deadline = setTimeout(() => reject(new Error(`${role}: no '${types.join("' or '")}' within ${timeoutMs} ms`)), timeoutMs);
    const check = (): void => {
      const i = inbox.findIndex((m) => types.includes(m.type));
      if (i >= 0) {
        clearTimeout(deadline);
        resolve(inbox.splice(i, 1)[0] as T);
      } else if (proc.exitCode !== null || proc.signalCode !== null) {
        clearTimeout(deadline);
        reject(new Error(`${role} exited (${String(proc.exitCode ?? proc.signalCode)}) before '${types.join("' or '")}'`));
      } else {
        waiters.push(check);
      }
    };
    check();
  });
  return {
    proc,
    next,
    send: (msg) => { if (proc.connected) proc.send(msg); },
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => { clearTimeout(t); resolve(); });
      if (proc.connected) proc.send({ type: 'stop' });
      else proc.kill('SIGTERM');
    }),
  };
}

/** In a child: the parent's messages. */
export function onParent(type: string, fn: (m: Msg) => void): void {
  process.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as Msg).type === type) fn(m as Msg);
  });
}

export function toParent(msg: Msg): void {
  process.send?.(msg);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? 0;
}

/** CPU % of one core, peak RSS and peak V8 heap (used) over a window, sampled once a second. */
export class ResourceMeter {
  private cpu0 = process.cpuUsage();
  private t0 = performance.now();
  private peakRss = 0;
  private peakHeap = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  start(): void {
    this.cpu0 = process.cpuUsage();
    this.t0 = performance.now();
    this.peakRss = 0;
    this.peakHeap = 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  private sample(): void {
    const m = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakHeap = Math.max(this.peakHeap, m.heapUsed);
  }

  stop(): { cpuPct: number; rssMb: number; heapMb: number; elapsedS: number } {
    if (this.timer !== undefined) clearInterval(this.timer);
    const d = process.cpuUsage(this.cpu0);
    const elapsedMs = performance.now() - this.t0;
    this.sample();
    return { cpuPct: ((d.user + d.system) / 1000 / elapsedMs) * 100, rssMb: this.peakRss / 2 ** 20, heapMb: this.peakHeap / 2 ** 20, elapsedS: elapsedMs / 1000 };
  }
}
