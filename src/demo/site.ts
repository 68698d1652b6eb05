// Everything the demo runs besides the gateway: the site's Modbus devices simulated on loopback,
// an embedded MQTT broker (aedes, MQTT 3.1.1), and a meter fleet publishing readings. Ports: the
// site file's fixed ports when they are free, else whatever the kernel gives (so a second demo or
// a test never collides); the gateway is then pointed at the ports actually used.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulators/broker.js';
import { FleetGenerator, type GeneratorReport } from '../../simulators/meter-fleet/generator.js';
import { startSiteSimulators, type SiteSimulators } from '../../simulators/modbus/site.js';
import type { DeliveryConfig, LoadedSite, SiteConfig } from '../config/site-types.js';
import { endpointKey } from '../config/endpoint-key.js';
import type { Logger } from '../runtime/logger.js';

interface DemoSiteOptions {
  /** Use kernel-chosen ports for everything instead of the site file's. */
  freePorts: boolean;
  logger: Logger;
  /** The environment (an OTLP endpoint there adds the otlp_logs sink to the demo's spool). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The demo's delivery: the site's own `delivery:` with its spool moved into the demo's temp folder,
 * or a spool there with the otlp_logs sink when an OTLP endpoint is set (environment or site file),
 * or a spool without sinks (readings committed, nothing to forward).
 */
function demoDelivery(site: SiteConfig, stateDir: string, env: NodeJS.ProcessEnv): DeliveryConfig {
  const spool = { directory: join(stateDir, 'spool'), max_size_mb: 256, max_age_ms: 86_400_000, policy: 'backpressure' as const };
  if (site.delivery) return { ...site.delivery, spool: { ...site.delivery.spool, directory: spool.directory } };
  const endpoint = ['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'].some((k) => (env[k] ?? '').trim() !== '') || site.telemetry.otlp_endpoint !== undefined;
  return {
    spool, record_devices: false,
    sinks: endpoint ? {
      otlp_logs: { headers: {}, batch_max_size: 5000, batch_max_wait_ms: 200, max_rate: 20_000, retry_min_ms: 1000, retry_max_ms: 30_000, timeout_ms: 10_000 },
    } : {},
  };
}

interface DemoSite {
  /** The site as the gateway must see it: device ports and broker URL rewritten to what listens. */
  loaded: LoadedSite;
  simulators: SiteSimulators;
  broker: EmbeddedBroker;
  /** Where the demo's DR state lives (a temporary folder, removed on close). */
  stateDir: string;
  close(): Promise<void>;
}

function isAddrInUse(err: unknown): boolean {
  return err instanceof Error && ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(err.message));
}

async function withFallback<T>(fixed: () => Promise<T>, free: () => Promise<T>, freePorts: boolean, log: Logger, what: string): Promise<T> {
  if (freePorts) return free();
  try {
    return await fixed();
  } catch (err) {
    if (!isAddrInUse(err)) throw err;
    log.warn({ component: 'demo', what }, 'fixed port busy; using a free port instead');
    return free();
  }
}

function brokerPort(site: SiteConfig): number | undefined {
  if (!site.mqtt) return undefined;
  try {
    const u = new URL(site.mqtt.url);
    return u.port === '' ? 1883 : Number(u.port);
  } catch {
    return undefined;
  }
}

