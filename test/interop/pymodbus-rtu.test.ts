// Interop over Modbus RTU with an independent implementation: pymodbus 3.0 (Debian) serving the
// register map of the TCP interop test as a serial RTU server on a socat pseudo-terminal pair
// (transport rtu), and as a TCP server with its RTU framer (rtu_over_tcp). For each transport, in
// one run: exact values for every type and word order, nothing for sentinels; a dead unit on a
// line beside two live ones, whose good cycles are compared with a control line without a dead
// unit; and a CRC error injected on the line (a tap between the gateway and pymodbus flips one
// bit of one answer), counted as crc_error.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import type { DeviceConfig, LoadedSite, ModbusTransport, SerialSettings, SiteConfig } from '../../src/config/site-types.js';
import { PollerSet } from '../../src/modbus/poller-set.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { openPtyPair, type PtyPair } from '../../simulators/modbus/pty.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../modbus/endpoint-helpers.js';
import { flatten, testMeter, type Point } from '../modbus/poller-fixtures.js';
import { hasPeer } from '../peers.js';
import { ABSENT, EXPECTED, pymodbusProfile, startPymodbus, type PymodbusServer } from './pymodbus-fixture.js';

type RtuKind = Exclude<ModbusTransport, 'tcp'>;
const KINDS: RtuKind[] = ['rtu', 'rtu_over_tcp'];
const SERIAL: SerialSettings = { baud: 19200, parity: 'even', stop_bits: 1, data_bits: 8, turnaround_ms: 0 };
// A poll a second, as on site: with the dead unit's timeout (200 ms) and the live units' reads, a
// cycle stays well inside its interval even on a busy machine, so any loss of rate is the dead unit's.
const INTERVAL_MS = 1000;
const P0 = pymodbusProfile('pymodbus-base0', 0);
const P1 = pymodbusProfile('pymodbus-base1', 1);
/** The dead unit: a short timeout, so each of its tries holds the line less than a poll interval. */
const PDEAD = pymodbusProfile('pymodbus-dead', 0, 200);

/** Flips one bit of the n-th answer byte after arm(): a CRC error on the line. */
class Corrupter {
  private left = -1;
  arm(): void { this.left = 3; } // a data byte: the unit id and function code stay right
  apply(chunk: Buffer): Buffer {
    if (this.left < 0 || this.left >= chunk.length) {
      if (this.left >= 0) this.left -= chunk.length;
      return chunk;
    }
    const out = Buffer.from(chunk);
    out[this.left] = (out[this.left] ?? 0) ^ 0x10;
    this.left = -1;
    return out;
  }
}

interface Tap { corrupter: Corrupter; close(): Promise<void> }

/** Between two pty pairs: the gateway's pair and pymodbus's pair, bytes copied both ways. */
async function ptyTap(gatewaySide: PtyPair, deviceSide: PtyPair): Promise<Tap> {
  const { SerialPort } = await import('serialport');
  const open = async (path: string): Promise<InstanceType<typeof SerialPort>> => {
    const p = new SerialPort({ path, baudRate: 19200, autoOpen: false });
    await new Promise<void>((resolve, reject) => p.open((e) => (e ? reject(e) : resolve())));
    p.on('error', () => undefined);
    return p;
  };
  const toGateway = await open(gatewaySide.device);
  const toDevice = await open(deviceSide.gateway);
  const corrupter = new Corrupter();
  toGateway.on('data', (b: Buffer) => toDevice.write(b));
  toDevice.on('data', (b: Buffer) => toGateway.write(corrupter.apply(b)));
  const close = (p: InstanceType<typeof SerialPort>): Promise<void> => new Promise((r) => { if (p.isOpen) p.close(() => r()); else r(); });
  return { corrupter, close: async () => { await close(toGateway); await close(toDevice); } };
}

/** A TCP proxy on a free port in front of `target`. */
async function tcpTap(target: number): Promise<Tap & { port: number }> {
  const corrupter = new Corrupter();
  const socks = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const up = net.connect(target, '127.0.0.1');
    for (const s of [client, up]) { socks.add(s); s.setNoDelay(true); s.on('error', () => undefined); s.on('close', () => socks.delete(s)); }
    client.on('data', (b: Buffer) => up.write(b));
    up.on('data', (b: Buffer) => client.write(corrupter.apply(b)));
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const addr = srv.address();
  return {
    corrupter, port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    close: () => new Promise<void>((resolve) => { for (const s of socks) s.destroy(); srv.close(() => resolve()); }),
  };
}

