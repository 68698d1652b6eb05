// The composition root: builds every part of the gateway from the validated site and hands each
// exactly what it needs (config slice, Clock, Logger, Meter/Tracer). No part reads config or
// environment on its own; nothing here is module-level. Start order (stop is the reverse):
//   telemetry -> status -> delivery (spool, sinks) -> meter ingest (MQTT) -> Modbus endpoints + pollers
//   -> grid state -> alerts -> demand response
// so on stop: DR persists its active commands first, alerts and grid stop, pollers stop (their last
// device samples committed), meter ingest stops acknowledging (unacknowledged QoS 1 readings are
// redelivered by the broker), the spool closes after everything handed to it is committed, the
// status endpoint closes, and telemetry flushes last so the parts' final figures are exported.
import type { DeviceConfig, LoadedSite } from './config/site-types.js';
import { AlertEvaluator, AlertMetricReader, type AlertOverview } from './alerts/evaluator.js';
import { snapshotLoadProvider } from './demand-response/load-provider.js';
import { DemandResponseService } from './demand-response/service.js';
import { GridState } from './grid/grid-state.js';
import type { GridSampleSource } from './grid/sources.js';
import { systemClock, type Clock } from './runtime/clock.js';
import { Lifecycle, type Part, type StopReport } from './runtime/lifecycle.js';
import { componentLogger, type Logger } from './runtime/logger.js';
import { gatewayVersion } from './runtime/version.js';
import { DeliveryService } from './delivery/delivery-service.js';
import { DeviceSampleRecorder } from './delivery/device-samples.js';
import { MeterIngest } from './meters/ingest.js';
import type { EndpointPool } from './modbus/endpoint-pool.js';
import { PollerSet } from './modbus/poller-set.js';
import type { ModbusEndpointClient } from './modbus/types.js';
import { alertStatus, deliveryStatus, deviceDetail, deviceStatus, DrTally, drStatus, exporterStatus, gridStatus, meterStatus } from './status/adapters.js';
import { gatherStatus, type StatusContext, type StatusProviders, type StatusReport } from './status/status-model.js';
import { StatusServer } from './status/status-server.js';
import { createTelemetry, type Telemetry, type TelemetryOptions } from './telemetry/setup.js';

interface GatewayOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  clock?: Clock;
  /** Overrides status.port of the site file (`--status-port`); 0 picks a free port. */
  statusPort?: number;
  /** Overrides status.host of the site file (`--status-host`). */
  statusHost?: string;
  /** Bound of the whole stop sequence (default 7 s). */
  stopTimeoutMs?: number;
  /** Extra metric readers / span processors on the gateway's providers (tests, the demo's summary). */
  extraMetricReaders?: TelemetryOptions['extraMetricReaders'];
  extraSpanProcessors?: TelemetryOptions['extraSpanProcessors'];
}

export interface Gateway {
  readonly lifecycle: Lifecycle;
  readonly telemetry: Telemetry;
  readonly grid: GridState;
  readonly alerts: AlertEvaluator;
  readonly meters: MeterIngest | undefined;
  /** The spool and sinks (site `delivery:`); undefined when the site has none. */
  readonly delivery: DeliveryService | undefined;
  readonly demandResponse: DemandResponseService | undefined;
  readonly endpoints: EndpointPool;
  readonly pollers: PollerSet;
  /** Starts every part in order; throws StartupError (already cleaned up) when one fails. */
  start(): Promise<void>;
  stop(): Promise<StopReport>;
  status(): StatusReport;
  /** The status page's URL once started (undefined when status is disabled). */
  statusUrl(): string | undefined;
}

/** Wraps something with start/stop methods of another name as a Part. */
function part(name: string, start: () => Promise<void>, stop: () => Promise<void>): Part {
  return { name, start, stop };
}

