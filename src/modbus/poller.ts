// One device's poll loop: every poll_interval_ms, read each planned request through the shared
// endpoint, decode it (scale factors from the same read), and write the snapshot. A cycle that
// overruns its interval is measured, counted and logged, and the missed slots are skipped: cycles
// never stack. Failures are data: values of a failed read leave the snapshot, the error is
// counted by error_type, and the log gets state transitions, not a line per poll. After every
// (re)connect, and when the device comes back up, the identity points are read once first and
// the SunS marker checked (identity-check.ts): while it is wrong the cyclic plan is not polled.
import { isSunSpecProfile } from '../config/profile-sunspec.js';
import { pointWidth, type DeviceProfile, type PointDef } from '../config/profile-types.js';
import type { DeviceConfig } from '../config/site-types.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { rateLimitedLogger, type RateLimitedLogger } from '../runtime/rate-limit.js';
import { pointDecoder, pointOrder, type PointDecoder } from './codec.js';
import { IdentityCheck, IdentityGate, type IdentityValues } from './identity-check.js';
import { emptyReads, readBlocks, readPoints, type LastRead, type PointReadout, type ReadBlockReadout } from './live-values.js';
import { checksPlausibility, implausibleWhy, isMultiRegister, orderHint, ordersInRange, outOfRange } from './plausibility.js';
import { planReads, type PlannedRead } from './read-plan.js';
import type { DeviceSnapshot, DeviceValues } from './snapshot.js';
import { slabFloat64, slabInt32, slabUint16, slabUint8 } from './typed-slab.js';
import { logChainEnd } from './sunspec-discovery.js';
import { absentModels, describeChain, type DeviceLayout } from './sunspec-layout.js';
import { sunspecModelName } from '../config/sunspec-models.js';
import { ModbusError, type ModbusEndpointClient, type ModbusErrorType, type ReadRequest, type RequestOptions } from './types.js';

export interface PollObserver {
  cycleDone(deviceId: string, durationMs: number, overrun: boolean): void;
  decodeError(deviceId: string, errorType: string): void;
}

export interface DeviceStatus {
  deviceId: string;
  endpoint: string;
  unitId: number;
  /** undefined until the first cycle ends. */
  up: boolean | undefined;
  /** Ms since the last cycle that read something; undefined if none yet. */
  lastGoodAgeMs: number | undefined;
  cycles: number;
  errors: number;
  overruns: number;
  lastCycleMs: number | undefined;
  lastError: { code: string; message: string; atMs: number } | undefined;
  /** Identity points read at connect (manufacturer, model, serial ...), for the status page; never metrics. */
  identity?: IdentityValues;
  /** SunSpec profiles: the chain found at the last discovery and what the device lacks. */
  sunspec?: SunSpecStatus;
}

interface SunSpecStatus {
  /** Wire address of the 'SunS' marker. */
  base: number;
  models: Array<{ id: number; name: string; start: number; length: number }>;
  end: string;
  /** Points of the profile not read on this device (and controls not writable), by model and reason. */
  absent: Array<{ model: number | null; points: string[]; reason: string }>;
  length_mismatches: Array<{ model: number; device_length: number; profile_length: number }>;
}

interface DevicePollerDeps {
  /** The profile's read plan when already computed (shared by every device of a profile). */
  plan?: readonly PlannedRead[];
  /** The profile's identity plan when already computed (planIdentityReads). */
  identityPlan?: readonly PlannedRead[];
  clock: Clock;
  logger: Logger;
  endpoint: ModbusEndpointClient;
  snapshot: DeviceSnapshot;
  observer?: PollObserver;
}

/**
 * A point of a planned read as its decoding needs it: offset, width, decoder (width, word order,
 * type, sentinels, scaling resolved) and the index of its scale factor in the same read. Compiled
 * once per planned read and shared by every device polling it (readTemplate): the devices of a
 * profile share one plan. What changes per device lives in its CompiledRead's typed arrays.
 */
interface CompiledItem {
  point: PointDef;
  offset: number;
  width: number;
  isSf: boolean;
  decode: PointDecoder;
  /** Index (in `items`, below sfCount) of this point's scale factor in the same read; -1: none there. */
  sf: number;
  /** Whether its values go through the plausibility check (checksPlausibility). */
  plaus: boolean;
}