interface Line { kind: RtuKind; role: 'main' | 'control' | 'crc'; gateway: string; port: number; spec: string }

const ptys: PtyPair[] = [];
const taps: Tap[] = [];
const taps_by_kind = new Map<RtuKind, Tap>();
let py: PymodbusServer | undefined;
let set: PollerSet | undefined;
let provider: ReturnType<typeof testMeter>['provider'] | undefined;
let reader: ReturnType<typeof testMeter>['reader'] | undefined;
const good = new Map<string, number[]>();
const wrong: string[] = [];

async function lines(): Promise<Line[]> {
  const out: Line[] = [];
  for (const role of ['main', 'control'] as const) {
    const pty = await openPtyPair(`py-${role}`);
    ptys.push(pty);
    // pymodbus opens its pty end with pyserial, which refuses even parity on a pty (EINVAL from
    // tcsetattr); a pty ignores line settings anyway, so its end is 8N1 while the gateway's is 8E1.
    out.push({ kind: 'rtu', role, gateway: pty.gateway, port: 0, spec: `rtu-serial:${pty.device}:19200:N@1,2` });
    const port = await freePort();
    out.push({ kind: 'rtu_over_tcp', role, gateway: '127.0.0.1', port, spec: `rtu-tcp:${port}@1,2` });
  }
  const near = await openPtyPair('py-crc-gateway');
  const far = await openPtyPair('py-crc-device');
  ptys.push(near, far);
  out.push({ kind: 'rtu', role: 'crc', gateway: near.gateway, port: 0, spec: `rtu-serial:${far.device}:19200:N@1` });
  const crcPort = await freePort();
  out.push({ kind: 'rtu_over_tcp', role: 'crc', gateway: '127.0.0.1', port: crcPort, spec: `rtu-tcp:${crcPort}@1` });
  py = await startPymodbus(out.map((l) => l.spec));
  const ptyTapped = await ptyTap(near, far);
  taps.push(ptyTapped);
  taps_by_kind.set('rtu', ptyTapped);
  const tcpTapped = await tcpTap(crcPort);
  taps.push(tcpTapped);
  taps_by_kind.set('rtu_over_tcp', tcpTapped);
  for (const l of out) if (l.kind === 'rtu_over_tcp' && l.role === 'crc') l.port = tcpTapped.port;
  return out;
}

function device(id: string, profile: DeviceProfile, unit: number, l: Line): DeviceConfig {
  const link = l.kind === 'rtu'
    ? { transport: 'rtu' as const, serial: { ...SERIAL, device: l.gateway }, port: 502 }
    : { transport: 'rtu_over_tcp' as const, host: l.gateway, port: l.port, serial: SERIAL };
  return { id, profile: profile.profile, ...link, unit_id: unit, zone: 'z1', poll_interval_ms: INTERVAL_MS, labels: {}, enabled: true };
}

const id = (kind: RtuKind, name: string): string => `${kind}-${name}`;

beforeAll(async () => {
  if (!hasPeer('socat')) return;
  const all = await lines();
  const devices: DeviceConfig[] = [];
  for (const l of all) {
    const k = l.kind;
    if (l.role === 'main') devices.push(device(id(k, 'py-0'), P0, 1, l), device(id(k, 'py-1'), P1, 2, l), device(id(k, 'dead'), PDEAD, 4, l));
    if (l.role === 'control') devices.push(device(id(k, 'ctl-0'), P0, 1, l), device(id(k, 'ctl-1'), P1, 2, l));
    if (l.role === 'crc') devices.push(device(id(k, 'crc'), P0, 1, l));
  }
  const loaded: Pick<LoadedSite, 'site' | 'profiles'> = {
    site: { site: { id: 's', region: 'r', nominal_frequency_hz: 50 }, devices } as unknown as SiteConfig,
    profiles: new Map([P0, P1, PDEAD].map((p) => [p.profile, p])),
  };
  ({ provider, reader } = testMeter());
  const lastRead = new Map<string, number>();
  const s: PollerSet = new PollerSet(loaded, {
    clock: systemClock, logger: silentLogger(), meter: provider.getMeter('interop-rtu'),
    onCycle: (dev) => {
      const values = s.snapshot.values(dev);
      for (const [k, want] of Object.entries(EXPECTED)) {
        const got = values.get(k);
        if (got !== undefined && got.value !== want) wrong.push(`${dev} ${k}=${String(got.value)} (want ${String(want)})`);
      }
      const at = values.get('f_abcd')?.readAtMs ?? 0;
      if (values.size >= Object.keys(EXPECTED).length && at > (lastRead.get(dev) ?? 0)) {
        lastRead.set(dev, at);
        good.set(dev, [...(good.get(dev) ?? []), performance.now()]);
      }
    },
  });
  set = s;
  s.start();
}, 60_000);

