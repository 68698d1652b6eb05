// `ems-gateway probe` against the independent pymodbus 3.0 server (test/interop/pymodbus-server.py):
// with a profile it prints the datasheet's values, labels and verdicts (and names the right word
// order of a wrong one); with --raw it shows a float32 in all four orders. Every byte goes through
// a recording proxy: the probe sends read function codes only.
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureStdio } from '../helpers/capture.js';
import { formatProbe, run as probe } from '../../src/cli/probe.js';
import { loadProfile } from '../../src/modbus/profile-load.js';
import { planIdentityReads, planReads } from '../../src/modbus/read-plan.js';
import { freePort } from '../helpers/ports.js';
import { ABSENT, EXPECTED, pymodbusProfile, startPymodbus, type PymodbusServer } from './pymodbus-fixture.js';

let py: PymodbusServer | undefined;
let proxy: net.Server | undefined;
let proxyPort = 0;
let dir = '';
/** MBAP function codes of every request the probe sent. */
const functionCodes: number[] = [];

afterEach(() => { vi.restoreAllMocks(); });

/**
 * A profile YAML of the fixture's map (optionally with one point's order changed), without the
 * fixture's `ems.test.*` metric names: `probe --config` loads a site as `run` does, and the device
 * metric vocabulary is closed.
 */
function writeProfile(name: string, wrongOrder?: string): void {
  const p = pymodbusProfile(name, 0);
  const points = p.points.map(({ metric: _metric, ...pt }) => (pt.id === wrongOrder ? { ...pt, order: 'ABCD' } : pt));
  writeFileSync(join(dir, `${name}.yaml`), stringify({
    vendor: p.vendor, model: p.model, kind: p.kind, address_base: 0, default_order: 'ABCD', quirks: { max_gap_registers: 10, timeout: '2s' }, points,
  }));
}

beforeAll(async () => {
  const port = await freePort();
  py = await startPymodbus([String(port)]);
  proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8 && buf.length >= 6 + buf.readUInt16BE(4)) {
        functionCodes.push(buf[7] ?? -1);
        buf = buf.subarray(6 + buf.readUInt16BE(4));
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => proxy?.listen(0, '127.0.0.1', () => r()));
  proxyPort = (proxy.address() as net.AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), 'ems-probe-'));
  writeProfile('pymodbus-map');
  writeProfile('pymodbus-map-wrong', 'soc');
  writeFileSync(join(dir, 'site.yaml'), `version: 1
site: { id: probe-test, region: north, nominal_frequency_hz: 50 }
profiles_dir: .
devices:
  - { id: py-1, profile: pymodbus-map-wrong, host: 127.0.0.1, port: ${proxyPort}, unit_id: 1 }
`);
}, 30_000);

