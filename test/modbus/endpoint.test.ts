import { afterEach, describe, expect, it } from 'vitest';
import { ModbusEndpoint, type EndpointTuning } from '../../src/modbus/endpoint.js';
import { ModbusError } from '../../src/modbus/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { checkedWrite } from '../helpers/checked-write.js';
import {
  answerFromMap, exceptionFrame, mapValue, mbap, Recorder, registersFrame, sleep, startRawServer, waitFor, type RawServer,
} from './endpoint-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(handler = answerFromMap): Promise<RawServer> {
  const s = await startRawServer(handler);
  cleanups.push(() => s.close());
  return s;
}

function endpoint(s: RawServer, opts: EndpointTuning = {}): { ep: ModbusEndpoint; rec: Recorder } {
  const rec = new Recorder();
  const ep = new ModbusEndpoint(
    { host: '127.0.0.1', port: s.port, defaultTimeoutMs: 300, reconnectBaseMs: 50, reconnectMaxMs: 400, ...opts },
    { clock: systemClock, logger: silentLogger(), observer: rec },
  );
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

describe('ModbusEndpoint: requests and responses', () => {
  it('reads every table and writes FC5/6/16 over one connection', async () => {
    const s = await server();
    const { ep, rec } = endpoint(s);
    const regs = await ep.read({ unitId: 3, table: 'holding', address: 10, count: 4 });
    expect(Array.from(regs)).toEqual([3010, 3011, 3012, 3013]);
    const inp = await ep.read({ unitId: 4, table: 'input', address: 0, count: 2 });
    expect(Array.from(inp)).toEqual([4000, 4001]);
    const coils = await ep.read({ unitId: 1, table: 'coil', address: 0, count: 10 });
    expect(Array.from(coils)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    // Writes go out only as checked values of a writable control (one control: one coil, FC15 never).
    await ep.write(1, checkedWrite('holding', 7, 0xbeef));
    await ep.write(1, checkedWrite('holding', 8, 0x10002, 'uint32'));
    await ep.write(1, checkedWrite('coil', 2, 1));
    expect(s.requests.map((r) => r.fc)).toEqual([3, 4, 1, 6, 16, 5]);
    expect(s.requests[3]?.pdu.readUInt16BE(3)).toBe(0xbeef);
    expect([s.requests[4]?.pdu.readUInt16BE(6), s.requests[4]?.pdu.readUInt16BE(8)]).toEqual([1, 2]);
    expect(s.requests[5]?.pdu.readUInt16BE(3)).toBe(0xff00);
    expect(s.accepted).toBe(1);
    expect(rec.events.every((e) => e.error === undefined && e.bytesIn > 0)).toBe(true);
  });

  it('refuses out-of-range arguments locally without touching the wire', async () => {
    const s = await server();
    const { ep } = endpoint(s);
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 126 }))).toBe('invalid_request');
    expect(await codeOf(ep.read({ unitId: 300, table: 'holding', address: 0, count: 1 }))).toBe('invalid_request');
    expect(await codeOf(ep.read({ unitId: 1, table: 'input', address: 65535, count: 2 }))).toBe('invalid_request');
    expect(s.requests).toHaveLength(0);
  });

  it('reassembles a response split into single bytes', async () => {
    const s = await server((req, sock) => {
      const frame = registersFrame(req, [1, 2, 3]);
      let i = 0;
      const step = (): void => {
        if (i < frame.length && !sock.destroyed) { sock.write(frame.subarray(i, i + 1)); i += 1; setTimeout(step, 1); }
      };
      step();
    });
    const { ep } = endpoint(s, { defaultTimeoutMs: 2000 });
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 0, count: 3 }))).toEqual([1, 2, 3]);
  });

  it('a request times out at its own deadline, not at the deadline of the answered request before it', async () => {
    // Address 0 is answered after 150 ms, address 9 never; both are queued at once, and one timer
    // serves the endpoint's timeouts (armed for the first request's deadline when the second goes out).
    const s = await server((req, sock) => {
      if (req.address === 0) setTimeout(() => sock.write(registersFrame(req, [mapValue(req.unitId, req.address)])), 150);
      else if (req.address !== 9) sock.write(registersFrame(req, [mapValue(req.unitId, req.address)]));
    });
    const { ep } = endpoint(s, { defaultTimeoutMs: 300 });
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 1, count: 1 }))).toEqual([mapValue(1, 1)]); // connected
    const first = ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 });
    const second = codeOf(ep.read({ unitId: 1, table: 'holding', address: 9, count: 1 }));
    expect(Array.from(await first)).toEqual([mapValue(1, 0)]);
    const sent = performance.now(); // the second request goes out as the first one's answer is read
    expect(await second).toBe('timeout');
    // Not at the first request's deadline (~150 ms from here) but a full timeout after its own send (timer grain 1 ms).
    expect(performance.now() - sent).toBeGreaterThanOrEqual(295);
    // The endpoint goes on: idle, then a request answered at once.
    await new Promise((r) => setTimeout(r, 50));
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 2, count: 1 }))).toEqual([mapValue(1, 2)]);
  });

  it('a late response to a timed-out request is a stray, never the answer to the next request', async () => {
    let late: Buffer | undefined;
    const s = await server((req, sock) => {
      if (req.address === 100) {
        // Freeze: remember the right answer, send it only together with the next one.
        late = registersFrame(req, [0xdead]);
        return;
      }
      const frame = registersFrame(req, [mapValue(req.unitId, req.address)]);
      // The stale reply and the fresh one arrive coalesced in one TCP segment, then split oddly.
      const both = Buffer.concat([late ?? Buffer.alloc(0), frame]);
      sock.write(both.subarray(0, 5));
      setTimeout(() => sock.write(both.subarray(5)), 5);
    });
    const { ep, rec } = endpoint(s, { defaultTimeoutMs: 100 });
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 100, count: 1 }))).toBe('timeout');
    // Same unit, same count: with mod-256 ids or "next reply wins" the 0xdead would be accepted here.
    const fresh = await ep.read({ unitId: 1, table: 'holding', address: 101, count: 1 });
    expect(Array.from(fresh)).toEqual([mapValue(1, 101)]);
    expect(rec.strays).toBe(1);
    expect(ep.stats().strays).toBe(1);
    expect(s.accepted).toBe(1);
  });

  it('uses 16-bit transaction ids: no reuse within the last 65,535 requests, and the next one is not last + 1', async () => {
    const s = await server();
    const { ep } = endpoint(s);
    for (let i = 0; i < 300; i++) await ep.read({ unitId: 1, table: 'holding', address: i, count: 1 });
    const tids = s.requests.map((r) => r.tid);
    expect(new Set(tids).size).toBe(300);
    expect(tids.every((t) => t >= 1 && t <= 0xffff)).toBe(true);
    // A device guessing "the next id" from the last one would be right about once in 65,535 tries.
    const successors = tids.slice(1).filter((t, i) => t === ((tids[i] ?? 0) + 1) % 0x10000).length;
    expect(successors).toBeLessThan(5);
  });
});

