// Device gauges: one observable gauge per distinct `metric` name in the profiles (unit from the
// profile), all observed in ONE batch callback that reads the snapshot (the host-metrics pattern):
// a metric collection never triggers Modbus I/O. Attributes: device_id, zone, role (the device's
// role label, default the profile's kind), point. Site and gateway identity live on the resource.
import type { Attributes, BatchObservableResult, Meter, Observable, ObservableGauge } from '@opentelemetry/api';
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { DeviceSnapshot } from './snapshot.js';

const A = METRIC_ATTRS;

/** Points that are never metrics even if a profile names one. */
const NOT_METRICS: ReadonlySet<string> = new Set(['scale_factor', 'identity']);

interface Binding {
  gauge: ObservableGauge;
  pointId: string;
  attrs: Attributes;
}

interface DeviceBindings {
  deviceId: string;
  staleAfterMs: number;
  upAttrs: Attributes;
  points: Binding[];
}

export interface DeviceGaugesDeps {
  meter: Meter;
  snapshot: DeviceSnapshot;
  clock: Clock;
  logger: Logger;
  /** Device availability (undefined: not polled yet). */
  isUp: (deviceId: string) => boolean | undefined;
}

export function isExportedPoint(p: PointDef): p is PointDef & { metric: string } {
  return p.metric !== undefined && !(p.role !== undefined && NOT_METRICS.has(p.role)) && p.type !== 'string';
}

export class DeviceGauges {
  private readonly gauges = new Map<string, ObservableGauge>();
  private devices: DeviceBindings[] = [];
  private up: ObservableGauge | undefined;
  private registered: Observable[] = [];
  private readonly observe = (r: BatchObservableResult): void => this.collect(r);

  constructor(private readonly deps: DeviceGaugesDeps, private readonly polled: ReadonlyArray<{ device: DeviceConfig; profile: DeviceProfile }>) {}

  start(): void {
    const { meter } = this.deps;
    this.up = meter.createObservableGauge(METRICS.modbusDeviceUp, {
      unit: METRIC_UNITS.modbusDeviceUp, description: '1 when the last poll cycle of the device read something, 0 when it read nothing',
    });
    const units = new Map<string, string>();
    for (const { device, profile } of this.polled) {
      const role = device.role ?? profile.kind;
      const points: Binding[] = [];
      for (const p of profile.points) {
        if (!isExportedPoint(p)) continue;
        let gauge = this.gauges.get(p.metric);
        const unit = p.unit ?? '';
        if (gauge === undefined) {
          gauge = meter.createObservableGauge(p.metric, { unit, description: p.description ?? p.name ?? p.id });
          this.gauges.set(p.metric, gauge);
          units.set(p.metric, unit);
        } else if (units.get(p.metric) !== unit) {
          this.deps.logger.warn({ metric: p.metric, profile: profile.profile, point: p.id, unit, first_unit: units.get(p.metric) },
            'two profiles give one metric different units: the first one is used');
        }
        points.push({ gauge, pointId: p.id, attrs: { [A.deviceId]: device.id, [A.zone]: device.zone, [A.role]: role, [A.point]: p.id } });
      }
      this.devices.push({
        deviceId: device.id,
        // A value older than this is not exported even if still in the snapshot (a stuck poller).
        staleAfterMs: Math.max(3 * device.poll_interval_ms, 5_000),
        upAttrs: { [A.deviceId]: device.id, [A.zone]: device.zone },
        points,
      });
    }
    this.registered = [this.up, ...this.gauges.values()];
    meter.addBatchObservableCallback(this.observe, this.registered);
  }

  stop(): void {
    if (this.registered.length > 0) this.deps.meter.removeBatchObservableCallback(this.observe, this.registered);
    this.registered = [];
    this.devices = [];
  }

  /** The metric names exported (for docs and validate). */
  metricNames(): string[] {
    return [...this.gauges.keys()];
  }

  private collect(r: BatchObservableResult): void {
    const now = this.deps.clock.now();
    const snap = this.deps.snapshot;
    for (const d of this.devices) {
      const up = this.deps.isUp(d.deviceId);
      if (up !== undefined && this.up !== undefined) r.observe(this.up, up ? 1 : 0, d.upAttrs);
      for (const b of d.points) {
        const v = snap.get(d.deviceId, b.pointId);
        if (v === undefined || now - v.readAtMs > d.staleAfterMs) continue;
        if (typeof v.value === 'number') {
          if (Number.isFinite(v.value)) r.observe(b.gauge, v.value, b.attrs);
        } else if (typeof v.value === 'boolean') {
          r.observe(b.gauge, v.value ? 1 : 0, b.attrs);
        }
      }
    }
  }
}
