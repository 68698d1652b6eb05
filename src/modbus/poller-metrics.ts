// The Modbus layer's self-metrics (names, units and buckets from src/telemetry/semconv.ts). It is
// the endpoints' observer, so DR writes are counted with the same instruments as polls. Attribute
// objects are cached per device so a request allocates nothing here. A synchronous OTel add() or
// record() hashes its attributes on every call, which at 1,000 requests/s cost more CPU than the
// Modbus I/O itself (bench:modbus). With the gateway's CumulativeProducer
// (telemetry/cumulative-producer.ts) every counter and histogram is a series index into its typed
// arrays, opened at the first request of a device: no hashing, no SDK state per series, the same
// data points. Without one (tests, tools): counters are plain numbers reported by observable
// counters in one batch callback, histograms synchronous SDK instruments.
import type { Attributes, BatchObservableResult, Histogram, Meter, Observable, ObservableCounter } from '@opentelemetry/api';
import type { CumulativeHistogram, CumulativeProducer, CumulativeSum } from '../telemetry/cumulative-producer.js';
import { BUCKETS, METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { EndpointObserver, RequestEvent } from './endpoint.js';
import { GARBAGE_ERROR_TYPE } from './endpoint-types.js';

const A = METRIC_ATTRS;

/** `series`: its index in the producer's stream (-1: no producer). */
interface Tally { attrs: Attributes; n: number; series: number }

/**
 * Monotonic totals per attribute set (one or two attributes): observed at collection time, or
 * added to a producer's cumulative sum as they come. Two-level maps keyed by the attribute
 * values: a hot-path add() builds no string and no closure.
 */
class Tallies {
  private readonly m = new Map<string, Map<string, Tally>>();
  constructor(private readonly sum?: CumulativeSum, private readonly now: () => number = Date.now) {}
  add(k1: string, v1: string, k2: string | undefined, v2: string, n: number): void {
    let inner = this.m.get(v1);
    if (inner === undefined) {
      inner = new Map();
      this.m.set(v1, inner);
    }
    let t = inner.get(v2);
    if (t === undefined) {
      const attrs = k2 === undefined ? { [k1]: v1 } : { [k1]: v1, [k2]: v2 };
      // A NUL occurs in no device id, endpoint, table, error type or direction.
      t = { attrs, n: 0, series: this.sum === undefined ? -1 : this.sum.series(`${v1}\u0000${v2}`, attrs, this.now()) };
      inner.set(v2, t);
    }
    t.n += n;
    if (t.series >= 0) this.sum?.add(t.series, n);
  }
  observe(r: BatchObservableResult, c: ObservableCounter): void {
    for (const inner of this.m.values()) for (const t of inner.values()) r.observe(c, t.n, t.attrs);
  }
  total(): number {
    let n = 0;
    for (const inner of this.m.values()) for (const t of inner.values()) n += t.n;
    return n;
  }
}

interface Stream { name: string; unit: string; description: string }

const REQUEST_DURATION: Stream = { name: METRICS.modbusRequestDuration, unit: METRIC_UNITS.modbusRequestDuration, description: 'Modbus request round trip, from send to response' };
const CYCLE_DURATION: Stream = { name: METRICS.modbusPollCycleDuration, unit: METRIC_UNITS.modbusPollCycleDuration, description: 'Time to read every planned request of a device once' };
const COUNTERS = {
  requests: { name: METRICS.modbusRequests, unit: METRIC_UNITS.modbusRequests, description: 'Modbus requests sent' },
  errors: { name: METRICS.modbusErrors, unit: METRIC_UNITS.modbusErrors, description: 'Failed Modbus requests by error_type (including those refused before the wire), and garbage received while a request of the device was in flight (error_type garbage)' },
  bytes: { name: METRICS.modbusBytes, unit: METRIC_UNITS.modbusBytes, description: 'Modbus TCP bytes by endpoint and direction' },
  strays: { name: METRICS.modbusStrayResponses, unit: METRIC_UNITS.modbusStrayResponses, description: 'Responses matching no request in flight (late replies), discarded' },
  malformedFrames: { name: METRICS.modbusMalformedFrames, unit: METRIC_UNITS.modbusMalformedFrames, description: 'Bytes that could not be framed (garbled header, partial frame at timeout)' },
  overruns: { name: METRICS.modbusPollOverruns, unit: METRIC_UNITS.modbusPollOverruns, description: 'Poll cycles that took longer than the poll interval (the next slot is skipped, never stacked)' },
} satisfies Record<string, Stream>;

/** A device's attributes and its series in the producer's two histograms (-1: not opened yet). */
interface DeviceSeries { attrs: Attributes; duration: number; cycle: number }

export class ModbusMetrics implements EndpointObserver {
  /** SDK instruments, without a producer. */
  private readonly duration: Histogram | undefined;
  private readonly cycle: Histogram | undefined;
  /** The producer's streams, with one. */
  private readonly durationStream: CumulativeHistogram | undefined;
  private readonly cycleStream: CumulativeHistogram | undefined;
  private readonly requests: Tallies;
  private readonly errors: Tallies;
  private readonly bytes: Tallies;
  private readonly strays: Tallies;
  private readonly malformedFrames: Tallies;
  private readonly overruns: Tallies;
  private readonly devices = new Map<string, DeviceSeries>();
  private observables: Observable[] = [];
  private counters: Array<[ObservableCounter, Tallies]> = [];
  private readonly observe = (r: BatchObservableResult): void => {
    for (const [c, t] of this.counters) t.observe(r, c);
  };

  /**
   * @param producer the gateway's cumulative producer (telemetry.cumulativeProducer): the metrics go
   *   through it, none is created on `meter`
   */
  constructor(private readonly meter: Meter, private readonly producer?: CumulativeProducer, private readonly now: () => number = Date.now) {
    const tallies = (s: Stream): Tallies => new Tallies(producer?.sum(s), now);
    this.requests = tallies(COUNTERS.requests);
    this.errors = tallies(COUNTERS.errors);
    this.bytes = tallies(COUNTERS.bytes);
    this.strays = tallies(COUNTERS.strays);
    this.malformedFrames = tallies(COUNTERS.malformedFrames);
    this.overruns = tallies(COUNTERS.overruns);
    if (producer !== undefined) {
      this.durationStream = producer.histogram(REQUEST_DURATION, BUCKETS.modbusRequestMs);
      this.cycleStream = producer.histogram(CYCLE_DURATION, BUCKETS.pollCycleMs);
      return;
    }
    this.duration = meter.createHistogram(REQUEST_DURATION.name, { unit: REQUEST_DURATION.unit, description: REQUEST_DURATION.description });
    const counter = (s: Stream): ObservableCounter => meter.createObservableCounter(s.name, { unit: s.unit, description: s.description });
    this.counters = [
      [counter(COUNTERS.requests), this.requests],
      [counter(COUNTERS.errors), this.errors],
      [counter(COUNTERS.bytes), this.bytes],
      [counter(COUNTERS.strays), this.strays],
      [counter(COUNTERS.malformedFrames), this.malformedFrames],
      [counter(COUNTERS.overruns), this.overruns],
    ];
    this.observables = this.counters.map(([c]) => c);
    meter.addBatchObservableCallback(this.observe, this.observables);
    this.cycle = meter.createHistogram(CYCLE_DURATION.name, { unit: CYCLE_DURATION.unit, description: CYCLE_DURATION.description });
  }

  /** Stop reporting the counters (the PollerSet's stop). A producer's streams stay: they are cumulative. */
  close(): void {
    if (this.observables.length > 0) this.meter.removeBatchObservableCallback(this.observe, this.observables);
  }

  /** Totals for status and tests: requests sent, errors, strays. */
  totals(): { requests: number; errors: number; strays: number; malformedFrames: number } {
    return { requests: this.requests.total(), errors: this.errors.total(), strays: this.strays.total(), malformedFrames: this.malformedFrames.total() };
  }

  private device(deviceId: string): DeviceSeries {
    let d = this.devices.get(deviceId);
    if (d === undefined) {
      d = { attrs: { [A.deviceId]: deviceId }, duration: -1, cycle: -1 };
      this.devices.set(deviceId, d);
    }
    return d;
  }

  requestDone(ev: RequestEvent): void {
    const dev = ev.deviceId ?? `unit-${ev.unitId}@${ev.endpoint}`;
    if (ev.sent) {
      const d = this.device(dev);
      const h = this.durationStream;
      if (h !== undefined) {
        if (d.duration < 0) d.duration = h.series(dev, d.attrs, this.now());
        h.record(d.duration, ev.durationMs);
      } else {
        this.duration?.record(ev.durationMs, d.attrs);
      }
      this.requests.add(A.deviceId, dev, A.table, ev.table, 1);
      // Bytes per endpoint, not per device: it is the link's load, and 1,000 devices x 2 directions
      // would reach the SDK's 2,000 attribute sets per metric.
      this.bytes.add(A.endpoint, ev.endpoint, A.direction, 'out', ev.bytesOut);
      if (ev.bytesIn > 0) this.bytes.add(A.endpoint, ev.endpoint, A.direction, 'in', ev.bytesIn);
    }
    if (ev.error !== undefined) this.errors.add(A.deviceId, dev, A.errorType, ev.error, 1);
  }

  stray(endpoint: string, bytes: number): void {
    this.strays.add(A.endpoint, endpoint, undefined, '', 1);
    this.bytes.add(A.endpoint, endpoint, A.direction, 'in', bytes);
  }

  malformed(endpoint: string): void {
    this.malformedFrames.add(A.endpoint, endpoint, undefined, '', 1);
  }

  garbage(ev: { endpoint: string; deviceId: string | undefined; unitId: number }): void {
    this.errors.add(A.deviceId, ev.deviceId ?? `unit-${ev.unitId}@${ev.endpoint}`, A.errorType, GARBAGE_ERROR_TYPE, 1);
  }

  /** Errors the poller finds after a good response (a point that could not be decoded). */
  decodeError(deviceId: string, errorType: string): void {
    this.errors.add(A.deviceId, deviceId, A.errorType, errorType, 1);
  }

  cycleDone(deviceId: string, durationMs: number, overrun: boolean): void {
    const d = this.device(deviceId);
    const h = this.cycleStream;
    if (h !== undefined) {
      if (d.cycle < 0) d.cycle = h.series(deviceId, d.attrs, this.now());
      h.record(d.cycle, durationMs);
    } else {
      this.cycle?.record(durationMs, d.attrs);
    }
    if (overrun) this.overruns.add(A.deviceId, deviceId, undefined, '', 1);
  }
}
