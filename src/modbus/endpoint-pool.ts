// The one place that hands out endpoints: exactly one ModbusEndpoint per host:port (one TCP
// connection, Modbus TCP or RTU over TCP) or per serial port (one RTU line), shared by every unit
// id behind it, by the pollers and by demand-response writes. Many devices accept only 1 to 4
// connections (SolarEdge: one) and a serial line carries one request at a time, so a second
// connection is never opened, whichever part asks.
import type { DeviceProfile } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { ModbusEndpoint, type EndpointObserver, type EndpointTuning } from './endpoint.js';
import { endpointKey } from '../config/endpoint-key.js';
import { deviceTarget, targetKey, type EndpointTarget } from './transport.js';

interface EndpointPoolDeps {
  clock: Clock;
  logger: Logger;
  observer?: EndpointObserver;
}

export type EndpointDefaults = EndpointTuning;

export class EndpointPool {
  private readonly endpoints = new Map<string, ModbusEndpoint>();

  constructor(private readonly deps: EndpointPoolDeps, private readonly defaults: EndpointDefaults = {}) {}

  /** The shared Modbus TCP endpoint for host:port, created on first use. */
  get(host: string, port: number): ModbusEndpoint {
    return this.forTarget({ transport: 'tcp', host, port });
  }

  /** The shared endpoint of a target (its key: host:port, or the serial port), created on first use. */
  forTarget(target: EndpointTarget): ModbusEndpoint {
    const key = targetKey(target);
    let ep = this.endpoints.get(key);
    if (ep === undefined) {
      ep = new ModbusEndpoint({ ...this.defaults, ...target }, this.deps);
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  /**
   * The endpoint of a device, with its profile's quirks applied: per-unit timeout and request
   * gap, and a pause after connect that is the longest any device behind this endpoint needs.
   * Devices sharing an endpoint share its transport (the site checks make sure they agree).
   */
  forDevice(device: Pick<DeviceConfig, 'transport' | 'host' | 'port' | 'serial' | 'unit_id'>, profile: Pick<DeviceProfile, 'quirks'>): ModbusEndpoint {
    const ep = this.endpoints.get(endpointKey(device)) ?? this.forTarget(deviceTarget(device));
    ep.configureUnit(device.unit_id, { timeoutMs: profile.quirks.timeout_ms, requestGapMs: profile.quirks.request_gap_ms });
    if (profile.quirks.connect_delay_ms > 0) ep.requireConnectDelay(profile.quirks.connect_delay_ms);
    return ep;
  }

  all(): ModbusEndpoint[] {
    return [...this.endpoints.values()];
  }

  async close(): Promise<void> {
    const eps = [...this.endpoints.values()];
    this.endpoints.clear();
    await Promise.all(eps.map((e) => e.close()));
  }
}
