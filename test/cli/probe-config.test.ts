// `probe --config` loads the site exactly as `run` and `validate` do: a profile `run` refuses
// (a metric outside the device metric vocabulary) is a config error for probe too (exit 2), before
// any connection is tried; the argument parsing is the shared one (--help 0, unknown option 2).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { captureStdio } from '../helpers/capture.js';
import { run as probe } from '../../src/cli/probe.js';
import { run as validate } from '../../src/cli/validate.js';
import { DEFAULT_DEVICES_DIR } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'ems-probe-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => { vi.restoreAllMocks(); });


describe('probe --config', () => {
  it('refuses a profile whose metric is not a device metric, as run and validate do (exit 2, file:line)', async () => {
    const shipped = readFileSync(join(DEFAULT_DEVICES_DIR, 'generic-bms-float32.yaml'), 'utf8');
    expect(shipped).toContain('metric: ems.device.dc_voltage');
    writeFileSync(join(dir, 'bms-odd.yaml'), shipped.replace('metric: ems.device.dc_voltage', 'metric: ems.device.dc_voltage_typo'));
    // Port 1 on loopback: nothing listens; were the site accepted, the read would fail (exit 1).
    writeFileSync(join(dir, 'site.yaml'), `version: 1
site: { id: probe-config, region: north, nominal_frequency_hz: 50 }
profiles_dir: .
devices:
  - { id: bms-1, profile: bms-odd, host: 127.0.0.1, port: 1, unit_id: 1 }
`);
    const v = captureStdio();
    expect(await validate([join(dir, 'site.yaml'), '--quiet'])).toBe(1);
    expect(v.err()).toMatch(/bms-odd\.yaml:\d+:\d+ .*metric "ems\.device\.dc_voltage_typo" is not a device metric/);
    vi.restoreAllMocks();

    const io = captureStdio();
    expect(await probe(['--config', join(dir, 'site.yaml'), '--device', 'bms-1', '--timeout', '200'])).toBe(2);
    expect(io.err()).toMatch(/bms-odd\.yaml:\d+:\d+ .*metric "ems\.device\.dc_voltage_typo" is not a device metric/);
    expect(io.out()).toBe('');
  });

  it('parses its arguments with the shared helper: --help is 0 on stdout, a usage mistake is 2 with the usage', async () => {
    const help = captureStdio();
    expect(await probe(['--host', 'x', '--help'])).toBe(0);
    expect(help.out()).toMatch(/^usage: ems-gateway probe --config <site\.yaml> --device <id>/);
    expect(help.err()).toBe('');
    vi.restoreAllMocks();
    const bad = captureStdio();
    expect(await probe(['--config', 'site.yaml'])).toBe(2);
    expect(bad.err()).toMatch(/^ems-gateway probe: --config needs --device <id>\nusage: ems-gateway probe /);
    vi.restoreAllMocks();
    const extra = captureStdio();
    expect(await probe(['--host', '127.0.0.1', '--raw', '0', '1', '2'])).toBe(2);
    expect(extra.err()).toMatch(/^ems-gateway probe: unexpected argument "2"\n/);
  });
});
