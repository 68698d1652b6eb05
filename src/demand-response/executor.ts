// One controller command: bounds check, rate limit, Modbus write(s), read-back, verdict.
// Nothing reaches the wire unless the value is inside the control's [min, max] and not on its
// never_write list; an out-of-range value is rejected (never clamped) and reported. Every write
// attempt is an audit line; the controller counts as acknowledged only after the read-back agrees.
import { context as otelContext, SpanStatusCode, trace, type Context, type Counter, type Span, type Tracer } from '@opentelemetry/api';
import type { ControlDef, DeviceProfile, PointDef } from '../config/profile-types.js';
import { wireAddress } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { ModbusError, type ModbusEndpointClient } from '../modbus/types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { METRIC_ATTRS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import { encodeControl, findPoint, readPoint, type EncodedWrite } from './control-io.js';
import { decodePoint } from '../modbus/codec.js';
import { restoreValue } from './planner.js';

export type ControllerOutcome =
  | 'acknowledged'       // written and read back as requested
  | 'not_acknowledged'   // written, but the read-back disagreed until verify.timeout_ms
  | 'write_failed'       // the device answered the write with an exception, or the write timed out
  | 'unreachable'        // no connection / unit backed off: nothing was written
  | 'rejected_bounds'    // refused before the wire: outside min/max, never_write, or not a number
  | 'dry_run';           // everything but the write

export type TaskPurpose = 'curtail' | 'restore' | 'reassert';

export interface ControllerTask {
  commandId: string;
  purpose: TaskPurpose;
  device: DeviceConfig;
  profile: DeviceProfile;
  control: ControlDef;
  /** Requested value in the control's scaled unit. */
  value: number;
  reductionKw: number;
  /** Seconds the device's own revert timer is set to (profiles with revert_timer). */
  revertSeconds?: number;
}

export interface ControllerResult {
  controller_id: string;
  controller_type: string;
  control: string;
  requested: number;
  read_back?: number;
  outcome: ControllerOutcome;
  error?: string;
  latency_ms: number;
  reduction_kw: number;
}

export type EndpointLookup = (device: DeviceConfig) => ModbusEndpointClient | undefined;

export interface ExecutorDeps {
  endpoints: EndpointLookup;
  clock: Clock;
  audit: Logger;
  tracer: Tracer;
  controllerCommands: Counter;
  dryRun: boolean;
}

const EPS = 1e-9;

interface AuxWrite { point: PointDef; value: number }

function isControl(p: PointDef): p is ControlDef {
  return 'min' in p && 'max' in p && 'verify' in p;
}

export function boundsProblem(control: ControlDef, value: number): string | undefined {
  if (!Number.isFinite(value)) return `value ${value} is not a finite number`;
  if (value < control.min - EPS || value > control.max + EPS) return `value ${value} outside [${control.min}, ${control.max}]`;
  if (control.never_write?.some((v) => Math.abs(v - value) <= EPS)) return `value ${value} is on the never_write list`;
  return undefined;
}

export class ControllerExecutor {
  private readonly deps: ExecutorDeps;
  /** Monotonic time of the last write per device+control, for rate_limit_ms. */
  private readonly lastWrite = new Map<string, number>();

  constructor(deps: ExecutorDeps) {
    this.deps = deps;
  }

  private sleep(ms: number): Promise<void> {
    return ms <= 0 ? Promise.resolve() : new Promise((resolve) => this.deps.clock.setTimeout(resolve, ms));
  }

  async execute(task: ControllerTask, parent: Context): Promise<ControllerResult> {
    const { clock, tracer } = this.deps;
    const started = clock.monotonic();
    const controllerType = task.device.role ?? task.profile.kind;
    const span = tracer.startSpan(SPANS.drControllerCmd, {
      attributes: {
        [SPAN_ATTRS.controllerId]: task.device.id,
        [SPAN_ATTRS.controllerType]: controllerType,
        [SPAN_ATTRS.drCommandId]: task.commandId,
      },
    }, parent);
    const ctx = trace.setSpan(parent, span);
    const result: ControllerResult = {
      controller_id: task.device.id, controller_type: controllerType, control: task.control.id,
      requested: task.value, outcome: 'unreachable', latency_ms: 0, reduction_kw: 0,
    };
    try {
      await this.run(task, ctx, result);
    } catch (err) {
      result.outcome = outcomeOf(err);
      result.error = err instanceof ModbusError ? err.code : 'internal_error';
      if (!(err instanceof ModbusError)) this.deps.audit.error({ err, command_id: task.commandId, device: task.device.id }, 'DR controller command failed unexpectedly');
    } finally {
      result.latency_ms = Number((clock.monotonic() - started).toFixed(3));
      if (result.outcome === 'acknowledged') result.reduction_kw = task.reductionKw;
      const acked = result.outcome === 'acknowledged';
      span.setAttribute(SPAN_ATTRS.cmdLatencyMs, result.latency_ms);
      span.setAttribute(SPAN_ATTRS.cmdAcknowledged, acked);
      if (!acked && result.outcome !== 'dry_run') span.setStatus({ code: SpanStatusCode.ERROR, message: `${result.outcome}${result.error ? `: ${result.error}` : ''}` });
      span.end();
      this.deps.controllerCommands.add(1, { [METRIC_ATTRS.outcome]: result.outcome, [METRIC_ATTRS.zone]: task.device.zone });
    }
    return result;
  }

