// What the `dr` CLI tests share: both key pairs made by `dr keygen`, and the site file `dr send`
// reads (broker and topics; its devices are never contacted).
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, vi } from 'vitest';
import { run } from '../../src/cli/dr.js';
import type { DemandResponseConfig } from '../../src/config/site-types.js';
import { SITE_ID } from './fixtures.js';

/** `dr keygen` for the EMS and the gateway into `dir`; returns the gateway's side of the DR config. */
export async function keygenBoth(dir: string): Promise<Partial<DemandResponseConfig>> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    expect(await run(['keygen', '--out', `${dir}/ems`])).toBe(0);
    expect(await run(['keygen', '--out', `${dir}/gateway`])).toBe(0);
  } finally {
    out.mockRestore();
  }
  return { public_keys: [readFileSync(`${dir}/ems.pub`, 'utf8')], gateway_key: readFileSync(`${dir}/gateway.key`, 'utf8') };
}

/** Writes `dir`/site.yaml for `dr send --config`. */
export function writeCliSite(dir: string, brokerUrl: string, ackTopic: string): string {
  const file = `${dir}/site.yaml`;
  writeFileSync(file, [
    'version: 1', `site: { id: ${SITE_ID}, region: r1, nominal_frequency_hz: 50 }`, 'devices:',
    '  - { id: lc1, profile: generic-load-controller, host: 127.0.0.1, port: 1502, unit_id: 1, zone: zone-a, capacity_kw: 100 }',
    'mqtt:', `  url: ${brokerUrl}`, '  client_id: ems-operator', '  protocol_version: 5', '  demand_response:',
    '    command_topic: ems/{site}/dr/command', `    ack_topic: ${ackTopic}`, '    public_key_file: ems.pub', '',
  ].join('\n'));
  return file;
}
