// Curtailment end to end over the embedded aedes broker (MQTT 3.1.1: traceparent in the body):
// signed command -> plan -> Modbus writes -> read-back -> acks, spans and metrics.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResultAck } from '../../src/demand-response/ack.js';
import { buildCommand, sendCommand, signedMessage } from '../../src/demand-response/sender.js';
import { systemClock } from '../../src/runtime/clock.js';
import { SPANS, SPAN_ATTRS } from '../../src/telemetry/semconv.js';
import { drSpansPerController } from '../../src/config/dr-targets.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { KEYS, SITE_ID, loadControllerProfile } from './fixtures.js';
import { Rig } from './harness.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('DR curtailment over MQTT 3.1.1 (aedes)', () => {
  let broker: EmbeddedBroker;
  let rig: Rig;

  beforeEach(async () => {
    broker = await startEmbeddedBroker();
    rig = await Rig.start({ profile: loadControllerProfile(), servers: [[1, 2, 3]], clock: systemClock, mqttUrl: broker.url });
  });
  afterEach(async () => {
    await rig.stop();
    await broker.close();
  });

  async function send(reductionMw: number, commandId: string): Promise<ResultAck> {
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw, durationMinutes: 15, commandId, traceparent: TRACEPARENT });
    const mqtt = rig.mqttConfig();
    if (!mqtt?.demand_response) throw new Error('no mqtt');
    const res = await sendCommand({ mqtt: { ...mqtt, client_id: 'ems' }, dr: mqtt.demand_response, siteId: SITE_ID, commandId, message: signedMessage(cmd, KEYS.privateKey), timeoutMs: 10_000 });
    expect(res.acks[0]?.status).toBe('accepted');
    expect(res.final?.status).toBe('completed');
    return res.final as ResultAck;
  }

  it('lowers the simulated load, acknowledges after read-back, and traces under the EMS trace id', async () => {
    const ack = await send(0.15, 'cmd-1');
    expect(ack).toMatchObject({ controller_count: 3, ack_count: 3, ack_rate: 1, requested_mw: 0.15, achieved_mw: 0.15, partial: false });
    expect(ack.controllers.map((c) => [c.controller_id, c.outcome, c.requested, c.read_back])).toEqual([
      ['lc1', 'acknowledged', 50, 50], ['lc2', 'acknowledged', 50, 50], ['lc3', 'acknowledged', 50, 50],
    ]);
    for (const id of ['lc1', 'lc2', 'lc3']) expect(rig.unit(id).numberOf('load_kw')).toBe(50);
    // One FC6 write per controller of raw 500 (50 kW at scale 0.1) to register 10, nothing else.
    expect(rig.servers[0]?.writes.map((w) => [w.unitId, w.address, [...w.values]])).toEqual(expect.arrayContaining([[1, 10, [500]], [2, 10, [500]], [3, 10, [500]]]));
    expect(rig.writes()).toBe(3);

    const spans = rig.spans.getFinishedSpans();
    const send_ = spans.find((s) => s.name === SPANS.drSend);
    expect(send_?.spanContext().traceId).toBe(TRACE_ID);
    expect(send_?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(send_?.attributes).toMatchObject({
      [SPAN_ATTRS.drCommandType]: 'curtail', [SPAN_ATTRS.drTargetZone]: 'zone-a', [SPAN_ATTRS.drReductionMw]: 0.15,
      [SPAN_ATTRS.drDurationMinutes]: 15, [SPAN_ATTRS.drControllerCount]: 3, [SPAN_ATTRS.drAckCount]: 3, [SPAN_ATTRS.drAckRate]: 1,
    });
    const cmds = spans.filter((s) => s.name === SPANS.drControllerCmd);
    expect(cmds).toHaveLength(3);
    for (const c of cmds) {
      expect(c.spanContext().traceId).toBe(TRACE_ID);
      expect(c.parentSpanContext?.spanId).toBe(send_?.spanContext().spanId);
      expect(c.attributes[SPAN_ATTRS.cmdAcknowledged]).toBe(true);
      expect(c.attributes[SPAN_ATTRS.controllerType]).toBe('load_controller');
      expect(typeof c.attributes[SPAN_ATTRS.cmdLatencyMs]).toBe('number');
      const children = spans.filter((s) => s.parentSpanContext?.spanId === c.spanContext().spanId).map((s) => s.name).sort();
      expect(children).toEqual([SPANS.drModbusWrite, SPANS.drReadBack]);
    }
    // validate's span queue warning counts on this (drSpansPerController, src/config/dr-targets.ts):
    // no enable control, no revert timer: three spans per controller, and the send span.
    expect(drSpansPerController(loadControllerProfile())).toBe(3);
    expect(spans).toHaveLength(1 + drSpansPerController(loadControllerProfile()) * cmds.length);
    expect(await rig.counter()).toEqual([{ attrs: { outcome: 'acknowledged', zone: 'zone-a' }, value: 3 }]);
  });

  it('reports a refusing controller and one that does not take the value as not acknowledged', async () => {
    rig.servers[0]?.setFault(2, { exception: 4 });
    // Unit 3 answers the write but ignores it: its register keeps the old value.
    const ignoring = rig.unit('lc3');
    ignoring.write = () => 0;
    const ack = await send(0.15, 'cmd-2');
    expect(ack.controllers.map((c) => [c.controller_id, c.outcome, c.error])).toEqual([
      ['lc1', 'acknowledged', undefined], ['lc2', 'write_failed', 'exception_device_failure'], ['lc3', 'not_acknowledged', undefined],
    ]);
    expect(ack.controllers[2]?.read_back).toBe(500);
    expect(ack).toMatchObject({ ack_count: 1, controller_count: 3, achieved_mw: 0.05 });
    expect(ack.ack_rate).toBeCloseTo(1 / 3, 3);
    expect(ignoring.numberOf('load_kw')).toBe(100);
    const byOutcome = Object.fromEntries((await rig.counter()).map((p) => [p.attrs['outcome'], p.value]));
    expect(byOutcome).toEqual({ acknowledged: 1, write_failed: 1, not_acknowledged: 1 });
    const send_ = rig.spans.getFinishedSpans().find((s) => s.name === SPANS.drSend);
    expect(send_?.attributes[SPAN_ATTRS.drAckRate]).toBeCloseTo(1 / 3, 3);
    expect(send_?.status.code).toBe(2);
  });

  it('restores on a restore command and verifies it', async () => {
    await send(0.15, 'cmd-3');
    expect(rig.unit('lc1').numberOf('load_kw')).toBe(50);
    const restore = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'restore', commandId: 'cmd-3-restore' });
    const mqtt = rig.mqttConfig();
    if (!mqtt?.demand_response) throw new Error('no mqtt');
    const res = await sendCommand({ mqtt: { ...mqtt, client_id: 'ems' }, dr: mqtt.demand_response, siteId: SITE_ID, commandId: 'cmd-3-restore', message: signedMessage(restore, KEYS.privateKey), timeoutMs: 10_000 });
    const final = res.final as ResultAck;
    expect(final).toMatchObject({ status: 'completed', command_type: 'restore', ack_count: 3, ended_command_ids: ['cmd-3'] });
    for (const id of ['lc1', 'lc2', 'lc3']) {
      expect(rig.unit(id).numberOf('power_limit_kw')).toBe(500);
      expect(rig.unit(id).numberOf('load_kw')).toBe(100);
    }
    expect(rig.acks.find((a) => a.status === 'ended' && a.command_id === 'cmd-3')).toMatchObject({ reason: 'restore_command' });
    expect(rig.service?.status().active).toEqual([]);
  });

  it('never acts on a retained command', async () => {
    const mqtt = rig.mqttConfig();
    if (!mqtt?.demand_response) throw new Error('no mqtt');
    await rig.stopService();
    const cmd = buildCommand({ siteId: SITE_ID, zone: 'zone-a', type: 'curtail', reductionMw: 0.1, durationMinutes: 15, commandId: 'retained-1' });
    const mqttMod = await import('mqtt');
    const pub = await mqttMod.default.connectAsync(broker.url, { protocolVersion: 4 });
    await pub.publishAsync(`ems/${SITE_ID}/dr/command`, signedMessage(cmd, KEYS.privateKey), { qos: 1, retain: true });
    await pub.endAsync();
    await rig.startService();
    await rig.waitFor(() => rig.acks.some((a) => a.command_id === 'retained-1'), 'the rejection ack');
    expect(rig.acks.find((a) => a.command_id === 'retained-1')).toMatchObject({ status: 'rejected', reason: 'retained' });
    expect(rig.writes()).toBe(0);
  });
});
