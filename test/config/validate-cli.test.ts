// `ems-gateway validate` and `ems-gateway schemas --check` through their run() entry points.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { captureStdio } from '../helpers/capture.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { run as schemas } from '../../src/cli/schemas.js';
import { run as validate } from '../../src/cli/validate.js';
import { DR_OVER_MQTT311_WARNING } from '../../src/config/site-checks.js';

afterEach(() => { vi.restoreAllMocks(); });

const ROOT = packageRoot();

describe('ems-gateway validate', () => {
  it('prints the summary and the compiled read plan of the demo site, exit 0', async () => {
    const io = captureStdio();
    const code = await validate([join(ROOT, 'config/demo-site.yaml')]);
    expect(code).toBe(0);
    const out = io.out();
    expect(out).toContain('site demo-substation (region north, 50 Hz)');
    expect(out).toContain('devices: 6');
    expect(out).toMatch(/inverter-1: sunspec-inverter-3ph at 127\.0\.0\.1:15020 unit 1, zone zone-a, every 1s\n {4}read plan: \d+ requests?, \d+ registers per poll\n {6}holding 40072\.\.\d+ \(wire 40072, \d+ registers, \d+ points\)/);
    expect(out).toContain('shared connection 127.0.0.1:15020: inverter-1, inverter-2');
    expect(out).toContain('meter topics: meters/+/readings (qos 1, region at level 1, regions north, south, east)');
    expect(out).toContain('DR zone zone-a: load-controller-a (500 kW)');
    expect(out).toContain('DR zone zone-b: load-controller-b (500 kW)');
    expect(out).toMatch(/demo-site\.yaml: OK \(1 warning\)\n$/);
    // The demo runs DR over MQTT 3.1.1 (its embedded broker speaks nothing else): validate says what that cannot tell.
    expect(io.err()).toMatch(/^config\/demo-site\.yaml:68:\d+ mqtt\.protocol_version: /);
    expect(io.err()).toContain(`${DR_OVER_MQTT311_WARNING}\n`);
    expect(io.err().trim().split('\n')).toHaveLength(1);
  });

  it('prints the delivery section: spool bounds and policy, each sink, the recorded devices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-validate-'));
    try {
      writeFileSync(join(dir, 'token'), 'tok-123\n');
      writeFileSync(join(dir, 'site.yaml'), [
        'version: 1', 'site: { id: s1, region: north, nominal_frequency_hz: 50 }', 'devices:',
        '  - { id: meter-a, profile: generic-grid-meter, host: 127.0.0.1, port: 1502, unit_id: 1, zone: z, record: true }',
        '  - { id: meter-b, profile: generic-grid-meter, host: 127.0.0.1, port: 1502, unit_id: 2, zone: z }',
        'delivery:', '  spool: { directory: spool, max_size_mb: 64, max_age: 2d, policy: drop_oldest }', '  sinks:',
        '    otlp_logs: {}',
        '    influx: { url: "https://influx:8086", api: v2, org: ems, bucket: readings, token_file: token }',
        '    postgres: { host: db, port: 5433, database: metering, user: gw, table: readings }', '',
      ].join('\n'));
      const io = captureStdio();
      expect(await validate([join(dir, 'site.yaml')])).toBe(0);
      const lines = io.out().split('\n');
      const at = lines.findIndex((l) => l.startsWith('delivery spool:'));
      expect(lines.slice(at, at + 5)).toEqual([
        `delivery spool: ${join(dir, 'spool')} (at most 64 MiB, 48h, when full: drop_oldest)`,
        '  sink otlp_logs: OTLP endpoint + /v1/logs (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT wins)',
        '  sink influx: https://influx:8086 (api v2, org ems, bucket readings, measurement meter_reading)',
        '  sink postgres: gw@db:5433/metering (table readings)',
        '  device samples recorded: meter-a',
      ]);
      expect(io.out()).not.toContain('tok-123');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints every problem at once and exits 1', async () => {
    const io = captureStdio();
    const site = join(ROOT, 'test/fixtures/config-cases/missing-version-and-site/site.yaml');
    const code = await validate([site]);
    expect(code).toBe(1);
    const lines = io.err().trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[3]).toMatch(/site\.yaml:3:1 loging: unknown key "loging" \(did you mean "logging"\?\)$/);
    expect(lines[4]).toMatch(/site\.yaml: 4 errors$/);
    expect(io.out()).toBe('');
  });

  it('holds profiles to the closed metric vocabulary: name (with did-you-mean) and unit, at file:line', async () => {
    const io = captureStdio();
    const dir = join(ROOT, 'test/fixtures/config-cases/metric-vocabulary');
    expect(await validate([join(dir, 'site.yaml'), '--devices', join(dir, 'devices')])).toBe(1);
    const err = io.err();
    expect(err).toMatch(/test-device\.yaml:6:76 points\[0\]\.metric: metric "ems\.device\.ac_powr" is not a device metric .*\(did you mean "ems\.device\.ac_power"\?\)/);
    expect(err).toMatch(/test-device\.yaml:7:75 points\[1\]\.unit: metric "ems\.device\.power_factor" is in unit "1", not "%"/);
  });

  it('lists the meter regions of the site in the summary', async () => {
    const io = captureStdio();
    expect(await validate([join(ROOT, 'config/example-site.yaml')])).toBe(0);
    expect(io.out()).toMatch(/meter topics: .*regions north, south, east\)\n/);
  });

  it('shows the cross-checks of a site with schema errors, and its profiles\' problems, in one run', async () => {
    const io = captureStdio();
    const dir = join(ROOT, 'test/fixtures/config-cases/cross-checks-with-schema-errors');
    expect(await validate([join(dir, 'site.yaml'), '--devices', join(dir, 'devices')])).toBe(1);
    const err = io.err();
    for (const m of ['scale factor "nope" is not a point', 'unknown device "meter-2"', 'record: true needs a delivery', 'duplicate device id', 'poll budget', 'region_topic_level 2 is beyond']) {
      expect(err).toContain(m);
    }
    expect(err).toMatch(/site\.yaml: 8 errors, 1 warning\n$/);
  });

  it('usage errors exit 2', async () => {
    const io = captureStdio();
    expect(await validate([])).toBe(2);
    expect(await validate(['a.yaml', 'b.yaml'])).toBe(2);
    expect(io.err()).toContain('usage: ems-gateway validate');
  });
});

