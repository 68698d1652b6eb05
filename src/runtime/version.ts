// The package version and root, found from both the sources (src/runtime, under vitest) and the
// build (dist/src/runtime): the nearest package.json named ems-gateway walking up from this module.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding the package's package.json (the repo root, or the installed package). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'ems-gateway') return dir;
      } catch {
        // An unreadable package.json is not ours: keep walking up.
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

export function gatewayVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
    if (typeof pkg.version === 'string') return pkg.version;
  } catch {
    // Fall through: a version is informative only.
  }
  return '0.0.0-unknown';
}
