// The endpoint on Modbus RTU: over a socat pseudo-terminal pair (transport rtu) and as raw RTU
// frames over TCP (rtu_over_tcp), against a raw scriptable device. The queue, priorities and unit
// backoff are the endpoint's own (endpoint.test.ts); here: the RTU framing, CRC errors, strays
// without transaction ids, the inter-frame silence and turnaround, broadcast never used.
import { afterEach, describe, expect, it } from 'vitest';
import type { SerialSettings } from '../../src/config/site-types.js';
import { ModbusEndpoint, type EndpointTuning } from '../../src/modbus/endpoint.js';
import { lineTiming } from '../../src/modbus/framing-rtu.js';
import { ModbusError } from '../../src/modbus/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { checkedWrite } from '../helpers/checked-write.js';
import { hasPeer } from '../peers.js';
import { mapValue, Recorder, waitFor } from './endpoint-helpers.js';
import { rtuFrame, rtuFromMap, rtuPtyLine, rtuRegisters, rtuTcpLine, type RtuHandler, type RtuLine } from './rtu-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const LINE: SerialSettings = { baud: 19200, parity: 'even', stop_bits: 1, data_bits: 8, turnaround_ms: 0 };

type Kind = 'rtu' | 'rtu_over_tcp';

async function line(kind: Kind, handler?: RtuHandler): Promise<RtuLine> {
  const l = kind === 'rtu' ? await rtuPtyLine(handler) : await rtuTcpLine(handler);
  cleanups.push(() => l.close());
  return l;
}

function endpoint(kind: Kind, l: RtuLine, serial: Partial<SerialSettings> = {}, opts: EndpointTuning = {}): { ep: ModbusEndpoint; rec: Recorder } {
  const rec = new Recorder();
  const s = { ...LINE, ...serial };
  const target = kind === 'rtu'
    ? { transport: 'rtu' as const, serial: { ...s, device: l.path } }
    : { transport: 'rtu_over_tcp' as const, host: l.path, port: l.port, serial: s };
  const ep = new ModbusEndpoint({ ...target, defaultTimeoutMs: 300, reconnectBaseMs: 50, reconnectMaxMs: 400, ...opts }, { clock: systemClock, logger: silentLogger(), observer: rec });
  cleanups.push(() => ep.close());
  return { ep, rec };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof ModbusError ? e.code : `not a ModbusError: ${String(e)}`;
  }
}

const kinds: Kind[] = ['rtu', 'rtu_over_tcp'];

