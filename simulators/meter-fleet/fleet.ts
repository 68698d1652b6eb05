// Publishes a FleetGenerator's traffic to a broker (any URL, or an embedded aedes broker when none
// is given) at a set message rate, with optional bursts, and returns what it sent per category.
import mqtt, { type MqttClient } from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../broker.js';
import { FleetGenerator, type GeneratorOptions, type GeneratorReport } from './generator.js';

export interface FleetRunOptions extends Partial<GeneratorOptions> {
  /** Broker URL; absent = start an embedded aedes broker (MQTT 3.1.1) for the run. */
  url?: string;
  protocolVersion?: 4 | 5;
  qos?: 0 | 1;
  clientId?: string;
  /** Stop after this many messages (the generator's), or after durationMs, whichever first. */
  messages?: number;
  durationMs?: number;
  /** Messages per second; 0 = as fast as the broker takes them (bounded by `window`). */
  rate?: number;
  /** Every burstEveryMs, burstMessages extra messages back to back (a head-end flushing its buffer). */
  burstEveryMs?: number;
  burstMessages?: number;
  /** Unacknowledged QoS 1 publishes in flight at most. */
  window?: number;
  /** Called between messages: lets a test restart a broker or gateway mid-stream. */
  onProgress?: (sentMessages: number) => void | Promise<void>;
}

export interface FleetReport extends GeneratorReport {
  duration_ms: number;
  /** Messages sent by bursts, on top of the paced steady stream. */
  burst_messages: number;
  publish_errors: number;
}

export const FLEET_DEFAULTS: GeneratorOptions = {
  meters: 100, regions: ['north', 'south'], seed: 1, batchSize: 1, faults: {}, topicPrefix: 'meters', regionInPayload: true,
  now: () => Date.now(), meterIdPrefix: 'm-',
};

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class MeterFleet {
  readonly generator: FleetGenerator;
  private broker: EmbeddedBroker | undefined;
  private client: MqttClient | undefined;

  constructor(private readonly opts: FleetRunOptions) {
    const gen: GeneratorOptions = { ...FLEET_DEFAULTS };
    for (const k of Object.keys(FLEET_DEFAULTS) as Array<keyof GeneratorOptions>) {
      if (opts[k] !== undefined) Object.assign(gen, { [k]: opts[k] });
    }
    if (gen.meters < 1 || gen.meters > 1_000_000) throw new Error(`meter fleet: meters ${gen.meters} outside 1..1000000`);
    this.generator = new FleetGenerator(gen);
  }

  /** The broker URL in use (after start()). */
  get url(): string { return this.opts.url ?? this.broker?.url ?? ''; }

  async start(): Promise<void> {
    if (this.opts.url === undefined && this.broker === undefined) this.broker = await startEmbeddedBroker();
    const protocolVersion = this.opts.protocolVersion ?? (this.opts.url === undefined ? 4 : 5);
    this.client = await mqtt.connectAsync(this.url, {
      protocolVersion, clientId: this.opts.clientId ?? `meter-fleet-${this.opts.seed ?? 1}-${process.pid}`,
      clean: false, reconnectPeriod: 200, connectTimeout: 5000,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
    });
    this.client.on('error', () => { /* reconnects; publishes stay queued in the outgoing store */ });
  }

  /** Publishes until the message or time budget is used up. */
  async run(): Promise<FleetReport> {
    const client = this.client;
    if (!client) throw new Error('meter fleet: start() first');
    const qos = this.opts.qos ?? 1;
    const maxMessages = this.opts.messages ?? 1000;
    const deadline = Date.now() + (this.opts.durationMs ?? 60_000);
    const window = this.opts.window ?? 500;
    const rate = this.opts.rate ?? 0;
    const started = Date.now();
    let inflight = 0;
    let errors = 0;
    let sent = 0;
    let steady = 0;
    let burstMessages = 0;
    let nextBurst = this.opts.burstEveryMs !== undefined ? started + this.opts.burstEveryMs : Infinity;
    let waiter: (() => void) | undefined;
    const done = (): void => {
      inflight--;
      const w = waiter;
      waiter = undefined;
      w?.();
    };
    const publish = async (msg: { topic: string; payload: string }): Promise<void> => {
      while (inflight >= window) await new Promise<void>((r) => { waiter = r; });
      inflight++;
      sent++;
      client.publish(msg.topic, msg.payload, { qos }, (err) => { if (err) errors++; done(); });
    };
    while (this.generator.report.messages < maxMessages && Date.now() < deadline) {
      if (rate > 0) {
        // Paced by the steady stream only: a burst comes on top and does not slow what follows.
        const due = started + (steady / rate) * 1000;
        const wait = due - Date.now();
        if (wait > 1) await sleep(Math.min(wait, 100));
      }
      let burst = 0;
      if (Date.now() >= nextBurst) {
        burst = this.opts.burstMessages ?? 0;
        nextBurst += this.opts.burstEveryMs ?? Infinity;
      }
      steady++;
      for (let b = 0; b <= burst && this.generator.report.messages < maxMessages; b++) {
        if (b > 0) burstMessages++;
        for (const m of this.generator.next()) await publish(m);
      }
      if (this.opts.onProgress) await this.opts.onProgress(sent);
    }
    const drainDeadline = Date.now() + 30_000;
    while (inflight > 0 && Date.now() < drainDeadline) await new Promise<void>((r) => { waiter = r; setTimeout(r, 50); });
    return { ...this.generator.report, by_category: { ...this.generator.report.by_category }, duration_ms: Date.now() - started, burst_messages: burstMessages, publish_errors: errors + inflight };
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync().catch(() => undefined);
    const b = this.broker;
    this.broker = undefined;
    if (b) await b.close();
  }
}