describe('ems-gateway schemas --check', () => {
  it('passes on the checked-in schemas', async () => {
    const io = captureStdio();
    expect(await schemas(['--check'])).toBe(0);
    expect(io.out()).toContain('schemas up to date');
  });

  it('fails on a folder without them', async () => {
    const io = captureStdio();
    expect(await schemas(['--check', join(ROOT, 'test')])).toBe(1);
    expect(io.err()).toMatch(/site\.schema\.json is missing: run `ems-gateway schemas --write`/);
  });

  describe('a SunSpec-placed load controller (DR leaves it out at run time)', () => {
    const SS_LC = [
      'vendor: Test', 'model: SunSpec LC', 'kind: load_controller', 'address_base: 0',
      'sunspec_base: 40000', 'sunspec_models: [{ id: 1, length: 66 }, { id: 123, length: 24 }]',
      'points:',
      '  - { id: load_kw, table: holding, address: 0, type: uint16, scale: 0.1, unit: kW, metric: ems.device.load_power, role: load }',
      "  - { id: lim, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, unit: '%', metric: ems.device.power_limit, role: setpoint }",
      'controls:',
      "  - { id: limit, table: holding, sunspec: { model: 123, point: WMaxLimPct }, type: uint16, unit: '%', role: setpoint, min: 5, max: 100, verify: { point: lim, tolerance: 1 } }",
      '',
    ].join('\n');
    let dir = '';
    afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = ''; });
    function siteWith(devices: string[]): string {
      dir = mkdtempSync(join(tmpdir(), 'ems-validate-'));
      mkdirSync(join(dir, 'devices'));
      copyFileSync(join(ROOT, 'devices/generic-load-controller.yaml'), join(dir, 'devices/generic-load-controller.yaml'));
      writeFileSync(join(dir, 'devices/ss-lc.yaml'), SS_LC);
      const file = join(dir, 'site.yaml');
      writeFileSync(file, [
        'version: 1', 'site: { id: t, region: north, nominal_frequency_hz: 50 }', 'profiles_dir: devices', 'devices:', ...devices,
        'mqtt:', '  url: mqtt://b', `  demand_response: { command_topic: c, ack_topic: a, public_key_file: ${join(ROOT, 'config/keys/demo-dr.pub')} }`, '',
      ].join('\n'));
      return file;
    }

    it('is not listed under its DR zone: validate names it left out, with why, and warns for its zone', async () => {
      const io = captureStdio();
      const code = await validate([siteWith([
        '  - { id: lc, profile: generic-load-controller, host: h, zone: z1 }',
        '  - { id: ss, profile: ss-lc, host: h2, zone: z2, capacity_kw: 100 }',
      ])]);
      expect(code, io.err()).toBe(0);
      expect(io.out()).toContain('DR zone z1: lc');
      expect(io.out()).not.toContain('DR zone z2');
      expect(io.out()).toMatch(/ {2}left out of DR: ss: its profile places controls by SunSpec discovery/);
      expect(io.err()).toMatch(/:6:\d+ devices\[1\]\.profile: warning: load controller ss is left out of demand response: its profile places controls by SunSpec discovery/);
      expect(io.err()).toMatch(/devices\[1\]\.zone: warning: zone "z2" has no load controller demand response drives \(left out: ss\): demand-response commands for it cannot act/);
    });

    it('when it is the only load controller: the error that no zone can act, naming it', async () => {
      const io = captureStdio();
      const code = await validate([siteWith(['  - { id: ss, profile: ss-lc, host: h2, zone: z2, capacity_kw: 100 }'])]);
      expect(code).toBe(1);
      expect(io.err()).toMatch(/mqtt\.demand_response: demand_response is configured but every enabled load controller is left out of it \(ss\): no zone can act on a command/);
    });
  });
});