export async function startDemoSite(original: LoadedSite, opts: DemoSiteOptions): Promise<DemoSite> {
  const log = opts.logger;
  const simulators = await withFallback(
    () => startSiteSimulators(original),
    () => startSiteSimulators(original, { port: 0 }),
    opts.freePorts, log, 'modbus simulators',
  );
  let broker: EmbeddedBroker;
  try {
    const port = brokerPort(original.site);
    broker = await withFallback(
      () => startEmbeddedBroker(port !== undefined ? { port } : {}),
      () => startEmbeddedBroker({ port: 0 }),
      opts.freePorts, log, 'mqtt broker',
    );
  } catch (err) {
    await simulators.close();
    throw err;
  }
  const ports = new Map(simulators.endpoints.map((e) => [e.key, e.server.port]));
  const stateDir = mkdtempSync(join(tmpdir(), 'ems-demo-state-'));
  const site = original.site;
  const rewritten: SiteConfig = {
    ...site,
    devices: site.devices.map((d) => ({ ...d, host: '127.0.0.1', port: ports.get(endpointKey(d)) ?? d.port })),
    ...(site.mqtt ? {
      mqtt: {
        ...site.mqtt,
        url: broker.url,
        // aedes speaks MQTT 3.1.1 only.
        protocol_version: 4 as const,
        ...(site.mqtt.meters ? { meters: { ...site.mqtt.meters, state_file: join(stateDir, 'meter-state.json') } } : {}),
        ...(site.mqtt.demand_response ? { demand_response: { ...site.mqtt.demand_response, state_file: join(stateDir, 'dr-state.json') } } : {}),
      },
    } : {}),
    delivery: demoDelivery(site, stateDir, opts.env ?? {}),
  };
  return {
    loaded: { ...original, site: rewritten },
    simulators,
    broker,
    stateDir,
    close: async () => {
      await simulators.close().catch(() => undefined);
      await broker.close().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** True when host:port can be listened on now (the demo's status port falls back to a free one otherwise). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * A concrete topic matching the site's meter filter: the region at `regionLevel`, the meter id in
 * any other wildcard (`meters/+/readings` -> `meters/north/readings`).
 */
export function concreteTopic(filter: string, regionLevel: number | undefined, region: string, meterId: string): string {
  const levels = filter.split('/');
  const body = levels[0] === '$share' ? levels.slice(2) : levels;
  return body.map((l, i) => (l === '+' || l === '#' ? (i === regionLevel ? region : meterId) : l)).join('/');
}

/** A steady meter fleet: `rate` messages per second from `meters` meters, published QoS 1 in 100 ms slices. */
export class DemoFleet {
  readonly generator: FleetGenerator;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight = 0;
  publishErrors = 0;

  constructor(private readonly opts: { url: string; meters: number; regions: string[]; rate: number; filter: string; regionLevel: number | undefined; seed?: number }) {
    this.generator = new FleetGenerator({
      meters: opts.meters, regions: opts.regions, seed: opts.seed ?? 7, batchSize: 1, faults: {}, topicPrefix: 'fleet',
      regionInPayload: true, now: () => Date.now(),
    });
  }

  async start(): Promise<void> {
    this.client = await mqtt.connectAsync(this.opts.url, { protocolVersion: 4, clientId: `demo-meter-fleet-${process.pid}`, reconnectPeriod: 500 });
    this.client.on('error', () => { this.publishErrors += 1; });
    const perSlice = Math.max(1, Math.round(this.opts.rate / 10));
    this.timer = setInterval(() => {
      // Backpressure: never more than a few slices unacknowledged.
      if (this.inflight > perSlice * 5) return;
      for (let i = 0; i < perSlice; i++) {
        for (const m of this.generator.next()) {
          // The generator names topics fleet/<region>/<meter>; the site decides the real shape.
          const [, region = '', meter = ''] = m.topic.split('/');
          this.publish(this.topicFor(region, meter), m.payload);
        }
      }
    }, 100);
  }

  topicFor(region: string, meterId: string): string {
    return concreteTopic(this.opts.filter, this.opts.regionLevel, region, meterId);
  }

  /** Publishes raw payloads (the demo's malformed burst) on a meter topic. */
  publish(topic: string, payload: string): void {
    const c = this.client;
    if (!c) return;
    this.inflight += 1;
    c.publish(topic, payload, { qos: 1 }, (err) => {
      this.inflight -= 1;
      if (err) this.publishErrors += 1;
    });
  }

  report(): GeneratorReport {
    return this.generator.report;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true).catch(() => undefined);
  }
}
