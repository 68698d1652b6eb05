// Every Modbus device of a site: one DevicePoller each, on the shared endpoints of one
// EndpointPool, writing one DeviceSnapshot that feeds the device gauges and the grid state.
// Start-up is staggered across the poll interval so 1,000 devices don't fire at once.
import type { Meter } from '@opentelemetry/api';
import type { DeviceProfile } from '../config/profile-types.js';
import type { DeviceConfig, LoadedSite } from '../config/site-types.js';
import type { GridRole, GridSample, GridSampleSource } from '../grid/sources.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { CumulativeProducer } from '../telemetry/cumulative-producer.js';
import type { GaugeProducer } from '../telemetry/gauge-producer.js';
import { DeviceGauges } from './device-metrics.js';
import { EndpointPool, type EndpointDefaults } from './endpoint-pool.js';
import type { PointReadout, ReadBlockReadout } from './live-values.js';
import { DevicePoller, type DeviceStatus, type PollObserver } from './poller.js';
import { ModbusMetrics } from './poller-metrics.js';
import { planIdentityReads, planReads, type PlannedRead } from './read-plan.js';
import { DeviceSnapshot } from './snapshot.js';

interface PollerSetDeps {
  clock: Clock;
  logger: Logger;
  meter: Meter;
  /** The shared pool (demand response writes through the same endpoints). Default: one made here. */
  pool?: EndpointPool;
  /** Only used when the pool is made here. */
  endpointDefaults?: EndpointDefaults;
  /** Called after every poll cycle (the benchmark computes exact percentiles from it). */
  onCycle?: (deviceId: string, durationMs: number, overrun: boolean) => void;
  /** Device gauges go through this producer (telemetry.gaugeProducer) instead of observable gauges on `meter`. */
  gaugeProducer?: GaugeProducer;
  /** The ems.modbus.* counters and histograms go through this producer (telemetry.cumulativeProducer) instead of instruments on `meter`. */
  producer?: CumulativeProducer;
}

export class PollerSet implements GridSampleSource {
  readonly snapshot = new DeviceSnapshot();
  readonly metrics: ModbusMetrics;
  readonly pool: EndpointPool;
  private readonly ownsPool: boolean;
  private pollers: DevicePoller[] = [];
  private gauges: DeviceGauges | undefined;
  private readonly log: Logger;

  constructor(private readonly loaded: Pick<LoadedSite, 'site' | 'profiles'>, private readonly deps: PollerSetDeps) {
    this.log = deps.logger.child({ component: 'modbus' });
    this.metrics = new ModbusMetrics(deps.meter, deps.producer, () => deps.clock.now());
    this.ownsPool = deps.pool === undefined;
    this.pool = deps.pool ?? new EndpointPool({ clock: deps.clock, logger: deps.logger, observer: this.metrics }, deps.endpointDefaults);
  }

  /** The enabled devices with their profiles (a device whose profile is missing is skipped and logged). */
  private devices(): Array<{ device: DeviceConfig; profile: DeviceProfile }> {
    const out: Array<{ device: DeviceConfig; profile: DeviceProfile }> = [];
    for (const device of this.loaded.site.devices) {
      if (!device.enabled) continue;
      const profile = this.loaded.profiles.get(device.profile);
      if (profile === undefined) {
        this.log.error({ device: device.id, profile: device.profile }, 'device skipped: profile not loaded');
        continue;
      }
      out.push({ device, profile });
    }
    return out;
  }