describe('ModbusEndpoint: prepared reads (frames compiled once, transaction id stamped per send)', () => {
  it('sends the bytes of a plain read with a fresh transaction id each time, and decodes every answer', async () => {
    const s = await server();
    const { ep } = endpoint(s);
    await ep.read({ unitId: 5, table: 'input', address: 30, count: 3 });
    const prepared = ep.prepareRead({ unitId: 5, table: 'input', address: 30, count: 3 });
    for (let i = 0; i < 20; i++) expect(Array.from(await ep.read(prepared))).toEqual([5030, 5031, 5032]);
    const [plain, ...rest] = s.requests;
    expect(rest).toHaveLength(20);
    for (const r of rest) expect([r.unitId, r.fc, r.pdu.toString('hex')]).toEqual([plain?.unitId, plain?.fc, plain?.pdu.toString('hex')]);
    expect(new Set(s.requests.map((r) => r.tid)).size).toBe(21);
  });

  it('the same prepared read twice at once: each request its own frame and id, both answered', async () => {
    const s = await server();
    const { ep } = endpoint(s);
    const prepared = ep.prepareRead({ unitId: 2, table: 'holding', address: 7, count: 2 });
    const got = await Promise.all([ep.read(prepared), ep.read(prepared), ep.read(prepared)]);
    expect(got.map((g) => Array.from(g))).toEqual([[2007, 2008], [2007, 2008], [2007, 2008]]);
    expect(new Set(s.requests.map((r) => r.tid)).size).toBe(3);
    expect(Array.from(await ep.read(prepared))).toEqual([2007, 2008]);
  });

  it('a prepared read that breaks the limits is refused at every read, never sent', async () => {
    const s = await server();
    const { ep } = endpoint(s);
    const bad = ep.prepareRead({ unitId: 1, table: 'holding', address: 65535, count: 2 });
    expect(await codeOf(ep.read(bad))).toBe('invalid_request');
    expect(await codeOf(ep.read(bad))).toBe('invalid_request');
    expect(s.requests).toHaveLength(0);
  });

  it('after a timeout the late answer is a stray, and the next send of the same prepared read gets its own answer', async () => {
    let late: Buffer | undefined;
    let n = 0;
    const s = await server((req, sock) => {
      n += 1;
      const frame = registersFrame(req, [n === 1 ? 0xdead : mapValue(req.unitId, req.address)]);
      if (n === 1) { late = frame; return; }
      sock.write(Buffer.concat([late ?? Buffer.alloc(0), frame]));
      late = undefined;
    });
    const { ep, rec } = endpoint(s, { defaultTimeoutMs: 100 });
    const prepared = ep.prepareRead({ unitId: 1, table: 'holding', address: 9, count: 1 });
    expect(await codeOf(ep.read(prepared))).toBe('timeout');
    expect(Array.from(await ep.read(prepared))).toEqual([mapValue(1, 9)]);
    expect(rec.strays).toBe(1);
    expect(s.requests[0]?.tid).not.toBe(s.requests[1]?.tid);
  });

  it("another endpoint's prepared read is an ordinary request here", async () => {
    const s = await server();
    const { ep } = endpoint(s);
    const { ep: other } = endpoint(s);
    const prepared = other.prepareRead({ unitId: 4, table: 'holding', address: 1, count: 1 });
    expect(Array.from(await ep.read(prepared))).toEqual([4001]);
  });
});

