// Interop over the shipped profiles: mbpoll reads every point of every devices/*.yaml profile from
// our simulator and gets the value our codec encoded (16-bit signed/unsigned, 32-bit integers and
// float32 in ABCD or CDAB, strings as hex words). mbpoll cannot byte-swap, so BADC/DCBA points
// are left to the raw-client tests. The simulator's clock is frozen so values hold still.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceProfile, PointDef } from '../../src/config/profile-types.js';
import { pointWidth, wireAddress } from '../../src/config/profile-types.js';
import { DEFAULT_DEVICES_DIR } from '../../src/config/load.js';
import { loadProfiles } from '../../src/modbus/profile-load.js';
import { pointOrder } from '../../src/modbus/codec.js';
import { isNumericType, wordsToRaw } from '../../src/modbus/codec-words.js';
import { createSimulatedDevice } from '../../simulators/modbus/device.js';
import { startModbusServer, type ModbusSimServer } from '../../simulators/modbus/server.js';
import { hasPeer } from '../peers.js';
import { manualClock } from '../simulators/fixtures.js';

const MBPOLL = '/usr/bin/mbpoll';
const run = promisify(execFile);
const available = hasPeer('mbpoll');

const servers: { profile: DeviceProfile; server: ModbusSimServer }[] = [];
beforeAll(async () => {
  for (const profile of (await loadProfiles(DEFAULT_DEVICES_DIR)).values()) {
    const device = createSimulatedDevice(profile, { clock: manualClock() });
    servers.push({ profile, server: await startModbusServer({ units: new Map([[1, device]]) }) });
  }
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.server.close()));
});

/** mbpoll's data type and options for a point, or undefined when mbpoll cannot read it. */
function mbpollType(profile: DeviceProfile, p: PointDef): string[] | undefined {
  const table = p.table === 'holding' ? '4' : p.table === 'input' ? '3' : undefined;
  if (!table) return undefined;
  const order = pointOrder(profile, p);
  if (p.type === 'string') return order === 'ABCD' || order === 'CDAB' ? ['-t', `${table}:hex`, '-c', String(pointWidth(p))] : undefined;
  if (['int16', 'uint16', 'bool', 'bit'].includes(p.type)) return order === 'ABCD' || order === 'CDAB' ? ['-t', table] : undefined;
  const kind = p.type === 'float32' ? 'float' : p.type === 'int32' || p.type === 'uint32' ? 'int' : undefined;
  if (!kind || (order !== 'ABCD' && order !== 'CDAB')) return undefined;
  return ['-t', `${table}:${kind}`, ...(order === 'ABCD' ? ['-B'] : [])];
}

async function mbpoll(port: number, args: string[]): Promise<string[]> {
  const { stdout } = await run(MBPOLL, ['-m', 'tcp', '-1', '-o', '3', '-a', '1', ...args, '-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 15_000 });
  // `[ref]: value` or `[ref]: 65411 (-125)`: take the signed form when printed.
  return [...stdout.matchAll(/^\[\d+\]:\s+(\S+)(?: \((-?\d+)\))?/gm)].map((m) => m[2] ?? m[1] ?? '');
}

describe.skipIf(!available)('mbpoll reads every shipped profile from the simulator', () => {
  it('every readable point: mbpoll sees the registers our codec encoded', async () => {
    let checked = 0;
    for (const { profile, server } of servers) {
      const device = server.units.get(1);
      if (!device) continue;
      const seen = new Set<string>();
      for (const p of [...profile.points, ...profile.controls]) {
        const type = mbpollType(profile, p);
        const key = `${p.table}:${p.address}:${p.type}`;
        if (!type || seen.has(key)) continue;
        seen.add(key);
        const wire = wireAddress(profile, p);
        const words = device.read(p.table, wire, pointWidth(p));
        if (typeof words === 'number') throw new Error(`${profile.profile}.${p.id}: exception ${words}`);
        // mbpoll references are 1-based: wire address + 1.
        const got = await mbpoll(server.port, [...type, '-r', String(wire + 1)]);
        const what = `${profile.profile}.${p.id} (${p.type} ${pointOrder(profile, p)})`;
        if (p.type === 'string') {
          expect(got.map((h) => Number(h)), what).toEqual(Array.from(words));
        } else if (isNumericType(p.type) && p.type.startsWith('float')) {
          const raw = Number(wordsToRaw(p.type, words, 0, pointOrder(profile, p)));
          expect(Number(got[0]), what).toBeCloseTo(raw, Math.max(0, 5 - Math.ceil(Math.log10(Math.abs(raw) + 1))));
        } else {
          const numericType = isNumericType(p.type) ? p.type : 'uint16';
          const raw = Number(wordsToRaw(numericType, words, 0, pointOrder(profile, p)));
          const signed = pointWidth(p) === 1 ? (raw << 16) >> 16 : raw | 0; // mbpoll prints signed
          expect(Number(got[0]), what).toBe(signed);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});
