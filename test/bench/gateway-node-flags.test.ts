// The V8 flags bench:modbus gives its gateway are the ones the gateway is deployed with: the
// systemd unit, the Containerfile and docs/operations.md carry exactly GATEWAY_NODE_FLAGS.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from '../../bench/lib/gateway-node-flags.js';

const read = (rel: string): string => readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');
const flags = GATEWAY_NODE_FLAGS.join(' ');

describe('gateway node flags', () => {
  it('are a non-empty list of V8 heap flags', () => {
    expect(GATEWAY_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const f of GATEWAY_NODE_FLAGS) expect(f).toMatch(/^--((max-semi-space-size|max-old-space-size|heap-growing-percent)=\d+|expose-gc)$/);
  });

  it('are on the systemd unit\'s node command line', () => {
    const exec = read('deploy/ems-gateway.service').split('\n').find((l) => l.startsWith('ExecStart='));
    expect(exec).toBe(`ExecStart=/usr/bin/node ${flags} /opt/ems-gateway/dist/src/cli/main.js run --config /etc/ems-gateway/site.yaml`);
  });

  it('are in the Containerfile\'s entrypoint', () => {
    const entry = read('deploy/Containerfile').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
    expect(entry).toBe(`ENTRYPOINT ${JSON.stringify(['node', ...GATEWAY_NODE_FLAGS, '/opt/ems-gateway/dist/src/cli/main.js'])}`.replace(/","/g, '", "'));
  });

  it('are what docs/operations.md tells to pass', () => {
    const doc = read('docs/operations.md');
    expect(doc).toContain(`node ${flags} /opt/ems-gateway/dist/src/cli/main.js run`);
  });
});