describe('ModbusEndpoint: exception classes', () => {
  const cases: Array<[number, string]> = [
    [1, 'exception_illegal_function'], [2, 'exception_illegal_address'], [3, 'exception_illegal_value'],
    [4, 'exception_device_failure'], [5, 'exception_busy'], [6, 'exception_busy'],
    [10, 'exception_gateway_path'], [11, 'exception_gateway_target'], [42, 'exception_other'],
  ];
  it.each(cases)('exception %i -> %s, exception code kept, connection kept', async (code, expected) => {
    const s = await server((req, sock) => {
      if (req.unitId === 9) sock.write(exceptionFrame(req, code));
      else answerFromMap(req, sock, s);
    });
    const { ep, rec } = endpoint(s);
    const err = await ep.read({ unitId: 9, table: 'holding', address: 0, count: 2 }, { deviceId: 'inv-9' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusError);
    const me = err as ModbusError;
    expect(me.code).toBe(expected);
    expect(me.exceptionCode).toBe(code);
    expect(me.device).toBe('inv-9');
    expect(me.message).toContain('inv-9');
    expect(me.message).toContain('holding 0+2');
    // Neighbours are unaffected and the connection stays up: exceptions never reconnect.
    expect(Array.from(await ep.read({ unitId: 2, table: 'holding', address: 5, count: 1 }))).toEqual([2005]);
    expect(s.accepted).toBe(1);
    expect(rec.events[0]?.error).toBe(expected);
    const gateway = code === 10 || code === 11;
    // 10/11: the gateway cannot reach the unit, so polls to it are refused locally for a while.
    expect(await codeOf(ep.read({ unitId: 9, table: 'holding', address: 0, count: 2 }))).toBe(gateway ? 'unit_backed_off' : expected);
    expect(s.requests.filter((r) => r.unitId === 9)).toHaveLength(gateway ? 1 : 2);
    // Writes/read-backs ('high') may still probe a backed-off unit.
    if (gateway) expect(await codeOf(ep.read({ unitId: 9, table: 'holding', address: 0, count: 2 }, { priority: 'high' }))).toBe(expected);
  });
});

describe('ModbusEndpoint: malformed input never crashes', () => {
  it('short frames, wrong MBAP lengths and wrong byte counts are malformed_response for the unit asked; the line survives', async () => {
    const bad: Array<(tid: number, unit: number) => Buffer> = [
      (t, u) => mbap(t, u, [3]),                        // PDU with no byte count
      (t, u) => mbap(t, u, [3, 4, 0, 1]),               // byte count 4, 2 bytes present
      (t, u) => mbap(t, u, [3, 2, 0, 1]),               // byte count 2 for a 2-register read
      (t, u) => mbap(t, u, [0x83]),                     // exception with no code
      (t, u) => mbap(t, u, [0x83, 2, 9]),               // exception frame too long
    ];
    let n = 0;
    const s = await server((req, sock) => {
      if (req.address === 0) sock.write((bad[n++ % bad.length] ?? bad[0]!)(req.tid, req.unitId));
      else answerFromMap(req, sock, s);
    });
    const { ep, rec } = endpoint(s);
    for (let i = 0; i < bad.length; i++) {
      expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 2 }))).toBe('malformed_response');
    }
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 1, count: 1 }))).toEqual([1001]);
    expect(s.accepted).toBe(1);
    expect(rec.events.filter((e) => e.error === 'malformed_response')).toHaveLength(bad.length);
  });

  it('an answer with the right transaction id but another function code or unit id is a stray, never the answer', async () => {
    const s = await server((req, sock) => {
      if (req.address === 0) sock.write(mbap(req.tid, req.unitId, [4, 2, 0x1e, 0x61]));          // FC4 for an FC3 read
      else if (req.address === 1) sock.write(registersFrame({ ...req, unitId: req.unitId + 1 }, [7777]));  // unit 2's tag
      else answerFromMap(req, sock, s);
    });
    const { ep, rec } = endpoint(s, { defaultTimeoutMs: 100, unitBackoff: { failuresBeforeBackoff: 100 } });
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 1, count: 1 }))).toBe('timeout');
    expect(rec.strays).toBe(2);
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 2, count: 1 }))).toEqual([1002]);
    expect(s.accepted).toBe(1);
  });

  it('a garbled MBAP header fails the request it answers, is counted, and the stream resynchronises on the same connection', async () => {
    let garble = true;
    const s = await server((req, sock) => {
      if (garble) {
        garble = false;
        sock.write(Buffer.from([req.tid >> 8, req.tid & 0xff, 0x12, 0x34, 0xff, 0xff, 1, 3, 2]));
      } else {
        answerFromMap(req, sock, s);
      }
    });
    const { ep, rec } = endpoint(s);
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('malformed_response');
    expect(rec.malformedCount).toBeGreaterThanOrEqual(1);
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 2, count: 1 }))).toEqual([1002]);
    expect(s.accepted).toBe(1);
  });

  it('garbage is charged to the unit whose request was in flight when it arrived, its answer still taken; with none in flight, to the endpoint only', async () => {
    const GARBAGE = Buffer.from([0xff, 0x00, 0x13, 0x37, 0x42]);
    let unasked: ((b: Buffer) => void) | undefined;
    const s = await server((req, sock) => {
      unasked = (b) => sock.write(b);
      const good = registersFrame(req, Array.from({ length: req.count }, (_, i) => mapValue(req.unitId, req.address + i)));
      if (req.unitId === 1) sock.write(Buffer.concat([GARBAGE, good]));
      // Unit 4's answer comes with a broken frame's tail stuck behind it: it arrived while unit 4 was asked.
      else if (req.unitId === 4) sock.write(Buffer.concat([good, Buffer.from([0x00, 0x07, 0x00, 0x00, 0x00])]));
      else answerFromMap(req, sock, s);
    });
    const { ep, rec } = endpoint(s);
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 0, count: 2 }))).toEqual([1000, 1001]);
    expect(rec.garbageUnits).toEqual([1]);
    expect(rec.events.map((e) => [e.unitId, e.error])).toEqual([[1, undefined]]);
    // Unit 4's trailing bytes wait in the buffer (they might start a frame) and are scanned while
    // unit 2 is asked: they are still unit 4's.
    expect(Array.from(await ep.read({ unitId: 4, table: 'holding', address: 0, count: 1 }))).toEqual([4000]);
    expect(Array.from(await ep.read({ unitId: 2, table: 'holding', address: 0, count: 1 }))).toEqual([2000]);
    await waitFor(() => rec.malformedCount >= 2, 2000);
    expect(rec.garbageUnits).toEqual([1, 4]);
    // Nothing in flight: counted on the endpoint, charged to no unit.
    const before = rec.malformedCount;
    unasked?.(GARBAGE);
    await sleep(50);
    expect(Array.from(await ep.read({ unitId: 3, table: 'holding', address: 0, count: 1 }))).toEqual([3000]);
    await waitFor(() => rec.malformedCount > before, 2000);
    expect(rec.garbageUnits).toEqual([1, 4]);
    expect(rec.events.every((e) => e.error === undefined)).toBe(true);
    expect(s.accepted).toBe(1);
  });

  it('survives a stream of random bytes without any exception escaping', async () => {
    let seed = 7;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    const s = await server((req, sock) => {
      const len = rnd() % 20;
      const junk = Buffer.alloc(len);
      for (let i = 0; i < len; i++) junk[i] = rnd() & 0xff;
      // Half the time a plausible header with our tid and random PDU, else raw junk.
      sock.write(rnd() % 2 === 0 ? mbap(req.tid, req.unitId, junk) : junk);
    });
    const { ep, rec } = endpoint(s, { defaultTimeoutMs: 40, timeoutsBeforeReconnect: 1000, unitBackoff: { failuresBeforeBackoff: 1000 } });
    const codes = new Set<string>();
    for (let i = 0; i < 120; i++) codes.add(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 3 })));
    expect([...codes].every((c) => !c.startsWith('not a ModbusError'))).toBe(true);
    // Junk never passes as an answer: a read of 3 registers needs our tid, unit, FC3, length 9 and byte count 6.
    expect(codes.has('ok')).toBe(false);
    expect(rec.malformedCount + rec.strays).toBeGreaterThan(60);
    // Resynchronised in the stream, never by reconnecting.
    expect(s.accepted).toBe(1);
    expect(s.requests).toHaveLength(120);
  });
});

