// One controller command: every value checked, rate limit, Modbus write(s), read-back, verdict.
// The task names a writable-control handle (src/modbus/write-controls.ts), never a point: each
// value the command writes (revert timer, setpoint, enable) is encoded and checked after rounding
// before the first frame goes out, and any value that fails (or cannot be checked) stops the whole
// command with nothing written. Every write attempt is an audit line; the controller counts as
// acknowledged only after the read-back agrees.
import { SpanStatusCode, trace, type Context, type Counter, type Span, type Tracer } from '@opentelemetry/api';
import { CheckedWrite, WritableControl, boundsProblem } from '../modbus/write-controls.js';
import { wireAddress, type DeviceProfile, type PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import { endpointKey } from '../config/endpoint-key.js';
import { ModbusError, type ModbusEndpointClient } from '../modbus/types.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { METRIC_ATTRS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import { findReadPoint, pairedReadBack, readPaired, readPoint, type PairedReadBack } from './control-io.js';
import { restoreValue } from './planner.js';

type ControllerOutcome =
  | 'acknowledged'       // written and read back as requested
  | 'not_acknowledged'   // written, but the read-back disagreed until verify.timeout_ms
  | 'write_failed'       // the device answered the write with an exception, or the write timed out
  | 'unreachable'        // no connection / unit backed off: nothing was written
  | 'rejected_bounds'    // refused before the wire: a value outside min/max or on never_write (before or after rounding), or not checkable
  | 'dry_run';           // everything but the write

export type TaskPurpose = 'curtail' | 'restore' | 'reassert';

export interface ControllerTask {
  commandId: string;
  purpose: TaskPurpose;
  device: DeviceConfig;
  profile: DeviceProfile;
  /** The control driven: a handle of `profile`, made when it was loaded. */
  control: WritableControl;
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

interface ExecutorDeps {
  endpoints: EndpointLookup;
  clock: Clock;
  audit: Logger;
  tracer: Tracer;
  controllerCommands: Counter;
  dryRun: boolean;
}

const EPS = 1e-9;

/** One value of the command for one control, before it is checked. */
interface PlannedWrite { control: WritableControl; value: number }

/** The scale factors of a command whose controls have none (most): no read, no await. */
const NO_SCALE_FACTORS: ReadonlyMap<string, number> = new Map();

export class ControllerExecutor {
  private readonly deps: ExecutorDeps;
  /** Monotonic time of the last write per device+control, for rate_limit_ms. */
  private readonly lastWrite = new Map<string, number>();
  /** Per control: its acknowledge register and own register read back in one request, or null (two reads). */
  private readonly pairs = new WeakMap<WritableControl, PairedReadBack | null>();

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
      controller_id: task.device.id, controller_type: controllerType, control: String(task.control.id),
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

  private refuse(task: ControllerTask, control: WritableControl, value: number, problem: string): ModbusError {
    this.auditLine(task, control.def, control.address, value, undefined, 'rejected_bounds', 'rejected_write', problem);
    return new ModbusError('rejected_write', `${task.device.id} ${control.label}: ${problem}`, { device: task.device.id });
  }

  private async run(task: ControllerTask, ctx: Context, result: ControllerResult): Promise<void> {
    const { device, control } = task;
    if (!WritableControl.isGenuine(control)) {
      this.deps.audit.info({ audit: 'dr_write', command_id: task.commandId, purpose: task.purpose, device: device.id, outcome: 'rejected_bounds', error_type: 'rejected_write', detail: 'not a writable control of a loaded profile' }, 'DR write');
      throw new ModbusError('rejected_write', `${device.id}: not a writable control of a loaded profile`, { device: device.id });
    }
    // Every value this command writes, in wire order; each is bounds-checked now, before any I/O.
    const planned = this.plannedWrites(task);
    for (const w of planned) {
      const problem = boundsProblem(w.control.def, w.value);
      if (problem !== undefined) throw this.refuse(task, w.control, w.value, problem);
    }
    const setpoint = planned.find((w) => w.control === control) as PlannedWrite;
    if (this.deps.dryRun) {
      // Without a device there is no scale factor: controls that need one are checked up to it.
      for (const w of planned) {
        const r = w.control.scaleFactor === undefined ? w.control.check(w.value) : undefined;
        if (r && !r.ok) throw this.refuse(task, w.control, w.value, r.problem);
      }
      result.outcome = 'dry_run';
      this.auditLine(task, control.def, control.address, task.value, undefined, 'dry_run');
      return;
    }
    const endpoint = this.deps.endpoints(device);
    if (!endpoint) throw new ModbusError('disconnected', `${device.id}: no Modbus endpoint ${endpointKey(device)}`, { device: device.id });

    // The rate limit waits only when this control was written less than rate_limit_ms ago (the
    // usual command awaits nothing here).
    const rateKey = `${device.id}/${control.id}`;
    const wait = this.rateLimitWait(rateKey, control);
    if (wait > 0) await this.sleep(wait);
    const undoRateLimit = this.claimRateLimit(rateKey);
    // Scale factors first (reads), then every value encoded and checked after rounding: one that
    // fails stops the command before its first frame.
    const sfPoints = planned.map((w) => w.control.scaleFactor);
    const sfs = sfPoints.some((p) => p !== undefined) ? await this.readScaleFactors(endpoint, task, sfPoints) : NO_SCALE_FACTORS;
    const checked: CheckedWrite[] = [];
    for (const w of planned) {
      const r = w.control.check(w.value, w.control.scaleFactor === undefined ? undefined : sfs.get(w.control.scaleFactor.id));
      if (!r.ok) {
        undoRateLimit();
        throw this.refuse(task, w.control, w.value, r.problem);
      }
      checked.push(r.write);
    }
    const wire = checked[planned.indexOf(setpoint)] as CheckedWrite;
    for (const c of checked) {
      await this.write(endpoint, task, c, ctx);
      // The setpoint's own audit line carries the read-back; timer and enable are audited as written.
      if (c === wire) this.lastWrite.set(rateKey, this.deps.clock.monotonic());
      else this.auditLine(task, c.control.def, c.control.address, c.requested, undefined, 'written');
    }
    const sf = control.scaleFactor === undefined ? undefined : sfs.get(control.scaleFactor.id);
    let readBack: { ok: boolean; value?: number };
    try {
      readBack = await this.verify(endpoint, task, sf, wire.value, ctx);
    } catch (err) {
      // The write went out; only its confirmation failed: not acknowledged, not a write failure.
      result.outcome = 'not_acknowledged';
      result.error = err instanceof ModbusError ? err.code : 'internal_error';
      this.auditLine(task, control.def, control.address, task.value, undefined, result.outcome, result.error);
      return;
    }
    result.read_back = readBack.value;
    result.outcome = readBack.ok ? 'acknowledged' : 'not_acknowledged';
    this.auditLine(task, control.def, control.address, task.value, readBack.value, result.outcome);
  }

  /**
   * The values of one command in the order they go out. A curtailment arms the device's own revert
   * timer before the setpoint, so a dead gateway cannot leave load curtailed; a restore writes the
   * setpoint (and enable) first and disarms the timer last, so a failed restore write leaves the
   * timer armed. The timer is capped at its control's max (the device then reverts early and the
   * periodic check re-asserts); a restore writes the enable control's own restore value.
   */
  private plannedWrites(task: ControllerTask): PlannedWrite[] {
    const { control } = task;
    const out: PlannedWrite[] = [{ control, value: task.value }];
    const en = control.enable;
    if (en) {
      const value = task.purpose === 'restore' && en.control.def.restore !== undefined ? restoreValue(en.control.def) : en.value;
      out.push({ control: en.control, value });
    }
    const timer = control.revertTimer;
    if (timer && task.revertSeconds !== undefined) {
      const value = Math.min(Math.ceil(task.revertSeconds / timer.secondsPerUnit), timer.control.def.max);
      const w = { control: timer.control, value };
      if (task.purpose === 'restore') out.push(w);
      else out.unshift(w);
    }
    return out;
  }

  /** The control's current value as the device reports it (for the early-reversion check). */
  async readCurrent(task: Pick<ControllerTask, 'device' | 'profile' | 'control'>): Promise<number | undefined> {
    const endpoint = this.deps.endpoints(task.device);
    if (!endpoint || !endpoint.connected) return undefined;
    const { control } = task;
    const sfs = await this.readScaleFactors(endpoint, task, [control.scaleFactor]);
    return readPoint(endpoint, task.device, task.profile, control.def, control.scaleFactor === undefined ? undefined : sfs.get(control.scaleFactor.id));
  }

  /** How long to wait for rate_limit_ms since the last write to this control was answered (so the device sees the gap); <= 0: none. */
  private rateLimitWait(key: string, control: WritableControl): number {
    const last = this.lastWrite.get(key);
    return last === undefined ? 0 : last + (control.def.rate_limit_ms ?? 1000) - this.deps.clock.monotonic();
  }

  /** Claims the control's rate-limit slot (after its wait); the returned function gives it back when nothing was written. */
  private claimRateLimit(key: string): () => void {
    const last = this.lastWrite.get(key);
    const claimed = this.deps.clock.monotonic();
    this.lastWrite.set(key, claimed);
    return () => {
      if (this.lastWrite.get(key) !== claimed) return;
      if (last === undefined) this.lastWrite.delete(key);
      else this.lastWrite.set(key, last);
    };
  }

  /** The device's SunSpec scale factors the command needs, by point id (a missing one is left out: the check then refuses). */
  private async readScaleFactors(endpoint: ModbusEndpointClient, task: Pick<ControllerTask, 'device' | 'profile'>, points: ReadonlyArray<Readonly<PointDef> | undefined>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const p of points) {
      if (p === undefined || out.has(p.id)) continue;
      const sf = await readPoint(endpoint, task.device, task.profile, p, undefined);
      if (sf !== undefined) out.set(p.id, sf);
    }
    return out;
  }

  /** One checked value on the wire, with its span; a failure is audited and rethrown. */
  private async write(endpoint: ModbusEndpointClient, task: ControllerTask, checked: CheckedWrite, ctx: Context): Promise<void> {
    const { control } = checked;
    const span = this.deps.tracer.startSpan(SPANS.drModbusWrite, {
      attributes: { [SPAN_ATTRS.controllerId]: task.device.id, [SPAN_ATTRS.modbusAddress]: control.address, [SPAN_ATTRS.modbusValue]: checked.value },
    }, ctx);
    try {
      await endpoint.write(task.device.unit_id, checked, { priority: 'high', deviceId: task.device.id });
    } catch (err) {
      const code = err instanceof ModbusError ? err.code : 'internal_error';
      this.auditLine(task, control.def, control.address, checked.requested, undefined, outcomeOf(err), code, err instanceof Error ? err.message : String(err));
      endSpanError(span, err);
      throw err;
    }
    span.end();
  }

  /** Reads back until it agrees or verify.timeout_ms passes (the device may apply the value late). */
  private async verify(endpoint: ModbusEndpointClient, task: ControllerTask, sf: number | undefined, wireValue: number, ctx: Context): Promise<{ ok: boolean; value?: number }> {
    const { control } = task;
    const { verify } = control.def;
    const point = control.verifyPoint;
    // What the register was told (after rounding to its step), or the acknowledge value.
    const expected = verify.equals ?? wireValue;
    const tolerance = verify.tolerance ?? 0;
    const timeout = verify.timeout_ms ?? 2000;
    const deadline = this.deps.clock.monotonic() + timeout;
    const address = point === control.def ? control.address : wireAddress(task.profile, point);
    const span = this.deps.tracer.startSpan(SPANS.drReadBack, {
      attributes: { [SPAN_ATTRS.controllerId]: task.device.id, [SPAN_ATTRS.modbusAddress]: address, [SPAN_ATTRS.modbusExpected]: expected },
    }, ctx);
    if ((verify.delay_ms ?? 0) > 0) await this.sleep(verify.delay_ms ?? 0);
    // A control verified on its own register needs no second read (setpointHolds); one verified on
    // an acknowledge register reads both, in one request when the profile allows (pairedReadBack).
    const ownRead = verify.point !== undefined && verify.equals !== undefined && control.table === 'holding';
    const pair = ownRead ? this.pairOf(task) : undefined;
    let last: number | undefined;
    try {
      // A read-back point with its own SunSpec scale factor (e.g. WMaxLimPct read back) needs it too.
      let pointSf = sf;
      if (point.scale_factor !== undefined && point.scale_factor !== control.def.scale_factor) {
        const sfPoint = findReadPoint(task.profile, point.scale_factor);
        pointSf = sfPoint === undefined ? undefined : (await this.readScaleFactors(endpoint, task, [sfPoint])).get(sfPoint.id);
      }
      for (let attempt = 0; attempt < 100; attempt++) {
        let holds: boolean | undefined;
        if (pair !== undefined) {
          const both = await readPaired(endpoint, task.device, task.profile, pair, point, control.def);
          last = both.ack;
          holds = setpointMatches(both.own, wireValue);
        } else {
          last = await readPoint(endpoint, task.device, task.profile, point, pointSf);
        }
        if (last !== undefined && Math.abs(last - expected) <= tolerance + EPS && (!ownRead || (holds ?? await this.setpointHolds(endpoint, task, sf, wireValue)))) {
          span.setAttribute(SPAN_ATTRS.modbusReadBack, last);
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
    if (last !== undefined) span.setAttribute(SPAN_ATTRS.modbusReadBack, last);
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
    const { control } = task;
    return setpointMatches(await readPoint(endpoint, task.device, task.profile, control.def, sf), wireValue);
  }

  private pairOf(task: ControllerTask): PairedReadBack | undefined {
    const { control } = task;
    let pair = this.pairs.get(control);
    if (pair === undefined) {
      pair = pairedReadBack(task.profile, control.verifyPoint, control.def) ?? null;
      this.pairs.set(control, pair);
    }
    return pair ?? undefined;
  }

  private auditLine(task: ControllerTask, point: Readonly<PointDef>, register: number, requested: number, readBack: number | undefined, outcome: string, errorType?: string, detail?: string): void {
    // Keys in this order in every line: error_type and detail (when present) come before dry_run.
    const line: Record<string, unknown> = {
      audit: 'dr_write',
      command_id: task.commandId,
      purpose: task.purpose,
      device: task.device.id,
      unit_id: task.device.unit_id,
      point: point.id,
      table: point.table,
      register,
      requested,
      read_back: readBack,
      outcome,
    };
    if (errorType !== undefined) line.error_type = errorType;
    if (detail !== undefined) line.detail = detail;
    line.dry_run = this.deps.dryRun;
    this.deps.audit.info(line, 'DR write');
  }
}

/** The control's own register holds what was written (exactly: it was encoded from that value). */
function setpointMatches(own: number | undefined, wireValue: number): boolean {
  return own !== undefined && Math.abs(own - wireValue) <= EPS * Math.max(1, Math.abs(wireValue));
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
