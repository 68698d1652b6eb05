// Interop: mbpoll (an independent Modbus master, Debian package) reads and writes our simulator.
// mbpoll references are 1-based by default (-r 40003 is wire address 40002), its 32-bit types
// are little-endian word order (CDAB) unless -B (ABCD), and it writes one register with FC6,
// several with FC16, one coil with FC5.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startModbusServer, type ModbusSimServer } from '../../simulators/modbus/server.js';
import { hasPeer } from '../peers.js';
import { testInverter } from '../simulators/fixtures.js';

const MBPOLL = '/usr/bin/mbpoll';
const run = promisify(execFile);
// The preflight fails a run without mbpoll unless EMS_TEST_PEERS=optional (test/peers.ts).
const available = hasPeer('mbpoll');

let server: ModbusSimServer;
beforeAll(async () => {
  const profile = testInverter();
  server = await startModbusServer({ units: new Map([[1, createSimulatedDevice(profile)], [3, createSimulatedDevice(profile)]]) });
});
afterAll(async () => {
  await server.close();
});

interface MbpollResult { code: number; values: Map<number, string>; out: string }

async function mbpoll(args: string[], writeValues: string[] = []): Promise<MbpollResult> {
  // -1: poll once; -o: timeout in seconds (generous: two shared cores).
  const argv = ['-m', 'tcp', '-1', '-o', '3', ...args, '-p', String(server.port), '127.0.0.1', ...writeValues];
  let out: string;
  let code = 0;
  try {
    out = (await run(MBPOLL, argv, { encoding: 'utf8', timeout: 15_000 })).stdout;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    code = typeof e.code === 'number' ? e.code : 1;
    out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  const values = new Map<number, string>();
  for (const m of out.matchAll(/^\[(\d+)\]:\s+(\S+)(?: \((-?\d+)\))?/gm)) {
    values.set(Number(m[1]), m[3] ?? m[2] ?? ''); // the signed form when mbpoll prints one
  }
  return { code, values, out };
}

describe.skipIf(!available)('mbpoll against the simulator', () => {
  it('reads int16 (signed and scaled), uint16 with SunSpec scale factor, and the SunS marker', async () => {
    const r = await mbpoll(['-a', '1', '-t', '4', '-r', '40003', '-c', '3']); // w, w_sf, hz
    expect(r.code, r.out).toBe(0);
    expect([...r.values]).toEqual([[40003, '4321'], [40004, '0'], [40005, '5002']]);
    const temp = await mbpoll(['-a', '1', '-t', '4', '-r', '40010']); // -12.5 Cel at scale 0.1
    expect(temp.values.get(40010)).toBe('-125');
    const marker = await mbpoll(['-a', '1', '-t', '4:hex', '-r', '40001', '-c', '2']);
    expect([...marker.values.values()]).toEqual(['0x5375', '0x6E53']); // "SunS"
  });

  it('reads float32 in the word order of the profile (CDAB = mbpoll default) and uint32 ABCD with -B', async () => {
    const f = await mbpoll(['-a', '1', '-t', '4:float', '-r', '40006']);
    expect(f.code, f.out).toBe(0);
    expect(Number(f.values.get(40006))).toBe(230.5);
    const big = await mbpoll(['-a', '1', '-t', '4:float', '-B', '-r', '40006']);
    expect(Number(big.values.get(40006))).not.toBe(230.5); // the wrong order gives a wrong number
    const e = await mbpoll(['-a', '1', '-t', '4:int', '-B', '-r', '40008']);
    expect(Number(e.values.get(40008))).toBe(123456789);
  });

  it('reads input registers (int32 sine within its bounds) and discrete inputs', async () => {
    const r = await mbpoll(['-a', '3', '-t', '3:int', '-B', '-r', '30001']);
    expect(r.code, r.out).toBe(0);
    const v = Number(r.values.get(30001));
    expect(v).toBeGreaterThanOrEqual(500);
    expect(v).toBeLessThanOrEqual(1500);
    const d = await mbpoll(['-a', '1', '-t', '1', '-r', '10001', '-c', '3']);
    expect([...d.values.values()]).toEqual(['1', '0', '1']);
  });

  it('writes a control register (FC6) and two at once (FC16): recorded, acknowledged, read back', async () => {
    const before = server.writes.length;
    const w = await mbpoll(['-a', '1', '-t', '4', '-r', '40020'], ['555']); // lim_pct 55.5 % with sf -1
    expect(w.code, w.out).toBe(0);
    expect(server.units.get(1)?.numberOf('lim_pct')).toBe(55.5);
    const both = await mbpoll(['-a', '1', '-t', '4', '-r', '40020'], ['600', '1']); // lim_pct + lim_ena
    expect(both.code, both.out).toBe(0);
    expect(server.writes.slice(before).map((x) => [x.unitId, x.functionCode, x.address, x.values])).toEqual([
      [1, 6, 40019, [555]], [1, 16, 40019, [600, 1]],
    ]);
    const status = await mbpoll(['-a', '1', '-t', '4', '-r', '40012']);
    expect(status.values.get(40012)).toBe('1');
    expect(server.units.get(3)?.numberOf('lim_pct')).toBe(100); // the other unit is untouched
  });

  it('a write outside the controls is refused (exception 2) and never reaches the image', async () => {
    const before = server.writes.length;
    const w = await mbpoll(['-a', '1', '-t', '4', '-r', '40003'], ['1']);
    expect(w.code).not.toBe(0);
    expect(w.out).toMatch(/Illegal data address/i);
    expect(server.writes.length).toBe(before);
    expect(server.units.get(1)?.numberOf('w')).toBe(4321);
  });

  it('writes a coil control (FC5) with 0-based addressing (-0)', async () => {
    const w = await mbpoll(['-a', '1', '-t', '0', '-0', '-r', '1'], ['1']); // relay2: datasheet 2, wire 1
    expect(w.code, w.out).toBe(0);
    expect(server.writes.at(-1)).toMatchObject({ functionCode: 5, table: 'coil', address: 1, values: [1] });
    const r = await mbpoll(['-a', '1', '-t', '0', '-r', '1', '-c', '2']); // 1-based: wire 0 and 1
    expect([...r.values.values()]).toEqual(['1', '1']);
  });
});