export function buildGateway(loaded: LoadedSite, opts: GatewayOptions): Gateway {
  const { site } = loaded;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger.child({ site: site.site.id });
  const version = gatewayVersion();
  const parts: Part[] = [];
  const providers: StatusProviders = {};
  const gridSources: GridSampleSource[] = [];
  // Set once the alert evaluator is built; the meters section reads its p99 windows.
  let alertsOverview: () => AlertOverview[] = () => [];

  // The local alert evaluator reads the gateway's own aggregated metrics through a pull reader on
  // the same MeterProvider, so it must exist before telemetry is built.
  const alertReader = new AlertMetricReader();

  // --- 1. telemetry: first up, last down (its shutdown flushes what the others recorded) ---
  const telemetry = createTelemetry({
    config: site.telemetry,
    site: site.site,
    logger,
    serviceVersion: version,
    env: opts.env,
    now: () => clock.now(),
    // No spanRatios entry for ems.meter.process_reading: MeterIngest samples those spans itself at
    // reading_span_ratio; a second ratio in the SDK sampler would square it.
    extraMetricReaders: [alertReader, ...(opts.extraMetricReaders ?? [])],
    ...(opts.extraSpanProcessors ? { extraSpanProcessors: opts.extraSpanProcessors } : {}),
  });
  parts.push(part('telemetry', async () => undefined, () => telemetry.shutdown(Math.min(5000, site.telemetry.export_timeout_ms + 1000))));
  providers.exporter = () => exporterStatus(telemetry.settings, telemetry.exporterHealth(), telemetry.spanQueue());

  // --- 2. status endpoint: early, so a technician sees start-up progress and which part failed ---
  let statusServer: StatusServer | undefined;
  // The status context is built before the lifecycle that it reports on: it reads it through this holder.
  const holder: { lifecycle?: Lifecycle } = {};
  const context: StatusContext = {
    site: { id: site.site.id, region: site.site.region, ...(site.site.name !== undefined ? { name: site.site.name } : {}) },
    version,
    now: () => clock.now(),
    uptimeMs: () => holder.lifecycle?.uptimeMs() ?? 0,
    ready: () => holder.lifecycle?.ready() ?? false,
    parts: () => holder.lifecycle?.health() ?? [],
    providers,
  };
  if (site.status.enabled) {
    statusServer = new StatusServer({
      host: opts.statusHost ?? site.status.host,
      port: opts.statusPort ?? site.status.port,
      context,
      logger: componentLogger(logger, 'status'),
    });
    parts.push(statusServer);
  }

  // --- 3. delivery: the spool opens before anything hands readings to it, and closes after ---
  let delivery: DeliveryService | undefined;
  if (site.delivery) {
    delivery = new DeliveryService({
      config: site.delivery, site, env: opts.env, meter: telemetry.meter, producer: telemetry.cumulativeProducer, clock, logger,
      resourceAttributes: telemetry.settings.resourceAttributes,
    });
    parts.push(delivery);
    const d = delivery;
    providers.delivery = () => deliveryStatus(d.status());
  }

  // --- 4. meter ingest over MQTT: only when the site has mqtt.meters ---
  let meters: MeterIngest | undefined;
  if (site.mqtt?.meters) {
    const ingest = new MeterIngest({
      mqtt: site.mqtt, clock, logger, meter: telemetry.meter, tracer: telemetry.tracer, producer: telemetry.cumulativeProducer,
      stateFile: site.mqtt.meters.state_file,
      ...(delivery ? { sink: delivery } : {}),
    });
    meters = ingest;
    gridSources.push(ingest);
    parts.push(part('meters', async () => ingest.start(), () => ingest.stop({ drainTimeoutMs: 4000 })));
    providers.meters = () => meterStatus(ingest.status(), alertsOverview());
  }

  // --- 5. Modbus: pollers on one endpoint per host:port, shared with DR writes ---
  const holderPollers: { set?: PollerSet } = {};
  const recorder = delivery
    ? new DeviceSampleRecorder(site.devices, () => (holderPollers.set as PollerSet).snapshot, delivery, clock, componentLogger(logger, 'delivery'))
    : undefined;
  const pollers = new PollerSet(loaded, {
    clock, logger, meter: telemetry.meter, gaugeProducer: telemetry.gaugeProducer, producer: telemetry.cumulativeProducer,
    ...(recorder?.enabled ? { onCycle: (id: string) => recorder.cycleDone(id) } : {}),
  });
  holderPollers.set = pollers;
  const pool = pollers.pool;
  const endpointOf = (d: DeviceConfig): ModbusEndpointClient | undefined => {
    const profile = loaded.profiles.get(d.profile);
    return profile && d.enabled ? pool.forDevice(d, profile) : undefined;
  };
  if (site.devices.some((d) => d.enabled)) {
    gridSources.push(pollers);
    // Final only when the whole gateway stops (its last export still carries the devices' figures);
    // a modbus part isolated at run time stops reporting them at once.
    const final = (): boolean => holder.lifecycle?.state === 'stopping';
    parts.push(part('modbus', async () => pollers.start(), async () => { await pollers.stop({ final: final() }); await recorder?.stop(); }));
    providers.devices = () => deviceStatus(pollers.status(), site.devices, pollers, clock.now());
    providers.device = (id) => deviceDetail(id, pollers.status(), site.devices, pollers, clock.now());
  }

  // --- 6. grid state: reads the pollers' snapshot and the meter power table ---
  const grid = new GridState({
    config: site.grid, site: site.site, sources: gridSources, meter: telemetry.meter, tracer: telemetry.tracer, clock, logger,
  });
  parts.push(grid);
  providers.grid = () => gridStatus(grid.status(), site.site.nominal_frequency_hz, clock.now());

  // --- 7. alerts: the five seed alerts and the delivery backlog evaluated locally (the uplink may be down) ---
  const alerts = new AlertEvaluator({ config: site.alerts, site: site.site, reader: alertReader, meter: telemetry.meter, clock, logger });
  parts.push(part('alerts', () => alerts.start(), () => alerts.stop()));
  providers.alerts = () => alertStatus(alerts.status());
  alertsOverview = () => alerts.status();

  // --- 8. demand response: only when the site has mqtt.demand_response ---
  let dr: DemandResponseService | undefined;
  if (site.mqtt?.demand_response) {
    const tally = new DrTally();
    const service = new DemandResponseService({
      config: site.mqtt.demand_response, mqtt: site.mqtt, site, profiles: loaded.profiles, endpoints: endpointOf,
      meter: telemetry.meter, tracer: telemetry.tracer, clock, logger, onAck: (ack) => tally.record(ack),
      loadKw: snapshotLoadProvider(pollers.snapshot, site, loaded.profiles, clock),
    });
    dr = service;
    parts.push(part('demand-response', () => service.start(), () => service.stop()));
    providers.demand_response = () => drStatus(service.status(), tally);
  }

  const lc = new Lifecycle(parts, { logger, clock, ...(opts.stopTimeoutMs !== undefined ? { stopTimeoutMs: opts.stopTimeoutMs } : {}) });
  holder.lifecycle = lc;
  return {
    lifecycle: lc,
    telemetry,
    grid,
    alerts,
    meters,
    delivery,
    demandResponse: dr,
    endpoints: pool,
    pollers,
    start: () => lc.start(),
    stop: () => lc.stop(),
    status: () => gatherStatus(context),
    statusUrl: () => statusServer?.url,
  };
}
