// SIGTERM (systemd, containers) and SIGINT (Ctrl-C) start one graceful stop. A second signal while
// stopping means the operator has run out of patience: exit at once, non-zero, without waiting.

export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

export interface SignalHandlingOptions {
  /** Called once, on the first signal. */
  onSignal: (signal: ShutdownSignal) => void;
  /** Called on a second signal; default exits the process with 130. */
  onSecondSignal?: (signal: ShutdownSignal) => void;
  /** The process to listen on (tests pass an EventEmitter). */
  proc?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** Installs the handlers; returns a function that removes them. */
export function handleShutdownSignals(opts: SignalHandlingOptions): () => void {
  const proc = opts.proc ?? process;
  let count = 0;
  const handler = (signal: ShutdownSignal): void => {
    count += 1;
    if (count === 1) {
      opts.onSignal(signal);
      return;
    }
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
