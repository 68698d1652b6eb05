// Why the serial transport frames RTU itself and takes only modbus-serial's serial port package:
// the same line behaviours, on the same kind of pseudo-terminal line, against modbus-serial
// 8.0.25's RTU client (connectRTUBuffered, one request at a time as our endpoint would drive it)
// and against our endpoint. Each case shows what modbus-serial does today; if a later version
// fixes it, the case fails and the choice is worth making again (docs/modbus.md, "Modbus RTU").
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusEndpoint } from '../../src/modbus/endpoint.js';
import { lineTiming } from '../../src/modbus/framing-rtu.js';
import { ModbusError } from '../../src/modbus/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { hasPeer } from '../peers.js';
import { mapValue, sleep } from './endpoint-helpers.js';
import { rtuFromMap, rtuPtyLine, rtuRegisters, type RtuHandler, type RtuLine } from './rtu-helpers.js';

// The package is CommonJS (`module.exports = ModbusRTU`): the default import is the constructor.
const ModbusClient = ModbusSerial as unknown as new () => ModbusRTU;
const SERIAL = { baud: 19200, parity: 'even' as const, stop_bits: 1 as const, data_bits: 8 as const, turnaround_ms: 0 };
/** The silence case runs at 1200 baud: 32 ms of silence, far above what a busy machine's lag adds to an immediate send. */
const SLOW = { ...SERIAL, baud: 1200 };
const TIMEOUT_MS = 100;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function line(handler: RtuHandler): Promise<RtuLine> {
  const l = await rtuPtyLine(handler);
  cleanups.push(() => l.close());
  return l;
}

/** Reads holding registers with one client or the other; resolves to the words or an error text. */
type Reader = (unit: number, address: number) => Promise<number[] | string>;

async function theirs(l: RtuLine, serial = SERIAL): Promise<Reader> {
  const c = new ModbusClient();
  await c.connectRTUBuffered(l.path, { baudRate: serial.baud, parity: serial.parity });
  c.setTimeout(TIMEOUT_MS);
  cleanups.push(() => new Promise<void>((resolve) => c.close(() => resolve())));
  return async (unit, address) => {
    c.setID(unit);
    try {
      return (await c.readHoldingRegisters(address, 1)).data;
    } catch (e) {
      // Its timeout error is a plain object with a message, not an Error.
      return typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : String(e);
    }
  };
}

function ours(l: RtuLine, serial = SERIAL): Reader {
  const ep = new ModbusEndpoint({ transport: 'rtu', serial: { ...serial, device: l.path }, defaultTimeoutMs: TIMEOUT_MS }, { clock: systemClock, logger: silentLogger() });
  cleanups.push(() => ep.close());
  return async (unit, address) => {
    try {
      return Array.from(await ep.read({ unitId: unit, table: 'holding', address, count: 1 }));
    } catch (e) {
      return e instanceof ModbusError ? e.code : String(e);
    }
  };
}

/** Unit 1 answers its first request late and cut off (4 bytes after 150 ms), then normally. */
function lateCutOff(): RtuHandler {
  let first = true;
  return (req, reply) => {
    if (!first) return rtuFromMap(req, reply);
    first = false;
    setTimeout(() => reply(rtuRegisters(req, [0xdead]).subarray(0, 4)), 150);
  };
}

/** Noise that looks like the start of unit 1's answer (unit id, function code), then the answer. */
const noiseFirst: RtuHandler = (req, reply) => reply(Buffer.concat([Buffer.from([req.unitId, req.fc, 0x55]), rtuRegisters(req, [mapValue(req.unitId, req.address)])]));

describe.skipIf(!hasPeer('socat'))('RTU client choice: modbus-serial 8.0.25 RTU client vs our endpoint on the same line', () => {
  it('the cut-off tail of a late answer: modbus-serial fails the next, healthy request with it; ours drops it', async () => {
    for (const [who, make] of [['theirs', theirs], ['ours', ours]] as const) {
      const l = await line(lateCutOff());
      const read = await make(l);
      const first = await read(1, 0);
      await sleep(120); // the tail arrives while the line is idle
      const next = await read(1, 1);
      if (who === 'theirs') {
        expect(first).toMatch(/Timed out/);
        expect(next).toEqual('CRC error');
      } else {
        expect(first).toBe('timeout');
        expect(next).toEqual([1001]);
      }
    }
  });

  it('noise that looks like the header of the answer: modbus-serial reports a CRC error; ours finds the answer behind it', async () => {
    const t = await theirs(await line(noiseFirst));
    expect(await t(1, 5)).toEqual('CRC error');
    const o = ours(await line(noiseFirst));
    expect(await o(1, 5)).toEqual([1005]);
  });

  it('inter-frame silence: modbus-serial sends the next request at once; ours waits 3.5 characters', async () => {
    const silence = lineTiming(SLOW).silenceMs;
    const gaps: Record<string, number> = {};
    for (const [who, make] of [['theirs', theirs], ['ours', ours]] as const) {
      const l = await line(rtuFromMap);
      const read = await make(l, SLOW);
      for (let i = 0; i < 10; i++) expect(await read(1 + (i % 2), i)).toEqual([mapValue(1 + (i % 2), i)]);
      gaps[who] = Math.min(...l.requests.slice(1).map((r, i) => r.at - (l.replies[i] ?? 0)));
    }
    expect(silence).toBeCloseTo(32.08, 1);
    expect(gaps['theirs']).toBeLessThan(silence / 2);
    expect(gaps['ours']).toBeGreaterThanOrEqual(silence - 0.2);
  });
});