afterAll(async () => {
  await set?.stop();
  await provider?.shutdown();
  for (const t of taps) await t.close();
  await py?.stop();
  for (const p of ptys) await p.close();
});

async function errors(): Promise<Point[]> {
  return flatten((await reader!.collect()).resourceMetrics).filter((p) => p.name === 'ems.modbus.errors' && p.value > 0);
}

describe.skipIf(!hasPeer('socat'))('interop: our pollers read pymodbus 3.0 over Modbus RTU', () => {
  it.each(KINDS)('%s: exactly the expected values, 0- and 1-based profiles alike, nothing for sentinels', async (kind) => {
    const s = set!;
    const complete = (dev: string): boolean => Object.keys(EXPECTED).every((k) => s.snapshot.get(dev, k) !== undefined);
    expect(await waitFor(() => complete(id(kind, 'py-0')) && complete(id(kind, 'py-1')), 15_000)).toBe(true);
    for (const dev of [id(kind, 'py-0'), id(kind, 'py-1')]) {
      expect(Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, s.snapshot.get(dev, k)?.value]))).toEqual(EXPECTED);
      for (const k of ABSENT) expect(s.snapshot.get(dev, k), `${dev} ${k}`).toBeUndefined();
    }
    expect(wrong).toEqual([]);
  });

  it('rtu and rtu_over_tcp: a dead unit on the line keeps its neighbours at 90 percent or more of the good cycles of a control line', async () => {
    const s = set!;
    const controls = KINDS.flatMap((k) => [id(k, 'ctl-0'), id(k, 'ctl-1')]);
    const t0 = performance.now();
    expect(await waitFor(() => controls.every((c) => (good.get(c) ?? []).filter((t) => t > t0).length >= 12), 40_000)).toBe(true);
    const t1 = performance.now();
    const inWindow = (dev: string): number => (good.get(dev) ?? []).filter((t) => t > t0 && t <= t1).length;
    const errs = await errors();
    const of = (dev: string): string[] => errs.filter((p) => p.attrs['device_id'] === dev).map((p) => String(p.attrs['error_type']));
    for (const kind of KINDS) {
      const control = Math.min(inWindow(id(kind, 'ctl-0')), inWindow(id(kind, 'ctl-1')));
      for (const n of ['py-0', 'py-1']) expect(inWindow(id(kind, n)), `${kind} ${n} vs control ${control}`).toBeGreaterThanOrEqual(0.9 * control);
      expect(s.status().find((x) => x.deviceId === id(kind, 'dead'))?.up).toBe(false);
      expect(new Set(of(id(kind, 'dead')))).toEqual(new Set(['timeout', 'unit_backed_off']));
      for (const dev of [id(kind, 'py-0'), id(kind, 'py-1'), id(kind, 'ctl-0'), id(kind, 'ctl-1')]) expect(of(dev), dev).toEqual([]);
    }
    expect(wrong).toEqual([]);
  }, 60_000);

  it.each(KINDS)('%s: a CRC error injected on the line is counted as crc_error, and the values stay exact', async (kind) => {
    const s = set!;
    const dev = id(kind, 'crc');
    expect(await waitFor(() => s.snapshot.get(dev, 'hz') !== undefined, 15_000)).toBe(true);
    taps_by_kind.get(kind)?.corrupter.arm();
    const crcErrors = async (): Promise<number> => (await errors())
      .filter((p) => p.attrs['device_id'] === dev && p.attrs['error_type'] === 'crc_error').reduce((n, p) => n + p.value, 0);
    let n = 0;
    const end = performance.now() + 10_000;
    while (n === 0 && performance.now() < end) {
      n = await crcErrors();
      if (n === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(n).toBe(1);
    const types = (await errors()).filter((p) => p.attrs['device_id'] === dev).map((p) => String(p.attrs['error_type']));
    expect(types).toEqual(['crc_error']);
    const cycles = s.status().find((x) => x.deviceId === dev)?.cycles ?? 0;
    expect(await waitFor(() => (s.status().find((x) => x.deviceId === dev)?.cycles ?? 0) >= cycles + 2 && s.snapshot.get(dev, 'f_dcba')?.value === 6.5e6, 10_000)).toBe(true);
    expect(wrong).toEqual([]);
  });
});
