// The EMS side of signed acks: which messages on the ack topic answer the command one sent.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSiteFromString } from '../../src/config/load.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { ackMessage, readAck, type AcceptedAck, type DrAck } from '../../src/demand-response/ack.js';
import { AckTracker } from '../../src/demand-response/sender.js';
import { ACK_SIGNING_PREFIX, SIGNING_PREFIX, generateKeyPair, signAck, signCommand } from '../../src/demand-response/signing.js';
import { parsePrivateKey, parsePublicKey } from '../../src/runtime/ed25519-keys.js';
import { SITE_ID } from './fixtures.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const gw = generateKeyPair();
const gwKey = parsePrivateKey(gw.privatePem);
const gwPub = parsePublicKey(gw.publicPem);
const other = parsePrivateKey(generateKeyPair().privatePem);

const at = '2026-06-01T12:00:00.000Z';
const base = { v: 1 as const, site_id: SITE_ID, at };
const accepted = (id: string): AcceptedAck => ({ ...base, command_id: id, status: 'accepted', command_type: 'curtail', zone: 'zone-a', dry_run: false, requested_mw: 0.1, planned_mw: 0.1, partial: false, controller_count: 1 });
const completed = (id: string): DrAck => ({ ...accepted(id), status: 'completed', achieved_mw: 0.1, ack_count: 1, ack_rate: 1, controllers: [] });
const rejected = (id: string | null, reason: 'replayed' | 'bad_signature' | 'expired' | 'invalid_envelope', authenticated: boolean): DrAck => ({ ...base, command_id: id, status: 'rejected', reason, detail: 'x', authenticated });

function feed(tracker: AckTracker, msgs: Array<string | Buffer>): string[] {
  return msgs.map((m) => {
    const r = tracker.take(m);
    return 'taken' in r ? `taken ${r.taken.status}` : `ignored: ${r.ignored}`;
  });
}

