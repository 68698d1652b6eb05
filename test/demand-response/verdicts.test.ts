// Every authenticated command id is recorded with its verdict and never runs later, whatever the
// verdict; copies of an answered command get no second, contradicting answer; what anyone can send
// (garbage, replays) is answered at most once per second with a count of the rest. Real Modbus
// simulators behind the gateway's endpoints; each case asserts the write log did not move.
import { afterEach, describe, expect, it } from 'vitest';
import type { DrAck, RejectedAck } from '../../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../../src/demand-response/sender.js';
import { signCommand } from '../../src/demand-response/signing.js';
import { systemClock } from '../../src/runtime/clock.js';
import { METRICS, SPANS } from '../../src/telemetry/semconv.js';
import { KEYS, SITE_ID, TestClock, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

const rejected = (acks: DrAck[]): RejectedAck[] => acks.filter((a): a is RejectedAck => a.status === 'rejected');

function command(id: string, nowMs: number, over: { validForMs?: number } = {}): Buffer {
  return Buffer.from(signedMessage(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.01, durationMinutes: 15, commandId: id, nowMs, ...over }), KEYS.privateKey));
}

describe('DR verdicts', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('a not_yet_valid command is remembered: the same bytes inside its window never run, even after a restart', async () => {
    const clock = new TestClock();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock });
    const early = command('nyv-1', clock.now() + 120_000);
    await rig.service?.handleMessage(early, { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'nyv-1', status: 'rejected', reason: 'not_yet_valid', authenticated: true });
    await rig.restartGateway();
    clock.advance(120_000); // now inside the command's window
    await rig.service?.handleMessage(early, { retained: false });
    await rig.service?.idle();
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'nyv-1', status: 'rejected', reason: 'replayed', first_verdict: 'not_yet_valid' });
    expect(rig.writes()).toBe(0);
  });

  it.each([
    ['retained', { retained: true }],
    ['QoS 0', { retained: false, qos: 0 as const }],
  ])('a %s command is refused and recorded: re-sent properly it still never runs', async (_name, meta) => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock });
    const msg = command('once-1', Date.now());
    await rig.service?.handleMessage(msg, meta);
    const first = rig.acks.at(-1);
    expect(first).toMatchObject({ command_id: 'once-1', status: 'rejected', authenticated: true });
    await rig.service?.handleMessage(msg, { retained: false, qos: 1 });
    await rig.service?.idle();
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'once-1', reason: 'replayed', first_verdict: (first as RejectedAck).reason });
    expect(rig.writes()).toBe(0);
  });

  it('answers a command once: the retained copy of an answered command gets no second answer', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock });
    const msg = command('copy-1', Date.now());
    // The copy a persistent session queued (retain flag kept by retain-as-published), then the retained copy on re-subscribe.
    await rig.service?.handleMessage(msg, { retained: true });
    await rig.service?.handleMessage(msg, { retained: true });
    expect(rig.acks.map((a) => [a.command_id, a.status, (a as RejectedAck).reason])).toEqual([['copy-1', 'rejected', 'retained']]);
    // A command that ran (a delivery that could not show the flag), then its retained copy: its acks stand alone.
    const ran = command('copy-2', Date.now());
    await rig.service?.handleMessage(ran, { retained: false });
    await rig.service?.idle();
    const writes = rig.writes();
    await rig.service?.handleMessage(ran, { retained: true });
    await rig.service?.idle();
    expect(rig.acks.filter((a) => a.command_id === 'copy-2').map((a) => a.status)).toEqual(['accepted', 'completed']);
    expect(rig.writes()).toBe(writes);
  });

  it('a rejection carries the command id whenever one can be read, and says whether it was authenticated', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock, noiseAnswerIntervalMs: 0 });
    const text = JSON.stringify(buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: -1, durationMinutes: 15, commandId: 'id-neg' }));
    await rig.service?.handleMessage(Buffer.from(JSON.stringify({ command: text, signature: signCommand(text, KEYS.privateKey) })), { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'id-neg', reason: 'invalid_reduction', authenticated: true });
    await rig.service?.handleMessage(Buffer.from(JSON.stringify({ command: text, signature: signCommand(text, KEYS.otherPrivateKey) })), { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'id-neg', reason: 'bad_signature', authenticated: false });
    await rig.service?.handleMessage(Buffer.from(`{"command":${JSON.stringify(text)},"signature":"AAAA","signature":"BBBB"}`), { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: 'id-neg', reason: 'duplicate_key', authenticated: false });
    // Two "command" keys: which id would be a guess.
    await rig.service?.handleMessage(Buffer.from(`{"command":${JSON.stringify(text)},"command":"{}","signature":"AAAA"}`), { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: null, reason: 'duplicate_key', authenticated: false });
    await rig.service?.handleMessage(Buffer.from('{}'), { retained: false });
    expect(rig.acks.at(-1)).toMatchObject({ command_id: null, reason: 'invalid_envelope', authenticated: false });
    expect(rig.writes()).toBe(0);
  });

  it('500 two-byte messages earn two answers (one, then the aggregate with the count) and one error span; a genuine command is still answered at once', async () => {
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1]], clock: systemClock });
    for (let i = 0; i < 500; i++) await rig.service?.handleMessage(Buffer.from('{}'), { retained: false });
    const genuine = command('after-flood', Date.now());
    await rig.service?.handleMessage(genuine, { retained: false });
    await rig.service?.idle();
    expect(rig.acks.filter((a) => a.command_id === 'after-flood').map((a) => a.status)).toEqual(['accepted', 'completed']);
    await rig.waitFor(() => rejected(rig?.acks ?? []).some((a) => a.suppressed !== undefined), 'the aggregate answer', 5000);
    const answers = rejected(rig.acks);
    expect(answers).toHaveLength(2);
    expect(answers[1]).toMatchObject({ command_id: null, authenticated: false, reason: 'invalid_envelope', suppressed: 499, suppressed_reasons: { invalid_envelope: 499 } });
    const suppressed = await rig.counter(METRICS.drAcksSuppressed);
    expect(suppressed.reduce((n, p) => n + p.value, 0)).toBe(499);
    const counted = await rig.counter(METRICS.drCommands);
    expect(counted.find((p) => p.attrs['result'] === 'invalid_envelope')?.value).toBe(500);
    const errorSpans = rig.spans.getFinishedSpans().filter((s) => s.name === SPANS.drSend && s.attributes['ems.dr.reject_reason'] !== undefined);
    expect(errorSpans).toHaveLength(1);
    expect(rig.writes()).toBe(1);
  });
});
