// Site files with Modbus RTU devices: on a serial port (transport rtu), through a serial device
// server (rtu_over_tcp), lines shared through YAML anchors; every misuse is named where it is.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadSiteFromString } from '../../src/config/load.js';
import { pollBudgetWarnings } from '../../src/modbus/poll-budget.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';
import { endpointKey } from '../../src/config/endpoint-key.js';
import { describeLink } from '../../src/modbus/transport.js';

const HEAD = 'version: 1\nsite: { id: t, region: north, nominal_frequency_hz: 50 }\n';

async function problems(text: string): Promise<string[]> {
  try {
    await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: 'site.yaml', env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').map((l) => l.replace(/^.*site\.yaml/, 'site.yaml'));
    throw err;
  }
  return [];
}

describe('site devices on RTU lines', () => {
  it('loads rtu and rtu_over_tcp devices with the line defaults, and a line shared through an anchor', async () => {
    const { site } = await loadSiteFromString(`${HEAD}devices:
  - id: m1
    profile: generic-grid-meter
    transport: rtu
    serial: &line-a { device: /dev/ttyUSB0, baud: 9600, parity: none }
    unit_id: 1
  - { id: m2, profile: generic-grid-meter, transport: rtu, serial: *line-a, unit_id: 2 }
  - { id: m3, profile: generic-grid-meter, transport: rtu_over_tcp, host: 192.0.2.20, port: 4001, serial: { baud: 19200, stop_bits: 2, turnaround: 5ms }, unit_id: 7 }
  - { id: inv, profile: sunspec-inverter-3ph, host: 192.0.2.10 }
`, { profileChecks: modbusProfileChecks, file: 'site.yaml', env: {} });
    const [m1, m2, m3, inv] = site.devices;
    expect(m1?.transport).toBe('rtu');
    expect(m1?.host).toBeUndefined();
    expect(m1?.serial).toEqual({ device: '/dev/ttyUSB0', baud: 9600, parity: 'none', stop_bits: 1, data_bits: 8, turnaround_ms: 0 });
    expect(m2?.serial).toEqual(m1?.serial);
    expect(m3?.serial).toEqual({ baud: 19200, parity: 'even', stop_bits: 2, data_bits: 8, turnaround_ms: 5 });
    expect(inv?.transport).toBe('tcp');
    expect(inv?.serial).toBeUndefined();
    expect(site.devices.map(endpointKey)).toEqual(['/dev/ttyUSB0', '/dev/ttyUSB0', '192.0.2.20:4001', '192.0.2.10:502']);
    expect(site.devices.map(describeLink)).toEqual([
      'RTU /dev/ttyUSB0 9600 8N1', 'RTU /dev/ttyUSB0 9600 8N1', 'RTU over TCP 192.0.2.20:4001 (19200 8E2)', '192.0.2.10:502',
    ]);
  });

  it('names every misuse at once, where it is', async () => {
    expect(await problems(`${HEAD}devices:
  - { id: a, profile: generic-grid-meter, transport: rtu }
  - { id: b, profile: generic-grid-meter, transport: rtu, host: h, serial: { device: /dev/ttyS0, baud: 9600 } }
  - { id: c, profile: generic-grid-meter, transport: rtu_over_tcp, host: h, serial: { device: /dev/ttyS0, baud: 9600 } }
  - { id: d, profile: generic-grid-meter, host: h2, serial: { baud: 9600 } }
  - { id: e, profile: generic-grid-meter, transport: rtu, serial: { baud: 9600 } }
  - { id: f, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyS1, baud: 9600, data_bits: 7 } }
  - { id: g, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyS1 } }
  - { id: h, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyS2, baud: 9600 }, unit_id: 0 }
  - { id: i, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyS2, baud: 9600 }, unit_id: 248 }
  - { id: j, profile: generic-grid-meter, transport: rtu_over_tcp, serial: { baud: 9600 } }
  - { id: k, profile: generic-grid-meter, transport: serial, host: h }
`)).toEqual([
      'site.yaml:4:54 devices[0].transport: transport rtu needs serial (at least its baud)',
      'site.yaml:5:65 devices[1].host: host is for tcp and rtu_over_tcp: an rtu device is on serial.device',
      'site.yaml:6:95 devices[2].serial.device: serial.device is for transport rtu: rtu_over_tcp reaches the line through host:port',
      'site.yaml:7:61 devices[3].serial: serial is for transport rtu or rtu_over_tcp (this device is Modbus TCP)',
      'site.yaml:8:67 devices[4].serial: transport rtu needs serial.device (the serial port, e.g. /dev/ttyUSB0)',
      'site.yaml:9:112 devices[5].serial.data_bits: 7 is not one of 8',
      'site.yaml:10:67 devices[6].serial: missing required key "baud": every device on the line must use the same',
      'site.yaml:11:112 devices[7].unit_id: unit id 0 is broadcast on a serial line: no device answers it (use 1..247)',
      'site.yaml:12:112 devices[8].unit_id: unit id 248 is reserved on a serial line (use 1..247)',
      'site.yaml:13:5 devices[9]: missing required key "host"',
      'site.yaml:14:54 devices[10].transport: "serial" is not one of "tcp", "rtu", "rtu_over_tcp"',
    ]);
  });

  it('a line has one transport and one setting; units are unique on it', async () => {
    expect(await problems(`${HEAD}devices:
  - { id: a, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyUSB0, baud: 9600 }, unit_id: 1 }
  - { id: b, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyUSB0, baud: 19200, parity: odd }, unit_id: 2 }
  - { id: c, profile: generic-grid-meter, transport: rtu, serial: { device: /dev/ttyUSB0, baud: 9600 }, unit_id: 1 }
  - { id: d, profile: generic-grid-meter, host: 10.0.0.9, port: 4001 }
  - { id: e, profile: generic-grid-meter, transport: rtu_over_tcp, host: 10.0.0.9, port: 4001, serial: { baud: 9600 } }
`)).toEqual([
      'site.yaml:5:97 devices[1].serial.baud: serial.baud 19200 differs from device "a" on the same line /dev/ttyUSB0 (9600): one line, one setting',
      'site.yaml:5:112 devices[1].serial.parity: serial.parity odd differs from device "a" on the same line /dev/ttyUSB0 (even): one line, one setting',
      'site.yaml:6:114 devices[2].unit_id: /dev/ttyUSB0 unit 1 is also device "a"',
      'site.yaml:8:54 devices[4].transport: 10.0.0.9:4001 is also device "d" with transport tcp: one endpoint, one transport',
      'site.yaml:8:90 devices[4].port: 10.0.0.9:4001 unit 1 is also device "d"',
    ]);
  });

  it('warns when an RTU line cannot carry its polls at its baud rate', async () => {
    const devices = Array.from({ length: 8 }, (_, i) => `  - { id: m${i}, profile: generic-grid-meter, transport: rtu, serial: *l, unit_id: ${i + 1}, poll_interval: 200ms }`);
    const { warnings } = await loadSiteFromString(`${HEAD}devices:\n  - { id: x, profile: generic-grid-meter, transport: rtu, serial: &l { device: /dev/ttyUSB0, baud: 9600 }, unit_id: 100 }\n${devices.join('\n')}\n`, { file: 'site.yaml', env: {}, pollBudget: pollBudgetWarnings, profileChecks: modbusProfileChecks });
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^poll budget: \/dev\/ttyUSB0 \(x, m0, .*\) needs .* requests\/s, about \d+% of the serial line at 9600 baud/)]);
  });
});
