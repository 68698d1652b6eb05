// What the demo does to its site so every path is visible within the first minute:
//   t+8 s   a signed curtailment to the first zone with load controllers (the DR path, acked and read back)
//   t+15 s  a burst of malformed meter payloads (drops by reason; the ingestion-drops alert fires, then resolves)
//   t+20 s  one Modbus device stops answering for 20 s (shown DOWN, then UP again)
//   t+25 s  the grid meter reads nominal + 0.8 Hz for 45 s: frequency_excursion goes pending, fires
//           after its 30 s `for`, and resolves once the frequency is back
// Each step prints one `»` line so the viewer knows what to look for.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { LoadedSite } from '../config/site-types.js';
import { buildCommand, sendCommand, signedMessage } from '../demand-response/sender.js';
import { generateKeyPair } from '../demand-response/signing.js';
import { parsePrivateKey, parsePublicKey } from '../runtime/ed25519-keys.js';
import { zoneControllers } from '../demand-response/planner.js';
import type { DemoFleet } from './site.js';
import type { SiteSimulators } from '../../simulators/modbus/site.js';

interface DemoKey {
  key: KeyObject;
  /** Where it came from, for the banner. */
  source: string;
  /** Set when the key was made for this run: its public half must be added to the site's keys. */
  publicPem?: string;
}

/**
 * The demo's DR signing key: a private key under config/keys/ whose public half the site trusts
 * (`trusted`: its public_keys; the gateway's own ack key is there too and must not be taken), else
 * one made now.
 */
export function demoSigningKey(keysDir: string, trusted: readonly string[]): DemoKey {
  const raw = (k: KeyObject): string => k.export({ format: 'der', type: 'spki' }).toString('base64');
  const trustedRaw = new Set(trusted.map((t) => raw(parsePublicKey(t))));
  try {
    for (const f of readdirSync(keysDir).sort()) {
      const text = readFileSync(join(keysDir, f), 'utf8');
      if (!text.includes('PRIVATE KEY')) continue;
      const key = parsePrivateKey(text, join(keysDir, f));
      if (trustedRaw.has(raw(createPublicKey(key)))) return { key, source: `config/keys/${f}` };
    }
  } catch {
    // No keys folder: fall through to an ephemeral key.
  }
  const pair = generateKeyPair();
  return { key: parsePrivateKey(pair.privatePem), source: 'a key made for this run', publicPem: pair.publicPem };
}

interface ScenarioDeps {
  loaded: LoadedSite;
  simulators: SiteSimulators;
  fleet: DemoFleet;
  key: KeyObject;
  print: (line: string) => void;
  /** Scale of the timeline (tests may compress it); default 1. */
  timeScale?: number;
}

