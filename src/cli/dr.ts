// `ems-gateway dr keygen|send`: drive the demand-response path as the EMS would.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseDuration } from '../config/duration.js';
import { loadSite } from '../config/load.js';
import { COMMAND_TYPES, type CommandType } from '../demand-response/command.js';
import { buildCommand, sendCommand, signedMessage } from '../demand-response/sender.js';
import { generateKeyPair } from '../demand-response/signing.js';
import { parsePrivateKey, parsePublicKey } from '../runtime/ed25519-keys.js';
import { defineCommand, parseCommandArgs, runSubcommand, type OptionValues } from './args.js';
import { LOAD_CHECKS } from './load-checks.js';

const KEYGEN_USAGE = `usage: ems-gateway dr keygen --out <prefix>
    writes <prefix>.key (Ed25519 private key, PKCS#8 PEM, mode 0600: stays with its owner)
    and <prefix>.pub (public key PEM: goes to the other side).
    The EMS's pair signs commands: its .pub goes into the site's mqtt.demand_response.public_key_file.
    The gateway's pair signs acks: its .key is the site's mqtt.demand_response.gateway_key_file,
    its .pub goes to the EMS (dr send --gateway-key).
`;

const SEND_USAGE = `usage: ems-gateway dr send --config <site.yaml> --key <private.pem> --zone <zone> [--gateway-key <gateway.pub>]
    [--type curtail|restore] [--reduction-mw <MW>] [--duration <15m|900s|1h>]
    [--target <command id>] [--command-id <id>] [--valid-for 60s] [--traceparent 00-...]
    [--url <mqtt url>] [--timeout 30s] [--no-wait]
    signs and publishes one command, waits for the gateway's acks and prints each as a JSON line.
    With --gateway-key only acks signed by the gateway count; anything unsigned, for another
    command id, about a copy of the command (replayed) or out of order is ignored (noted on stderr).
    Without it acks are read unverified (a warning says so): anyone who may publish on the ack
    topic could answer.
    exit code: 0 all controllers acknowledged, 3 rejected, 4 not all acknowledged, 5 no final ack
`;

/** `dr --help`: both subcommands' usage, indented under one `usage:`. */
const USAGE = `usage:\n${[KEYGEN_USAGE, SEND_USAGE].map((u) => u.replace(/^usage: /, '').replace(/^/gm, '  ').replace(/ +$/, '')).join('')}`;

const KEYGEN_ARGS = defineCommand({ command: 'dr keygen', usage: KEYGEN_USAGE, options: { out: { type: 'string', required: true } } });

const SEND_ARGS = defineCommand({
  command: 'dr send',
  usage: SEND_USAGE,
  options: {
    config: { type: 'string', required: true }, key: { type: 'string', required: true }, zone: { type: 'string', required: true },
    'gateway-key': { type: 'string' }, type: { type: 'string' }, 'reduction-mw': { type: 'string' }, duration: { type: 'string' },
    target: { type: 'string' }, 'command-id': { type: 'string' }, 'valid-for': { type: 'string' }, traceparent: { type: 'string' },
    url: { type: 'string' }, timeout: { type: 'string' }, 'no-wait': { type: 'boolean' },
  },
});

type SendValues = OptionValues<typeof SEND_ARGS.options>;

/** Ignored messages on the ack topic noted on stderr; beyond, only counted (the topic may be noisy). */
const MAX_IGNORED_NOTES = 5;

function duration(v: string | undefined, name: string, fallbackMs: number): number {
  if (v === undefined) return fallbackMs;
  const ms = parseDuration(v);
  if (ms === undefined) throw new Error(`--${name} ${JSON.stringify(v)} is not a duration like 900ms, 15m or 1h`);
  return ms;
}

function keygen(prefix: string): number {
  for (const f of [`${prefix}.key`, `${prefix}.pub`]) {
    if (existsSync(f)) throw new Error(`${f} exists: refusing to overwrite a key (choose another --out)`);
  }
  const pair = generateKeyPair();
  writeFileSync(`${prefix}.key`, pair.privatePem, { mode: 0o600, flag: 'wx' });
  writeFileSync(`${prefix}.pub`, pair.publicPem, { flag: 'wx' });
  process.stdout.write(`wrote ${prefix}.key (private, keep with the EMS) and ${prefix}.pub\npublic key (base64, for public_keys): ${pair.publicRaw}\n`);
  return 0;
}

