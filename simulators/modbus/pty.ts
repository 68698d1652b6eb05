// A pseudo-terminal pair from socat (Debian package socat): two linked serial-port-like devices,
// one for the gateway and one for a simulator, so Modbus RTU runs end to end without hardware.
// A pty needs no termios settings and paces nothing: bytes arrive as fast as they are written.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** The end the gateway opens (its serial.device). */
  readonly gateway: string;
  /** The end a simulator (or pymodbus) serves on. */
  readonly device: string;
  close(): Promise<void>;
}

/** Starts `socat` with two linked ptys under a new temporary folder; rejects when socat cannot run. */
export async function openPtyPair(name = 'line', socat = 'socat'): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'ems-pty-'));
  const gateway = join(dir, `${name}-gateway`);
  const device = join(dir, `${name}-device`);
  const child: ChildProcess = spawn(socat, [`pty,raw,echo=0,link=${gateway}`, `pty,raw,echo=0,link=${device}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start ${socat} (Debian package socat): ${err.message}`)));
    void exited.then(() => reject(new Error(`socat exited: ${stderr.trim() || 'no output'}`)));
  });
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([failed, (async () => {
      const end = Date.now() + 5000;
      while (!(existsSync(gateway) && existsSync(device))) {
        if (Date.now() > end) throw new Error(`socat made no ptys within 5 s: ${stderr.trim()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })()]);
  } catch (err) {
    await close();
    throw err;
  }
  failed.catch(() => undefined); // once running, its exit is seen by close()
  return { gateway, device, close };
}
