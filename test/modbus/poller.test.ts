import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import {
  exceptionFrame, registersFrame, sleep, startRawServer, waitFor, type Handler, type RawServer,
} from './endpoint-helpers.js';
import { flatten, testDevice, testMeter, testProfile, testRegisters, testSite } from './poller-fixtures.js';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import type { DeviceConfig } from '../../src/config/site-types.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const serveTest: Handler = (req, sock) => sock.write(registersFrame(req, testRegisters(req.address, req.count)));

async function server(handler: Handler = serveTest): Promise<RawServer> {
  const s = await startRawServer(handler);
  cleanups.push(() => s.close());
  return s;
}

function pollers(devices: DeviceConfig[], profile?: DeviceProfile, endpointDefaults = { reconnectBaseMs: 50, reconnectMaxMs: 200 }) {
  const { provider, reader } = testMeter();
  const set = new PollerSet(testSite(devices, profile), {
    clock: systemClock, logger: silentLogger(), meter: provider.getMeter('test'), endpointDefaults,
  });
  cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
  return { set, reader, collect: async () => flatten((await reader.collect()).resourceMetrics) };
}

describe('pollers: values, gauges, grid samples', () => {
  it('decodes every point with its scale factor and exports one gauge per metric from the snapshot', async () => {
    const s = await server();
    const { set, collect } = pollers([testDevice('inv-1', s.port, 1, { role: 'pv-east' })]);
    set.start();
    expect(await waitFor(() => set.snapshot.values('inv-1').size === 5)).toBe(true);
    const v = (id: string): unknown => set.snapshot.get('inv-1', id)?.value;
    expect(v('w')).toBe(123.4);
    expect(v('hz')).toBe(50.01);
    expect(v('wh')).toBe(70000);
    expect(v('temp')).toBe(21.5);

    const before = s.requests.length;
    const pts = await collect();
    // Collection reads the snapshot only: no Modbus request is caused by it.
    expect(s.requests.length - before).toBeLessThanOrEqual(2); // at most the polls due meanwhile
    const power = pts.find((p) => p.name === 'ems.device.ac_power');
    expect(power).toMatchObject({ unit: 'W', value: 123.4, attrs: { device_id: 'inv-1', zone: 'zone-a', role: 'pv-east', point: 'w' } });
    expect(pts.find((p) => p.name === 'ems.device.frequency')?.value).toBe(50.01);
    expect(pts.find((p) => p.name === METRICS.modbusDeviceUp)).toMatchObject({ value: 1, attrs: { device_id: 'inv-1', zone: 'zone-a' } });
    // Site identity is on the resource, never on a data point; the scale factor is not a metric.
    expect(pts.every((p) => !('site' in p.attrs) && p.attrs['point'] !== 'w_sf')).toBe(true);
    expect(pts.find((p) => p.name === METRICS.modbusRequests)?.value).toBeGreaterThan(0);
    expect(pts.find((p) => p.name === METRICS.modbusRequestDuration)?.value).toBeGreaterThan(0);

    const grid = set.gridSamples();
    expect(grid.map((g) => [g.point, g.role, g.value, g.unit]).sort()).toEqual([['hz', 'frequency', 50.01, 'Hz'], ['w', 'generation', 123.4, 'W']]);
    expect(Math.abs((grid[0]?.observedAtMs ?? 0) - Date.now())).toBeLessThan(2000);
  });

  it('a changed register or a changed scale factor alone is decoded afresh (no stale reuse)', async () => {
    const regs = { w: 1234, sf: 0xffff };
    const s = await server((req, sock) => {
      const words = testRegisters(req.address, req.count, regs.w);
      if (req.address === 0) words[1] = regs.sf;
      sock.write(registersFrame(req, words));
    });
    const { set } = pollers([testDevice('inv-1', s.port, 1, { poll_interval_ms: 50 })]);
    set.start();
    expect(await waitFor(() => set.snapshot.get('inv-1', 'w')?.value === 123.4)).toBe(true);
    regs.sf = 0xfffe; // -2: same value register, new scale factor
    expect(await waitFor(() => set.snapshot.get('inv-1', 'w')?.value === 12.34)).toBe(true);
    regs.w = 999;
    expect(await waitFor(() => set.snapshot.get('inv-1', 'w')?.value === 9.99)).toBe(true);
    regs.sf = 0x8000; // scale factor "not implemented": the value goes, it is not kept
    expect(await waitFor(() => set.snapshot.get('inv-1', 'w') === undefined)).toBe(true);
    regs.sf = 0xffff; // back to registers decoded two answers ago: decoded again, not the last result
    regs.w = 1234;
    expect(await waitFor(() => set.snapshot.get('inv-1', 'w')?.value === 123.4)).toBe(true);
    // The live values read the registers of the last answer (kept as a copy).
    expect(set.lastReads('inv-1')?.[0]?.registers?.slice(0, 2)).toEqual([1234, 0xffff]);
  });

  it('a collection with no polling in between does not send any request', async () => {
    const s = await server();
    const { set, collect } = pollers([testDevice('inv-1', s.port, 1, { poll_interval_ms: 60_000 })]);
    set.start();
    expect(await waitFor(() => set.snapshot.values('inv-1').size === 5)).toBe(true);
    const n = s.requests.length;
    for (let i = 0; i < 5; i++) await collect();
    expect(s.requests.length).toBe(n);
  });

  it('sentinels yield no value and no data point; other points still report', async () => {
    const s = await server((req, sock) => sock.write(registersFrame(req, testRegisters(req.address, req.count, 0x8000))));
    const { set, collect } = pollers([testDevice('inv-1', s.port, 1)]);
    set.start();
    expect(await waitFor(() => set.snapshot.get('inv-1', 'hz') !== undefined)).toBe(true);
    expect(set.snapshot.get('inv-1', 'w')).toBeUndefined();
    const pts = await collect();
    expect(pts.some((p) => p.name === 'ems.device.ac_power')).toBe(false);
    expect(pts.some((p) => p.name === 'ems.device.frequency')).toBe(true);
    expect(set.gridSamples().map((g) => g.point)).toEqual(['hz']);
  });

  it('values of a failed read leave the snapshot: stale is never reported as fresh', async () => {
    let fail = false;
    const s = await server((req, sock) => (fail ? sock.write(exceptionFrame(req, 4)) : serveTest(req, sock, s)));
    const { set, collect } = pollers([testDevice('inv-1', s.port, 1)]);
    set.start();
    expect(await waitFor(() => set.snapshot.values('inv-1').size === 5)).toBe(true);
    fail = true;
    expect(await waitFor(() => set.snapshot.values('inv-1').size === 0)).toBe(true);
    await collect(); // drain delta gauges observed before the failure
    await sleep(250);
    const pts = await collect();
    expect(pts.some((p) => p.name.startsWith('ems.device.'))).toBe(false);
    expect(pts.find((p) => p.name === METRICS.modbusDeviceUp)?.value).toBe(0);
    expect(pts.find((p) => p.name === METRICS.modbusErrors && p.attrs['error_type'] === 'exception_device_failure')?.value).toBeGreaterThan(0);
    const st = set.status()[0];
    expect(st).toMatchObject({ deviceId: 'inv-1', up: false, lastError: { code: 'exception_device_failure' } });
    expect(st?.lastGoodAgeMs).toBeGreaterThan(0);
    fail = false;
    expect(await waitFor(() => set.status()[0]?.up === true)).toBe(true);
  });

  it('exceptions 1-3 are configuration errors: that read is parked, the rest keeps polling', async () => {
    const s = await server((req, sock) => (req.address === 100 ? sock.write(exceptionFrame(req, 2)) : serveTest(req, sock, s)));
    const { set } = pollers([testDevice('inv-1', s.port, 1, { poll_interval_ms: 100 })]);
    set.start();
    // Five polls of the healthy read later, the parked one has still been asked once only.
    expect(await waitFor(() => s.requests.filter((r) => r.address === 0).length >= 5, 10_000)).toBe(true);
    expect(s.requests.filter((r) => r.address === 100)).toHaveLength(1);
    expect(set.snapshot.get('inv-1', 'temp')).toBeUndefined();
    expect(set.snapshot.get('inv-1', 'w')?.value).toBe(123.4);
    expect(set.status()[0]).toMatchObject({ up: true, lastError: { code: 'exception_illegal_address' } });
  });
});

