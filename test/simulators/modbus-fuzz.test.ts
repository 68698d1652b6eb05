// Hostile input: random bytes and random well-framed PDUs never crash the simulator; it answers
// or closes the connection, and keeps serving others.
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../simulators/modbus/behaviours.js';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startModbusServer, type ModbusSimServer } from '../../simulators/modbus/server.js';
import { testInverter } from './fixtures.js';
import { RawClient, adu, readPdu, registersOf } from './raw-client.js';

let server: ModbusSimServer | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  server = undefined;
});

describe('simulator under hostile input', () => {
  it('random well-framed PDUs: every one gets a normal or exception answer with its transaction id', async () => {
    server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(testInverter())]]) });
    const c = await RawClient.connect(server.port);
    clients.push(c);
    const random = seededRandom(99);
    const byte = (): number => Math.floor(random() * 256);
    const n = 500;
    for (let i = 0; i < n; i++) {
      const fc = [1, 2, 3, 4, 5, 6, 15, 16, byte()][Math.floor(random() * 9)] ?? 3;
      const len = Math.floor(random() * 12);
      c.send(adu(i, 1, [fc, ...Array.from({ length: len }, byte)]));
    }
    const frames = await c.waitFrames(n, 5000);
    expect(frames.map((f) => f.tid)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(c.closed).toBe(false);
    expect(server.stats.exceptions).toBeGreaterThan(0);
    expect(server.units.get(1)?.numberOf('w')).toBe(4321); // measurements are never written
  });

  it('random byte streams: answered or disconnected, never a crash; a clean client still works', async () => {
    server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(testInverter())]]) });
    const random = seededRandom(7);
    for (let round = 0; round < 20; round++) {
      const c = await RawClient.connect(server.port);
      clients.push(c);
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256)));
      // Half the rounds start with a valid header so the junk lands inside a frame.
      c.send(round % 2 === 0 ? Buffer.concat([adu(1, 1, readPdu(3, 40000, 2)), junk]) : junk);
      await c.waitFrames(1, 100);
      c.close();
    }
    const clean = await RawClient.connect(server.port);
    clients.push(clean);
    expect(registersOf((await clean.request(5, 1, readPdu(3, 40002, 1)))!)).toEqual([4321]);
    expect(server.stats.framingErrors).toBeGreaterThan(0);
  });
});
