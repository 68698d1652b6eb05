// The identity read at connect: a profile's `role: identity` points (SunS marker, manufacturer,
// model, serial) read once per connection, not every cycle, and the SunSpec 'SunS' marker checked
// where `sunspec_base` says it is. A wrong address base is the most common field problem: every
// value is then read one register off and looks plausible enough to be believed. The marker is
// the one register pair whose content is known in advance, so a mismatch stops the device's
// polling with a configuration error instead of exporting shifted numbers.
import type { DeviceProfile } from '../config/profile-types.js';
import { isSunSpecProfile } from '../config/profile-sunspec.js';
import type { Logger } from '../runtime/logger.js';
import { decodeRead } from './codec-read.js';
import { planIdentityReads, type PlannedRead } from './read-plan.js';
import { discoverChain } from './sunspec-discovery.js';
import { placeOnDevice, type DeviceLayout } from './sunspec-layout.js';
import { ModbusError, type ModbusEndpointClient, type ModbusErrorType } from './types.js';
import { UnitBackoff } from './unit-backoff.js';

/** 'SunS' as two big-endian registers (0x53756e53). */
const SUNS_WORDS: readonly [number, number] = [0x5375, 0x6e53];

export type IdentityValues = Readonly<Record<string, string | number | boolean>>;

type IdentityOutcome =
  /** `layout`: for a SunSpec profile, its points placed on the chain this device has. */
  | { status: 'ok'; identity: IdentityValues; layout?: DeviceLayout }
  /** The marker is not where the profile says: a configuration error (fields for the log). */
  | { status: 'mismatch'; error: ModbusError; fields: Record<string, unknown> }
  /** A read failed before the marker could be checked (timeout, connection, busy ...): retry. */
  | { status: 'read_failed'; error: ModbusError };

/** Read errors that are the device refusing the register range: for the marker, "not there". */
const CONFIG_ERRORS: ReadonlySet<ModbusErrorType> = new Set(['exception_illegal_function', 'exception_illegal_address', 'exception_illegal_value']);

const hex = (w: number): string => `0x${w.toString(16).padStart(4, '0')}`;
const ascii = (words: ArrayLike<number>): string => {
  let s = '';
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? 0;
    for (const b of [w >> 8, w & 0xff]) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  }
  return s;
};

interface IdentityTarget {
  deviceId: string;
  unitId: number;
  endpoint: ModbusEndpointClient;
  timeoutMs: number;
}

export class IdentityCheck {
  /** The read holding the marker first (a mismatch stops there), then the other identity reads. */
  private readonly reads: PlannedRead[];
  private readonly markerWire: number | undefined;
  /** A profile placed by discovery: the marker is searched, the chain walked, then the identity read. */
  private readonly sunspec: boolean;

  constructor(private readonly profile: DeviceProfile, plan?: readonly PlannedRead[]) {
    this.sunspec = isSunSpecProfile(profile);
    if (this.sunspec) {
      this.reads = [];
      this.markerWire = undefined;
      return;
    }
    const reads = [...(plan ?? planIdentityReads(profile).requests)];
    this.markerWire = profile.sunspec_base === undefined ? undefined : profile.sunspec_base - profile.address_base;
    const m = this.markerWire;
    if (m !== undefined) {
      let i = reads.findIndex((r) => r.table === 'holding' && r.address <= m && m + 2 <= r.address + r.count);
      // The validator requires an identity point at sunspec_base; without one, read the two registers anyway.
      if (i < 0) i = reads.push({ table: 'holding', address: m, count: 2, points: [] }) - 1;
      reads.unshift(...reads.splice(i, 1));
    }
    this.reads = reads;
  }

  /** Whether this profile has anything to read at connect (else the poller behaves as without it). */
  get needed(): boolean {
    return this.sunspec || this.reads.length > 0;
  }

  /** Read every identity request through the device's endpoint (normal priority, its queue). Never rejects. */
  async run(t: IdentityTarget): Promise<IdentityOutcome> {
    if (!this.sunspec) return this.readAll(t, this.reads, this.profile);
    const preferred = this.profile.sunspec_base === undefined ? undefined : this.profile.sunspec_base - this.profile.address_base;
    const found = await discoverChain(t, preferred);
    if (found.status !== 'ok') return found;
    const layout = placeOnDevice(this.profile, found.chain);
    let reads: PlannedRead[];
    try {
      reads = planIdentityReads(layout.profile).requests;
    } catch (e) {
      return { status: 'read_failed', error: new ModbusError('invalid_request', `identity plan: ${e instanceof Error ? e.message : String(e)}`, { device: t.deviceId }) };
    }
    const out = await this.readAll(t, reads, layout.profile);
    return out.status === 'ok' ? { ...out, layout } : out;
  }