describe('pollers: plausibility and live values', () => {
  it('a value outside valid_range is withheld and counted on every poll, logged once when it turns implausible and once when it is back', async () => {
    let hz = 9999; // 99.99 Hz: outside [45, 65]
    const s = await server((req, sock) => sock.write(registersFrame(req, testRegisters(req.address, req.count).map((w, i) => (req.address + i === 2 ? hz : w)))));
    const profile = testProfile({ points: testProfile().points.map((p) => (p.id === 'hz' ? { ...p, valid_range: [45, 65] as [number, number] } : p)) });
    const lines: Array<Record<string, unknown>> = [];
    const dest = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb(); } });
    const { provider, reader } = testMeter();
    const set = new PollerSet(testSite([testDevice('inv-1', s.port, 1, { poll_interval_ms: 50 })], profile), {
      clock: systemClock, logger: pino({ level: 'info' }, dest), meter: provider.getMeter('test'), endpointDefaults: { reconnectBaseMs: 50, reconnectMaxMs: 200 },
    });
    cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
    set.start();
    expect(await waitFor(() => (set.status()[0]?.cycles ?? 0) >= 5)).toBe(true);
    expect(set.snapshot.get('inv-1', 'hz')).toBeUndefined();
    expect(set.snapshot.get('inv-1', 'w')?.value).toBe(123.4);
    expect(set.status()[0]?.up).toBe(true);
    const implausible = (): Array<Record<string, unknown>> => lines.filter((l) => l['error_type'] === 'implausible');
    expect(implausible()).toHaveLength(1);
    expect(implausible()[0]).toMatchObject({ level: 40, device: 'inv-1', point: 'hz', value: 99.99, valid_range: [45, 65], registers: ['0x270f'] });
    expect(implausible()[0]?.['msg']).toBe('implausible value withheld: hz = 99.99 outside valid_range [45, 65] (registers 0x270f); check the address, the scale and the valid_range');
    expect(set.liveValues('inv-1')?.find((v) => v.id === 'hz')).toMatchObject({ state: 'implausible', reason: '99.99 outside valid_range [45, 65]; check the address, the scale and the valid_range' });
    const errors = (pts: Awaited<ReturnType<typeof flatten>>): number => pts.find((p) => p.name === METRICS.modbusErrors && p.attrs['error_type'] === 'implausible')?.value ?? 0;
    const counted = errors(flatten((await reader.collect()).resourceMetrics));
    expect(counted).toBeGreaterThanOrEqual(5);
    expect(flatten((await reader.collect()).resourceMetrics).some((p) => p.name === 'ems.device.frequency')).toBe(false);
    hz = 5001;
    expect(await waitFor(() => set.snapshot.get('inv-1', 'hz')?.value === 50.01)).toBe(true);
    expect(lines.filter((l) => l['msg'] === 'value back in its valid_range: exported again')).toMatchObject([{ point: 'hz', value: 50.01 }]);
    expect(implausible()).toHaveLength(1);
    hz = 1;
    expect(await waitFor(() => implausible().length === 2)).toBe(true);
  });

  it('live values: each point with value, labels or the reason; the raw registers of the last read; a failed read says so', async () => {
    let fail = false;
    const s = await server((req, sock) => (fail ? sock.write(exceptionFrame(req, 4)) : serveTest(req, sock, s)));
    const profile = testProfile({ points: [...testProfile().points, { id: 'st', name: 'St', table: 'holding', address: 101, type: 'uint16', enum: { 0: 'OFF', 4: 'MPPT' } }] });
    const { set } = pollers([testDevice('inv-1', s.port, 1, { poll_interval_ms: 100 })], profile);
    expect(set.liveValues('inv-1')).toBeUndefined(); // not started: not polled
    set.start();
    expect(set.liveValues('inv-1')?.every((v) => v.state === 'not_read')).toBe(true);
    expect(await waitFor(() => set.snapshot.get('inv-1', 'temp') !== undefined)).toBe(true);
    const v = new Map(set.liveValues('inv-1', true)?.map((x) => [x.id, x]));
    expect(v.get('w')).toMatchObject({ state: 'ok', value: 123.4, unit: 'W', registers: [1234] });
    expect(v.get('st')).toMatchObject({ state: 'ok', value: 0, label: 'OFF', name: 'St' });
    expect(v.get('wh')).toMatchObject({ state: 'ok', value: 70000, registers: [1, 4464], order: 'ABCD', orders: { ABCD: 70000, CDAB: 4464 * 65536 + 1 } });
    expect(set.lastReads('inv-1')).toEqual([
      expect.objectContaining({ table: 'holding', address: 0, count: 5, registers: [1234, 0xffff, 5001, 1, 4464] }),
      expect.objectContaining({ table: 'holding', address: 100, count: 2, registers: [215, 0] }),
    ]);
    fail = true;
    expect(await waitFor(() => set.liveValues('inv-1')?.every((x) => x.state === 'failed_read') === true)).toBe(true);
    expect(set.liveValues('inv-1')?.[0]?.reason).toMatch(/^exception_device_failure: /);
    expect(set.lastReads('inv-1')?.[0]).toMatchObject({ registers: null, error: expect.stringMatching(/^exception_device_failure/) });
  });
});

