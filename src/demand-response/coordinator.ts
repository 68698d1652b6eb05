// Active curtailments: carried out, persisted, ended on time, re-asserted when a controller comes
// back or is seen to have reverted early, and resumed after a gateway restart. One curtailment per
// zone is active at a time: a newer one supersedes it. Commands run one after another (a restore
// never interleaves with the curtailment it ends); the controllers within one run concurrently.
import { ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Counter, type Span, type Tracer } from '@opentelemetry/api';
import { drExclusion } from '../config/dr-targets.js';
import { profileControls } from '../modbus/write-controls.js';
import type { DeviceProfile } from '../config/profile-types.js';
import type { DemandResponseConfig, DeviceConfig, SiteConfig } from '../config/site-types.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { endpointKey } from '../config/endpoint-key.js';
import { METRIC_ATTRS, SPAN_ATTRS, SPANS } from '../telemetry/semconv.js';
import { achievedMw, ackRate, type DrAck, type EndReason, type ResultAck } from './ack.js';
import type { CommandType, DrCommand } from './command.js';
import { interleaveBy, runBounded } from './concurrency.js';
import type { ControllerExecutor, ControllerResult, ControllerTask, EndpointLookup, TaskPurpose } from './executor.js';
import { planCurtailment, restoreValue, zoneControllers, type LoadProvider } from './planner.js';
import type { ActiveCommandRecord, DrStateStore } from './state-store.js';
import { contextFromTraceparent } from './trace-context.js';

interface CoordinatorDeps {
  site: SiteConfig;
  profiles: ReadonlyMap<string, DeviceProfile>;
  config: DemandResponseConfig;
  executor: ControllerExecutor;
  endpoints: EndpointLookup;
  store: DrStateStore;
  clock: Clock;
  logger: Logger;
  tracer: Tracer;
  publish: (ack: DrAck) => void;
  /** Counts stored controller records refused (device or control no longer in the site / profile). */
  stateRefused: Counter;
  loadKw?: LoadProvider;
  /** What to do with a curtailment still running when the gateway starts (docs: "Restart"). */
  onStartActive: 'reassert' | 'restore';
  /** How often active controllers are read to catch an early reversion; 0 disables. */
  checkIntervalMs: number;
}

interface SendAttrs { type: CommandType; zone: string; reductionMw: number; durationMinutes: number; commandId: string }

export class DrCoordinator {
  private readonly deps: CoordinatorDeps;
  private readonly timers = new Map<string, ClockTimer>();
  /** Monotonic time each controller was last commanded: a connect before that needs no re-assert. */
  private readonly commandedAt = new Map<string, number>();
  private checkTimer: ClockTimer | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(deps: CoordinatorDeps) {
    this.deps = deps;
  }