async function send(flags: SendValues): Promise<number> {
  const loaded = await loadSite(flags.config, LOAD_CHECKS);
  const site = loaded.site;
  const mqttCfg = site.mqtt;
  const dr = mqttCfg?.demand_response;
  if (!mqttCfg || !dr) throw new Error(`${site.source}: no mqtt.demand_response section`);
  const key = parsePrivateKey(readFileSync(flags.key, 'utf8'), flags.key);
  const type = (flags.type ?? 'curtail') as CommandType;
  if (!(COMMAND_TYPES as readonly string[]).includes(type)) throw new Error(`--type must be one of ${COMMAND_TYPES.join(', ')}`);
  const reduction = flags['reduction-mw'];
  if (reduction === undefined && type === 'curtail') throw new Error('--reduction-mw is required');
  if (reduction !== undefined && !(Number(reduction) > 0)) throw new Error(`--reduction-mw must be a number of MW above 0, got ${JSON.stringify(reduction)}`);
  const traceparent = flags.traceparent ?? `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
  const cmd = buildCommand({
    siteId: site.site.id,
    zone: flags.zone,
    type,
    ...(reduction !== undefined ? { reductionMw: Number(reduction) } : {}),
    durationMinutes: type === 'curtail' ? duration(flags.duration, 'duration', 15 * 60_000) / 60_000 : 0,
    commandId: flags['command-id'] ?? randomUUID(),
    validForMs: duration(flags['valid-for'], 'valid-for', 60_000),
    traceparent,
    ...(flags.target !== undefined ? { targetCommandId: flags.target } : {}),
  });
  const url = flags.url;
  const wait = flags['no-wait'] !== true;
  const gatewayKeyFile = flags['gateway-key'];
  const gatewayKeys = gatewayKeyFile === undefined ? undefined : [parsePublicKey(readFileSync(gatewayKeyFile, 'utf8'), gatewayKeyFile)];
  if (gatewayKeys === undefined) process.stderr.write('dr send: acks are not verified (no --gateway-key): anyone who may publish on the ack topic could answer\n');
  let ignored = 0;
  process.stderr.write(`dr send: ${cmd.type} ${cmd.command_id} zone=${cmd.zone} reduction_mw=${cmd.reduction_mw} duration_minutes=${cmd.duration_minutes} traceparent=${traceparent}\n`);
  const result = await sendCommand({
    mqtt: { ...mqttCfg, ...(url !== undefined ? { url } : {}) },
    dr, siteId: site.site.id, commandId: cmd.command_id, message: signedMessage(cmd, key), traceparent,
    timeoutMs: duration(flags.timeout, 'timeout', 30_000), wait, ...(gatewayKeys ? { gatewayKeys } : {}),
    onAck: (ack) => process.stdout.write(`${JSON.stringify(ack)}\n`),
    onIgnored: (why) => {
      if (++ignored <= MAX_IGNORED_NOTES) process.stderr.write(`dr send: ignored a message on the ack topic: ${why}\n`);
    },
  });
  if (ignored > MAX_IGNORED_NOTES) process.stderr.write(`dr send: ignored ${ignored} messages on the ack topic in all\n`);
  if (!wait) return 0;
  const final = result.final;
  if (!final) {
    const replayed = result.replays[0];
    const why = replayed?.status === 'rejected'
      ? `only 'replayed' answers: command id ${cmd.command_id} had been received before (first answered ${replayed.first_verdict ?? 'unknown'}); use a new id`
      : 'is the gateway running and subscribed?';
    process.stderr.write(`dr send: no final ack for ${cmd.command_id} (${why})\n`);
    return 5;
  }
  if (final.status === 'rejected') return 3;
  return final.status === 'completed' && final.ack_count === final.controller_count ? 0 : 4;
}

export function run(args: string[]): Promise<number> {
  return runSubcommand(args, {
    command: 'dr',
    usage: USAGE,
    subcommands: {
      keygen: (rest) => {
        const parsed = parseCommandArgs(rest, KEYGEN_ARGS);
        return typeof parsed === 'number' ? parsed : reportFailure('keygen', () => keygen(parsed.values.out));
      },
      send: (rest) => {
        const parsed = parseCommandArgs(rest, SEND_ARGS);
        return typeof parsed === 'number' ? parsed : reportFailure('send', () => send(parsed.values));
      },
    },
  });
}

/** A failure past the command line (a key file, the broker, the site file): one line, exit 1. */
async function reportFailure(sub: string, fn: () => number | Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    process.stderr.write(`ems-gateway dr ${sub}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