/** A planned read's items, scale factors first (decoded before their values). */
interface ReadTemplate {
  profile: DeviceProfile;
  items: CompiledItem[];
  sfCount: number;
}

// Per-item state bits in CompiledRead.state.
const CACHED = 1;
/** The cached result is ok and numeric (its value in num[i]). */
const NUMBER = 2;
/** The cached result is ok and not numeric (its value in other[i]); with neither bit: failed, other[i] its reason. */
const OTHER = 4;
/** The last decode had a scale factor (num[n + i]). */
const HAS_SF = 8;

/**
 * A planned read compiled for one device. The decode cache keeps no object per point: per item a
 * state byte and two doubles (value, scale factor of the last decode), and one copy of the last
 * answer's registers, which the live values read too. 5,000 devices of 60 points had 300,000
 * per-point objects (about 40 MB of heap, bench:modbus RSS); and the answer's own array is not
 * kept from one cycle to the next (it would reach the old generation).
 */
interface CompiledRead {
  read: PlannedRead;
  t: ReadTemplate;
  /** The request as the endpoint sends it, compiled once (its frame, when the endpoint prepares reads). */
  request: ReadRequest;
  options: RequestOptions;
  /** The registers of the last answer, copied (undefined: none yet); the decode cache compares against them. */
  words: Uint16Array | Uint8Array | undefined;
  state: Uint8Array;
  /** [0, n): the cached numeric value; [n, 2n): the scale factor of the last decode. */
  num: Float64Array;
  /** Non-numeric cached values and failure reasons, made when a read first has one. */
  other: Array<string | boolean> | undefined;
  /** The scale factors decoded from this answer, by sf item (undefined: none or not a number). */
  sfNow: Array<number | undefined>;
  /** Each item's slot in the device's snapshot values (-1: the device is not in the snapshot). */
  slots: Int32Array;
  /** Whether its arrays (and the copy of the registers) are carved from the shared slabs. */
  slab: boolean;
}

/**
 * Point decoders by what a decoder depends on (the profile's default order and the point's table,
 * type, length, bit, order, scale, offset, sentinels, whether it has a scale factor): the devices
 * of a profile share them, and so do devices whose plan is compiled per device (SunSpec layouts),
 * instead of one per point per device (300,000 closures at 5,000 devices of 60 points were 130 MB
 * of heap). Bounded by the distinct points of the loaded profiles.
 */
const decoders = new Map<string, PointDecoder>();

function decoderOf(profile: DeviceProfile, point: PointDef): PointDecoder {
  const key = JSON.stringify([
    profile.default_order, point.table, point.type, point.length, point.bit, point.order, point.scale, point.offset,
    point.scale_factor !== undefined, point.sentinel,
  ]);
  let d = decoders.get(key);
  if (d === undefined) {
    d = pointDecoder(profile, point);
    decoders.set(key, d);
  }
  return d;
}

/** The items of planned reads, by read (a profile's plan is shared, so are its templates). */
const templates = new WeakMap<PlannedRead, ReadTemplate>();

// Each point's offset and decoder, its scale factor resolved to an item of the same read, scale
// factors first (decoded before their values).
function readTemplate(profile: DeviceProfile, read: PlannedRead): ReadTemplate {
  const known = templates.get(read);
  if (known !== undefined && known.profile === profile) return known;
  const sfIds = new Set(read.points.map((p) => p.scale_factor).filter((x): x is string => x !== undefined));
  const items = read.points.map((point): CompiledItem => ({
    point, offset: point.address - profile.address_base - read.address, width: pointWidth(point), isSf: sfIds.has(point.id),
    decode: decoderOf(profile, point), sf: -1, plaus: checksPlausibility(point),
  }));
  items.sort((a, b) => Number(b.isSf) - Number(a.isSf));
  const sfCount = sfIds.size === 0 ? 0 : items.filter((it) => it.isSf).length;
  const index = new Map(items.map((it, i) => [it.point.id, i]));
  for (const it of items) {
    const i = it.point.scale_factor === undefined ? undefined : index.get(it.point.scale_factor);
    it.sf = i !== undefined && i < sfCount ? i : -1;
  }
  const t: ReadTemplate = { profile, items, sfCount };
  if (known === undefined) templates.set(read, t);
  return t;
}

