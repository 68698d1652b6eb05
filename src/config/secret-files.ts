// `*_file` options: secrets and keys kept outside the site file, read relative to it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Node } from 'yaml';
import type { FileCtx } from './yaml-source.js';

const MAX_SECRET_BYTES = 64 * 1024;

export function resolveFrom(ctx: FileCtx, p: string): string {
  return isAbsolute(p) ? p : resolve(ctx.baseDir, p);
}

/** The trimmed text of a small file, or undefined after reporting why not. */
export function readSecretFile(ctx: FileCtx, owner: object, key: string, p: string): string | undefined {
  const abs = resolveFrom(ctx, p);
  try {
    const st = statSync(abs);
    if (!st.isFile()) { ctx.errorAt(owner, key, `${JSON.stringify(p)} is not a file`); return undefined; }
    if (st.size > MAX_SECRET_BYTES) { ctx.errorAt(owner, key, `${JSON.stringify(p)} is ${st.size} bytes: too large for a secret or key`); return undefined; }
    return readFileSync(abs, 'utf8').trim();
  } catch (err) {
    ctx.errorAt(owner, key, `cannot read ${JSON.stringify(p)} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`);
    return undefined;
  }
}

/** A path option (TLS files): made absolute and checked to exist now rather than at connect. */
export function checkPathOption(ctx: FileCtx, owner: Record<string, unknown>, key: string): void {
  const p = owner[key];
  if (typeof p !== 'string') return;
  const abs = resolveFrom(ctx, p);
  if (!existsSync(abs)) ctx.errorAt(owner, key, `file ${JSON.stringify(p)} does not exist`);
  owner[key] = abs;
}

/** `x` and `x_file` are two ways to give one value: at most one of them. */
export function exclusive(ctx: FileCtx, owner: Record<string, unknown>, a: string, b: string, _node?: Node): boolean {
  if (owner[a] !== undefined && owner[b] !== undefined) {
    ctx.errorAt(owner, b, `give either ${JSON.stringify(a)} or ${JSON.stringify(b)}, not both`);
    return false;
  }
  return true;
}