  private async run(task: ControllerTask, ctx: Context, result: ControllerResult): Promise<void> {
    const { device, control } = task;
    const problem = boundsProblem(control, task.value);
    if (problem !== undefined) {
      this.auditLine(task, control, task.value, undefined, 'rejected_bounds', 'rejected_write', problem);
      throw new ModbusError('rejected_write', `${device.id} ${control.id}@${control.address}: ${problem}`, { device: device.id });
    }
    // Every register this command touches is resolved and bounds-checked before the first write.
    const aux = this.auxWrites(task);
    if (typeof aux === 'string') {
      this.auditLine(task, control, task.value, undefined, 'rejected_bounds', 'rejected_write', aux);
      throw new ModbusError('rejected_write', `${device.id}: ${aux}`, { device: device.id });
    }
    if (this.deps.dryRun) {
      result.outcome = 'dry_run';
      this.auditLine(task, control, task.value, undefined, 'dry_run');
      return;
    }
    const endpoint = this.deps.endpoints(device);
    if (!endpoint) throw new ModbusError('disconnected', `${device.id}: no Modbus endpoint ${device.host}:${device.port}`, { device: device.id });

    await this.rateLimit(task);
    const sf = control.scale_factor === undefined ? undefined : await this.readScaleFactor(endpoint, task);
    // Encoded (with the device's scale factor) before the timer goes out: a value the register
    // cannot carry is refused with nothing written.
    let encoded: EncodedWrite;
    let wireValue = task.value;
    try {
      encoded = encodeControl(task.profile, control, task.value, sf);
      // The raw value is rounded to the register's step (a SunSpec scale factor is known only now):
      // what goes on the wire is bounds-checked again, so rounding cannot land on a forbidden value.
      if (encoded.table === 'holding') {
        const wire = decodePoint(task.profile, control, encoded.values, 0, sf);
        if (wire.ok && typeof wire.value === 'number') wireValue = wire.value;
        const onWire = wire.ok && typeof wire.value === 'number' ? boundsProblem(control, wire.value) : undefined;
        if (onWire !== undefined) throw new ModbusError('rejected_write', `${device.id} ${control.id}: after rounding to the register, ${onWire}`, { device: device.id });
      }
    } catch (err) {
      this.auditLine(task, control, task.value, undefined, 'rejected_bounds', 'rejected_write', err instanceof Error ? err.message : String(err));
      throw err;
    }
    // A curtailment arms the device's own revert timer before the setpoint, so a dead gateway cannot
    // leave load curtailed. A restore writes the setpoint (and enable) first and disarms the timer
    // last: if the restore write fails, the armed timer still undoes the curtailment on the device.
    const timerFirst = task.purpose !== 'restore';
    if (aux.timer && timerFirst) await this.writeAux(endpoint, task, aux.timer.point, aux.timer.value, ctx);
    await this.writeSetpoint(endpoint, task, encoded, ctx);
    this.lastWrite.set(`${device.id}/${control.id}`, this.deps.clock.monotonic());
    if (aux.enable) await this.writeAux(endpoint, task, aux.enable.point, aux.enable.value, ctx);
    if (aux.timer && !timerFirst) await this.writeAux(endpoint, task, aux.timer.point, aux.timer.value, ctx);
    let readBack: { ok: boolean; value?: number };
    try {
      readBack = await this.verify(endpoint, task, sf, wireValue, ctx);
    } catch (err) {
      // The write went out; only its confirmation failed: not acknowledged, not a write failure.
      result.outcome = 'not_acknowledged';
      result.error = err instanceof ModbusError ? err.code : 'internal_error';
      this.auditLine(task, control, task.value, undefined, result.outcome, result.error);
      return;
    }
    result.read_back = readBack.value;
    result.outcome = readBack.ok ? 'acknowledged' : 'not_acknowledged';
    this.auditLine(task, control, task.value, readBack.value, result.outcome);
  }