describe('pollers: timeouts, late responses, dead units, connections', () => {
  it('a timeout followed by a late response never reports a wrong value', async () => {
    // Every other request is answered late (after the client's timeout) with a poisoned value.
    let n = 0;
    const s = await server((req, sock) => {
      if (req.address === 0) n += 1;
      if (n % 2 === 0 && req.address === 0) {
        setTimeout(() => { if (!sock.destroyed) sock.write(registersFrame(req, testRegisters(req.address, req.count, 9999))); }, 150);
      } else {
        serveTest(req, sock, s);
      }
    });
    const { set, collect } = pollers([testDevice('inv-1', s.port, 1, { poll_interval_ms: 100 })], testProfile({}, { timeout_ms: 60 }));
    set.start();
    // Watch every value until a dozen polls have been answered, some of them late (bounded in time).
    const seen = new Set<unknown>();
    const end = performance.now() + 15_000;
    while (performance.now() < end && (n < 12 || set.metrics.totals().strays < 2)) {
      seen.add(set.snapshot.get('inv-1', 'w')?.value);
      await sleep(3);
    }
    expect(n).toBeGreaterThanOrEqual(12);
    expect(seen.has(999.9)).toBe(false);
    expect(seen.has(123.4)).toBe(true);
    const pts = await collect();
    expect(pts.find((p) => p.name === METRICS.modbusStrayResponses)?.value).toBeGreaterThan(0);
    expect(pts.find((p) => p.name === METRICS.modbusErrors && p.attrs['error_type'] === 'timeout')?.value).toBeGreaterThan(0);
  });

  it('a dead unit beside healthy ones: healthy units keep >= 90% of their poll rate on the one connection', async () => {
    const s = await server((req, sock) => { if (req.unitId !== 3) serveTest(req, sock, s); });
    // The control: the same device alone on a connection of its own, polled in the same run. The
    // healthy neighbours of the dead unit are compared with it, not with the wall clock, so a loaded
    // machine slows both alike and the ratio still tells whether the dead unit cost them polls.
    const control = await server();
    const interval = 200;
    const devices = [1, 2, 3, 4].map((u) => testDevice(`dev-${u}`, s.port, u, { poll_interval_ms: interval }));
    devices.push(testDevice('control', control.port, 1, { poll_interval_ms: interval }));
    const { set } = pollers(devices, testProfile({ points: testProfile().points.slice(0, 4) }, { timeout_ms: 150 }));
    set.start();
    // Past start-up (the dead unit's first timeouts and its backoff), then count 15 control polls.
    expect(await waitFor(() => set.status().find((x) => x.deviceId === 'dev-3')?.up === false, 10_000)).toBe(true);
    expect(await waitFor(() => control.requests.length >= 3, 10_000)).toBe(true);
    const t0 = performance.now();
    const count = (srv: RawServer, u: number): number => srv.requests.filter((r) => r.unitId === u && r.at >= t0).length;
    expect(await waitFor(() => count(control, 1) >= 15, 30_000)).toBe(true);
    const reference = count(control, 1);
    for (const u of [1, 2, 4]) expect(count(s, u), `unit ${u} vs the control's ${reference}`).toBeGreaterThanOrEqual(Math.floor(0.9 * reference));
    // The dead unit is probed rarely (backed off), not every cycle.
    expect(count(s, 3)).toBeLessThanOrEqual(4);
    expect(s.accepted).toBe(1);
    const st = set.status().find((x) => x.deviceId === 'dev-3');
    expect(st?.up).toBe(false);
    expect(['timeout', 'unit_backed_off']).toContain(st?.lastError?.code);
    expect(set.status().filter((x) => x.up).length).toBe(4); // three neighbours and the control
  });

  it('a dead device logs its state changes, not a line per poll', async () => {
    const s = await server((req, sock) => { if (req.unitId !== 9) serveTest(req, sock, s); });
    const lines: Array<{ level: number; msg: string; device?: string }> = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
    const { provider } = testMeter();
    const set = new PollerSet(testSite([testDevice('dead', s.port, 9, { poll_interval_ms: 50 }), testDevice('ok', s.port, 1, { poll_interval_ms: 50 })],
      testProfile({ points: testProfile().points.slice(0, 4) }, { timeout_ms: 40 })), {
      clock: systemClock, logger: pino({ level: 'info' }, sink), meter: provider.getMeter('t'),
    });
    cleanups.push(async () => { await set.stop(); await provider.shutdown(); });
    set.start();
    const cycles = (): number => set.status().find((x) => x.deviceId === 'dead')?.cycles ?? 0;
    expect(await waitFor(() => cycles() >= 15, 15_000)).toBe(true);
    const deadLines = lines.filter((l) => l.device === 'dead' && l.level >= 40);
    expect(deadLines.map((l) => l.msg)).toContain('device down');
    expect(deadLines.length).toBeLessThanOrEqual(4);
  });

  it('a device that accepts only one connection: three devices behind it share exactly one', async () => {
    const s = await server();
    s.maxClients = 1;
    const { set } = pollers([1, 2, 3].map((u) => testDevice(`d${u}`, s.port, u)));
    set.start();
    expect(await waitFor(() => set.status().every((x) => x.up === true))).toBe(true);
    await sleep(300);
    expect(s.accepted).toBe(1);
    expect(s.open).toBe(1);
  });

  it('reconnects after the server restarts; values are absent while it is down', async () => {
    const s1 = await startRawServer(serveTest);
    const port = s1.port;
    const { set } = pollers([testDevice('inv-1', port, 1, { poll_interval_ms: 100 })]);
    set.start();
    expect(await waitFor(() => set.status()[0]?.up === true)).toBe(true);
    await s1.close();
    expect(await waitFor(() => set.status()[0]?.up === false)).toBe(true);
    expect(set.snapshot.values('inv-1').size).toBe(0);
    const s2 = await startRawServer(serveTest, port);
    cleanups.push(() => s2.close());
    expect(await waitFor(() => set.status()[0]?.up === true, 5000)).toBe(true);
    expect(set.snapshot.get('inv-1', 'w')?.value).toBe(123.4);
  });

  it('an overrunning cycle is counted and skipped, never stacked', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const s = await server((req, sock) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => { inFlight -= 1; serveTest(req, sock, s); }, 130);
    });
    const profile = testProfile({ points: testProfile().points.slice(0, 4) }, { timeout_ms: 1000 });
    const { set, collect } = pollers([testDevice('slow', s.port, 1, { poll_interval_ms: 100 })], profile);
    const t0 = performance.now();
    set.start();
    expect(await waitFor(() => (set.status()[0]?.overruns ?? 0) >= 3, 15_000)).toBe(true);
    const elapsed = performance.now() - t0;
    const st = set.status()[0];
    expect(maxInFlight).toBe(1);
    // 130 ms cycles at a 100 ms interval: every other slot is skipped, so a cycle per 200 ms at
    // most; stacked cycles would run one per 130 ms. A loaded machine only makes them fewer.
    expect(st?.cycles).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 2);
    const pts = await collect();
    expect(pts.find((p) => p.name === METRICS.modbusPollOverruns)?.value).toBeGreaterThanOrEqual(3);
  });

  it('start-up is staggered: endpoints spread across the interval, devices behind one endpoint back to back', async () => {
    const servers = await Promise.all([0, 1, 2, 3, 4].map(() => server()));
    const devices = servers.flatMap((s, e) => [1, 2].map((u) => testDevice(`d${e}-${u}`, s.port, u, { poll_interval_ms: 1000 })));
    const { set } = pollers(devices, testProfile({ points: testProfile().points.slice(0, 4) }));
    set.start();
    expect(await waitFor(() => servers.every((s) => s.requests.length >= 2), 3000)).toBe(true);
    const firstAt = servers.map((s) => Math.min(...s.requests.map((r) => r.at)));
    expect(Math.max(...firstAt) - Math.min(...firstAt)).toBeGreaterThan(600);
    // The two units of one endpoint are polled within a few ms of each other.
    for (const s of servers) {
      const [a, b] = [1, 2].map((u) => s.requests.find((r) => r.unitId === u)?.at ?? Infinity);
      expect(Math.abs((a ?? 0) - (b ?? 0))).toBeLessThan(100);
    }
  });
});
