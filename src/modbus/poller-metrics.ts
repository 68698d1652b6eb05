// The Modbus layer's self-metrics (names and units from src/telemetry/semconv.ts). It is the
// endpoints' observer, so DR writes are counted with the same instruments as polls. Instruments
// are created once; attribute objects are cached per device so a request allocates nothing here.
// Counters are plain numbers here, reported by observable counters in one batch callback: a
// synchronous OTel add() hashes its attributes on every call, which at 1,000 requests/s cost
// more CPU than the Modbus I/O itself (bench:modbus). Histograms stay synchronous.
import type { Attributes, BatchObservableResult, Histogram, Meter, Observable, ObservableCounter } from '@opentelemetry/api';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { EndpointObserver, RequestEvent } from './endpoint.js';
import { GARBAGE_ERROR_TYPE } from './endpoint-types.js';

const A = METRIC_ATTRS;

interface Tally { attrs: Attributes; n: number }

/**
 * Monotonic totals per attribute set (one or two attributes), observed at collection time.
 * Two-level maps keyed by the attribute values: a hot-path add() builds no string and no closure.
 */
class Tallies {
  private readonly m = new Map<string, Map<string, Tally>>();
  add(k1: string, v1: string, k2: string | undefined, v2: string, n: number): void {
    let inner = this.m.get(v1);
    if (inner === undefined) {
      inner = new Map();
      this.m.set(v1, inner);
    }
    const t = inner.get(v2);
    if (t === undefined) inner.set(v2, { attrs: k2 === undefined ? { [k1]: v1 } : { [k1]: v1, [k2]: v2 }, n });
    else t.n += n;
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

export class ModbusMetrics implements EndpointObserver {
  private readonly duration: Histogram;
  private readonly cycle: Histogram;
  private readonly counters: Array<[ObservableCounter, Tallies]>;
  private readonly requests = new Tallies();
  private readonly errors = new Tallies();
  private readonly bytes = new Tallies();
  private readonly strays = new Tallies();
  private readonly malformedFrames = new Tallies();
  private readonly overruns = new Tallies();
  private readonly attrs = new Map<string, Attributes>();
  private readonly observables: Observable[];
  private readonly observe = (r: BatchObservableResult): void => {
    for (const [c, t] of this.counters) t.observe(r, c);
  };

  constructor(private readonly meter: Meter) {
    this.duration = meter.createHistogram(METRICS.modbusRequestDuration, {
      unit: METRIC_UNITS.modbusRequestDuration, description: 'Modbus request round trip, from send to response',
    });
    const counter = (name: string, unit: string, description: string): ObservableCounter => meter.createObservableCounter(name, { unit, description });
    this.counters = [
      [counter(METRICS.modbusRequests, METRIC_UNITS.modbusRequests, 'Modbus requests sent'), this.requests],
      [counter(METRICS.modbusErrors, METRIC_UNITS.modbusErrors, 'Failed Modbus requests by error_type (including those refused before the wire), and garbage received while a request of the device was in flight (error_type garbage)'), this.errors],
      [counter(METRICS.modbusBytes, METRIC_UNITS.modbusBytes, 'Modbus TCP bytes by endpoint and direction'), this.bytes],
      [counter(METRICS.modbusStrayResponses, METRIC_UNITS.modbusStrayResponses, 'Responses matching no request in flight (late replies), discarded'), this.strays],
      [counter(METRICS.modbusMalformedFrames, METRIC_UNITS.modbusMalformedFrames, 'Bytes that could not be framed (garbled header, partial frame at timeout)'), this.malformedFrames],
      [counter(METRICS.modbusPollOverruns, METRIC_UNITS.modbusPollOverruns, 'Poll cycles that took longer than the poll interval (the next slot is skipped, never stacked)'), this.overruns],
    ];
    this.observables = this.counters.map(([c]) => c);
    meter.addBatchObservableCallback(this.observe, this.observables);
    this.cycle = meter.createHistogram(METRICS.modbusPollCycleDuration, {
      unit: METRIC_UNITS.modbusPollCycleDuration, description: 'Time to read every planned request of a device once',
    });
  }

  /** Stop reporting the counters (the PollerSet's stop). */
  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, this.observables);
  }

  /** Totals for status and tests: requests sent, errors, strays. */
  totals(): { requests: number; errors: number; strays: number; malformedFrames: number } {
    return { requests: this.requests.total(), errors: this.errors.total(), strays: this.strays.total(), malformedFrames: this.malformedFrames.total() };
  }

  private deviceAttrs(deviceId: string): Attributes {
    let a = this.attrs.get(deviceId);
    if (a === undefined) {
      a = { [A.deviceId]: deviceId };
      this.attrs.set(deviceId, a);
    }
    return a;
  }

  requestDone(ev: RequestEvent): void {
    const dev = ev.deviceId ?? `unit-${ev.unitId}@${ev.endpoint}`;
    if (ev.sent) {
      this.duration.record(ev.durationMs, this.deviceAttrs(dev));
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
    this.cycle.record(durationMs, this.deviceAttrs(deviceId));
    if (overrun) this.overruns.add(A.deviceId, deviceId, undefined, '', 1);
  }
}
