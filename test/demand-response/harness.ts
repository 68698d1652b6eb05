// A DR test rig from real parts: simulated load controllers behind real Modbus TCP servers, the
// gateway's EndpointPool, an MQTT broker (optional), an in-memory span exporter and metric reader.
import { MeterProvider, MetricReader, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import type { DemandResponseConfig, DeviceConfig, MqttConfig } from '../../src/config/site-types.js';
import type { DrAck } from '../../src/demand-response/ack.js';
import { DemandResponseService, type DemandResponseDeps } from '../../src/demand-response/service.js';
import { EndpointPool } from '../../src/modbus/endpoint-pool.js';
import type { Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { METRICS } from '../../src/telemetry/semconv.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer, type SimulatedDevice } from '../../simulators/modbus/index.js';
import { device, drConfig, siteWith, tempDir } from './fixtures.js';

class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> { return Promise.resolve(); }
  protected override onShutdown(): Promise<void> { return Promise.resolve(); }
}

export interface RigOptions {
  profile: DeviceProfile;
  /** Unit ids per server; one server per entry. */
  servers: number[][];
  /** A Modbus server the test runs itself (e.g. pymodbus): `servers` then names its unit ids, and no simulator starts. */
  externalPort?: number;
  clock: Clock;
  mqttUrl?: string;
  protocolVersion?: 4 | 5;
  dr?: Partial<DemandResponseConfig>;
  capacityKw?: number;
  checkIntervalMs?: number;
  /** site.id; default SITE_ID. */
  siteId?: string;
  /** Broker credentials of the gateway (mqtt.username / mqtt.password). */
  mqttAuth?: { username: string; password: string };
  /** DemandResponseDeps.noiseAnswerIntervalMs (0: every rejection answered, for tests of each reason). */
  noiseAnswerIntervalMs?: number;
}

export class Rig {
  readonly spans = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spans)] });
  readonly reader = new TestReader();
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly tmp = tempDir();
  readonly servers: ModbusSimServer[] = [];
  readonly units = new Map<string, SimulatedDevice>();
  devices: DeviceConfig[] = [];
  pool: EndpointPool;
  service: DemandResponseService | undefined;
  readonly acks: DrAck[] = [];
  private constructor(readonly opts: RigOptions) {
    this.pool = new EndpointPool({ clock: opts.clock, logger: silentLogger() }, { reconnectBaseMs: 50, reconnectMaxMs: 200 });
  }

  static async start(opts: RigOptions): Promise<Rig> {
    const rig = new Rig(opts);
    let n = 0;
    for (const unitIds of opts.servers) {
      if (opts.externalPort !== undefined) {
        for (const u of unitIds) rig.devices.push({ ...device(`lc${++n}`, opts.externalPort, u, 'zone-a', opts.capacityKw ?? 100), profile: opts.profile.profile });
        continue;
      }
      const units = new Map<number, SimulatedDevice>();
      for (const u of unitIds) units.set(u, createSimulatedDevice(opts.profile, { clock: opts.clock, tickMs: 0 }));
      const server = await startModbusServer({ units });
      rig.servers.push(server);
      for (const u of unitIds) {
        const id = `lc${++n}`;
        rig.devices.push({ ...device(id, server.port, u, 'zone-a', opts.capacityKw ?? 100), profile: opts.profile.profile });
        rig.units.set(id, units.get(u) as SimulatedDevice);
      }
    }
    await rig.startService();
    return rig;
  }

  get stateFile(): string { return `${this.tmp.dir}/dr-state.json`; }

  mqttConfig(): MqttConfig | undefined {
    if (this.opts.mqttUrl === undefined) return undefined;
    return {
      url: this.opts.mqttUrl, client_id: 'gw-test', protocol_version: this.opts.protocolVersion ?? 4, session_expiry_ms: 60_000,
      keepalive_ms: 30_000, reconnect_min_ms: 100, reconnect_max_ms: 500, demand_response: this.drConfig(),
      ...(this.opts.mqttAuth ?? {}),
    };
  }

  drConfig(): DemandResponseConfig {
    return drConfig(this.stateFile, this.opts.dr);
  }

  async startService(extra: Partial<DemandResponseDeps> = {}): Promise<DemandResponseService> {
    const profiles = new Map([[this.opts.profile.profile, this.opts.profile]]);
    const mqtt = this.mqttConfig();
    const service = new DemandResponseService({
      config: this.drConfig(), site: siteWith(this.devices, this.opts.siteId), profiles,
      endpoints: (d) => this.pool.forDevice(d, this.opts.profile),
      meter: this.meterProvider.getMeter('dr-test'), tracer: this.tracerProvider.getTracer('dr-test'),
      clock: this.opts.clock, logger: silentLogger(), onAck: (a) => this.acks.push(a),
      checkIntervalMs: this.opts.checkIntervalMs ?? 0,
      ...(this.opts.noiseAnswerIntervalMs !== undefined ? { noiseAnswerIntervalMs: this.opts.noiseAnswerIntervalMs } : {}),
      ...(mqtt ? { mqtt } : {}),
      ...extra,
    });
    await service.start();
    if (mqtt) await service.ready(10_000);
    this.service = service;
    return service;
  }

  async stopService(): Promise<void> {
    await this.service?.stop();
    this.service = undefined;
  }

  /** Simulates a gateway restart: service and Modbus connections gone, state file kept. */
  async restartGateway(extra: Partial<DemandResponseDeps> = {}): Promise<DemandResponseService> {
    await this.stopService();
    await this.pool.close();
    this.pool = new EndpointPool({ clock: this.opts.clock, logger: silentLogger() }, { reconnectBaseMs: 50, reconnectMaxMs: 200 });
    return this.startService(extra);
  }

  writes(): number {
    return this.servers.reduce((n, s) => n + s.writes.length, 0);
  }

  unit(id: string): SimulatedDevice {
    const u = this.units.get(id);
    if (!u) throw new Error(`no unit ${id}`);
    return u;
  }

  async counter(name: string = METRICS.drControllerCommands): Promise<Array<{ attrs: Record<string, unknown>; value: number }>> {
    const { resourceMetrics } = await this.reader.collect();
    const out: Array<{ attrs: Record<string, unknown>; value: number }> = [];
    for (const sm of resourceMetrics.scopeMetrics) {
      for (const m of sm.metrics) {
        if (m.descriptor.name !== name) continue;
        for (const dp of (m as SumMetricData).dataPoints) out.push({ attrs: dp.attributes, value: dp.value });
      }
    }
    return out;
  }

  async waitFor(pred: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    await this.stopService();
    await this.pool.close();
    await Promise.all(this.servers.map((s) => s.close()));
    await this.tracerProvider.shutdown();
    await this.meterProvider.shutdown();
    this.tmp.cleanup();
  }
}

