// loadSite / loadSiteFromString: defaults, durations, secrets (${ENV}, *_file), profiles_dir,
// positions in messages, and the shipped site files.
import { DR_OVER_MQTT311_WARNING } from '../../src/config/site-checks.js';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { DEFAULT_DEVICES_DIR, loadSite, loadSiteFromString } from '../../src/config/load.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const ROOT = packageRoot();
const HEAD = 'version: 1\nsite: { id: t, region: north, nominal_frequency_hz: 50 }\n';
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ems-config-'));
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

async function problems(text: string, env: NodeJS.ProcessEnv = {}, file = join(ROOT, 'inline.yaml')): Promise<string[]> {
  try {
    await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('loadSite', () => {
  it('loads the demo site with every default filled', async () => {
    const { site, profiles, warnings } = await loadSite(join(ROOT, 'config/demo-site.yaml'), { profileChecks: modbusProfileChecks, env: {} });
    // Only the one the demo cannot avoid: its embedded broker speaks MQTT 3.1.1, and DR over 3.1.1 is said out loud.
    expect(warnings.map((w) => `${w.line} ${w.path}: ${w.message}`)).toEqual([`68 mqtt.protocol_version: ${DR_OVER_MQTT311_WARNING}`]);
    expect(site.site).toEqual({ id: 'demo-substation', name: 'Demo substation', region: 'north', nominal_frequency_hz: 50 });
    expect(site.devices.map((d) => d.id)).toEqual(['inverter-1', 'inverter-2', 'bms-1', 'grid-meter-1', 'load-controller-a', 'load-controller-b']);
    expect(site.devices.filter((d) => d.port === 15020).map((d) => d.unit_id)).toEqual([1, 2]);
    expect(site.devices[2]).toMatchObject({ poll_interval_ms: 2000, labels: {}, enabled: true, port: 15021, role: 'bms' });
    expect(site.devices[0]?.role).toBe('pv-array-east');
    expect([...profiles.keys()].sort()).toEqual(['generic-bms-float32', 'generic-grid-meter', 'generic-load-controller', 'sunspec-inverter-3ph']);
    expect(site.mqtt).toMatchObject({ url: 'mqtt://127.0.0.1:18830', protocol_version: 4, session_expiry_ms: 3_600_000 });
    expect(site.mqtt?.meters).toMatchObject({ topics: ['meters/+/readings'], region_topic_level: 1, regions: ['north', 'south', 'east'], qos: 1, batch_max_wait_ms: 50 });
    expect(site.mqtt?.demand_response?.public_keys[0]).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(site.mqtt?.demand_response).toMatchObject({ command_topic: 'ems/demo-substation/dr/commands', ack_topic: 'ems/demo-substation/dr/acks', max_clock_skew_ms: 30_000 });
    expect(site.alerts).toEqual({ evaluate_interval_ms: 15_000, stale_meter_data_age_ms: 900_000, drop_ratio: 0.001, dr_ack_rate_min: 0.9, frequency_deviation_hz: 0.5, ingestion_latency_p99_ms: 5000, delivery_backlog_age_ms: 3_600_000 });
    expect(site.grid).toEqual({ update_interval_ms: 5000, frequency_source: 'grid-meter-1', stale_after_ms: 10_000 });
    expect(site.status).toEqual({ host: '127.0.0.1', port: 8780, enabled: true });
    expect(site.source).toBe(join(ROOT, 'config/demo-site.yaml'));
  });

  it('loads the commented example site', async () => {
    const { site } = await loadSite(join(ROOT, 'config/example-site.yaml'), { profileChecks: modbusProfileChecks, env: {} });
    expect(site.mqtt?.username).toBe('ems-gateway');
    expect(site.telemetry.resource_attributes).toEqual({ 'deployment.environment': 'example' });
  });

  it('fills defaults of a minimal site', async () => {
    const { site } = await loadSiteFromString(`${HEAD}devices:\n  - { id: m, profile: generic-grid-meter, host: h, poll_interval: 4s }\n`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} });
    expect(site.devices[0]).toEqual({ id: 'm', profile: 'generic-grid-meter', transport: 'tcp', host: 'h', port: 502, unit_id: 1, zone: 'default', role: 'grid_meter', poll_interval_ms: 4000, labels: {}, enabled: true, record: false });
    expect(site.mqtt).toBeUndefined();
    expect(site.telemetry).toEqual({ service_name: 'ems-gateway', otlp_headers: {}, export_interval_ms: 10_000, export_timeout_ms: 5000, resource_attributes: {}, cardinality_limit: 2000, span_queue_size: 2048, span_batch_size: 512, enabled: true });
    expect(site.grid.stale_after_ms).toBe(12_000);
    expect(site.logging.level).toBe('info');
  });

  it('interpolates ${ENV}, ${ENV:-default} and $${, numbers from the environment included', async () => {
    const text = `${HEAD}devices:\n  - { id: m, profile: generic-grid-meter, host: "\${H}", port: "\${P}" }\n`
      + 'mqtt:\n  url: mqtt://b:1883\n  password: ${PW}\n  client_id: gw-${GW:-7}-$${literal}\n';
    const { site } = await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: { H: '10.1.1.1', P: '1502', PW: 's3cret' } });
    expect(site.devices[0]).toMatchObject({ host: '10.1.1.1', port: 1502 });
    expect(site.mqtt).toMatchObject({ password: 's3cret', client_id: 'gw-7-${literal}' });
  });

  it('names every unset variable with its line', async () => {
    const lines = await problems(`${HEAD}mqtt:\n  url: \${URL}\n  password: \${PW}\n`);
    expect(lines).toEqual([
      `${join(ROOT, 'inline.yaml')}:4:8 mqtt.url: environment variable "URL" is not set`,
      `${join(ROOT, 'inline.yaml')}:5:13 mqtt.password: environment variable "PW" is not set`,
    ]);
  });

  it('reads password_file and public_key_file relative to the site file; refuses both password forms', async () => {
    const d = tmp();
    mkdirSync(join(d, 'keys'));
    writeFileSync(join(d, 'pw'), 'from-file\n');
    copyFileSync(join(ROOT, 'config/keys/demo-dr.pub'), join(d, 'keys/k.pub'));
    const site = `${HEAD}devices:\n  - { id: lc, profile: generic-load-controller, host: h, zone: z }\nmqtt:\n  url: mqtt://b\n  password_file: pw\n`
      + '  demand_response: { command_topic: c, ack_topic: a, public_key_file: keys/k.pub }\n';
    writeFileSync(join(d, 'site.yaml'), site);
    const { site: s } = await loadSite(join(d, 'site.yaml'), { profileChecks: modbusProfileChecks, env: {} });
    expect(s.mqtt?.password).toBe('from-file');
    expect(s.mqtt?.demand_response?.public_keys).toHaveLength(1);
    expect(s.mqtt?.demand_response?.state_file).toBe(join(d, '.state/dr-state.json'));
    const both = await problems(site.replace('  password_file: pw\n', '  password: x\n  password_file: pw\n'), {}, join(d, 'site.yaml'));
    expect(both).toEqual([`${join(d, 'site.yaml')}:8:18 mqtt.password_file: give either "password" or "password_file", not both`]);
  });

  it('reports missing files and bad keys where they are named', async () => {
    expect(await problems(`${HEAD}mqtt:\n  url: mqtts://b\n  password_file: nope.txt\n`)).toEqual([
      `${join(ROOT, 'inline.yaml')}:5:18 mqtt.password_file: cannot read "nope.txt" (ENOENT)`,
    ]);
    expect(await problems(`${HEAD}mqtt:\n  url: mqtts://b\n  tls: { ca_file: nope.pem }\n`)).toEqual([
      `${join(ROOT, 'inline.yaml')}:5:19 mqtt.tls.ca_file: file "nope.pem" does not exist`,
    ]);
  });

  it('uses profiles_dir relative to the site file, over opts.devicesDir', async () => {
    const d = tmp();
    mkdirSync(join(d, 'profiles'));
    copyFileSync(join(DEFAULT_DEVICES_DIR, 'generic-grid-meter.yaml'), join(d, 'profiles/my-meter.yaml'));
    writeFileSync(join(d, 'site.yaml'), `${HEAD}profiles_dir: profiles\ndevices:\n  - { id: m, profile: my-meter, host: h }\n`);
    const { site, profiles } = await loadSite(join(d, 'site.yaml'), { profileChecks: modbusProfileChecks, env: {}, devicesDir: '/nonexistent' });
    expect(site.profiles_dir).toBe(join(d, 'profiles'));
    expect(profiles.get('my-meter')?.kind).toBe('grid_meter');
  });

  it('throws ConfigError with every problem, sorted, formatted file:line:col path: message', async () => {
    const text = `version: 2\nsite: { id: t, region: north, nominal_frequency_hz: 60, nme: x }\ndevices:\n  - { id: a, profile: nope, host: h, port: 0 }\n`;
    const lines = await problems(text);
    const f = join(ROOT, 'inline.yaml');
    expect(lines).toEqual([
      `${f}:1:10 version: 2 is not one of 1`,
      `${f}:2:57 site.nme: unknown key "nme" (did you mean "name"?)`,
      `${f}:4:44 devices[0].port: must be >= 1, got 0`,
    ]);
  });

  it('refuses a span batch larger than the span queue, where it is written', async () => {
    const text = `version: 1\nsite: { id: t, region: north, nominal_frequency_hz: 50 }\ntelemetry:\n  span_queue_size: 100\n  span_batch_size: 200\n`;
    expect(await problems(text)).toEqual([`${join(ROOT, 'inline.yaml')}:5:20 telemetry.span_batch_size: span_batch_size 200 is larger than span_queue_size 100`]);
  });

  it('reports problems of a site and of its profiles together', async () => {
    const d = tmp();
    mkdirSync(join(d, 'devices'));
    writeFileSync(join(d, 'devices/bad.yaml'), 'vendor: v\nmodel: m\nkind: other\naddress_base: 2\npoints: []\n');
    writeFileSync(join(d, 'site.yaml'), `${HEAD}devices:\n  - { id: a, profile: bad, host: h }\n  - { id: a, profile: bad, host: h, port: 503 }\n`);
    const err = await loadSite(join(d, 'site.yaml'), { profileChecks: modbusProfileChecks, env: {}, devicesDir: join(d, 'devices') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const msgs = (err as ConfigError).problems.map((p) => `${p.file.slice(d.length + 1)}:${p.line} ${p.path}: ${p.message}`);
    expect(msgs).toEqual([
      'devices/bad.yaml:4 address_base: 2 is not one of 0, 1',
      'devices/bad.yaml:5 points: needs at least 1 item',
      'site.yaml:5 devices[1].id: duplicate device id "a"',
    ]);
  });

  it('warns when a zone has no load controller while DR is on', async () => {
    const { warnings } = await loadSiteFromString(`${HEAD}devices:\n  - { id: lc, profile: generic-load-controller, host: h, zone: z1 }\n`
      + '  - { id: inv, profile: sunspec-inverter-3ph, host: h2, zone: z2 }\n'
      + `mqtt:\n  url: mqtt://b\n  demand_response: { command_topic: c, ack_topic: a, public_key_file: ${join(ROOT, 'config/keys/demo-dr.pub')} }\n`,
    { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} });
    expect(warnings.map((w) => `${w.line}:${w.col} ${w.path}: ${w.message}`)).toEqual([
      '5:63 devices[1].zone: zone "z2" has no load controller: demand-response commands for it cannot act',
    ]);
  });

  it('warns when one command to a zone makes more spans than the span queue holds', async () => {
    // The shipped load controller has an enable control: 4 spans per controller, plus the send span.
    const controllers = (n: number, zone = 'z1', from = 0): string => Array.from({ length: n }, (_, j) => {
      const i = from + j;
      return `  - { id: lc${i}, profile: generic-load-controller, host: h${Math.floor(i / 200)}, unit_id: ${(i % 200) + 1}, zone: ${zone} }\n`;
    }).join('');
    const dr = `mqtt:\n  url: mqtt://b\n  demand_response: { command_topic: c, ack_topic: a, public_key_file: ${join(ROOT, 'config/keys/demo-dr.pub')} }\n`;
    const warned = async (devices: string, queue?: number, env: NodeJS.ProcessEnv = {}): Promise<string[]> => {
      const tel = queue === undefined ? '' : `telemetry:\n  span_queue_size: ${queue}\n  span_batch_size: 1\n`;
      const { warnings } = await loadSiteFromString(`${HEAD}devices:\n${devices}${dr}${tel}`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env });
      return warnings.filter((w) => w.message.includes('spans')).map((w) => `${w.line} ${w.path}: ${w.message}`);
    };
    // 3 controllers: 3 x 4 + 1 = 13 spans.
    expect(await warned(controllers(3), 13)).toEqual([]);
    expect(await warned(controllers(3), 12)).toEqual([
      '11 telemetry.span_queue_size: a demand-response command to zone "z1" (3 load controllers) makes up to 13 spans, more than telemetry.span_queue_size 12 holds: set it to at least 13, or that command\'s spans past it are dropped (counted in ems.telemetry.spans_dropped)',
    ]);
    // A command addresses one zone: two zones of 3 are judged as 3, the larger zone named.
    expect(await warned(controllers(2, 'z1') + controllers(3, 'z2', 2), 13)).toEqual([]);
    expect((await warned(controllers(2, 'z1') + controllers(3, 'z2', 2), 12)).map((w) => /zone "(\w+)" \((\d+)/.exec(w)?.slice(1))).toEqual([['z2', '3']]);
    // OTEL_BSP_MAX_QUEUE_SIZE wins over the key, as at run time; the warning is then at the DR section.
    expect(await warned(controllers(3), 12, { OTEL_BSP_MAX_QUEUE_SIZE: '13' })).toEqual([]);
    expect((await warned(controllers(3), 100, { OTEL_BSP_MAX_QUEUE_SIZE: '12' })).map((w) => w.replace(/ load controllers.*holds/, ' ... holds'))).toEqual([
      '9 mqtt.demand_response: a demand-response command to zone "z1" (3 ... holds: set it to at least 13, or that command\'s spans past it are dropped (counted in ems.telemetry.spans_dropped)',
    ]);
    // The default queue (2048) holds a command to 511 such controllers, not to 512.
    expect(await warned(controllers(511))).toEqual([]);
    expect((await warned(controllers(512))).map((w) => w.replace(/:.*/, ''))).toEqual([`${512 + 6} mqtt.demand_response`]);
  });
});
