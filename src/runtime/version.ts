// The package version, found from both the sources (src/runtime, under vitest) and the build
// (dist/src/runtime): the first package.json named ems-gateway walking up from this module.
import { readFileSync } from 'node:fs';

export function gatewayVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ems-gateway' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this level: try the next one up.
    }
  }
  return '0.0.0-unknown';
}
