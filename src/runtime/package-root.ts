// Where the package's own folders are (devices/, schemas/, config/), from the sources (src/, under
// vitest) and the build (dist/src/) alike: the nearest package.json named ems-gateway walking up
// from this module. The name check keeps an unrelated package.json on the way (a build folder's,
// a parent project's) from being taken for ours.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'ems-gateway';

/** The folder holding the package's package.json (the repo root, or the installed package). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // An unreadable package.json is not ours: keep walking up.
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

/** A path inside the package (e.g. packagePath('devices')). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
