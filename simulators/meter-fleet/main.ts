#!/usr/bin/env node
// Meter fleet simulator CLI: publishes deterministic meter traffic with a fault mix and prints what
// it sent per category (one JSON object on the last line).
//   node dist/simulators/meter-fleet/main.js --url mqtt://127.0.0.1:1883 --meters 100000 --rate 2000 \
//     --batch 100 --messages 50000 --fault malformed_json=0.01 --fault duplicate=0.02 --seed 7
// Without --url an embedded aedes broker (MQTT 3.1.1) is started for the run and its URL printed.
import { parseArgs } from 'node:util';
import { FAULT_CATEGORIES, type FaultCategory } from './generator.js';
import { MeterFleet, type FleetRunOptions } from './fleet.js';

const USAGE = `usage: meter-fleet [--url URL] [--meters N] [--regions a,b] [--rate MSG_PER_S] [--batch N]
  [--messages N] [--duration-ms MS] [--seed N] [--fault CATEGORY=P ...] [--protocol 4|5]
  [--topic-prefix meters] [--region-in-topic] [--burst-every-ms MS --burst-messages N]
fault categories: ${Object.keys(FAULT_CATEGORIES).filter((c) => c !== 'valid').join(', ')}
`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${JSON.stringify(v)} is not a non-negative number`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' }, meters: { type: 'string' }, regions: { type: 'string' }, rate: { type: 'string' },
      batch: { type: 'string' }, messages: { type: 'string' }, 'duration-ms': { type: 'string' }, seed: { type: 'string' },
      fault: { type: 'string', multiple: true }, protocol: { type: 'string' }, 'topic-prefix': { type: 'string' },
      'region-in-topic': { type: 'boolean' }, 'burst-every-ms': { type: 'string' }, 'burst-messages': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const faults: Partial<Record<FaultCategory, number>> = {};
  for (const f of values.fault ?? []) {
    const [cat, p] = f.split('=');
    if (cat === undefined || !(cat in FAULT_CATEGORIES) || cat === 'valid') throw new Error(`--fault ${JSON.stringify(f)}: unknown category\n${USAGE}`);
    const prob = num(p, 'fault', NaN);
    if (!(prob >= 0 && prob <= 1)) throw new Error(`--fault ${JSON.stringify(f)}: the probability must be in [0, 1]`);
    faults[cat as FaultCategory] = prob;
  }
  const opts: FleetRunOptions = {
    meters: num(values.meters, 'meters', 1000), regions: (values.regions ?? 'north,south').split(','),
    rate: num(values.rate, 'rate', 100), batchSize: Math.max(1, num(values.batch, 'batch', 1)),
    messages: num(values.messages, 'messages', 1000), durationMs: num(values['duration-ms'], 'duration-ms', 60_000),
    seed: num(values.seed, 'seed', 1), faults, topicPrefix: values['topic-prefix'] ?? 'meters',
    regionInPayload: values['region-in-topic'] !== true, protocolVersion: values.protocol === '4' ? 4 : values.protocol === '5' ? 5 : undefined,
    ...(values.url !== undefined ? { url: values.url } : {}),
    ...(values['burst-every-ms'] !== undefined ? { burstEveryMs: num(values['burst-every-ms'], 'burst-every-ms', 0), burstMessages: num(values['burst-messages'], 'burst-messages', 100) } : {}),
  };
  const fleet = new MeterFleet(opts);
  try {
    await fleet.start();
    process.stderr.write(`meter-fleet: publishing to ${fleet.url}\n`);
    const report = await fleet.run();
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return report.publish_errors === 0 ? 0 : 1;
  } finally {
    await fleet.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`meter-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
}