  /** The control's current value as the device reports it (for the early-reversion check). */
  async readCurrent(task: Pick<ControllerTask, 'device' | 'profile' | 'control'> & { commandId: string }): Promise<number | undefined> {
    const endpoint = this.deps.endpoints(task.device);
    if (!endpoint || !endpoint.connected) return undefined;
    const sf = task.control.scale_factor === undefined ? undefined : await this.readScaleFactor(endpoint, task);
    return readPoint(endpoint, task.device, task.profile, task.control, sf);
  }

  /** Waits out rate_limit_ms since the last write to this control was answered (so the device sees the gap). */
  private async rateLimit(task: ControllerTask): Promise<void> {
    const key = `${task.device.id}/${task.control.id}`;
    const last = this.lastWrite.get(key);
    const min = task.control.rate_limit_ms ?? 1000;
    if (last !== undefined) await this.sleep(last + min - this.deps.clock.monotonic());
    this.lastWrite.set(key, this.deps.clock.monotonic());
  }

  private async readScaleFactor(endpoint: ModbusEndpointClient, task: Pick<ControllerTask, 'device' | 'profile' | 'control'>, sfId = task.control.scale_factor): Promise<number | undefined> {
    const sfPoint = findPoint(task.profile, sfId ?? '');
    if (!sfPoint) return undefined;
    return readPoint(endpoint, task.device, task.profile, sfPoint, undefined);
  }

  private async writeSetpoint(endpoint: ModbusEndpointClient, task: ControllerTask, encoded: EncodedWrite, ctx: Context): Promise<void> {
    const { control, device } = task;
    const span = this.deps.tracer.startSpan(SPANS.drModbusWrite, {
      attributes: { [SPAN_ATTRS.controllerId]: device.id, 'ems.modbus.address': wireAddress(task.profile, control), 'ems.modbus.value': task.value },
    }, ctx);
    try {
      await otelContext.with(trace.setSpan(ctx, span), () => endpoint.write(
        { unitId: device.unit_id, ...encoded },
        { priority: 'high', deviceId: device.id },
      ));
    } catch (err) {
      const code = err instanceof ModbusError ? err.code : 'internal_error';
      this.auditLine(task, control, task.value, undefined, outcomeOf(err), code, err instanceof Error ? err.message : String(err));
      endSpanError(span, err);
      throw err;
    }
    span.end();
  }

  /**
   * The revert timer (written before the setpoint, so the device never holds an un-timed limit) and
   * the enable flag (after it). The timer is capped at its register's max: the device then reverts
   * early and the periodic check re-asserts. A restore writes the enable control's own restore value.
   */
  private auxWrites(task: ControllerTask): { timer?: AuxWrite; enable?: AuxWrite } | string {
    const { control, profile } = task;
    const out: { timer?: AuxWrite; enable?: AuxWrite } = {};
    if (control.revert_timer && task.revertSeconds !== undefined) {
      const point = findPoint(profile, control.revert_timer.point);
      if (!point) return `profile ${profile.profile} has no point ${control.revert_timer.point}`;
      let value = Math.ceil(task.revertSeconds / (control.revert_timer.seconds_per_unit ?? 1));
      if (isControl(point)) value = Math.min(value, point.max);
      out.timer = { point, value };
    }
    if (control.enable) {
      const point = findPoint(profile, control.enable.point);
      if (!point) return `profile ${profile.profile} has no point ${control.enable.point}`;
      const value = task.purpose === 'restore' && isControl(point) && point.restore !== undefined ? restoreValue(point) : control.enable.value;
      out.enable = { point, value };
    }
    for (const w of [out.timer, out.enable]) {
      const problem = w && isControl(w.point) ? boundsProblem(w.point, w.value) : undefined;
      if (problem !== undefined && w) return `${w.point.id}: ${problem}`;
    }
    return out;
  }

