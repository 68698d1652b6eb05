// SIGTERM (systemd, containers) and SIGINT (Ctrl-C) start one graceful stop. A second signal while
// stopping means the operator has run out of patience: exit at once, non-zero, without waiting.
// The same signal again within DUPLICATE_WINDOW_MS is the first one delivered twice, not a second
// Ctrl-C: a terminal sends SIGINT to every process of the foreground group, and `npm run` forwards
// its own copy to the script it runs, so `npm run demo` gets two SIGINTs for one key press.

/** A repeat of the first signal this soon after it is a duplicate delivery (ignored). */
export const DUPLICATE_WINDOW_MS = 500;

export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

interface SignalHandlingOptions {
  /** Called once, on the first signal. */
  onSignal: (signal: ShutdownSignal) => void;
  /** Called on a second signal; default exits the process with 130. */
  onSecondSignal?: (signal: ShutdownSignal) => void;
  /** The process to listen on (tests pass an EventEmitter). */
  proc?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Monotonic milliseconds (tests pass their own). */
  now?: () => number;
}

/** Installs the handlers; returns a function that removes them. */
export function handleShutdownSignals(opts: SignalHandlingOptions): () => void {
  const proc = opts.proc ?? process;
  const now = opts.now ?? ((): number => performance.now());
  let first: { signal: ShutdownSignal; atMs: number } | undefined;
  const handler = (signal: ShutdownSignal): void => {
    if (first === undefined) {
      first = { signal, atMs: now() };
      opts.onSignal(signal);
      return;
    }
    if (signal === first.signal && now() - first.atMs < DUPLICATE_WINDOW_MS) return;
    if (opts.onSecondSignal) opts.onSecondSignal(signal);
    else process.exit(130);
  };
  const term = (): void => handler('SIGTERM');
  const int = (): void => handler('SIGINT');
  proc.on('SIGTERM', term);
  proc.on('SIGINT', int);
  return () => {
    proc.off('SIGTERM', term);
    proc.off('SIGINT', int);
  };
}