  private async readAll(t: IdentityTarget, reads: readonly PlannedRead[], profile: DeviceProfile): Promise<IdentityOutcome> {
    const identity: Record<string, string | number | boolean> = {};
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i] as PlannedRead;
      const isMarker = i === 0 && this.markerWire !== undefined;
      let words: Uint16Array | Uint8Array;
      try {
        words = await t.endpoint.read({ unitId: t.unitId, table: r.table, address: r.address, count: r.count }, { deviceId: t.deviceId, timeoutMs: t.timeoutMs });
      } catch (e) {
        const err = e instanceof ModbusError ? e : new ModbusError('exception_other', String(e), { device: t.deviceId });
        if (isMarker && CONFIG_ERRORS.has(err.code)) return this.mismatch(t, r, undefined, err);
        // Other identity points are informative: a device without them is still polled.
        if (isMarker || !CONFIG_ERRORS.has(err.code)) return { status: 'read_failed', error: err };
        continue;
      }
      if (isMarker) {
        const off = (this.markerWire as number) - r.address;
        if (words[off] !== SUNS_WORDS[0] || words[off + 1] !== SUNS_WORDS[1]) return this.mismatch(t, r, words, undefined);
      }
      for (const [id, d] of decodeRead(profile, r, words)) if (d.ok) identity[id] = d.value;
    }
    return { status: 'ok', identity };
  }

  private mismatch(t: IdentityTarget, r: PlannedRead, words: Uint16Array | Uint8Array | undefined, err: ModbusError | undefined): IdentityOutcome {
    const wire = this.markerWire as number;
    const base = this.profile.address_base;
    const where = `${t.deviceId} (unit ${t.unitId}) at ${t.endpoint.key}`;
    const fields: Record<string, unknown> = {
      error_type: 'identity_mismatch', endpoint: t.endpoint.key, unit_id: t.unitId,
      sunspec_base: this.profile.sunspec_base, address_base: base, wire_address: wire,
    };
    let got: string;
    let hint = `check address_base (0 vs 1: a datasheet listing ${wire + 1} for the marker means address_base 1) and sunspec_base (40000, 0 or 50000)`;
    if (words === undefined) {
      got = `the device refused the read (${err?.code ?? 'error'})`;
      fields.read_error = err?.message;
    } else {
      const off = wire - r.address;
      const at = Array.from(words.subarray(Math.max(0, off), off + 2));
      got = `${at.map(hex).join(' ')} ("${ascii(at)}")`;
      fields.read = `holding ${r.address}+${r.count}`;
      fields.bytes = at.map(hex).join(' ');
      fields.ascii = ascii(at);
      // The marker elsewhere in the same read names the shift exactly.
      for (let k = 0; k + 1 < words.length; k++) {
        if (words[k] === SUNS_WORDS[0] && words[k + 1] === SUNS_WORDS[1]) {
          const found = r.address + k;
          fields.found_at_wire_address = found;
          hint = `'SunS' is at wire address ${found}, ${found > wire ? found - wire : wire - found} register(s) ${found > wire ? 'after' : 'before'} where expected: the address base is off (check address_base 0 vs 1, sunspec_base)`;
          break;
        }
      }
    }
    fields.hint = hint;
    const message = `${where}: SunSpec marker 'SunS' expected at ${this.profile.sunspec_base} (wire ${wire}), read ${got}; ${hint}`;
    return { status: 'mismatch', error: new ModbusError('identity_mismatch', message, { device: t.deviceId, cause: err }), fields };
  }
}

/**
 * One device's identity state: read before the first cycle, after every (re)connect and after the
 * device was down; a mismatch blocks the cyclic reads and is retried with the unit backoff.
 */
export class IdentityGate {
  private state: 'pending' | 'ok' | 'mismatch' = 'pending';
  private values: IdentityValues | undefined;
  private placed: DeviceLayout | undefined;
  private error: ModbusError | undefined;
  /** Connections seen (onConnect) vs. the connection the identity was verified on. */
  private connects = 0;
  private verifiedOn = -1;
  /** Retries of a mismatch: 1 s + jitter, growing to 60 s (the endpoint's per-unit policy). */
  private readonly backoff = new UnitBackoff({ failuresBeforeBackoff: 1 });

  constructor(private readonly check: IdentityCheck, private readonly target: IdentityTarget, private readonly log: Logger) {}

  /** The endpoint's onConnect listener: the next cycle reads the identity again. */
  connected(): void {
    this.connects += 1;
  }

  /** The device went down: it may be another device when it comes back (swapped, re-flashed). */
  deviceDown(): void {
    if (this.state === 'ok') this.state = 'pending';
  }

  /** True while the identity holds for the current connection: the cycle needs no check (and no await). */
  get verified(): boolean {
    return this.state === 'ok' && this.verifiedOn === this.connects;
  }

  /** The identity points last read (undefined before the first good read and while mismatched). */
  get identity(): IdentityValues | undefined {
    return this.values;
  }

  /** For a SunSpec profile: the layout of the last discovery (a new object after each one). */
  get layout(): DeviceLayout | undefined {
    return this.placed;
  }

  /**
   * Undefined when the cyclic reads may go ahead; else the error that blocks them this cycle,
   * `fresh` when a check ran now and failed (to count), not when a mismatch is still backed off.
   */
  async pass(nowMono: number): Promise<{ error: ModbusError; fresh: boolean } | undefined> {
    if (this.verified) return undefined;
    if (this.state === 'mismatch' && this.error !== undefined && this.backoff.isBackedOff(0, nowMono)) return { error: this.error, fresh: false };
    const out = await this.check.run(this.target);
    if (out.status === 'ok') {
      if (this.state === 'mismatch') this.log.info({ identity: out.identity }, 'SunSpec marker found: identity verified, polling resumes');
      this.state = 'ok';
      this.verifiedOn = this.connects;
      this.values = out.identity;
      if (out.layout !== undefined) this.placed = out.layout;
      this.error = undefined;
      this.backoff.succeeded(0);
      return undefined;
    }
    if (out.status === 'read_failed') return { error: out.error, fresh: true };
    // A configuration error: logged once per episode (until the marker reads right), retried with backoff.
    const retryMs = this.backoff.failed(0, nowMono, true);
    if (this.state !== 'mismatch') {
      this.log.error({ ...out.fields, retry_in_ms: retryMs, err: out.error.message },
        'SunSpec marker not found: check the profile address base; device not polled until the marker reads right');
    }
    this.state = 'mismatch';
    this.values = undefined;
    this.error = out.error;
    return { error: out.error, fresh: true };
  }
}
