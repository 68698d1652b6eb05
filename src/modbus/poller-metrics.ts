// The Modbus layer's self-metrics (names and units from src/telemetry/semconv.ts). It is the
// endpoints' observer, so DR writes are counted with the same instruments as polls. Instruments
// are created once; attribute objects are cached per device so a request allocates nothing here.
import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';
import type { EndpointObserver, RequestEvent } from './endpoint.js';

const A = METRIC_ATTRS;

export class ModbusMetrics implements EndpointObserver {
  private readonly duration: Histogram;
  private readonly requests: Counter;
  private readonly errors: Counter;
  private readonly bytes: Counter;
  private readonly strays: Counter;
  private readonly malformedFrames: Counter;
  private readonly cycle: Histogram;
  private readonly overruns: Counter;
  private readonly attrs = new Map<string, Attributes>();

  constructor(meter: Meter) {
    this.duration = meter.createHistogram(METRICS.modbusRequestDuration, {
      unit: METRIC_UNITS.modbusRequestDuration, description: 'Modbus request round trip, from send to response',
    });
    this.requests = meter.createCounter(METRICS.modbusRequests, { unit: METRIC_UNITS.modbusRequests, description: 'Modbus requests sent' });
    this.errors = meter.createCounter(METRICS.modbusErrors, {
      unit: METRIC_UNITS.modbusErrors, description: 'Failed Modbus requests by error_type (including those refused before the wire)',
    });
    this.bytes = meter.createCounter(METRICS.modbusBytes, { unit: METRIC_UNITS.modbusBytes, description: 'Modbus TCP bytes by direction' });
    this.strays = meter.createCounter(METRICS.modbusStrayResponses, {
      unit: METRIC_UNITS.modbusStrayResponses, description: 'Responses matching no request in flight (late replies), discarded',
    });
    this.malformedFrames = meter.createCounter(METRICS.modbusMalformedFrames, {
      unit: METRIC_UNITS.modbusMalformedFrames, description: 'Bytes that could not be framed (garbled header, partial frame at timeout)',
    });
    this.cycle = meter.createHistogram(METRICS.modbusPollCycleDuration, {
      unit: METRIC_UNITS.modbusPollCycleDuration, description: 'Time to read every planned request of a device once',
    });
    this.overruns = meter.createCounter(METRICS.modbusPollOverruns, {
      unit: METRIC_UNITS.modbusPollOverruns, description: 'Poll cycles that took longer than the poll interval (the next cycle is skipped, never stacked)',
    });
  }

  private cached(key: string, make: () => Attributes): Attributes {
    let a = this.attrs.get(key);
    if (a === undefined) {
      a = make();
      this.attrs.set(key, a);
    }
    return a;
  }

  requestDone(ev: RequestEvent): void {
    const dev = ev.deviceId ?? `unit-${ev.unitId}@${ev.endpoint}`;
    if (ev.sent) {
      this.duration.record(ev.durationMs, this.cached(dev, () => ({ [A.deviceId]: dev })));
      this.requests.add(1, this.cached(`${dev}\0${ev.table}`, () => ({ [A.deviceId]: dev, [A.table]: ev.table })));
      // Bytes per endpoint, not per device: it is the link's load, and 1,000 devices x 2 directions
      // would reach the SDK's 2,000 attribute sets per metric.
      const ep = ev.endpoint;
      this.bytes.add(ev.bytesOut, this.cached(`ep\0${ep}\0out`, () => ({ [A.endpoint]: ep, [A.direction]: 'out' })));
      if (ev.bytesIn > 0) this.bytes.add(ev.bytesIn, this.cached(`ep\0${ep}\0in`, () => ({ [A.endpoint]: ep, [A.direction]: 'in' })));
    }
    if (ev.error !== undefined) {
      const et = ev.error;
      this.errors.add(1, this.cached(`${dev}\0e\0${et}`, () => ({ [A.deviceId]: dev, [A.errorType]: et })));
    }
  }

  stray(endpoint: string, bytes: number): void {
    this.strays.add(1, this.cached(`ep\0${endpoint}`, () => ({ [A.endpoint]: endpoint })));
    this.bytes.add(bytes, this.cached(`ep\0${endpoint}\0in`, () => ({ [A.endpoint]: endpoint, [A.direction]: 'in' })));
  }

  malformed(endpoint: string): void {
    this.malformedFrames.add(1, this.cached(`ep\0${endpoint}`, () => ({ [A.endpoint]: endpoint })));
  }

  /** Errors the poller finds after a good response (a point that could not be decoded). */
  decodeError(deviceId: string, errorType: string): void {
    this.errors.add(1, this.cached(`${deviceId}\0e\0${errorType}`, () => ({ [A.deviceId]: deviceId, [A.errorType]: errorType })));
  }

  cycleDone(deviceId: string, durationMs: number, overrun: boolean): void {
    const attrs = this.cached(deviceId, () => ({ [A.deviceId]: deviceId }));
    this.cycle.record(durationMs, attrs);
    if (overrun) this.overruns.add(1, attrs);
  }
}
