// docs/demand-response.md: the OpenSSL signing recipe produces a message the gateway accepts, so
// the documented signed payload is the one the code verifies.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { admit } from '../../src/demand-response/intake.js';
import { generateKeyPair } from '../../src/demand-response/signing.js';
import { parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import { DrStateStore } from '../../src/demand-response/state-store.js';
import { SITE_ID, tempDir } from './fixtures.js';

const doc = readFileSync(new URL('../../docs/demand-response.md', import.meta.url), 'utf8');

function taggedBlock(tag: string): string {
  const at = doc.indexOf(`<!-- tested: ${tag} -->`);
  const m = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  if (at < 0 || !m?.[1]) throw new Error(`no tested block ${tag}`);
  return m[1];
}

describe('docs/demand-response.md', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('the OpenSSL recipe signs a command the gateway accepts', () => {
    const pair = generateKeyPair();
    writeFileSync(`${tmp.dir}/ems.key`, pair.privatePem, { mode: 0o600 });
    const now = Date.now();
    execFileSync('bash', ['-euo', 'pipefail', '-c', taggedBlock('sign-openssl')], {
      cwd: tmp.dir, env: { ...process.env, ISSUED: new Date(now).toISOString(), EXPIRES: new Date(now + 60_000).toISOString() },
    });
    const store = new DrStateStore(`${tmp.dir}/state.json`);
    const accepted = admit({ payload: readFileSync(`${tmp.dir}/message.json`), retained: false }, {
      siteId: SITE_ID, keys: [parsePublicKey(pair.publicPem)], zones: new Set(['zone-a']), skewMs: 30_000, store, now,
    });
    expect(accepted).toMatchObject({ ok: true, command: { command_id: 'doc-1', type: 'curtail', reduction_mw: 0.1 } });
  });

  it('lists every rejection reason the code can give', () => {
    const src = readFileSync(new URL('../../src/demand-response/command.ts', import.meta.url), 'utf8');
    const union = /export type RejectReason =([\s\S]*?);/.exec(src)?.[1] ?? '';
    const reasons = [...union.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
    expect(reasons.length).toBeGreaterThan(15);
    for (const r of reasons) expect(doc).toContain(`\`${r}\``);
  });
});
