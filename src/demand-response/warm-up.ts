// The DR path rehearsed once at start-up, so the first real command of a process runs as fast as
// the next ones (issue 15; bench:dr cold_total_ms). What was cold, measured with CPU profiles of
// bench:dr (docs/demand-response.md, "Benchmark"): the JIT of everything a command runs once per
// controller (executor, codec encode and bounds checks, write and read-back PDUs, spans, audit
// lines), the intake (strict JSON, Ed25519 verification), planner and coordinator, ack signing,
// and the first state-file write.
//
// The rehearsal signs commands with a throwaway key and runs them through the real intake
// (admit), coordinator and executor: a curtail and a restore per zone over the site's own
// controllers (at most MAX_CONTROLLERS of them), rounds repeated on a small site (up to
// MAX_ROUNDS) towards MIN_TASKS controller commands. Every side effect goes to a stand-in: an
// in-memory endpoint per real endpoint key (RehearsalEndpoint: nothing on any wire), a state file
// in a temporary directory (removed after), a tracer and meter of the SDK that export nowhere
// (offlineTelemetry), an audit log written to the null device, acks signed and dropped. The real state file,
// endpoints, broker, spans, metrics and audit log see nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { pino } from 'pino';
import type { DeviceProfile } from '../config/profile-types.js';
import { wireAddress } from '../config/profile-types.js';
import type { DemandResponseConfig, SiteConfig } from '../config/site-types.js';
import { encodePoint } from '../modbus/codec.js';
import { RehearsalEndpoint } from '../modbus/rehearsal-endpoint.js';
import { endpointKey } from '../config/endpoint-key.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import { METRICS } from '../telemetry/semconv.js';
import { offlineTelemetry } from '../telemetry/setup.js';
import { ackMessage } from './ack.js';
import { LIMITS } from './command.js';
import { DrCoordinator } from './coordinator.js';
import { ControllerExecutor, type EndpointLookup } from './executor.js';
import { admit } from './intake.js';
import { zoneControllers, type LoadProvider, type ZoneController } from './planner.js';
import { buildCommand, signedMessage } from './sender.js';
import { generateKeyPair } from './signing.js';
import { parsePrivateKey, parsePublicKey } from '../runtime/ed25519-keys.js';
import { DrStateStore } from './state-store.js';

/**
 * Controller commands rehearsed at least: a small site repeats its rounds, up to MAX_ROUNDS (each
 * round writes the temporary state file a few times, fsynced; a small site's first command is
 * short anyway).
 */
const MIN_TASKS = 400;
const MAX_ROUNDS = 4;
/** A large site rehearses this many of its controllers: enough calls for the JIT, a bounded start-up. */
const MAX_CONTROLLERS = 250;

interface WarmUpDeps {
  site: SiteConfig;
  profiles: ReadonlyMap<string, DeviceProfile>;
  config: DemandResponseConfig;
  clock: Clock;
  /** The gateway's ack key (acks are signed with it, then dropped); default a throwaway key. */
  ackKey?: KeyObject;
  loadKw?: LoadProvider;
}

interface WarmUpReport {
  ms: number;
  /** Controller commands run (each: writes, read-back, audit line, span) against the stand-ins. */
  tasks: number;
  rounds: number;
  /** Requests the stand-in endpoints answered (none reached a wire). */
  requests: number;
}

