// Fault injection of the simulator, each fault seen by a raw master.
import { afterEach, describe, expect, it } from 'vitest';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startModbusServer, type ModbusSimServer } from '../../simulators/modbus/server.js';
import { testInverter } from './fixtures.js';
import { RawClient, readPdu, registersOf, writeSinglePdu } from './raw-client.js';

let server: ModbusSimServer | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  server = undefined;
});

async function start(): Promise<ModbusSimServer> {
  const profile = testInverter();
  server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(profile)], [2, createSimulatedDevice(profile)]]) });
  return server;
}
async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  return c;
}
const W = readPdu(3, 40002, 1); // the `w` register: 4321

describe('simulator fault injection', () => {
  it('latency delays every answer of that unit only', async () => {
    const s = await start();
    s.setFault(1, { latencyMs: 150 });
    const c = await connect(s.port);
    const t0 = performance.now();
    await c.request(1, 1, W);
    const slow = performance.now() - t0;
    const t1 = performance.now();
    await c.request(2, 2, W);
    const fast = performance.now() - t1;
    expect(slow).toBeGreaterThanOrEqual(140);
    expect(fast).toBeLessThan(slow / 2);
  });

  it('drop: no answer for that unit; its neighbour still answers', async () => {
    const s = await start();
    s.setFault(1, { drop: true });
    const c = await connect(s.port);
    expect(await c.request(1, 1, W, 200)).toBeUndefined();
    expect((await c.request(2, 2, W))?.tid).toBe(2);
    expect(s.stats.dropped).toBe(1);
  });

  it.each([2, 4, 6, 11, 10])('exception %i on every request of the unit', async (code) => {
    const s = await start();
    s.setFault(1, { exception: code });
    const c = await connect(s.port);
    expect(Array.from((await c.request(1, 1, W))!.pdu)).toEqual([0x83, code]);
    expect(Array.from((await c.request(2, 1, writeSinglePdu(6, 40019, 1)))!.pdu)).toEqual([0x86, code]);
    expect(s.writes).toHaveLength(0); // refused writes never reach the register image
    expect(registersOf((await c.request(3, 2, W))!)).toEqual([4321]);
  });

  it("'*' faults every unit; a unit's own fault wins; clearing restores", async () => {
    const s = await start();
    s.setFault('*', { exception: 6 });
    s.setFault(2, { latencyMs: 1 });
    const c = await connect(s.port);
    expect((await c.request(1, 1, W))?.fc).toBe(0x83);
    expect((await c.request(2, 2, W))?.fc).toBe(3);
    s.clearFaults();
    expect((await c.request(3, 1, W))?.fc).toBe(3);
  });

  it('disconnectAfter N: answers N requests on a connection, then closes it', async () => {
    const s = await start();
    s.setFault('*', { disconnectAfter: 3 });
    const c = await connect(s.port);
    for (let i = 1; i <= 3; i++) expect((await c.request(i, 1, W))?.tid).toBe(i);
    expect(await c.waitClosed()).toBe(true);
    const again = await connect(s.port); // a new connection starts counting afresh
    expect((await again.request(9, 1, W))?.tid).toBe(9);
  });

  it('singleClient: a second connection is closed at once, the first keeps working', async () => {
    const s = await start();
    s.setFault('*', { singleClient: true });
    const first = await connect(s.port);
    const second = await connect(s.port);
    expect(await second.waitClosed()).toBe(true);
    expect((await first.request(1, 1, W))?.tid).toBe(1);
    expect(s.stats.connectionsRejected).toBe(1);
    expect(s.stats.maxConnectionsOpen).toBe(1);
  });

  it('garble: right transaction id, function code 0x7F, scrambled payload', async () => {
    const s = await start();
    s.setFault(1, { garble: true });
    const c = await connect(s.port);
    const f = await c.request(5, 1, W);
    expect(f).toMatchObject({ tid: 5, fc: 0x7f });
    expect(f!.pdu[1]).not.toBe(2);
  });

  it('short: a well-delimited frame whose byte count promises more than it carries', async () => {
    const s = await start();
    s.setFault(1, { short: true });
    const c = await connect(s.port);
    const f = await c.request(5, 1, readPdu(3, 40000, 4));
    expect(Array.from(f!.pdu)).toEqual([3, 8]);
    s.setFault(1, undefined);
    expect(registersOf((await c.request(6, 1, W))!)).toEqual([4321]); // the stream stays in step
  });

  it('late: the next answer comes after the delay, later ones on time (out of order)', async () => {
    const s = await start();
    s.setFault(1, { late: { delayMs: 200 } });
    const c = await connect(s.port);
    expect(await c.request(1, 1, W, 50)).toBeUndefined(); // the client's timeout
    const second = await c.request(2, 1, W);
    expect(second?.tid).toBe(2); // answered first
    const frames = await c.waitFrames(2, 1000);
    expect(frames.map((f) => f.tid)).toEqual([2, 1]); // then the stale answer to request 1
  });

  it('reboot resets registers to defaults: a curtailment and its acknowledgement are forgotten', async () => {
    const s = await start();
    const c = await connect(s.port);
    await c.request(1, 1, writeSinglePdu(6, 40019, 300));
    expect(s.units.get(1)?.numberOf('lim_pct')).toBe(30);
    expect(s.units.get(1)?.numberOf('status')).toBe(1);
    s.reboot(1);
    expect(s.units.get(1)?.numberOf('lim_pct')).toBe(100);
    expect(registersOf((await c.request(2, 1, readPdu(3, 40011, 1)))!)).toEqual([0]);
    expect(s.writes).toHaveLength(1); // the log is the wire's history, not the device's
  });

  it('dropConnections closes clients; the server keeps listening', async () => {
    const s = await start();
    const c = await connect(s.port);
    s.dropConnections();
    expect(await c.waitClosed()).toBe(true);
    const again = await connect(s.port);
    expect((await again.request(1, 1, W))?.fc).toBe(3);
  });
});