  /** Serialises command handling; the returned promise settles when this one is done (never rejects). */
  enqueue(what: string, fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn).catch((err: unknown) => { this.deps.logger.error({ err, what }, 'DR command handling failed'); });
    this.chain = run;
    return run;
  }

  /** After a restart: end what ended while we were down, re-assert (or restore) what is still running. */
  async resume(): Promise<void> {
    const now = this.deps.clock.now();
    for (const rec of this.deps.store.activeCommands()) {
      if (rec.restore_pending || rec.ends_at <= now) await this.end(rec, 'ended_while_down');
      else if (this.deps.onStartActive === 'restore') await this.end(rec, 'restored_on_start');
      else {
        this.schedule(rec);
        await this.reassert(rec, rec.controllers.map((c) => c.device_id));
      }
    }
  }

  /** Subscribes to every load controller's endpoint: a (re)connect re-asserts its active setpoints. */
  watch(): void {
    const seen = new Set<string>();
    for (const device of this.deps.site.devices) {
      const ep = this.deps.endpoints(device);
      if (!ep || seen.has(ep.key)) continue;
      seen.add(ep.key);
      this.unsubscribe.push(ep.onConnect(() => {
        const at = this.deps.clock.monotonic();
        void this.enqueue('reconnect', () => this.onEndpointConnect(ep.key, at));
      }));
    }
    this.scheduleCheck();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) this.deps.clock.clearTimeout(t);
    this.timers.clear();
    if (this.checkTimer !== undefined) this.deps.clock.clearTimeout(this.checkTimer);
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Resolves when every queued command has been handled (for tests and orderly shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  status(): ActiveCommandRecord[] {
    return this.deps.store.activeCommands();
  }

  async curtail(cmd: DrCommand, parent: Context): Promise<void> {
    const { deps } = this;
    const candidates = zoneControllers(deps.site.devices, deps.profiles, cmd.zone);
    // A reduction is absolute, not on top of the zone's active one: a controller's measured load
    // under an active curtailment is lower by that curtailment's share, which is added back.
    const shed = new Map<string, number>();
    for (const r of deps.store.activeCommands()) if (r.zone === cmd.zone && !r.restore_pending) for (const c of r.controllers) shed.set(c.device_id, c.reduction_kw);
    const measured = deps.loadKw;
    const baseline = measured === undefined ? undefined : (id: string): number | undefined => {
      const kw = measured(id);
      return kw === undefined ? undefined : kw + (shed.get(id) ?? 0);
    };
    const plan = planCurtailment(candidates, cmd.zone, cmd.reduction_mw, baseline);
    const now = deps.clock.now();
    const endsAt = now + cmd.duration_minutes * 60_000;
    await this.supersede(cmd.zone, new Set(plan.controllers.map((c) => c.device.id)), parent);
    const rec: ActiveCommandRecord = {
      command_id: cmd.command_id, zone: cmd.zone, reduction_mw: cmd.reduction_mw, duration_minutes: cmd.duration_minutes,
      accepted_at: now, ends_at: endsAt,
      controllers: plan.controllers.map((c) => ({ device_id: c.device.id, control: c.control.id, setpoint: c.setpoint, reduction_kw: c.reduction_kw })),
      ...(cmd.traceparent !== undefined ? { traceparent: cmd.traceparent } : {}),
    };
    // Persisted before the first write: a crash mid-command still ends it on restart.
    deps.store.putActive(rec);
    this.schedule(rec);
    const base = this.ackBase(cmd.command_id);
    deps.publish({
      ...base, status: 'accepted', command_type: 'curtail', zone: cmd.zone, dry_run: deps.config.dry_run,
      requested_mw: plan.requested_mw, planned_mw: plan.planned_mw, partial: plan.partial,
      controller_count: plan.controllers.length, ends_at: new Date(endsAt).toISOString(),
    });
    const tasks = plan.controllers.map((c): ControllerTask => ({
      commandId: cmd.command_id, purpose: 'curtail', device: c.device, profile: c.profile, control: c.control,
      value: c.setpoint, reductionKw: c.reduction_kw, revertSeconds: Math.ceil((endsAt - now) / 1000),
    }));
    const results = await this.runSend({ type: 'curtail', zone: cmd.zone, reductionMw: cmd.reduction_mw, durationMinutes: cmd.duration_minutes, commandId: cmd.command_id }, tasks, parent);
    deps.publish(this.resultAck('completed', cmd.command_id, 'curtail', cmd.zone, results, plan.requested_mw, plan.planned_mw, plan.partial));
  }

  async restore(cmd: DrCommand, parent: Context): Promise<void> {
    const { deps } = this;
    const active = deps.store.activeCommands().filter((r) => r.zone === cmd.zone && (cmd.target_command_id === undefined || r.command_id === cmd.target_command_id));
    deps.publish({
      ...this.ackBase(cmd.command_id), status: 'accepted', command_type: 'restore', zone: cmd.zone, dry_run: deps.config.dry_run,
      requested_mw: 0, planned_mw: 0, partial: false, controller_count: active.reduce((n, r) => n + r.controllers.length, 0),
    });
    let results: ControllerResult[] = [];
    if (active.length === 0 && cmd.target_command_id === undefined) {
      // Nothing known to be active: restore the whole zone anyway (idempotent, and the safe side
      // if a curtailment was set by someone else or the state was lost).
      const tasks = zoneControllers(deps.site.devices, deps.profiles, cmd.zone).map((c): ControllerTask => ({
        commandId: cmd.command_id, purpose: 'restore', device: c.device, profile: c.profile, control: c.control,
        value: restoreValue(c.control.def), reductionKw: 0, revertSeconds: 0,
      }));
      results = await this.runSend({ type: 'restore', zone: cmd.zone, reductionMw: 0, durationMinutes: 0, commandId: cmd.command_id }, tasks, parent);
    }
    for (const rec of active) results.push(...await this.end(rec, 'restore_command', parent, cmd.command_id));
    const ack = this.resultAck('completed', cmd.command_id, 'restore', cmd.zone, results, 0, 0, false);
    ack.ended_command_ids = active.map((r) => r.command_id);
    deps.publish(ack);
  }

  /** Ends a curtailment: restore values written and verified; what did not verify stays pending and is retried. */
  private async end(rec: ActiveCommandRecord, reason: EndReason, parent?: Context, byCommand?: string): Promise<ControllerResult[]> {
    const timer = this.timers.get(rec.command_id);
    if (timer !== undefined) this.deps.clock.clearTimeout(timer);
    this.timers.delete(rec.command_id);
    const tasks = this.tasksFor(rec, 'restore', rec.controllers.map((c) => c.device_id));
    const ctx = parent ?? contextFromTraceparent(rec.traceparent) ?? ROOT_CONTEXT;
    const results = await this.runSend({ type: 'restore', zone: rec.zone, reductionMw: 0, durationMinutes: 0, commandId: byCommand ?? rec.command_id }, tasks, ctx);
    const failed = new Set(results.filter((r) => r.outcome !== 'acknowledged' && r.outcome !== 'dry_run' && r.outcome !== 'rejected_bounds').map((r) => r.controller_id));
    if (failed.size === 0) this.deps.store.removeActive(rec.command_id);
    else {
      this.deps.logger.warn({ command_id: rec.command_id, controllers: [...failed] }, 'DR restore not verified on every controller; will retry');
      this.deps.store.putActive({ ...rec, restore_pending: true, controllers: rec.controllers.filter((c) => failed.has(c.device_id)) });
    }
    const ack = this.resultAck('ended', rec.command_id, 'curtail', rec.zone, results, rec.reduction_mw, 0, false);
    ack.reason = reason;
    ack.achieved_mw = 0;
    this.deps.publish(ack);
    return results;
  }

  /** A newer curtailment of the zone replaces the active one; its controllers not in the new plan are restored. */
  private async supersede(zone: string, newDevices: ReadonlySet<string>, parent: Context): Promise<void> {
    for (const rec of this.deps.store.activeCommands().filter((r) => r.zone === zone)) {
      const leftover = rec.controllers.filter((c) => !newDevices.has(c.device_id));
      if (leftover.length > 0) await this.end({ ...rec, controllers: leftover }, 'superseded', parent);
      else {
        this.deps.store.removeActive(rec.command_id);
        const timer = this.timers.get(rec.command_id);
        if (timer !== undefined) this.deps.clock.clearTimeout(timer);
        this.timers.delete(rec.command_id);
        const ack = this.resultAck('ended', rec.command_id, 'curtail', zone, [], rec.reduction_mw, 0, false);
        ack.reason = 'superseded';
        this.deps.publish(ack);
      }
    }
  }

  private schedule(rec: ActiveCommandRecord): void {
    if (this.stopped) return;
    const delay = Math.max(0, rec.ends_at - this.deps.clock.now());
    this.timers.set(rec.command_id, this.deps.clock.setTimeout(() => {
      this.timers.delete(rec.command_id);
      void this.enqueue(`end ${rec.command_id}`, async () => {
        const current = this.deps.store.getActive(rec.command_id);
        if (current) await this.end(current, 'duration_ended');
      });
    }, delay));
  }

  /**
   * A (re)connect may follow a device reboot that forgot its setpoint. Controllers commanded after
   * this connect (e.g. by the command that opened the connection) are skipped.
   */
  private async onEndpointConnect(key: string, at: number): Promise<void> {
    for (const rec of this.deps.store.activeCommands()) {
      const ids = rec.controllers.filter((c) => {
        const device = this.device(c.device_id);
        return device !== undefined && this.deps.endpoints(device)?.key === key && (this.commandedAt.get(c.device_id) ?? -Infinity) < at;
      }).map((c) => c.device_id);
      if (ids.length > 0) await this.reassert(rec, ids);
    }
  }

  /** Writes the active setpoint again (or the restore value, for a pending end) and reports it. */
  private async reassert(rec: ActiveCommandRecord, deviceIds: string[]): Promise<void> {
    if (rec.restore_pending || rec.ends_at <= this.deps.clock.now()) {
      await this.end(rec, rec.restore_pending ? 'ended_while_down' : 'duration_ended');
      return;
    }
    const tasks = this.tasksFor(rec, 'reassert', deviceIds);
    if (tasks.length === 0) return;
    this.deps.logger.info({ command_id: rec.command_id, controllers: deviceIds }, 'DR re-asserting active curtailment');
    const ctx = contextFromTraceparent(rec.traceparent) ?? ROOT_CONTEXT;
    const results = await this.runSend({ type: 'curtail', zone: rec.zone, reductionMw: rec.reduction_mw, durationMinutes: rec.duration_minutes, commandId: rec.command_id }, tasks, ctx);
    const planned = rec.controllers.reduce((s, c) => s + c.reduction_kw, 0) / 1000;
    this.deps.publish(this.resultAck('reasserted', rec.command_id, 'curtail', rec.zone, results, rec.reduction_mw, planned, false));
  }

  private byId: Map<string, DeviceConfig> | undefined;
  private device(id: string): DeviceConfig | undefined {
    this.byId ??= new Map(this.deps.site.devices.map((d) => [d.id, d]));
    return this.byId.get(id);
  }

  private scheduleCheck(): void {
    if (this.stopped || this.deps.checkIntervalMs <= 0) return;
    this.checkTimer = this.deps.clock.setTimeout(() => {
      void this.enqueue('reversion check', () => this.check()).finally(() => this.scheduleCheck());
    }, this.deps.checkIntervalMs);
  }

  /** Reads each active controller's setpoint; one that no longer holds it has reverted early (reboot, revert timer). */
  async check(): Promise<void> {
    for (const rec of this.deps.store.activeCommands()) {
      if (rec.restore_pending) { await this.end(rec, 'ended_while_down'); continue; }
      const tasks = this.tasksFor(rec, 'reassert', rec.controllers.map((c) => c.device_id));
      const ordered = interleaveBy(tasks, (t) => endpointKey(t.device));
      const held = await runBounded(ordered, this.deps.config.max_concurrency, async (task) => {
        try {
          const current = await this.deps.executor.readCurrent(task);
          return current === undefined || Math.abs(current - task.value) <= (task.control.def.verify.tolerance ?? 0) + 1e-9;
        } catch {
          return true; // unreachable now: the endpoint's reconnect re-asserts it
        }
      });
      const reverted = ordered.filter((_t, i) => held[i] === false).map((t) => t.device.id);
      if (reverted.length > 0) await this.reassert(rec, reverted);
    }
  }

  private tasksFor(rec: ActiveCommandRecord, purpose: TaskPurpose, deviceIds: readonly string[]): ControllerTask[] {
    const remaining = Math.max(0, Math.ceil((rec.ends_at - this.deps.clock.now()) / 1000));
    const tasks: ControllerTask[] = [];
    for (const c of rec.controllers) {
      if (!deviceIds.includes(c.device_id)) continue;
      const device = this.device(c.device_id);
      const profile = device ? this.deps.profiles.get(device.profile) : undefined;
      if (!device || !profile) {
        this.refuseRecord(rec, c.device_id, c.control, 'unknown_device', 'DR: controller of an active command is no longer configured: nothing written to it');
        continue;
      }
      // A controller DR leaves out now (e.g. its profile became SunSpec-placed: its controls have no
      // fixed address) is refused as the planner would: a stored value goes to no reference address.
      const excluded = drExclusion(profile);
      if (excluded !== undefined) {
        this.refuseRecord(rec, c.device_id, c.control, 'excluded_controller', `DR: stored record names controller ${c.device_id}, which DR now leaves out (${excluded}): refused, nothing written to this controller`);
        continue;
      }
      // The stored control id must name a control of the device's profile as it is now: never
      // another one (a stored value would land on another register, in another unit).
      const control = profileControls(profile).get(c.control);
      if (!control) {
        this.refuseRecord(rec, c.device_id, c.control, 'unknown_control', `DR: stored record names control ${JSON.stringify(c.control)}, which profile ${profile.profile} does not have: refused, nothing written to this controller`);
        continue;
      }
      const restoring = purpose === 'restore';
      tasks.push({
        commandId: rec.command_id, purpose, device, profile, control,
        value: restoring ? restoreValue(control.def) : c.setpoint,
        reductionKw: restoring ? 0 : c.reduction_kw,
        revertSeconds: restoring ? 0 : remaining,
      });
    }
    return tasks;
  }

  private refuseRecord(rec: ActiveCommandRecord, deviceId: string, control: string, reason: 'unknown_device' | 'unknown_control' | 'excluded_controller', msg: string): void {
    this.deps.logger.error({ command_id: rec.command_id, device: deviceId, control, reason }, msg);
    this.deps.stateRefused.add(1, { [METRIC_ATTRS.reason]: reason });
  }

  /** One `ems.demand_response.send` span over a batch of controller commands, run concurrently. */
  private async runSend(attrs: SendAttrs, tasks: ControllerTask[], parent: Context): Promise<ControllerResult[]> {
    const span = this.startSend(attrs, tasks.length, parent);
    const ctx = trace.setSpan(parent, span);
    const ordered = interleaveBy(tasks, (t) => endpointKey(t.device));
    const results = await runBounded(ordered, this.deps.config.max_concurrency, async (t) => {
      const r = await this.deps.executor.execute(t, ctx);
      this.commandedAt.set(t.device.id, this.deps.clock.monotonic());
      return r;
    });
    finishSend(span, results);
    return results;
  }

  private startSend(a: SendAttrs, controllers: number, parent: Context): Span {
    return this.deps.tracer.startSpan(SPANS.drSend, {
      attributes: {
        [SPAN_ATTRS.drCommandType]: a.type, [SPAN_ATTRS.drTargetZone]: a.zone, [SPAN_ATTRS.drReductionMw]: a.reductionMw,
        [SPAN_ATTRS.drDurationMinutes]: a.durationMinutes, [SPAN_ATTRS.drControllerCount]: controllers, [SPAN_ATTRS.drCommandId]: a.commandId,
      },
    }, parent);
  }

  private ackBase(commandId: string): { v: 1; command_id: string; site_id: string; at: string } {
    return { v: 1, command_id: commandId, site_id: this.deps.site.site.id, at: new Date(this.deps.clock.now()).toISOString() };
  }

  private resultAck(status: ResultAck['status'], commandId: string, type: CommandType, zone: string, results: ControllerResult[], requestedMw: number, plannedMw: number, partial: boolean): ResultAck {
    return {
      ...this.ackBase(commandId), status, command_type: type, zone, dry_run: this.deps.config.dry_run,
      requested_mw: requestedMw, planned_mw: plannedMw, achieved_mw: type === 'curtail' ? achievedMw(results) : 0, partial,
      controller_count: results.length, ...ackRate(results), controllers: results,
    };
  }
}

function finishSend(span: Span, results: readonly ControllerResult[]): void {
  const { ack_count, ack_rate } = ackRate(results);
  span.setAttribute(SPAN_ATTRS.drAckCount, ack_count);
  span.setAttribute(SPAN_ATTRS.drAckRate, ack_rate);
  if (ack_count < results.length && results.some((r) => r.outcome !== 'dry_run')) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${results.length - ack_count} of ${results.length} controllers not acknowledged` });
  }
  span.end();
}