/** Runs the rehearsal; resolves when it is over and its temporary state is removed. Never writes to a device. */
export async function warmUp(deps: WarmUpDeps): Promise<WarmUpReport> {
  const t0 = performance.now();
  const controllers = zoneControllers(deps.site.devices, deps.profiles).slice(0, MAX_CONTROLLERS);
  if (controllers.length === 0) return { ms: 0, tasks: 0, rounds: 0, requests: 0 };
  // The rehearsal's site: the rehearsed controllers only (the planner and coordinator see no other).
  const site: SiteConfig = { ...deps.site, devices: controllers.map((c) => c.device) };
  const dir = mkdtempSync(join(tmpdir(), 'ems-dr-warm-up-'));
  const clock = rehearsalClock(deps.clock);
  const endpoints = standIns(controllers);
  const lookup: EndpointLookup = (d) => endpoints.get(endpointKey(d));
  const telemetry = offlineTelemetry();
  const coordinator = rehearsalCoordinator({ ...deps, site }, clock, lookup, join(dir, 'dr-state.json'), telemetry);
  try {
    const keys = generateKeyPair();
    const emsKey = parsePrivateKey(keys.privatePem);
    const verifyKeys = [parsePublicKey(keys.publicPem)];
    const zones = [...new Set(controllers.map((c) => c.device.zone))];
    const zoneSet = new Set(zones);
    let tasks = 0;
    let rounds = 0;
    while (rounds === 0 || (tasks < MIN_TASKS && rounds < MAX_ROUNDS)) {
      for (const zone of zones) {
        for (const type of ['curtail', 'restore'] as const) {
          const cmd = buildCommand({ siteId: deps.site.site.id, zone, type, reductionMw: LIMITS.maxReductionMw, durationMinutes: 15, commandId: `warm-up-${rounds}-${type}-${zone}`, nowMs: clock.now() });
          const admission = admit({ payload: Buffer.from(signedMessage(cmd, emsKey)), retained: false, qos: 1 }, {
            siteId: deps.site.site.id, keys: verifyKeys, zones: zoneSet, skewMs: deps.config.max_clock_skew_ms, store: coordinator.store, now: clock.now(),
          });
          // The largest reduction: every controller of the zone is planned (to its floor).
          if (!admission.ok) throw new Error(`DR warm-up: its own command was refused (${admission.rejection.reason}: ${admission.rejection.message})`);
          if (type === 'curtail') await coordinator.run.curtail(admission.command, ROOT_CONTEXT);
          else await coordinator.run.restore(admission.command, ROOT_CONTEXT);
        }
      }
      rounds += 1;
      tasks += 2 * controllers.length;
    }
    const requests = [...endpoints.values()].reduce((n, e) => n + e.requests, 0);
    return { ms: performance.now() - t0, tasks, rounds, requests };
  } finally {
    coordinator.run.stop();
    clock.stop();
    await telemetry.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * One stand-in per real endpoint key (so commands interleave across endpoints as on the wire),
 * each acknowledge register primed with its verify.equals value: a read-back agrees at once.
 */
function standIns(controllers: readonly ZoneController[]): Map<string, RehearsalEndpoint> {
  const out = new Map<string, RehearsalEndpoint>();
  for (const { device, profile, control } of controllers) {
    const key = endpointKey(device);
    let ep = out.get(key);
    if (ep === undefined) {
      ep = new RehearsalEndpoint(key);
      out.set(key, ep);
    }
    const { equals } = control.def.verify;
    const point = control.verifyPoint;
    if (equals === undefined || point === control.def) continue;
    try {
      ep.set(device.unit_id, point.table, wireAddress(profile, point), encodePoint(profile, point, equals, 0));
    } catch {
      // Not encodable: that controller's rehearsal read-back disagrees and times out on the fake clock; harmless.
    }
  }
  return out;
}

function rehearsalCoordinator(deps: WarmUpDeps, clock: RehearsalClock, lookup: EndpointLookup, statePath: string, telemetry: ReturnType<typeof offlineTelemetry>): { run: DrCoordinator; store: DrStateStore } {
  const { tracer, meter } = telemetry;
  // The audit lines are formatted and written as in the real log (pino at info, sonic-boom), to the null device.
  const audit = pino({ level: 'info' }, pino.destination({ dest: devNull, sync: true }));
  const counter = meter.createCounter(METRICS.drControllerCommands);
  const ackKey = deps.ackKey ?? parsePrivateKey(generateKeyPair().privatePem);
  const store = new DrStateStore(statePath);
  const executor = new ControllerExecutor({ endpoints: lookup, clock, audit, tracer, controllerCommands: counter, dryRun: false });
  const run = new DrCoordinator({
    site: deps.site, profiles: deps.profiles, config: { ...deps.config, state_file: statePath, dry_run: false }, executor, endpoints: lookup, store,
    clock, logger: audit, tracer, publish: (ack) => { ackMessage(ack, ackKey); }, stateRefused: counter,
    onStartActive: 'reassert', checkIntervalMs: 0, ...(deps.loadKw ? { loadKw: deps.loadKw } : {}),
  });
  return { run, store };
}

interface RehearsalClock extends Clock {
  /** Cancels what is still pending (the end timers of rehearsed commands). */
  stop(): void;
}

/**
 * The real time, but waits (rate limits, read-back delays) end at once: a rehearsal takes no
 * longer than its work. Timers beyond a minute (a command's end) never fire.
 */
function rehearsalClock(real: Clock): RehearsalClock {
  const pending = new Set<NodeJS.Immediate>();
  return {
    now: () => real.now(),
    monotonic: () => real.monotonic(),
    setTimeout(fn: () => void, ms: number): ClockTimer {
      if (ms > 60_000) return undefined as unknown as ClockTimer;
      const h = setImmediate(() => { pending.delete(h); fn(); });
      pending.add(h);
      return h as unknown as ClockTimer;
    },
    clearTimeout(t: ClockTimer): void {
      const h = t as unknown as NodeJS.Immediate | undefined;
      if (h === undefined) return;
      clearImmediate(h);
      pending.delete(h);
    },
    stop(): void {
      for (const h of pending) clearImmediate(h);
      pending.clear();
    },
  };
}