  start(): void {
    if (this.pollers.length > 0) return; // already started
    this.gauges?.stop(); // the figures kept from a previous stop
    this.gauges = undefined;
    const list = this.devices();
    const onCycle = this.deps.onCycle;
    const observer: PollObserver = onCycle === undefined ? this.metrics : {
      cycleDone: (id, ms, overrun) => { this.metrics.cycleDone(id, ms, overrun); onCycle(id, ms, overrun); },
      decodeError: (id, et) => this.metrics.decodeError(id, et),
    };
    for (const { device, profile } of list) this.snapshot.register(device, profile);
    // One read plan per profile, not per device (1,000 devices of one profile: one plan).
    type Plans = { plan?: readonly PlannedRead[]; identityPlan?: readonly PlannedRead[] };
    const plans = new Map<string, Plans>();
    const planOf = (profile: DeviceProfile): Plans => {
      let p = plans.get(profile.profile);
      if (p === undefined) {
        try {
          p = { plan: planReads(profile).requests, identityPlan: planIdentityReads(profile).requests };
        } catch {
          p = {}; // each device's poller reports the planning error itself
        }
        plans.set(profile.profile, p);
      }
      return p;
    };
    this.pollers = list.map(({ device, profile }) => new DevicePoller(device, profile, {
      clock: this.deps.clock, logger: this.deps.logger, endpoint: this.pool.forDevice(device, profile),
      snapshot: this.snapshot, observer, ...planOf(profile),
    }));
    const byId = new Map(this.pollers.map((p) => [p.device.id, p]));
    this.gauges = new DeviceGauges(
      {
        meter: this.deps.meter, snapshot: this.snapshot, clock: this.deps.clock, logger: this.log, isUp: (id) => byId.get(id)?.isUp,
        ...(this.deps.gaugeProducer === undefined ? {} : { producer: this.deps.gaugeProducer }),
      },
      list,
    );
    this.gauges.start();
    // Stagger by endpoint: endpoints are spread evenly over the interval, and the devices behind
    // one endpoint start together, so their requests go back to back on the one connection they
    // share (one event-loop wake-up per endpoint, not per device: half the CPU at 1,000 devices,
    // bench:modbus). 1,000 devices never fire at once: each endpoint has one request in flight.
    const n = this.pollers.length;
    const endpointKeys = [...new Set(this.pollers.map((p) => p.endpointKey))];
    const slot = new Map(endpointKeys.map((k, i) => [k, i / Math.max(1, endpointKeys.length)]));
    for (const p of this.pollers) p.start(Math.floor(p.device.poll_interval_ms * (slot.get(p.endpointKey) ?? 0)));
    this.log.info({ devices: n, endpoints: this.pool.all().length }, 'modbus polling started');
  }

  /**
   * Stops polling. `final`: the gateway is shutting down, so the gauges keep the figures of this
   * moment for the export telemetry sends when it stops, last (the pollers clear the snapshot as
   * they stop; a later start() replaces them). Stopped at run time (not final), the devices' figures
   * end now: a value no poller refreshes is not reported as fresh.
   */
  async stop(opts: { final?: boolean } = {}): Promise<void> {
    if (opts.final === true) this.gauges?.freeze();
    else this.gauges?.stop();
    // Close the endpoints first (when ours) so in-flight cycles end at once with 'closed'.
    const pollersDone = Promise.all(this.pollers.map((p) => p.stop()));
    if (this.ownsPool) await this.pool.close();
    await pollersDone;
    this.pollers = [];
    if (this.ownsPool) this.metrics.close();
  }

  status(): DeviceStatus[] {
    return this.pollers.map((p) => p.status());
  }

  /** One device's live values (live-values.ts); undefined for a device that is not polled. */
  liveValues(deviceId: string, withRegisters = false): PointReadout[] | undefined {
    return this.pollers.find((p) => p.device.id === deviceId)?.liveValues(withRegisters);
  }

  /** One device's planned reads with the registers of their last answer; undefined when not polled. */
  lastReads(deviceId: string): ReadBlockReadout[] | undefined {
    return this.pollers.find((p) => p.device.id === deviceId)?.lastReadBlocks();
  }

  /**
   * The profile a device's writable controls are made from: its own profile, or for a SunSpec
   * profile the one placed on the chain found on the device (undefined until found; controls of
   * models the device lacks are not in it).
   */
  deviceProfile(deviceId: string): DeviceProfile | undefined {
    return this.pollers.find((p) => p.device.id === deviceId)?.deviceProfile;
  }

  gridSamples(): GridSample[] {
    return this.snapshot.gridSamples();
  }

  gridRoles(): Set<GridRole> {
    return this.snapshot.gridRoles();
  }
}
