// Debian's chromium, headless, for the status page tests (the browser must come from Debian, not a download).
import { execFile } from 'node:child_process';
import { hasPeer } from '../peers.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = (): boolean => hasPeer('chromium');

/** Runs chromium with the flags that keep it offline and quiet; resolves with its stdout (e.g. --dump-dom). */
export function chromium(args: string[], userDataDir: string): Promise<string> {
  const base = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${userDataDir}`];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, [...base, ...args], { timeout: 25_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}
