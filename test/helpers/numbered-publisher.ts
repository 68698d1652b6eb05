// A QoS 1 publisher for the crash drills: numbers every reading (one per message, `meters` meter
// ids in turn) and keeps the numbers the broker acknowledged. A persistent session (clean: false),
// so what was unacknowledged when the broker went away is sent again on reconnect.
import mqtt, { type MqttClient } from 'mqtt';

export interface NumberedPublisherOptions {
  ratePerS: number;
  /** Bounds of one run(): readings and wall-clock ms. */
  maxReadings: number;
  maxPublishMs: number;
  meters: number;
  /** Topic of meter `m`; default `meters/north/<m>`. */
  topic?: (meterId: string) => string;
  clientId?: string;
}

/** Publishes numbered readings at QoS 1; a reading counts as published once the broker acknowledged it. */
export class NumberedPublisher {
  readonly acked = new Set<number>();
  private client: MqttClient | undefined;
  private stopped = false;
  private inflight = 0;
  private readonly t0 = Date.now() - 60_000;

  constructor(private readonly url: string, private readonly opts: NumberedPublisherOptions) {}

  async start(): Promise<void> {
    this.client = await mqtt.connectAsync(this.url, {
      protocolVersion: 5, clientId: this.opts.clientId ?? `drill-publisher-${process.pid}`, clean: false, properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 100, connectTimeout: 2000,
    });
    this.client.on('error', () => { /* reconnects; unacknowledged publishes stay in its outgoing store */ });
  }

  /** Publishes until stop(), maxReadings or maxPublishMs; at most `window` unacknowledged at a time. */
  async run(window = 200): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('start() first');
    const { ratePerS, maxReadings, maxPublishMs, meters } = this.opts;
    const topic = this.opts.topic ?? ((m: string) => `meters/north/${m}`);
    const started = Date.now();
    for (let seq = 1; seq <= maxReadings && !this.stopped && Date.now() - started < maxPublishMs; seq++) {
      while ((this.inflight >= window || Date.now() < started + (seq * 1000) / ratePerS) && !this.stopped && Date.now() - started < maxPublishMs) {
        await new Promise((r) => setTimeout(r, 2));
      }
      const meter = `m-${seq % meters}`;
      const reading = { meter_id: meter, timestamp: this.t0 + seq, kwh: seq / 1000, voltage: 230, current: 1, power_factor: 0.95 };
      this.inflight++;
      client.publish(topic(meter), JSON.stringify(reading), { qos: 1 }, (err) => {
        this.inflight--;
        if (!err) this.acked.add(seq);
      });
    }
  }

  /** Published readings the broker has not acknowledged yet. */
  get unacknowledged(): number { return this.inflight; }

  stop(): void { this.stopped = true; }

  async close(): Promise<void> {
    this.stopped = true;
    await this.client?.endAsync(true);
  }
}