describe('ModbusEndpoint: queue, quirks, connections', () => {
  it('many unit ids share exactly one connection, one request in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const s = await server((req, sock) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => { inFlight -= 1; answerFromMap(req, sock, s); }, 2);
    });
    s.maxClients = 1;
    const { ep } = endpoint(s);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => ep.read({ unitId: 1 + (i % 10), table: 'holding', address: i, count: 1 })));
    results.forEach((r, i) => expect(r[0]).toBe(mapValue(1 + (i % 10), i)));
    expect(s.accepted).toBe(1);
    expect(maxInFlight).toBe(1);
  });

  it("'high' requests (writes, read-backs) go before queued polls", async () => {
    const s = await server((req, sock) => setTimeout(() => answerFromMap(req, sock, s), 5));
    const { ep } = endpoint(s);
    await ep.read({ unitId: 1, table: 'holding', address: 50, count: 1 });
    s.requests.length = 0;
    const polls = Array.from({ length: 5 }, (_, i) => ep.read({ unitId: 1, table: 'holding', address: i, count: 1 }));
    const write = ep.write(1, checkedWrite('holding', 99, 1), { priority: 'high' });
    await Promise.all([...polls, write]);
    // The first poll was already on the wire; the write overtakes the other four.
    expect(s.requests.map((r) => r.address)).toEqual([0, 99, 1, 2, 3, 4]);
  });

  it('honours connect_delay_ms and request_gap_ms', async () => {
    const s = await server();
    const { ep } = endpoint(s, { connectDelayMs: 150 });
    ep.configureUnit(1, { requestGapMs: 60 });
    await Promise.all([0, 1, 2].map((a) => ep.read({ unitId: 1, table: 'holding', address: a, count: 1 })));
    const [c] = s.connectTimes;
    const [r0, r1, r2] = s.requests;
    expect(r0!.at - c!).toBeGreaterThanOrEqual(140);
    expect(r1!.at - r0!.at).toBeGreaterThanOrEqual(55);
    expect(r2!.at - r1!.at).toBeGreaterThanOrEqual(55);
  });

  it('a dead unit is backed off on its own; neighbours keep answering on the same connection', async () => {
    const s = await server((req, sock) => { if (req.unitId !== 7) answerFromMap(req, sock, s); });
    const { ep } = endpoint(s, { defaultTimeoutMs: 50, unitBackoff: { baseMs: 1000, maxMs: 5000 } });
    expect(await codeOf(ep.read({ unitId: 7, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await codeOf(ep.read({ unitId: 7, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await codeOf(ep.read({ unitId: 7, table: 'holding', address: 0, count: 1 }))).toBe('unit_backed_off');
    expect(ep.unitHealth(7)?.backedOffUntil).toBeGreaterThan(performance.now());
    expect(Array.from(await ep.read({ unitId: 8, table: 'holding', address: 0, count: 1 }))).toEqual([8000]);
    expect(s.requests.filter((r) => r.unitId === 7)).toHaveLength(2);
    expect(s.accepted).toBe(1);
  });

  it('reconnects after the server restarts, with backoff visible in timing, and calls onConnect', async () => {
    const s1 = await server();
    const port = s1.port;
    // random() = 1: every backoff draws its ceiling, so the schedule is 100, 200, 400 ms.
    const { ep } = endpoint(s1, { reconnectBaseMs: 100, reconnectMaxMs: 400, random: () => 1 });
    let connects = 0;
    ep.onConnect(() => { connects += 1; });
    await ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 });
    expect(connects).toBe(1);
    const down = performance.now();
    await s1.close();
    expect(await waitFor(() => !ep.connected)).toBe(true);
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('disconnected');
    await sleep(500); // attempts at ~100 ms and ~300 ms fail (connection refused); the next is ~700 ms
    const s2 = await startRawServer(answerFromMap, port);
    cleanups.push(() => s2.close());
    expect(await waitFor(() => ep.connected, 3000)).toBe(true);
    const back = performance.now() - down;
    expect(back).toBeGreaterThanOrEqual(650);
    expect(connects).toBe(2);
    expect(Array.from(await ep.read({ unitId: 1, table: 'holding', address: 3, count: 1 }))).toEqual([1003]);
  });

  it('a silent connection is dropped after consecutive timeouts', async () => {
    const s = await server(() => undefined);
    const { ep } = endpoint(s, { defaultTimeoutMs: 30, timeoutsBeforeReconnect: 3, unitBackoff: { failuresBeforeBackoff: 100 } });
    for (let u = 1; u <= 3; u++) expect(await codeOf(ep.read({ unitId: u, table: 'holding', address: 0, count: 1 }))).toBe('timeout');
    expect(await waitFor(() => s.accepted === 2)).toBe(true);
  });

  it('close() rejects what is queued with closed and later calls too', async () => {
    const s = await server(() => undefined);
    const { ep } = endpoint(s, { defaultTimeoutMs: 5000 });
    const a = codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }));
    const b = codeOf(ep.read({ unitId: 1, table: 'holding', address: 1, count: 1 }));
    await waitFor(() => s.requests.length === 1);
    await ep.close();
    expect(await a).toBe('closed');
    expect(await b).toBe('closed');
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('closed');
  });

  it('connect failures are reported as connect_failed and the endpoint keeps retrying', async () => {
    const s = await server();
    const port = s.port;
    await s.close();
    const { ep } = endpoint({ ...s, port }, { reconnectBaseMs: 20, reconnectMaxMs: 40 });
    expect(await codeOf(ep.read({ unitId: 1, table: 'holding', address: 0, count: 1 }))).toBe('connect_failed');
    expect(await waitFor(() => ep.stats().reconnectAttempt >= 2, 10_000)).toBe(true);
  });
});
