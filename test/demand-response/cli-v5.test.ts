// `ems-gateway dr keygen` and `dr send` against a real mosquitto speaking MQTT v5: the traceparent
// travels as a user property and the gateway's spans carry the EMS's trace id.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/dr.js';
import type { DrAck } from '../../src/demand-response/ack.js';
import { buildCommand, sendCommand, signedMessage } from '../../src/demand-response/sender.js';
import { parsePrivateKey } from '../../src/runtime/ed25519-keys.js';
import { systemClock } from '../../src/runtime/clock.js';
import { SPANS } from '../../src/telemetry/semconv.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { keygenBoth, writeCliSite } from './cli-fixture.js';
import { SITE_ID, loadControllerProfile, tempDir } from './fixtures.js';
import { Rig } from './harness.js';

describe('dr CLI and MQTT v5 trace propagation (mosquitto)', () => {
  let broker: Mosquitto;
  let rig: Rig;
  let dir: string;

  beforeAll(async () => {
    broker = await startMosquitto();
    // keygen first: the gateway is configured with the EMS's public half and its own private key.
    const t = tempDir();
    dir = t.dir;
    const dr = await keygenBoth(dir);
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2]], clock: systemClock, mqttUrl: broker.url, protocolVersion: 5, dr });
    writeCliSite(dir, broker.url, 'ems/{site}/dr/ack/{command_id}');
  });
  afterAll(async () => {
    await rig.stop();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keygen writes a private key only its owner can read', () => {
    expect(statSync(`${dir}/ems.key`).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${dir}/ems.key`, 'utf8')).toContain('BEGIN PRIVATE KEY');
  });

  it('dr send signs, publishes, prints the acks, and the gateway spans continue the EMS trace', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const lines: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true; });
    const errs: string[] = [];
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { errs.push(String(chunk)); return true; });
    let code: number;
    try {
      code = await run(['send', '--config', `${dir}/site.yaml`, '--key', `${dir}/ems.key`, '--zone', 'zone-a', '--reduction-mw', '0.1',
        '--duration', '15m', '--command-id', 'cli-1', '--traceparent', `00-${traceId}-1111111111111111-01`, '--timeout', '10s',
        '--gateway-key', `${dir}/gateway.pub`]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(errs.join('')).not.toContain('ems-gateway dr');
    const acks = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as DrAck);
    expect(acks.map((a) => a.status)).toEqual(['accepted', 'completed']);
    expect(acks[1]).toMatchObject({ command_id: 'cli-1', ack_count: 2, controller_count: 2, achieved_mw: 0.1 });
    expect(code).toBe(0);
    const spans = rig.spans.getFinishedSpans().filter((s) => s.name === SPANS.drSend || s.name === SPANS.drControllerCmd);
    expect(spans.length).toBe(3);
    for (const s of spans) expect(s.spanContext().traceId).toBe(traceId);
  });

  it('takes the traceparent from the MQTT v5 user property when the body has none', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const key = parsePrivateKey(readFileSync(`${dir}/ems.key`, 'utf8'));
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'restore', commandId: 'v5-restore' });
    expect(cmd.traceparent).toBeUndefined();
    const mqtt = rig.mqttConfig();
    if (!mqtt?.demand_response) throw new Error('no mqtt');
    const res = await sendCommand({
      mqtt: { ...mqtt, client_id: 'ems-v5' }, dr: mqtt.demand_response, siteId: SITE_ID, commandId: 'v5-restore',
      message: signedMessage(cmd, key), traceparent: `00-${traceId}-b7ad6b7169203331-01`, timeoutMs: 10_000,
    });
    expect(res.final).toMatchObject({ status: 'completed', command_type: 'restore', ack_count: 2 });
    const restoreSpans = rig.spans.getFinishedSpans().filter((s) => s.name === SPANS.drSend && s.attributes['ems.dr.command_id'] === 'v5-restore');
    expect(restoreSpans.length).toBeGreaterThan(0);
    for (const s of restoreSpans) expect(s.spanContext().traceId).toBe(traceId);
  });

  it('exits 3 on a rejected command and prints the reason', async () => {
    const lines: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true; });
    const errs: string[] = [];
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { errs.push(String(chunk)); return true; });
    let code: number;
    try {
      code = await run(['send', '--config', `${dir}/site.yaml`, '--key', `${dir}/ems.key`, '--zone', 'zone-nowhere', '--reduction-mw', '1', '--timeout', '10s',
        '--gateway-key', `${dir}/gateway.pub`]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(code).toBe(3);
    expect(JSON.parse(lines.join('').trim())).toMatchObject({ status: 'rejected', reason: 'unknown_zone' });
  });

  async function send(args: string[], file = `${dir}/site.yaml`): Promise<{ code: number; acks: DrAck[]; errs: string }> {
    const lines: string[] = [];
    const errs: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true; });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { errs.push(String(chunk)); return true; });
    try {
      const code = await run(['send', '--config', file, '--key', `${dir}/ems.key`, '--zone', 'zone-a', ...args]);
      const text = lines.join('').trim();
      return { code, acks: text === '' ? [] : text.split('\n').map((l) => JSON.parse(l) as DrAck), errs: errs.join('') };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('exits 4 when a controller does not acknowledge (completed, 1 of 2)', async () => {
    rig.servers[0]?.setFault(2, { exception: 4 });
    try {
      const r = await send(['--reduction-mw', '0.1', '--duration', '15m', '--command-id', 'cli-partial', '--timeout', '10s', '--gateway-key', `${dir}/gateway.pub`]);
      expect(r.acks.map((a) => a.status)).toEqual(['accepted', 'completed']);
      expect(r.acks[1]).toMatchObject({ command_id: 'cli-partial', ack_count: 1, controller_count: 2 });
      expect(r.code).toBe(4);
    } finally {
      rig.servers[0]?.setFault(2, undefined);
    }
  });

  it('exits 5 with "only replayed answers" when the id was used before: the copy is not the answer', async () => {
    const r = await send(['--reduction-mw', '0.1', '--duration', '15m', '--command-id', 'cli-1', '--timeout', '3s', '--gateway-key', `${dir}/gateway.pub`]);
    expect(r.acks).toEqual([]);
    expect(r.errs).toContain("dr send: ignored a message on the ack topic: a copy of this command was sent again (first answered accepted)");
    expect(r.errs).toContain("dr send: no final ack for cli-1 (only 'replayed' answers: command id cli-1 had been received before (first answered accepted); use a new id)");
    expect(r.code).toBe(5);
  });

  it('exits 5 when nothing answers, and warns that acks are unverified without --gateway-key', async () => {
    const file = `${dir}/site-nobody.yaml`;
    writeFileSync(file, readFileSync(`${dir}/site.yaml`, 'utf8').replace('command_topic: ems/{site}/dr/command', 'command_topic: ems/{site}/dr/nobody-listens'));
    const r = await send(['--reduction-mw', '0.1', '--command-id', 'cli-nobody', '--timeout', '1s'], file);
    expect(r.acks).toEqual([]);
    expect(r.errs).toContain('dr send: acks are not verified (no --gateway-key): anyone who may publish on the ack topic could answer\n');
    expect(r.errs).toContain('dr send: no final ack for cli-nobody (is the gateway running and subscribed?)\n');
    expect(r.code).toBe(5);
  });

  it('asks the v5 broker not to deliver packets far above the command size limit', async () => {
    const mqttMod = await import('mqtt');
    const pub = await mqttMod.default.connectAsync(broker.url, { protocolVersion: 5 });
    try {
      const before = rig.acks.length;
      await pub.publishAsync(`ems/${SITE_ID}/dr/command`, 'x'.repeat(200_000), { qos: 1 });
      await pub.publishAsync(`ems/${SITE_ID}/dr/command`, 'y'.repeat(20_000), { qos: 1 });
      await rig.waitFor(() => rig.acks.length > before, 'the oversized ack');
      await new Promise((r) => setTimeout(r, 200));
      // Only the 20 kB message arrived (and was refused); the 200 kB one was dropped by the broker.
      expect(rig.acks.slice(before).map((a) => (a.status === 'rejected' ? a.reason : a.status))).toEqual(['oversized']);
      expect(rig.service?.connected).toBe(true);
    } finally {
      await pub.endAsync();
    }
  });
});
