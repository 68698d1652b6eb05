// Device gauges: one observable gauge per distinct `metric` name in the profiles (unit from the
// profile), all observed in ONE batch callback that reads the snapshot (the host-metrics pattern):
// a metric collection never triggers Modbus I/O. Attributes: device_id, zone, role (the device's
// role label, default the profile's kind), point. Site and gateway identity live on the resource.
// With a GaugeProducer (src/telemetry/gauge-producer.ts, the gateway's telemetry has one) the same
// series are emitted straight from the snapshot instead, without the SDK's per-series state and
// per-collection garbage (bench:modbus RSS); without one, observable gauges on the Meter.
import type { Attributes, BatchObservableResult, Meter, Observable, ObservableGauge } from '@opentelemetry/api';
import type { DeviceProfile, PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { GaugeEmit, GaugeProducer, GaugeSource, GaugeStream } from '../telemetry/gauge-producer.js';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { DeviceSnapshot } from './snapshot.js';
import { slabInt32 } from './typed-slab.js';

const A = METRIC_ATTRS;

/** Points that are never metrics even if a profile names one. */
const NOT_METRICS: ReadonlySet<string> = new Set(['scale_factor', 'identity']);


const UP_STREAM = 0;

/**
 * The longest the figures of the moment the gateway shut down are still reported: long enough for
 * the export telemetry sends when it stops, last (the gateway's whole stop is bounded by 7 s).
 * Each figure also ends where its device's staleness bound would have ended it (stale is never
 * reported as fresh), and only a shutdown freezes them (PollerSet.stop({ final: true })).
 */
export const FINAL_FIGURES_MS = 15_000;

/**
 * A device's exported points as parallel arrays (no object per point: 100,000 series at 5,000
 * devices): the stream (index into the streams and the observable gauges), the slot of the point
 * in the device's snapshot values (-1: none), and the series' attributes, built once and frozen.
 */
interface DeviceBindings {
  deviceId: string;
  staleAfterMs: number;
  upAttrs: Attributes;
  streams: Int32Array;
  slots: Int32Array;
  attrs: Attributes[];
}

interface DeviceGaugesDeps {
  meter: Meter;
  snapshot: DeviceSnapshot;
  clock: Clock;
  logger: Logger;
  /** Device availability (undefined: not polled yet). */
  isUp: (deviceId: string) => boolean | undefined;
  /** Report through this producer instead of observable gauges on `meter`. */
  producer?: GaugeProducer;
}

function isExportedPoint(p: PointDef): p is PointDef & { metric: string } {
  return p.metric !== undefined && !(p.role !== undefined && NOT_METRICS.has(p.role)) && p.type !== 'string';
}

export class DeviceGauges {
  /** Metric name -> stream index. */
  private readonly streamOf = new Map<string, number>();
  private streams: GaugeStream[] = [];
  private devices: DeviceBindings[] = [];
  private observables: ObservableGauge[] = [];
  /** Frozen at shutdown: each figure with the epoch ms after which it is no longer reported. */
  private final: Array<[stream: number, value: number, attrs: Attributes, untilMs: number]> | undefined;
  private registered: Observable[] = [];
  private source: GaugeSource | undefined;
  private readonly observe = (r: BatchObservableResult): void => {
    const gauges = this.observables;
    this.scan((stream, value, attrs) => {
      const g = gauges[stream];
      if (g !== undefined) r.observe(g, value, attrs);
    });
  };

  constructor(private readonly deps: DeviceGaugesDeps, private readonly polled: ReadonlyArray<{ device: DeviceConfig; profile: DeviceProfile }>) {}

  start(): void {
    const { meter, producer } = this.deps;
    this.streams = [{
      name: METRICS.modbusDeviceUp, unit: METRIC_UNITS.modbusDeviceUp,
      description: '1 when the last poll cycle of the device read something, 0 when it read nothing',
    }];
    this.streamOf.set(METRICS.modbusDeviceUp, UP_STREAM);
    const units = new Map<string, string>();
    for (const { device, profile } of this.polled) {
      const role = device.role ?? profile.kind;
      const values = this.deps.snapshot.device(device.id);
      const streams: number[] = [];
      const slots: number[] = [];
      const attrs: Attributes[] = [];
      for (const p of profile.points) {
        if (!isExportedPoint(p)) continue;
        let stream = this.streamOf.get(p.metric);
        const unit = p.unit ?? '';
        if (stream === undefined) {
          stream = this.streams.length;
          this.streams.push({ name: p.metric, unit, description: p.description ?? p.name ?? p.id });
          this.streamOf.set(p.metric, stream);
          units.set(p.metric, unit);
        } else if (units.get(p.metric) !== unit) {
          this.deps.logger.warn({ metric: p.metric, profile: profile.profile, point: p.id, unit, first_unit: units.get(p.metric) },
            'two profiles give one metric different units: the first one is used');
        }
        // Built once per (device, point) and frozen: every collection reuses the same object.
        streams.push(stream);
        slots.push(values?.slotOf(p.id) ?? -1);
        attrs.push(Object.freeze({ [A.deviceId]: device.id, [A.zone]: device.zone, [A.role]: role, [A.point]: p.id }));
      }
      const d: DeviceBindings = {
        deviceId: device.id,
        // A value older than this is not exported even if still in the snapshot (a stuck poller).
        staleAfterMs: Math.max(3 * device.poll_interval_ms, 5_000),
        upAttrs: Object.freeze({ [A.deviceId]: device.id, [A.zone]: device.zone }),
        streams: slabInt32(streams.length),
        slots: slabInt32(slots.length),
        attrs,
      };
      d.streams.set(streams);
      d.slots.set(slots);
      this.devices.push(d);
    }
    if (producer !== undefined) {
      const streams = this.streams;
      this.source = { streams, collect: (emit) => this.scan(emit) };
      producer.add(this.source);
      return;
    }
    this.observables = this.streams.map((s) => meter.createObservableGauge(s.name, { unit: s.unit, description: s.description }));
    this.registered = [...this.observables];
    meter.addBatchObservableCallback(this.observe, this.registered);
  }

  stop(): void {
    if (this.registered.length > 0) this.deps.meter.removeBatchObservableCallback(this.observe, this.registered);
    if (this.source !== undefined) this.deps.producer?.remove(this.source);
    this.source = undefined;
    this.registered = [];
    this.observables = [];
    this.devices = [];
    this.final = undefined;
  }

  /** The metric names exported (for docs and validate). */
  metricNames(): string[] {
    return this.streams.slice(UP_STREAM + 1).map((s) => s.name);
  }

  /**
   * The gateway is shutting down and the pollers are stopping: keep reporting the availability and
   * values of this moment, so the export sent at shutdown still carries them. A value is reported
   * only while it would still be fresh (its device's staleness bound from when it was read), the
   * availability only for the device's staleness bound from now, and nothing after FINAL_FIGURES_MS.
   */
  freeze(): void {
    const now = this.deps.clock.now();
    const last = now + FINAL_FIGURES_MS;
    const frozen: Array<[number, number, Attributes, number]> = [];
    this.final = undefined;
    this.scanLive(now, (stream, value, attrs, untilMs) => { frozen.push([stream, value, attrs, Math.min(untilMs, last)]); });
    this.final = frozen;
  }

  /** Every fresh value in the snapshot, once: what one collection reports. */
  private scan(emit: GaugeEmit): void {
    const now = this.deps.clock.now();
    if (this.final !== undefined) {
      for (const [s, v, a, untilMs] of this.final) if (now <= untilMs) emit(s, v, a);
      return;
    }
    this.scanLive(now, emit);
  }

  /** The snapshot's fresh values; `untilMs`: the last epoch ms each would still be fresh (freeze()). */
  private scanLive(now: number, emit: (stream: number, value: number, attrs: Attributes, untilMs: number) => void): void {
    const snap = this.deps.snapshot;
    for (const d of this.devices) {
      const up = this.deps.isUp(d.deviceId);
      if (up !== undefined) emit(UP_STREAM, up ? 1 : 0, d.upAttrs, now + d.staleAfterMs);
      const values = snap.device(d.deviceId);
      if (values === undefined) continue;
      for (let i = 0; i < d.slots.length; i++) {
        const slot = d.slots[i] as number;
        // Numbers (finite) and booleans (1/0) only: strings are no gauge values.
        const v = slot < 0 ? undefined : values.numberAt(slot);
        if (v === undefined || !Number.isFinite(v)) continue;
        const readAtMs = values.readAtMs(slot);
        if (now - readAtMs > d.staleAfterMs) continue;
        emit(d.streams[i] as number, v, d.attrs[i] as Attributes, readAtMs + d.staleAfterMs);
      }
    }
  }
}