describe.skipIf(!hasPeer('socat'))('ModbusEndpoint on Modbus RTU', () => {
  it.each(kinds)('%s: reads and writes through RTU frames, units on one line', async (kind) => {
    const l = await line(kind);
    const { ep, rec } = endpoint(kind, l);
    expect(Array.from(await ep.read({ unitId: 3, table: 'holding', address: 10, count: 4 }))).toEqual([3010, 3011, 3012, 3013]);
    expect(Array.from(await ep.read({ unitId: 7, table: 'input', address: 0, count: 2 }))).toEqual([7000, 7001]);
    await ep.write(3, checkedWrite('holding', 7, 0xbeef));
    await ep.write(3, checkedWrite('holding', 8, 0x10002, 'uint32'));
    expect(l.requests.map((r) => [r.unitId, r.fc])).toEqual([[3, 3], [7, 4], [3, 6], [3, 16]]);
    expect(rec.events.every((e) => e.error === undefined)).toBe(true);
    expect(ep.key).toBe(kind === 'rtu' ? l.path : `127.0.0.1:${l.port}`);
  });

  it.each(kinds)('%s: a prepared read (frame and CRC built once) is sent unchanged and answered each time', async (kind) => {
    const l = await line(kind);
    const { ep } = endpoint(kind, l);
    const prepared = ep.prepareRead({ unitId: 6, table: 'holding', address: 20, count: 2 });
    for (let i = 0; i < 5; i++) expect(Array.from(await ep.read(prepared))).toEqual([6020, 6021]);
    expect(l.requests.map((r) => [r.unitId, r.fc, r.address, r.count])).toEqual(Array.from({ length: 5 }, () => [6, 3, 20, 2]));
    expect(await codeOf(ep.read(ep.prepareRead({ unitId: 0, table: 'holding', address: 0, count: 1 })))).toBe('invalid_request');
  });

  it.each(kinds)('%s: a CRC error is counted as crc_error on the unit asked; the line goes on', async (kind) => {
    let corrupt = true;
    const l = await line(kind, (req, reply) => {
      const f = rtuRegisters(req, [mapValue(req.unitId, req.address)]);
      if (corrupt && req.unitId === 2) { corrupt = false; f[3] = (f[3] ?? 0) ^ 0x40; }
      reply(f);
    });
    const { ep, rec } = endpoint(kind, l);
    expect(await codeOf(ep.read({ unitId: 2, table: 'holding', address: 5, count: 1 }))).toBe('crc_error');
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 5, count: 1 }))).toEqual([1005]);
    expect(Array.from(await ep.read({ unitId: 2, table: 'holding', address: 5, count: 1 }))).toEqual([2005]);
    expect(rec.events.map((e) => [e.unitId, e.error])).toEqual([[2, 'crc_error'], [1, undefined], [2, undefined]]);
  });

  it.each(kinds)("%s: another unit's answer is a stray, never the answer; garbage before the answer is skipped", async (kind) => {
    const l = await line(kind, (req, reply) => {
      if (req.address === 0) reply(rtuRegisters({ ...req, unitId: req.unitId + 1 }, [7777]));
      else if (req.address === 1) reply(Buffer.concat([Buffer.from([0x00, 0xff, req.unitId, 0x13]), rtuRegisters(req, [mapValue(req.unitId, 1)])]));
      else rtuFromMap(req, reply);
    });
    const { ep, rec } = endpoint(kind, l, {}, { defaultTimeoutMs: 150, unitBackoff: { failuresBeforeBackoff: 10 } });
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(rec.strays).toBe(1);
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 1, count: 1 }))).toEqual([1001]);
    expect(rec.malformedCount).toBeGreaterThanOrEqual(1);
  });

  it.each(kinds)('%s: exceptions are classified as on TCP', async (kind) => {
    const l = await line(kind, (req, reply) => reply(rtuFrame(req.unitId, [req.fc | 0x80, req.unitId === 4 ? 11 : 2])));
    const { ep } = endpoint(kind, l);
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('exception_illegal_address');
    expect(await codeOf(ep.read({ unitId: 4, table: 'holding', address: 0, count: 1 }))).toBe('exception_gateway_target');
    expect(await codeOf(ep.read({ unitId: 4, table: 'holding', address: 0, count: 1 }))).toBe('unit_backed_off');
  });

  it('broadcast (unit 0) and reserved unit ids are never sent on a serial line', async () => {
    const l = await line('rtu');
    const { ep } = endpoint('rtu', l);
    expect(await codeOf(ep.read({ unitId: 0, table: 'holding', address: 0, count: 1 }))).toBe('invalid_request');
    expect(await codeOf(ep.write(0, checkedWrite('holding', 0, 1)))).toBe('invalid_request');
    expect(await codeOf(ep.read({ unitId: 248, table: 'holding', address: 0, count: 1 }))).toBe('invalid_request');
    expect(l.requests).toHaveLength(0);
  });

  it('keeps the inter-frame silence (3.5 characters) plus the turnaround before every request', async () => {
    const l = await line('rtu');
    const turnaround = 8;
    const { ep } = endpoint('rtu', l, { baud: 9600, turnaround_ms: turnaround });
    for (let i = 0; i < 20; i++) await ep.read({ unitId: 1 + (i % 3), table: 'holding', address: i, count: 2 });
    const silence = lineTiming({ ...LINE, baud: 9600 }).silenceMs;
    expect(silence).toBeCloseTo(4.01, 1); // 3.5 x 11 bits at 9600 baud
    const gaps = l.requests.slice(1).map((r, i) => r.at - (l.replies[i] ?? 0));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(silence + turnaround - 0.5);
  });

  it('above 19,200 baud the silence is the fixed 1.75 ms', () => {
    expect(lineTiming({ ...LINE, baud: 38_400 }).silenceMs).toBe(1.75);
    expect(lineTiming({ ...LINE, baud: 19_200 }).silenceMs).toBeCloseTo(2.005, 3);
    expect(lineTiming({ ...LINE, baud: 9600, parity: 'none' }).charMs).toBeCloseTo(10 / 9.6, 3);
  });

  it('the timeout counts the time the bytes take on the wire at the baud rate', async () => {
    // 60 registers at 1200 baud: (8 + 125) bytes x 9.17 ms = 1.2 s on a real line. The device here
    // answers after 400 ms, past timeout_ms (100) but inside the wire time: not a timeout.
    const l = await line('rtu', (req, reply) => setTimeout(() => rtuFromMap(req, reply), 400));
    const { ep } = endpoint('rtu', l, { baud: 1200 }, { defaultTimeoutMs: 100 });
    const words = await ep.read({ unitId: 1, table: 'holding', address: 0, count: 60 });
    expect(words[59]).toBe(1059);
  });

  it('a dead unit is backed off on its own; its neighbours keep answering on the line', async () => {
    const l = await line('rtu', (req, reply) => { if (req.unitId !== 9) rtuFromMap(req, reply); });
    const { ep } = endpoint('rtu', l, {}, { defaultTimeoutMs: 200 });
    expect(await codeOf(ep.read({ unitId: 9, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await codeOf(ep.read({ unitId: 9, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await codeOf(ep.read({ unitId: 9, table: 'holding', address: 0, count: 1 }))).toBe('unit_backed_off');
    expect(Array.from(await ep.read({ unitId: 8, table: 'holding', address: 0, count: 1 }))).toEqual([8000]);
    expect(l.requests.filter((r) => r.unitId === 9)).toHaveLength(2);
  });

  it('a serial port that does not exist is connect_failed, naming why, and retried', async () => {
    const rec = new Recorder();
    const ep = new ModbusEndpoint(
      { transport: 'rtu', serial: { ...LINE, device: '/nonexistent/ttyUSB9' }, reconnectBaseMs: 20, reconnectMaxMs: 40 },
      { clock: systemClock, logger: silentLogger(), observer: rec },
    );
    cleanups.push(() => ep.close());
    const err = await ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusError);
    expect((err as ModbusError).code).toBe('connect_failed');
    expect((err as ModbusError).message).toMatch(/\/nonexistent\/ttyUSB9.*connect failed: .*(No such file|ENOENT)/);
    expect(await waitFor(() => ep.stats().reconnectAttempt >= 2, 5000)).toBe(true);
  });
});