  /** Revert timer and enable registers: written (audited) but not verified individually. */
  private async writeAux(endpoint: ModbusEndpointClient, task: ControllerTask, point: PointDef, value: number, ctx: Context): Promise<void> {
    const span = this.deps.tracer.startSpan(SPANS.drModbusWrite, {
      attributes: { [SPAN_ATTRS.controllerId]: task.device.id, 'ems.modbus.address': wireAddress(task.profile, point), 'ems.modbus.value': value },
    }, ctx);
    try {
      await endpoint.write({ unitId: task.device.unit_id, ...encodeControl(task.profile, point, value, undefined) }, { priority: 'high', deviceId: task.device.id });
      this.auditLine(task, point, value, undefined, 'written');
    } catch (err) {
      this.auditLine(task, point, value, undefined, outcomeOf(err), err instanceof ModbusError ? err.code : 'internal_error');
      endSpanError(span, err);
      throw err;
    }
    span.end();
  }

  /** Reads back until it agrees or verify.timeout_ms passes (the device may apply the value late). */
  private async verify(endpoint: ModbusEndpointClient, task: ControllerTask, sf: number | undefined, wireValue: number, ctx: Context): Promise<{ ok: boolean; value?: number }> {
    const { verify } = task.control;
    const point: PointDef = verify.point === undefined ? task.control : (findPoint(task.profile, verify.point) ?? task.control);
    const expected = verify.equals ?? task.value;
    const tolerance = verify.tolerance ?? 0;
    const timeout = verify.timeout_ms ?? 2000;
    const deadline = this.deps.clock.monotonic() + timeout;
    const span = this.deps.tracer.startSpan(SPANS.drReadBack, {
      attributes: { [SPAN_ATTRS.controllerId]: task.device.id, 'ems.modbus.address': wireAddress(task.profile, point), 'ems.modbus.expected': expected },
    }, ctx);
    await this.sleep(verify.delay_ms ?? 0);
    let last: number | undefined;
    try {
      // A read-back point with its own SunSpec scale factor (e.g. WMaxLimPct read back) needs it too.
      const pointSf = point.scale_factor === undefined ? undefined
        : point.scale_factor === task.control.scale_factor ? sf : await this.readScaleFactor(endpoint, task, point.scale_factor);
      for (let attempt = 0; attempt < 100; attempt++) {
        last = await readPoint(endpoint, task.device, task.profile, point, pointSf);
        if (last !== undefined && Math.abs(last - expected) <= tolerance + EPS && await this.setpointHolds(endpoint, task, sf, wireValue)) {
          span.setAttribute('ems.modbus.read_back', last);
          span.end();
          return { ok: true, value: last };
        }
        const left = deadline - this.deps.clock.monotonic();
        if (left <= 0) break;
        await this.sleep(Math.min(left, Math.max(50, verify.delay_ms ?? 0)));
      }
    } catch (err) {
      endSpanError(span, err);
      throw err;
    }
    if (last !== undefined) span.setAttribute('ems.modbus.read_back', last);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `read back ${String(last)}, expected ${expected} +/- ${tolerance}` });
    span.end();
    return last === undefined ? { ok: false } : { ok: false, value: last };
  }

  /**
   * An acknowledge/status register (`verify.equals`) can still hold the previous write's value (a
   * latched ACCEPTED): then the setpoint register itself must also read what was written. A control
   * verified on its own register needs no second read.
   */
  private async setpointHolds(endpoint: ModbusEndpointClient, task: ControllerTask, sf: number | undefined, wireValue: number): Promise<boolean> {
    const { verify } = task.control;
    if (verify.point === undefined || verify.equals === undefined || task.control.table !== 'holding') return true;
    const own = await readPoint(endpoint, task.device, task.profile, task.control, sf);
    return own !== undefined && Math.abs(own - wireValue) <= EPS * Math.max(1, Math.abs(wireValue));
  }

  private auditLine(task: ControllerTask, point: PointDef, requested: number, readBack: number | undefined, outcome: string, errorType?: string, detail?: string): void {
    this.deps.audit.info({
      audit: 'dr_write',
      command_id: task.commandId,
      purpose: task.purpose,
      device: task.device.id,
      unit_id: task.device.unit_id,
      point: point.id,
      table: point.table,
      register: wireAddress(task.profile, point),
      requested,
      read_back: readBack,
      outcome,
      ...(errorType !== undefined ? { error_type: errorType } : {}),
      ...(detail !== undefined ? { detail } : {}),
      dry_run: this.deps.dryRun,
    }, 'DR write');
  }
}

function outcomeOf(err: unknown): ControllerOutcome {
  if (!(err instanceof ModbusError)) return 'write_failed';
  switch (err.code) {
    case 'rejected_write': return 'rejected_bounds';
    case 'connect_failed': case 'disconnected': case 'unit_backed_off': case 'closed': return 'unreachable';
    default: return 'write_failed';
  }
}

function endSpanError(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof ModbusError ? err.code : String(err) });
  span.end();
}