describe('signed acks', () => {
  it('signs the prefix plus the exact ack text, with a prefix no command can share', async () => {
    const { verify } = await import('node:crypto');
    const msg = JSON.parse(ackMessage(accepted('c1'), gwKey)) as { ack: string; signature: string };
    expect(verify(null, Buffer.from(`ems-dr-ack-v1\n${msg.ack}`), gwPub, Buffer.from(msg.signature, 'base64'))).toBe(true);
    expect(ACK_SIGNING_PREFIX).not.toBe(SIGNING_PREFIX);
    // An ack signature over a command's bytes is not a command signature, and vice versa.
    expect(signAck('{}', gwKey)).not.toBe(signCommand('{}', gwKey));
    expect(readAck(ackMessage(accepted('c1'), gwKey), [gwPub])).toMatchObject({ ok: true, signed: true });
    expect(readAck(ackMessage(accepted('c1'), undefined), [gwPub])).toMatchObject({ ok: false, problem: 'unsigned' });
    expect(readAck(ackMessage(accepted('c1'), other), [gwPub])).toMatchObject({ ok: false, problem: /does not verify/ });
  });

  it('takes accepted then completed, ignoring replays, unauthenticated rejections, other ids and forgeries in between', () => {
    const t = new AckTracker('c1', SITE_ID, [gwPub]);
    const forgedText = JSON.stringify(rejected('c1', 'expired', true));
    expect(feed(t, [
      ackMessage(accepted('c1'), gwKey),
      ackMessage(rejected('c1', 'replayed', true), gwKey),       // someone replayed the command
      ackMessage(rejected(null, 'invalid_envelope', false), gwKey), // someone published {} (single ack topic)
      ackMessage(rejected('c1', 'bad_signature', false), gwKey), // an unsigned message naming c1
      ackMessage(completed('c2'), gwKey),
      JSON.stringify({ ack: forgedText }),                         // a third party's unsigned "rejected"
      JSON.stringify({ ack: forgedText, signature: signAck(forgedText, other) }),
      `{"ack":${JSON.stringify(JSON.stringify(completed('c1')))},"ack":"{}","signature":"AAAA"}`,
      ackMessage(rejected('c1', 'expired', true), gwKey),        // out of order after accepted
      ackMessage(completed('c1'), gwKey),
      ackMessage(completed('c1'), gwKey),
    ])).toEqual([
      'taken accepted',
      'ignored: a copy of this command was sent again (first answered unknown)',
      'ignored: for another command id',
      'ignored: a rejection of an unauthenticated message naming this id (bad_signature)',
      'ignored: for another command id',
      'ignored: unsigned',
      'ignored: signature does not verify with the gateway key',
      'ignored: key "ack" appears more than once',
      'ignored: a rejection after the command was accepted (out of order)',
      'taken completed',
      'ignored: after the final answer',
    ]);
    expect(t.final).toMatchObject({ status: 'completed' });
    expect(t.replays).toHaveLength(1);
  });

  it('a replayed answer arriving before accepted does not end the wait; the authenticated rejection of the command does', () => {
    const t = new AckTracker('c1', SITE_ID, [gwPub]);
    expect(feed(t, [ackMessage(rejected('c1', 'replayed', true), gwKey), ackMessage(completed('c1'), gwKey), ackMessage(rejected('c1', 'expired', true), gwKey)]))
      .toEqual(['ignored: a copy of this command was sent again (first answered unknown)', 'ignored: completed before accepted (out of order)', 'taken rejected']);
    expect(t.done).toBe(true);
  });

  it('an ended or reasserted ack after accepted is named as such, not as arriving before accepted', () => {
    const t = new AckTracker('c1', SITE_ID, [gwPub]);
    const ended: DrAck = { ...(completed('c1') as DrAck & { status: 'completed' }), status: 'ended', reason: 'duration_ended' } as DrAck;
    const reasserted: DrAck = { ...(completed('c1') as DrAck & { status: 'completed' }), status: 'reasserted' } as DrAck;
    expect(feed(t, [ackMessage(ended, gwKey), ackMessage(accepted('c1'), gwKey), ackMessage(ended, gwKey), ackMessage(reasserted, gwKey), ackMessage(completed('c1'), gwKey)])).toEqual([
      'ignored: ended before accepted (out of order)',
      'taken accepted',
      'ignored: ended after accepted, before completed (not the answer dr send waits for)',
      'ignored: reasserted after accepted, before completed (not the answer dr send waits for)',
      'taken completed',
    ]);
  });

  it('without the gateway key it reads unsigned acks (and cannot tell forgeries)', () => {
    const t = new AckTracker('c1', SITE_ID, undefined);
    expect(feed(t, [ackMessage(accepted('c1'), undefined), ackMessage(completed('c1'), gwKey)])).toEqual(['taken accepted', 'taken completed']);
  });
});

describe('site file: gateway_key_file', () => {
  const site = (keyFile: string): string => [
    'version: 1', 'site: { id: s1, region: r1, nominal_frequency_hz: 50 }', 'devices:',
    '  - { id: lc1, profile: generic-load-controller, host: 127.0.0.1, unit_id: 1, zone: zone-a, capacity_kw: 100 }',
    'mqtt:', '  url: mqtt://127.0.0.1:1883', '  demand_response:', '    command_topic: c', '    ack_topic: a',
    '    public_key_file: keys/demo-dr.pub', `    gateway_key_file: ${keyFile}`, '',
  ].join('\n');
  const file = join(packageRoot(), 'config', 'gateway-key-test.yaml');

  it('reads the gateway private key, and refuses a public key in its place (file:line:col)', async () => {
    const { site: ok } = await loadSiteFromString(site('keys/demo-gateway.key'), { profileChecks: modbusProfileChecks, file, env: {} });
    expect(ok.mqtt?.demand_response?.gateway_key).toContain('BEGIN PRIVATE KEY');
    await expect(loadSiteFromString(site('keys/demo-gateway.pub'), { profileChecks: modbusProfileChecks, file, env: {} })).rejects.toThrow(/gateway-key-test\.yaml:11:\d+ mqtt\.demand_response\.gateway_key_file: gateway_key_file: not a PEM private key/);
  });
});
