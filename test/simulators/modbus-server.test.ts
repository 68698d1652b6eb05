// The simulator's Modbus TCP server against a raw node:net master: framing, every function code,
// exceptions, many connections and unit ids.
import { afterEach, describe, expect, it } from 'vitest';
import { decodePoint } from '../../src/modbus/codec.js';
import { SimulatedDevice, createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startModbusServer, type ModbusSimServer } from '../../simulators/modbus/server.js';
import { testInverter } from './fixtures.js';
import { RawClient, adu, readPdu, registersOf, writeCoilsPdu, writeRegistersPdu, writeSinglePdu } from './raw-client.js';

let server: ModbusSimServer | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  server = undefined;
});

const profile = testInverter();
async function start(unitIds = [1]): Promise<ModbusSimServer> {
  server = await startModbusServer({ units: new Map(unitIds.map((u) => [u, createSimulatedDevice(profile)])) });
  return server;
}
async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  return c;
}
const point = (id: string) => {
  const p = [...profile.points, ...profile.controls].find((x) => x.id === id);
  if (!p) throw new Error(id);
  return p;
};

describe('Modbus TCP simulator server', () => {
  it('FC3 serves the profile values, encoded by the gateway codec (address_base 1 -> wire 40000)', async () => {
    const s = await start();
    const c = await connect(s.port);
    const f = await c.request(7, 1, readPdu(3, 40000, 12));
    expect(f).toMatchObject({ tid: 7, unit: 1, fc: 3 });
    const regs = Uint16Array.from(registersOf(f!));
    expect(regs.length).toBe(12);
    expect(decodePoint(profile, point('suns'), regs, 0)).toMatchObject({ value: 'SunS' });
    expect(decodePoint(profile, point('w'), regs, 2, 0)).toMatchObject({ value: 4321 });
    expect(decodePoint(profile, point('hz'), regs, 4)).toMatchObject({ value: 50.02 });
    expect(decodePoint(profile, point('v'), regs, 5)).toMatchObject({ value: Math.fround(230.5) });
    expect(regs[5]).toBe(0x8000); // CDAB: low word first (230.5 = 0x43668000)
    expect(decodePoint(profile, point('e'), regs, 7)).toMatchObject({ value: 123456789 });
    expect(decodePoint(profile, point('temp'), regs, 9)).toMatchObject({ value: -12.5 });
  });

  it('FC4 input registers, FC1 coils, FC2 discrete inputs', async () => {
    const s = await start();
    const c = await connect(s.port);
    const fin = await c.request(1, 1, readPdu(4, 30000, 2));
    expect(fin?.fc).toBe(4);
    expect(decodePoint(profile, point('in_w'), Uint16Array.from(registersOf(fin!)), 0)).toMatchObject({ ok: true });
    const coils = await c.request(2, 1, readPdu(1, 0, 2)); // coil 1 (max: on), coil 2 (min: off)
    expect(Array.from(coils!.pdu)).toEqual([1, 1, 0b01]);
    const disc = await c.request(3, 1, readPdu(2, 10000, 3));
    expect(Array.from(disc!.pdu)).toEqual([2, 1, 0b101]);
  });

  it('FC6 and FC16 write controls (recorded, acknowledged); other registers get exception 2', async () => {
    const s = await start();
    const c = await connect(s.port);
    const before = await c.request(1, 1, readPdu(3, 40011, 1));
    expect(registersOf(before!)).toEqual([0]); // status: not yet acknowledged
    const w6 = await c.request(2, 1, writeSinglePdu(6, 40019, 555)); // lim_pct 55.5 % (sf -1)
    expect(Array.from(w6!.pdu)).toEqual([6, 0x9c, 0x53, 0x02, 0x2b]); // echo
    const w16 = await c.request(3, 1, writeRegistersPdu(40019, [600, 1]));
    expect(Array.from(w16!.pdu)).toEqual([16, 0x9c, 0x53, 0, 2]);
    const status = await c.request(4, 1, readPdu(3, 40011, 1));
    expect(registersOf(status!)).toEqual([1]); // the ack behaviour
    expect(s.units.get(1)?.numberOf('lim_pct')).toBe(60);
    expect(s.writes.map((w) => [w.unitId, w.functionCode, w.address, w.values])).toEqual([
      [1, 6, 40019, [555]], [1, 16, 40019, [600, 1]],
    ]);
    const refused = await c.request(5, 1, writeSinglePdu(6, 40002, 1)); // w: a measurement
    expect(Array.from(refused!.pdu)).toEqual([0x86, 2]);
    const straddle = await c.request(6, 1, writeRegistersPdu(40021, [0, 0, 0])); // lim_rvrt + lim_sf (not a control)
    expect(Array.from(straddle!.pdu)).toEqual([0x90, 2]);
    expect(s.writes).toHaveLength(2);
  });

  it('FC5 and FC15 write coil controls', async () => {
    const s = await start();
    const c = await connect(s.port);
    expect(Array.from((await c.request(1, 1, writeSinglePdu(5, 1, 0xff00)))!.pdu)).toEqual([5, 0, 1, 0xff, 0]);
    expect(Array.from((await c.request(2, 1, writeSinglePdu(5, 1, 0x1234)))!.pdu)).toEqual([0x85, 3]);
    expect(Array.from((await c.request(3, 1, writeCoilsPdu(0, [0, 1])))!.pdu)).toEqual([15, 0, 0, 0, 2]);
    expect(Array.from((await c.request(4, 1, readPdu(1, 0, 2)))!.pdu)).toEqual([1, 1, 0b10]);
    expect(Array.from((await c.request(5, 1, writeCoilsPdu(0, [1, 1, 1])))!.pdu)).toEqual([0x8f, 2]);
    expect(s.writes.map((w) => [w.functionCode, w.table, w.address, w.values])).toEqual([[5, 'coil', 1, [1]], [15, 'coil', 0, [0, 1]]]);
  });

  it('exceptions: illegal function, illegal value (count), illegal address, unknown unit (11)', async () => {
    const s = await start();
    const c = await connect(s.port);
    expect(Array.from((await c.request(1, 1, [7]))!.pdu)).toEqual([0x87, 1]);
    expect(Array.from((await c.request(2, 1, readPdu(3, 40000, 0)))!.pdu)).toEqual([0x83, 3]);
    expect(Array.from((await c.request(3, 1, readPdu(3, 40000, 126)))!.pdu)).toEqual([0x83, 3]);
    expect(Array.from((await c.request(4, 1, readPdu(3, 100, 1)))!.pdu)).toEqual([0x83, 2]);
    expect(Array.from((await c.request(5, 1, readPdu(3, 40020, 5)))!.pdu)).toEqual([0x83, 2]); // past the last register
    expect(Array.from((await c.request(6, 9, readPdu(3, 40000, 1)))!.pdu)).toEqual([0x83, 11]);
    expect(Array.from((await c.request(7, 1, [3, 0x9c]))!.pdu)).toEqual([0x83, 3]); // truncated PDU
    expect(s.stats.exceptions).toBe(7);
  });

  it('reassembles a request split byte by byte, and answers coalesced requests in order with their ids', async () => {
    const s = await start();
    const c = await connect(s.port);
    const req = adu(0x1234, 1, readPdu(3, 40002, 1));
    for (const byte of req) {
      c.send(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 2));
    }
    const [f] = await c.waitFrames(1);
    expect(f).toMatchObject({ tid: 0x1234, fc: 3 });
    expect(registersOf(f!)).toEqual([4321]);
    // Three requests in one segment, and a fourth split across the boundary.
    const batch = Buffer.concat([adu(1, 1, readPdu(3, 40002, 1)), adu(2, 1, readPdu(3, 40004, 1)), adu(0xfffe, 1, readPdu(4, 30000, 2))]);
    const fourth = adu(3, 1, readPdu(3, 40003, 1));
    c.send(Buffer.concat([batch, fourth.subarray(0, 4)]));
    await new Promise((r) => setTimeout(r, 20));
    c.send(fourth.subarray(4));
    const frames = await c.waitFrames(5);
    expect(frames.slice(1).map((x) => x.tid)).toEqual([1, 2, 0xfffe, 3]);
    expect(registersOf(frames[2]!)).toEqual([5002]);
  });

  it('a framing error (protocol id not 0) closes that connection only', async () => {
    const s = await start();
    const bad = await connect(s.port);
    const good = await connect(s.port);
    const b = adu(1, 1, readPdu(3, 40000, 1));
    b.writeUInt16BE(1, 2);
    bad.send(b);
    expect(await bad.waitClosed()).toBe(true);
    expect(s.stats.framingErrors).toBe(1);
    expect((await good.request(2, 1, readPdu(3, 40002, 1)))?.fc).toBe(3);
  });

  it('serves several unit ids and many connections at once', async () => {
    const s = await start([1, 2, 3]);
    const cs = await Promise.all(Array.from({ length: 20 }, () => connect(s.port)));
    const got = await Promise.all(cs.map((c, i) => c.request(i, (i % 3) + 1, readPdu(3, 40002, 1))));
    expect(got.map((f) => f?.unit)).toEqual(cs.map((_, i) => (i % 3) + 1));
    expect(got.every((f) => f && registersOf(f)[0] === 4321)).toBe(true);
    expect(s.stats.maxConnectionsOpen).toBe(20);
    // Writes are per unit: unit 2's command does not touch unit 3.
    await cs[0]!.request(99, 2, writeSinglePdu(6, 40019, 300));
    expect(s.units.get(2)?.numberOf('lim_pct')).toBe(30);
    expect(s.units.get(3)?.numberOf('lim_pct')).toBe(100);
  });

  it('a device that throws is answered as exception 4; the server and its neighbours carry on', async () => {
    class Broken extends SimulatedDevice {
      override read(): never { throw new Error('simulator bug'); }
    }
    server = await startModbusServer({ units: new Map([[1, new Broken(profile)], [2, createSimulatedDevice(profile)]]) });
    const c = await connect(server.port);
    expect(Array.from((await c.request(1, 1, readPdu(3, 40002, 1)))!.pdu)).toEqual([0x83, 4]);
    expect(registersOf((await c.request(2, 2, readPdu(3, 40002, 1)))!)).toEqual([4321]);
  });

  it('answers 2000 requests back to back on one connection, each once and in order (speed: npm run bench:simulator)', async () => {
    const s = await start();
    const c = await connect(s.port);
    const req = adu(1, 1, readPdu(3, 40000, 12));
    const times: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      const before = c.frames.length;
      c.send(req);
      await c.waitFrames(before + 1);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[1000] ?? Infinity;
    // The round trip includes both sides' event loops; the server part is a small fraction of it.
    process.stdout.write(`simulator round trip: median ${(median * 1000).toFixed(0)} us, p99 ${((times[1980] ?? 0) * 1000).toFixed(0)} us\n`);
    expect(c.frames).toHaveLength(2000);
    expect(c.frames.every((f) => f.tid === 1 && registersOf(f).length === 12)).toBe(true);
  });
});
