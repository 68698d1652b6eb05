// Runs the built CLI (dist/src/cli/main.js) as a child process, the way an operator runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout matches, or rejects after timeoutMs with what was printed. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited(): Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); for (const w of watchers) w(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  // 'close', not 'exit': by then every byte of stdout and stderr has been read.
  const exit = new Promise<number | string>((resolve) => child.once('close', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, timeoutMs) => new Promise((resolve, reject) => {
      const check = (): void => {
        const m = out.match(re);
        if (m) { done(); resolve(m); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no ${String(re)} within ${timeoutMs} ms; stdout:\n${out.slice(-3000)}\nstderr:\n${err.slice(-3000)}`)); }, timeoutMs);
      const onExit = (): void => { done(); reject(new Error(`process exited before ${String(re)}; stdout:\n${out.slice(-3000)}\nstderr:\n${err.slice(-3000)}`)); };
      const done = (): void => { clearTimeout(timer); watchers.delete(check); child.off('exit', onExit); };
      watchers.add(check);
      child.once('exit', onExit);
      check();
    }),
    exited: () => exit,
    kill: (signal) => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); },
  };
}