export class DemoScenario {
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly deps: ScenarioDeps) {}

  start(): void {
    const s = this.deps.timeScale ?? 1;
    this.at(8000 * s, () => this.curtail());
    this.at(15_000 * s, () => this.malformedBurst());
    this.at(20_000 * s, () => this.deadDevice(20_000 * s));
    this.at(25_000 * s, () => this.frequencyExcursion(45_000 * s));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.deps.simulators.endpoints.forEach((e) => e.server.clearFaults());
    // Pinned points are the simulators' state only; they are closed right after.
  }

  private at(ms: number, fn: () => void | Promise<void>): void {
    this.timers.push(setTimeout(() => {
      if (this.stopped) return;
      Promise.resolve(fn()).catch((err: unknown) => this.deps.print(`» demo step failed: ${err instanceof Error ? err.message : String(err)}`));
    }, ms));
  }

  private async curtail(): Promise<void> {
    const { site, profiles } = this.deps.loaded;
    const dr = site.mqtt?.demand_response;
    if (!site.mqtt || !dr) {
      this.deps.print('» no demand_response in the site file: skipping the curtailment');
      return;
    }
    const zones = [...new Set(site.devices.map((d) => d.zone))];
    const zone = zones.find((z) => zoneControllers(site.devices, profiles, z).length > 0);
    if (zone === undefined) {
      this.deps.print('» no zone with load controllers: skipping the curtailment');
      return;
    }
    const controllers = zoneControllers(site.devices, profiles, zone);
    const capacityKw = controllers.reduce((a, c) => a + (c.device.capacity_kw ?? 100), 0);
    const reductionMw = Math.max(0.001, Math.round((capacityKw * 0.3) / 10) / 100);
    const cmd = buildCommand({ siteId: site.site.id, zone, type: 'curtail', reductionMw, durationMinutes: 2, commandId: `demo-curtail-${Date.now().toString(36)}` });
    this.deps.print(`» DR: sending a signed curtailment ${cmd.command_id}: ${reductionMw} MW in ${zone} for 2 min (${controllers.length} controllers)`);
    // The EMS side verifies the gateway's signed acks (the demo site names the gateway's key).
    const gatewayKeys = dr.gateway_key === undefined ? undefined : [createPublicKey(parsePrivateKey(dr.gateway_key))];
    const res = await sendCommand({
      mqtt: { ...site.mqtt, client_id: `${site.mqtt.client_id}-demo-ems` }, dr, siteId: site.site.id, commandId: cmd.command_id,
      message: signedMessage(cmd, this.deps.key), timeoutMs: 15_000, ...(gatewayKeys ? { gatewayKeys } : {}),
    });
    const f = res.final;
    if (!f) this.deps.print(`» DR: no final ack within 15 s (${res.acks.length} acks)`);
    else if (f.status === 'rejected') this.deps.print(`» DR: rejected: ${f.reason}: ${f.detail}`);
    else if (f.status === 'completed') this.deps.print(`» DR: ${f.ack_count}/${f.controller_count} controllers acknowledged after read-back, achieved ${f.achieved_mw} MW`);
  }

  private malformedBurst(): void {
    const n = 200;
    const topic = this.deps.fleet.topicFor(this.deps.loaded.site.site.region, 'demo-bad');
    for (let i = 0; i < n; i++) this.deps.fleet.publish(topic, i % 2 === 0 ? '{"meter_id": "demo-bad", "kwh": ' : '[1, 2, 3');
    this.deps.print(`» fault: a burst of ${n} malformed meter payloads (watch drops by reason and the ingestion_drops alert)`);
  }

  private frequencyExcursion(forMs: number): void {
    const { site, profiles } = this.deps.loaded;
    const source = site.grid.frequency_source ?? site.devices.find((d) => profiles.get(d.profile)?.points.some((p) => p.role === 'frequency'))?.id;
    const device = source === undefined ? undefined : site.devices.find((d) => d.id === source);
    const point = device ? profiles.get(device.profile)?.points.find((p) => p.role === 'frequency') : undefined;
    const sim = device ? this.deps.simulators.device(device.id) : undefined;
    if (!device || !point || !sim) return;
    const hz = site.site.nominal_frequency_hz + 0.8;
    sim.set(point.id, hz);
    this.deps.print(`» fault: ${device.id} reads ${hz.toFixed(1)} Hz for ${Math.round(forMs / 1000)} s (frequency_excursion fires after 30 s, then resolves)`);
    this.at(forMs, () => {
      sim.unpin(point.id);
      this.deps.print(`» fault cleared: ${device.id} frequency back to normal`);
    });
  }

  private deadDevice(forMs: number): void {
    const ep = this.deps.simulators.endpoints.find((e) => e.devices.length > 0);
    const dev = ep?.devices[0];
    if (!ep || !dev) return;
    ep.server.setFault(dev.unitId, { drop: true });
    this.deps.print(`» fault: device ${dev.id} stops answering for ${Math.round(forMs / 1000)} s (watch it go DOWN, then UP)`);
    this.at(forMs, () => {
      ep.server.setFault(dev.unitId, undefined);
      this.deps.print(`» fault cleared: device ${dev.id} answers again`);
    });
  }
}