afterAll(async () => {
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await py?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const line = (out: string, id: string): string => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';

describe('ems-gateway probe against pymodbus', () => {
  it('--host --profile: every point with registers, value, unit and verdict, exit 0', async () => {
    const io = captureStdio();
    const code = await probe(['--host', '127.0.0.1', '--port', String(proxyPort), '--unit', '1', '--profile', join(dir, 'pymodbus-map.yaml')]);
    const out = io.out();
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(out).toContain(`probe 127.0.0.1:${proxyPort}/1 at 127.0.0.1:${proxyPort} unit 1, profile pymodbus-map`);
    expect(line(out, 'f_abcd')).toMatch(/^f_abcd\s+0\s+0x449a 0x5000\s+1234\.5\s+1\s+ok$/);
    expect(line(out, 'f_cdab')).toMatch(/^f_cdab\s+2\s+0x0000 0xc249\s+-50\.25\s+1\s+ok$/);
    expect(line(out, 'i32')).toMatch(/\s-123456\s+1\s+ok$/);
    expect(line(out, 'w')).toMatch(/\s0x0929\s+23\.45\s+W\s+ok$/);
    expect(line(out, 'st')).toMatch(/^st\s+23\s+0x0004\s+4 MPPT\s+1\s+ok$/);
    expect(line(out, 'alarm')).toMatch(/^alarm\s+24\s+0x0025\s+37: COMMS, OVER_TEMP_WARNING, ISOLATION\s+1\s+ok$/);
    expect(line(out, 'soc')).toMatch(/^soc\s+25\s+0x0000 0x4278\s+62\s+%\s+ok$/);
    expect(line(out, 'hz')).toMatch(/^hz\s+1\s+0x1771\s+60\.01\s+Hz\s+ok$/);
    expect(line(out, 'flag0')).toMatch(/^flag0\s+0\s+0x0001\s+true\s+1\s+ok$/);
    expect(line(out, 'i16_na')).toMatch(/^i16_na\s+13\s+0x8000\s+-\s+1\s+sentinel \(0x8000 means "not implemented"\)$/);
    expect(line(out, 'f_nan')).toMatch(/\ssentinel \(/);
    expect(out).toMatch(/\n\d+ points, no problems\n$/);
    // Every value the datasheet lists, as the probe prints it, and nothing for the sentinels.
    const reEsc = (t: string): string => t.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
    for (const [k, v] of Object.entries(EXPECTED)) {
      expect(line(out, k), k).toMatch(new RegExp(`^${k}\\s+\\d+\\s+(0x[0-9a-f]{4} ?)+\\s+${reEsc(String(v))}(\\s|:).*\\sok$`));
    }
    for (const k of ABSENT) expect(line(out, k), k).toMatch(/\s-\s+1\s+sentinel \(/);
  }, 30_000);

  it('--config --device with a wrong word order: implausible, the right order named, exit 1', async () => {
    const io = captureStdio();
    const code = await probe(['--config', join(dir, 'site.yaml'), '--device', 'py-1']);
    const out = io.out();
    expect(code).toBe(1);
    expect(line(out, 'soc')).toMatch(/^soc\s+25\s+0x0000 0x4278\s+-\s+%\s+implausible \(2\.38\d*e-41 is a denormal float \(never a measurement\); did you mean CDAB\?\)$/);
    expect(out).toMatch(/ABCD 2\.38\d*e-41, CDAB 62, BADC [^,]+, DCBA [^\n]+/);
    expect(out).toMatch(/\n\d+ points, 1 problem\n$/);
  }, 30_000);

  it('--raw shows a float32 in all four orders, and input registers with --table', async () => {
    const io = captureStdio();
    expect(await probe(['--host', '127.0.0.1', '--port', String(proxyPort), '--raw', '2', '2'])).toBe(0);
    const out = io.out();
    expect(out).toContain('raw read of holding registers 2..3 (wire addresses)');
    expect(out).toContain('registers: 0x0000 0xc249');
    const float = out.split('\n').find((l) => l.startsWith('float32')) ?? '';
    const cells = float.split(/\s+/);
    const f = (h: string): number => Buffer.from(h, 'hex').readFloatBE(0);
    expect(cells.slice(0, 5)).toEqual(['float32', String(f('0000c249')), '-50.25', String(f('000049c2')), String(f('49c20000'))]);
    expect(out).toMatch(/^int16\s+0\s+0\s+0\s+0$/m);
    const io2 = captureStdio();
    expect(await probe(['--host', '127.0.0.1', '--port', String(proxyPort), '--raw', '1', '1', '--table', 'input'])).toBe(0);
    expect(io2.out()).toMatch(/^uint16\s+6001\s+6001\s+28951\s+28951$/m);
  }, 30_000);

  it('a refused read is an exception verdict; bad flags are usage errors (exit 2) naming the flag', async () => {
    const io = captureStdio();
    expect(await probe(['--host', '127.0.0.1', '--port', String(proxyPort), '--raw', '60000', '4'])).toBe(1);
    expect(io.out()).toMatch(/failed: exception_illegal_address/);
    for (const [args, msg] of [
      [['--host', 'x', '--profile', 'p', '--bogus'], /^ems-gateway probe: unknown option --bogus \(known: --config <value>, [^\n]*\nusage: ems-gateway probe /],
      [['--config', 'site.yaml'], /--config needs --device/],
      [['--host', '127.0.0.1'], /--host needs --profile/],
      [['--host', '127.0.0.1', '--raw', '0'], /--raw needs <start> <count>/],
      [['--host', '127.0.0.1', '--raw', '0', '126'], /<count> must be an integer 1\.\.125/],
      [['--host', '127.0.0.1', '--port', '70000', '--raw', '0', '1'], /--port must be an integer 1\.\.65535/],
    ] as const) {
      const e = captureStdio();
      expect(await probe([...args]), args.join(' ')).toBe(2);
      expect(e.err()).toMatch(msg);
    }
  }, 30_000);

  it('a SunSpec profile read one register off: the marker check says so (formatProbe, no device needed)', async () => {
    // A fixed-address SunSpec profile (the shipped one is placed by discovery: probe finds its chain first).
    const profile = await loadProfile(fileURLToPath(new URL('../fixtures/profiles/sunspec-fixed-3ph.yaml', import.meta.url)));
    const plan = [...planIdentityReads(profile).requests, ...planReads(profile).requests];
    // Every register holds 0x5375 ('Su'): the marker reads "SuSu", all else decodes to something.
    const reads = plan.map((r) => ({ atMs: Date.now(), words: new Uint16Array(r.count).fill(0x5375), error: undefined }));
    const { text, problems } = formatProbe('inv (test)', profile, plan, reads);
    expect(text).toContain("SunSpec marker: 'SunS' expected at 40000, read 0x5375 0x5375: check address_base (0 vs 1) and sunspec_base");
    expect(line(text, 'sunspec_marker')).toMatch(/^sunspec_marker\s+40000\s+0x5375 0x5375\s+SuSu\s+ok$/);
    expect(line(text, 'ac_frequency')).toMatch(/\smalformed \(scale factor "hz_sf" = 21365, outside -10\.\.10\)$/);
    expect(problems).toBeGreaterThanOrEqual(2);
  });

  it('sent read requests only (FC 1-4), never a write', () => {
    expect(functionCodes.length).toBeGreaterThan(5);
    expect(functionCodes.filter((fc) => fc < 1 || fc > 4)).toEqual([]);
  });
});
