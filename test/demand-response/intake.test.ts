import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RejectReason } from '../../src/demand-response/command.js';
import { admit, type Admission, type IntakeContext } from '../../src/demand-response/intake.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { SIGNING_PREFIX, signCommand, verifyCommand } from '../../src/demand-response/signing.js';
import { parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import { DrStateStore } from '../../src/demand-response/state-store.js';
import { HOSTILE } from './hostile-commands.js';
import { KEYS, SITE_ID, tempDir } from './fixtures.js';

function reasonOf(fn: () => Admission): RejectReason | 'accepted' {
  const a = fn();
  return a.ok ? 'accepted' : a.rejection.reason;
}

describe('DR intake gate', () => {
  let tmp: ReturnType<typeof tempDir>;
  let ctx: IntakeContext;
  const now = Date.parse('2026-06-01T12:00:00Z');
  const original = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.05, durationMinutes: 15, nowMs: now, commandId: 'orig-1' }), KEYS.privateKey);

  beforeEach(() => {
    tmp = tempDir();
    const store = new DrStateStore(`${tmp.dir}/dr-state.json`);
    store.load();
    ctx = { siteId: SITE_ID, keys: [KEYS.publicKey], zones: new Set(['zone-a']), skewMs: 30_000, store, now };
    expect(admit({ payload: Buffer.from(original), retained: false }, ctx)).toMatchObject({ ok: true, command: { command_id: 'orig-1' } });
  });
  afterEach(() => tmp.cleanup());

  it.each(HOSTILE.map((h) => [h.name, h] as const))('rejects %s', (_name, h) => {
    const msg = h.message(now, original);
    expect(reasonOf(() => admit({ payload: msg.payload, retained: msg.retained ?? false, qos: msg.qos ?? 1 }, ctx))).toBe(h.reason);
  });

  it('has at least 15 hostile cases', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(15);
  });

  it('remembers command ids across a restart (state file) and forgets them once they could not be valid', () => {
    const reopened = new DrStateStore(`${tmp.dir}/dr-state.json`);
    reopened.load();
    expect(reasonOf(() => admit({ payload: Buffer.from(original), retained: false }, { ...ctx, store: reopened }))).toBe('replayed');
    // After expiry + skew the id may be forgotten: the command is then refused as expired anyway.
    const later = now + 61_000 + 30_000;
    expect(reopened.verdictOf('orig-1', later)).toBeUndefined();
    expect(reasonOf(() => admit({ payload: Buffer.from(original), retained: false }, { ...ctx, store: reopened, now: later }))).toBe('expired');
  });

  it('accepts within the clock skew on both sides', () => {
    const early = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 1, durationMinutes: 1, nowMs: now + 20_000 }), KEYS.privateKey);
    expect(reasonOf(() => admit({ payload: Buffer.from(early), retained: false }, ctx))).toBe('accepted');
    const late = signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 1, durationMinutes: 1, nowMs: now - 80_000 }), KEYS.privateKey);
    expect(reasonOf(() => admit({ payload: Buffer.from(late), retained: false }, ctx))).toBe('accepted');
  });

  it('refuses a corrupt state file instead of silently forgetting seen ids', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${tmp.dir}/bad.json`, '{"version":1,"seen":');
    expect(() => new DrStateStore(`${tmp.dir}/bad.json`).load()).toThrow(/corrupt/);
  });
});

describe('DR signatures', () => {
  it('signs the prefix plus the exact command text (documented canonical payload)', async () => {
    const { verify } = await import('node:crypto');
    const text = '{"v":1}';
    const sig = signCommand(text, KEYS.privateKey);
    expect(verify(null, Buffer.from(`ems-dr-cmd-v1\n${text}`), KEYS.publicKey, Buffer.from(sig, 'base64'))).toBe(true);
    expect(SIGNING_PREFIX).toBe('ems-dr-cmd-v1\n');
    expect(verifyCommand(text, sig, [parsePublicKey(KEYS.publicPem)])).toBe(true);
    expect(verifyCommand(`${text} `, sig, [KEYS.publicKey])).toBe(false);
    expect(verifyCommand(text, 'not base64!', [KEYS.publicKey])).toBe(false);
  });

  it('refuses keys that are not Ed25519', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => parsePublicKey(rsa)).toThrow(/expected ed25519/);
    expect(() => parsePublicKey('AAAA')).toThrow(/32 bytes/);
  });
});