// A planned read compiled for one device: the shared template, the request frame prepared by the
// endpoint, and the device's decode cache. A recompiled plan recompiles all of it. `slab`: carve its
// arrays from the shared slabs (typed-slab.ts), for the plan a device keeps; a plan compiled again
// (a SunSpec device's chain rediscovered at each reconnect) takes arrays of its own, which the
// garbage collector frees with the plan: slab bytes are never handed out twice, so recompiling into
// them would leak a little at every reconnect.
function compile(device: DeviceConfig, profile: DeviceProfile, endpoint: ModbusEndpointClient, read: PlannedRead, values: DeviceValues | undefined, slab: boolean): CompiledRead {
  const t = readTemplate(profile, read);
  const n = t.items.length;
  const req: ReadRequest = { unitId: device.unit_id, table: read.table, address: read.address, count: read.count };
  const request = endpoint.prepareRead?.(req) ?? req;
  return {
    read, t, request, options: { deviceId: device.id, timeoutMs: profile.quirks.timeout_ms },
    words: undefined, state: slab ? slabUint8(n) : new Uint8Array(n), num: slab ? slabFloat64(2 * n) : new Float64Array(2 * n),
    other: undefined, sfNow: new Array<number | undefined>(t.sfCount).fill(undefined),
    slots: slotsOf(t.items, values, slab), slab,
  };
}

/** Each item's slot in the device's snapshot values (-1: none). */
function slotsOf(items: readonly CompiledItem[], values: DeviceValues | undefined, slab: boolean): Int32Array {
  const slots = slab ? slabInt32(items.length) : new Int32Array(items.length);
  items.forEach((it, i) => { slots[i] = values?.slotOf(it.point.id) ?? -1; });
  return slots;
}

/** Whether item i's registers in `words` are those of its last decode (`last`: the previous answer, same length). */
function sameWords(it: CompiledItem, words: Uint16Array | Uint8Array, last: Uint16Array | Uint8Array): boolean {
  const end = it.offset + it.width;
  if (end > words.length) return false;
  for (let k = it.offset; k < end; k++) if (words[k] !== last[k]) return false;
  return true;
}

/** A value the poller stores as is: a number that is no scale factor and passes plausibility, with no point withheld now. */
function plainNumber(it: CompiledItem, v: number, noneWithheld: boolean): boolean {
  return noneWithheld && !it.isSf && (!it.plaus || !outOfRange(it.point, v));
}

/** Errors after which the rest of the cycle is skipped: the unit or the line is unreachable. */
const ABORT_CYCLE: ReadonlySet<ModbusErrorType> = new Set(['timeout', 'disconnected', 'connect_failed', 'closed', 'unit_backed_off']);
/** Configuration errors (exceptions 1-3): not retried every cycle, reported once per park. */
const CONFIG_ERRORS: ReadonlySet<ModbusErrorType> = new Set(['exception_illegal_function', 'exception_illegal_address', 'exception_illegal_value']);

export class DevicePoller {
  private plan: CompiledRead[] = [];
  /** Whether a plan of this poller was carved from the slabs (compilePlan): only the first is. */
  private slabbed = false;
  /** This device's values in the snapshot (undefined: not registered there). */
  private values: DeviceValues | undefined;
  /** The last answer (or failure) of each planned read, for the live values (live-values.ts). */
  private lastReads: LastRead[] = [];
  /** Points whose value is withheld as implausible now (logged once per state change); made when first needed, as the two sets below. */
  private implausibleSet: Set<string> | undefined;
  private parkedUntil: number[] = [];
  private timer: ClockTimer | undefined;
  private due = 0;
  private running: Promise<void> | undefined;
  private stopped = true;
  private up: boolean | undefined;
  private lastGoodMono: number | undefined;
  private counts = { cycles: 0, errors: 0, overruns: 0 };
  private lastCycleMs: number | undefined;
  private lastError: DeviceStatus['lastError'];
  private logger: Logger | undefined;
  private limiter: RateLimitedLogger | undefined;
  private limitedKeySet: Set<string> | undefined;
  /** Undefined for profiles without identity points: they poll as if it did not exist. */
  private ident: IdentityGate | undefined;
  private unsubscribe: (() => void) | undefined;
  /** SunSpec profiles: the layout the plan was compiled from (the plan is empty until the first discovery). */
  private layout: DeviceLayout | undefined;
  private reportedMismatchSet: Set<string> | undefined;

  constructor(readonly device: DeviceConfig, readonly profile: DeviceProfile, private readonly deps: DevicePollerDeps) {}

  private get implausible(): Set<string> {
    return this.implausibleSet ??= new Set();
  }

  private get limitedKeys(): Set<string> {
    return this.limitedKeySet ??= new Set();
  }

  private get reportedMismatches(): Set<string> {
    return this.reportedMismatchSet ??= new Set();
  }

  // The device's logger, its rate limiter and the sets above are made when first used: most
  // devices never need them, and 5,000 of each were about 5 MB of heap (bench:modbus).
  private get log(): Logger {
    return this.logger ??= this.deps.logger.child({ component: 'modbus-poller', device: this.device.id });
  }

  private get limited(): RateLimitedLogger {
    return this.limiter ??= rateLimitedLogger(this.log, this.deps.clock, { intervalMs: 60_000 });
  }

  /** Start polling; the first cycle runs after `startOffsetMs` (start-up staggering). */
  start(startOffsetMs = 0): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (!this.prepare()) return;
    this.unsubscribe = this.deps.endpoint.onConnect(() => this.ident?.connected());
    this.due = this.deps.clock.monotonic() + Math.max(0, startOffsetMs);
    this.schedule();
  }

  /** Compile the read plan (start() does it; cycle() alone needs it first). False if unplannable. */
  prepare(): boolean {
    try {
      // A SunSpec profile's points are placed per device once its chain is known (applyLayout).
      const requests = isSunSpecProfile(this.profile) ? [] : (this.deps.plan ?? planReads(this.profile).requests);
      this.values = this.deps.snapshot.device(this.device.id);
      this.plan = this.compilePlan(this.profile, requests);
      const check = new IdentityCheck(this.profile, this.deps.identityPlan);
      const target = { deviceId: this.device.id, unitId: this.device.unit_id, endpoint: this.deps.endpoint, timeoutMs: this.profile.quirks.timeout_ms };
      this.ident = check.needed ? new IdentityGate(check, target, this.log) : undefined;
    } catch (e) {
      // The config validator rejects unplannable profiles; if one slips through, only this device stops.
      this.fail('invalid_request', `read plan: ${e instanceof Error ? e.message : String(e)}`);
      this.log.error({ err: this.lastError?.message }, 'device not polled: its profile cannot be planned');
      return false;
    }
    this.parkedUntil = this.plan.map(() => 0);
    this.lastReads = emptyReads(this.plan.length);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    this.deps.snapshot.clear(this.device.id);
  }

  get endpointKey(): string {
    return this.deps.endpoint.key;
  }

  get isUp(): boolean | undefined {
    return this.up;
  }

  status(): DeviceStatus {
    const now = this.deps.clock.monotonic();
    return {
      deviceId: this.device.id, endpoint: this.deps.endpoint.key, unitId: this.device.unit_id, up: this.up,
      lastGoodAgeMs: this.lastGoodMono === undefined ? undefined : now - this.lastGoodMono,
      ...this.counts, lastCycleMs: this.lastCycleMs, lastError: this.lastError,
      ...(this.ident?.identity === undefined ? {} : { identity: this.ident.identity }),
      ...(this.layout === undefined ? {} : { sunspec: sunspecStatus(this.layout) }),
    };
  }

  /** Every cyclic point's live value or the reason it has none; `withRegisters`: raw registers and the four orders too. */
  liveValues(withRegisters = false): PointReadout[] {
    // The plan is compiled from the profile placed on this device (SunSpec): its addresses, not the reference chain's.
    return readPoints(this.layout?.profile ?? this.profile, this.plan.map((c) => c.read), this.lastReads, withRegisters);
  }

  /** The planned reads with the registers of their last answer. */
  lastReadBlocks(): ReadBlockReadout[] {
    return readBlocks(this.plan.map((c) => c.read), this.lastReads);
  }

  /** SunSpec: the writable-control profile of this device (controls at its addresses), once discovered. */
  get deviceProfile(): DeviceProfile | undefined {
    return isSunSpecProfile(this.profile) ? this.layout?.profile : this.profile;
  }

  /**
   * A new discovery result: the read plan is compiled from the points placed on this device's
   * chain; points left out are removed from the snapshot (absent, never 0) and logged with the
   * reason, a model length that differs from the profile's is logged once.
   */
  /** The first plan with reads is carved from the slabs; any later one has arrays of its own (compile()). */
  private compilePlan(profile: DeviceProfile, requests: readonly PlannedRead[]): CompiledRead[] {
    const slab = !this.slabbed && requests.length > 0;
    if (slab) this.slabbed = true;
    return requests.map((r) => compile(this.device, profile, this.deps.endpoint, r, this.values, slab));
  }

  private applyLayout(layout: DeviceLayout): void {
    const before = this.layout;
    this.layout = layout;
    const requests = planReads(layout.profile).requests;
    this.plan = this.compilePlan(layout.profile, requests);
    this.parkedUntil = this.plan.map(() => 0);
    this.lastReads = emptyReads(this.plan.length);
    const kept = new Set(layout.profile.points.map((p) => p.id));
    for (const p of this.profile.points) if (!kept.has(p.id)) this.deps.snapshot.delete(this.device.id, p.id);
    const chain = describeChain(layout.chain);
    if (before === undefined || describeChain(before.chain) !== chain) {
      this.log.info({ sunspec_base: layout.chain.base, chain, reads: this.plan.length }, 'SunSpec chain discovered: read plan compiled for this device');
      for (const a of absentModels(layout)) {
        this.log.warn({ model: a.model, points: a.points, reason: a.reason }, 'SunSpec points not read on this device (absent, never 0)');
      }
      logChainEnd(this.log, layout.chain);
    }
    for (const m of layout.lengthMismatches) {
      const key = `${m.model}:${m.device}`;
      if (this.reportedMismatches.has(key)) continue;
      this.reportedMismatches.add(key);
      this.log.warn({ model: m.model, device_length: m.device, profile_length: m.profile },
        `SunSpec model ${m.model} has length ${m.device} on the device, ${m.profile} in the profile: points past the device's length are not read`);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = Math.max(0, this.due - this.deps.clock.monotonic());
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.running = this.scheduledCycle();
    }, delay);
  }

  /** A cycle of the loop, then the next slot (one promise per cycle, no chain). */
  private async scheduledCycle(): Promise<void> {
    // cycle() never rejects: every error is handled inside and becomes data.
    await this.cycle();
    this.running = undefined;
    this.next();
  }

  private next(): void {
    const interval = this.device.poll_interval_ms;
    const now = this.deps.clock.monotonic();
    this.due += interval;
    // Skip missed slots instead of firing them back to back: overruns are never stacked.
    if (this.due <= now) this.due += Math.ceil((now - this.due) / interval + 1e-9) * interval;
    this.schedule();
  }

  /** One poll cycle (exposed for tests and for a one-shot `read` command). Never rejects. */
  async cycle(): Promise<void> {
    const { clock, endpoint } = this.deps;
    const t0 = clock.monotonic();
    let good = 0;
    // Identity first (once per connection); a wrong marker or a failed identity read skips the cycle.
    const blocked = this.ident === undefined || this.ident.verified ? undefined : await this.identityGate(t0);
    const found = this.ident?.layout;
    let noPlan: ModbusError | undefined;
    if (blocked === undefined && found !== undefined && found !== this.layout) {
      try {
        this.applyLayout(found);
      } catch (e) {
        // The loader plans every model's points; a layout that still cannot be planned stops only
        // this device, which is down; the layout stays unset, so the next discovery tries again.
        this.layout = undefined;
        this.plan = [];
        this.parkedUntil = [];
        this.lastReads = [];
        noPlan = new ModbusError('invalid_request', `read plan on the discovered chain: ${e instanceof Error ? e.message : String(e)}`, { device: this.device.id });
        this.limitedKeys.add('layout');
        this.limited.error('layout', { err: noPlan.message }, 'device not polled: its points cannot be planned on the discovered chain');
      }
    }
    // A SunSpec device with nothing to read (none of the profile's models is on it: a wrong unit id
    // hitting another SunSpec device) is down with the reason, never up with no values.
    if (blocked === undefined && noPlan === undefined && this.plan.length === 0 && isSunSpecProfile(this.profile)) {
      noPlan = new ModbusError('identity_mismatch', this.layout === undefined
        ? 'SunSpec chain not discovered yet: nothing to read'
        : `none of the profile's points is on this device (its SunSpec chain: ${describeChain(this.layout.chain) || 'no models'}; ${absentModels(this.layout).map((a) => a.reason).join('; ')}): nothing to read; check the unit id and the profile`, { device: this.device.id });
    }
    if (noPlan !== undefined) this.fail(noPlan.code, noPlan.message);
    let failedWith: ModbusError | undefined = blocked ?? noPlan;
    let abort = blocked !== undefined;
    for (let i = 0; i < this.plan.length; i++) {
      const c = this.plan[i] as CompiledRead;
      const r = c.read;
      const last = this.lastReads[i] as LastRead;
      if (abort || (this.parkedUntil[i] ?? 0) > t0) {
        this.forget(c);
        // Parked: the error of the refused attempt stays, with its time; skipped: this cycle's reason.
        last.words = undefined;
        if (abort && failedWith !== undefined) {
          last.atMs = clock.now();
          last.error = { code: failedWith.code, message: `not read this cycle: ${failedWith.message}` };
        }
        continue;
      }
      try {
        const words = await endpoint.read(c.request, c.options);
        const at = clock.now();
        this.store(c, words, at);
        last.words = c.words;
        last.atMs = at;
        last.error = undefined;
        good += 1;
      } catch (e) {
        const err = e instanceof ModbusError ? e : new ModbusError('exception_other', String(e), { device: this.device.id });
        this.forget(c);
        last.words = undefined;
        last.atMs = clock.now();
        last.error = { code: err.code, message: err.message };
        failedWith = err;
        this.counts.errors += 1;
        this.fail(err.code, err.message);
        if (CONFIG_ERRORS.has(err.code)) {
          const parkMs = Math.max(60_000, 10 * this.device.poll_interval_ms);
          this.parkedUntil[i] = t0 + parkMs;
          this.log.error({ error_type: err.code, table: r.table, address: r.address, count: r.count, retry_in_ms: parkMs, err: err.message },
            'device rejects this read: check the profile (address base, table, count); not retried until the park ends');
        } else {
          this.limitedKeys.add(`err:${err.code}`);
          this.limited.warn(`err:${err.code}`, { error_type: err.code, table: r.table, address: r.address, err: err.message }, 'read failed');
        }
        if (ABORT_CYCLE.has(err.code)) abort = true;
      }
    }
    const ms = clock.monotonic() - t0;
    const overrun = ms > this.device.poll_interval_ms;
    this.counts.cycles += 1;
    this.lastCycleMs = ms;
    if (overrun) {
      this.counts.overruns += 1;
      this.limited.warn('overrun', { cycle_ms: Math.round(ms), interval_ms: this.device.poll_interval_ms }, 'poll cycle overran its interval: next slot skipped');
    }
    this.deps.observer?.cycleDone(this.device.id, ms, overrun);
    this.transition(blocked === undefined && noPlan === undefined && (good > 0 || this.plan.length === 0), failedWith);
    if (good > 0) this.lastGoodMono = clock.monotonic();
  }

  // A point's decoder is a pure function of (words, scale factor): when a point's registers and
  // scale factor are what they were last cycle (status words, counters, setpoints: most of a
  // device), the last result is reused. At 1,000 polls/s that halves the decoding CPU
  // (bench:modbus) without a second decoder to keep in step with the codec.
  private store(c: CompiledRead, words: Uint16Array | Uint8Array, at: number): void {
    const { state, sfNow } = c;
    const sfCount = c.t.sfCount;
    // The last answer's registers, when comparable (same table, same length): else nothing is cached.
    const last = c.words !== undefined && c.words.length === words.length && c.words.constructor === words.constructor ? c.words : undefined;
    // Scale factors come from this read only: none is carried over from the last one.
    for (let i = 0; i < sfCount; i++) sfNow[i] = undefined;
    try {
      this.decodeAll(c, words, last, at);
    } catch (e) {
      // Half done: the cache may not match the registers kept, so it starts over.
      state.fill(0);
      throw e;
    }
    // Keep a copy of the registers, not the answer's array (it would live on into the old generation).
    if (last !== undefined) last.set(words);
    else {
      const n = words.length;
      const copy = words instanceof Uint16Array ? (c.slab ? slabUint16(n) : new Uint16Array(n)) : (c.slab ? slabUint8(n) : new Uint8Array(n));
      copy.set(words);
      c.words = copy;
    }
  }

  private decodeAll(c: CompiledRead, words: Uint16Array | Uint8Array, last: Uint16Array | Uint8Array | undefined, at: number): void {
    const items = c.t.items;
    const n = items.length;
    const { state, num, sfNow, slots } = c;
    const values = this.values;
    // A number in range that is no scale factor (most points) goes to the snapshot here, without
    // the call to apply() (a call per point boxes its numbers: bench:modbus allocation).
    const noneWithheld = (this.implausibleSet?.size ?? 0) === 0;
    for (let i = 0; i < n; i++) {
      const it = items[i] as CompiledItem;
      const sfv = it.sf < 0 ? undefined : sfNow[it.sf];
      const s = state[i] as number;
      const sameSf = sfv === undefined ? (s & HAS_SF) === 0 : (s & HAS_SF) !== 0 && num[n + i] === sfv;
      if (last !== undefined && (s & CACHED) !== 0 && sameSf && sameWords(it, words, last)) {
        const v = num[i] as number;
        if ((s & NUMBER) !== 0 && plainNumber(it, v, noneWithheld)) {
          const slot = slots[i] as number;
          if (slot >= 0) values?.set(slot, v, at);
        } else if ((s & NUMBER) !== 0) this.apply(c, i, true, v, '', at, words, sfv);
        else if ((s & OTHER) !== 0) this.apply(c, i, true, (c.other as Array<string | boolean>)[i] as string | boolean, '', at, words, sfv);
        else this.apply(c, i, false, 0, (c.other as Array<string | boolean>)[i] as string, at, words, sfv);
        continue;
      }
      const d = it.decode(words, it.offset, sfv);
      let bits = CACHED;
      if (sfv !== undefined) {
        bits |= HAS_SF;
        num[n + i] = sfv;
      }
      if (d.ok && typeof d.value === 'number') {
        bits |= NUMBER;
        num[i] = d.value;
      } else {
        const other = c.other ?? (c.other = new Array<string | boolean>(n).fill(''));
        if (!d.ok) other[i] = d.reason;
        else if (typeof d.value !== 'number') {
          bits |= OTHER;
          other[i] = d.value;
        }
      }
      state[i] = bits;
      if (d.ok && typeof d.value === 'number' && plainNumber(it, d.value, noneWithheld)) {
        const slot = slots[i] as number;
        if (slot >= 0) values?.set(slot, d.value, at);
      } else if (d.ok) this.apply(c, i, true, d.value, '', at, words, sfv);
      else this.apply(c, i, false, 0, d.reason, at, words, sfv);
    }
  }

  /** The values of a read that did not happen or failed leave the snapshot. */
  private forget(c: CompiledRead): void {
    const values = this.values;
    if (values === undefined) return;
    for (const slot of c.slots) if (slot >= 0) values.delete(slot);
  }

  private apply(
    c: CompiledRead, i: number, ok: boolean, value: number | string | boolean, reason: string, at: number, words: Uint16Array | Uint8Array, sfv: number | undefined,
  ): void {
    const it = c.t.items[i] as CompiledItem;
    const slot = c.slots[i] as number;
    // Plausibility, a step of its own after decoding: a value outside valid_range is withheld.
    if (ok && it.plaus && this.withheld(it, slot, value, words, sfv)) return;
    if (ok) {
      if (slot >= 0) this.values?.set(slot, value, at);
      if (it.isSf && typeof value === 'number') c.sfNow[i] = value;
    } else {
      if (slot >= 0) this.values?.delete(slot);
      // A sentinel is the device saying "not implemented": expected, not an error.
      if (reason === 'malformed') this.deps.observer?.decodeError(this.device.id, 'malformed_response');
    }
  }

  /**
   * True when the value is implausible (outside the point's valid_range, a denormal float): not exported, counted as
   * error_type="implausible" every time, logged once per change of state, with the registers and
   * the other word orders that would be in range.
   */
  private withheld(it: CompiledItem, slot: number, value: number | string | boolean, words: Uint16Array | Uint8Array, sfv: number | undefined): boolean {
    const p = it.point;
    if (!outOfRange(p, value)) {
      if (this.implausibleSet !== undefined && this.implausibleSet.size > 0 && this.implausibleSet.delete(p.id)) this.log.info({ point: p.id, value }, 'value back in its valid_range: exported again');
      return false;
    }
    if (slot >= 0) this.values?.delete(slot);
    this.deps.observer?.decodeError(this.device.id, 'implausible');
    if (!this.implausible.has(p.id)) {
      this.implausible.add(p.id);
      const multi = isMultiRegister(p);
      const orders = ordersInRange(this.profile, p, words, it.offset, sfv);
      const registers = Array.from(words.subarray(it.offset, it.offset + it.width), (w) => `0x${w.toString(16).padStart(4, '0')}`);
      this.log.warn(
        { error_type: 'implausible', point: p.id, value, valid_range: p.valid_range, registers, address: p.address, ...(multi ? { order: pointOrder(this.profile, p), in_range_orders: orders } : {}) },
        `implausible value withheld: ${p.id} = ${implausibleWhy(p, value as number)} (registers ${registers.join(' ')}); ${orderHint(orders, multi)}`,
      );
    }
    return true;
  }

  /** Undefined when the cyclic reads may go ahead; else the error that blocks them this cycle. */
  private async identityGate(t0: number): Promise<ModbusError | undefined> {
    const r = await this.ident?.pass(t0);
    if (r === undefined) return undefined;
    if (r.fresh) {
      this.counts.errors += 1;
      this.fail(r.error.code, r.error.message);
      if (r.error.code === 'identity_mismatch') this.deps.observer?.decodeError(this.device.id, 'identity_mismatch');
      else {
        this.limitedKeys.add(`err:${r.error.code}`);
        this.limited.warn(`err:${r.error.code}`, { error_type: r.error.code, err: r.error.message }, 'identity read failed');
      }
    }
    return r.error;
  }

  private transition(up: boolean, err: ModbusError | undefined): void {
    const was = this.up;
    this.up = up;
    // A device back from down may be another device (swapped, re-flashed): verify it again.
    if (!up) this.ident?.deviceDown();
    if (was === up) return;
    if (up) {
      // The condition cleared: the next failure of any kind logs at once.
      if (this.limitedKeySet !== undefined) {
        for (const k of this.limitedKeySet) this.limited.reset(k);
        this.limitedKeySet.clear();
      }
      this.log.info({ was: was === undefined ? 'unknown' : 'down' }, 'device up');
    } else {
      this.log.warn({ error_type: err?.code, err: err?.message }, 'device down');
    }
  }

  private fail(code: string, message: string): void {
    this.lastError = { code, message, atMs: this.deps.clock.now() };
  }
}

function sunspecStatus(l: DeviceLayout): SunSpecStatus {
  return {
    base: l.chain.base,
    models: l.chain.models.map((b) => ({ id: b.id, name: sunspecModelName(b.id), start: b.start, length: b.length })),
    end: l.chain.end,
    absent: absentModels(l).map((a) => ({ model: a.model ?? null, points: a.points, reason: a.reason })),
    length_mismatches: l.lengthMismatches.map((m) => ({ model: m.model, device_length: m.device, profile_length: m.profile })),
  };
}
