// The spool: the box's durable queue between the meter ingest (and device polls) and the sinks.
// append() resolves once a batch is committed and fsynced (the meter ingest sends its PUBACKs
// then); each sink reads from its own position and confirms what the upstream took; an entry is
// deleted once every sink is past it. Bounded by bytes and age: under `backpressure` append()
// waits for room (the broker keeps what is unacknowledged), under `drop_oldest` the oldest
// entries are evicted and every reading a sink had not confirmed is counted. The cumulative
// totals (ingested and dropped per region and error type, per-sink delivery) are committed in the
// same transaction as the batch or the position they describe, and so is the batch's dedupe
// journal entry (the meter ids and timestamps it carries; the last JOURNAL_BATCHES are kept) from
// which a restarted meter ingest recognises the broker's redeliveries of committed readings.
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { decodeEntry, encodeEntry, entryCount, firstArrivedMs, recordRegion, type Sequenced, type SpoolRecord } from './records.js';
import { SpoolIndex } from './spool-index.js';
import { isDiskFull, type SpoolStore } from './spool-store.js';
import { emptyTotals, type IngestDelta, type SinkTotals, type SpoolTotals } from './totals.js';

type SpoolPolicy = 'backpressure' | 'drop_oldest';

export interface SpoolOptions {
  maxBytes: number;
  maxAgeMs: number;
  policy: SpoolPolicy;
  /** The configured sinks: each gets a position; positions of sinks no longer configured are dropped. */
  sinks: readonly string[];
  clock: Clock;
  logger: Logger;
  /** Journal entries kept (one per appended batch that has one); default JOURNAL_BATCHES. */
  journalBatches?: number;
  /** Readings evicted before every sink had them (drop_oldest, or the age bound): region -> count. */
  onEvicted?: (byRegion: Map<string, number>, bySink: Map<string, number>) => void;
}

/** LMDB's per-entry overhead beyond key and value, roughly (node header and page slack). */
const ENTRY_OVERHEAD = 24;
const RECHECK_MS = 1000;
/** Dedupe journal entries kept: the last this many batches (docs/delivery.md, "Redeliveries after a crash"). */
const JOURNAL_BATCHES = 64;
const JOURNAL_PREFIX = 'journal/';

interface ReadResult {
  records: Sequenced[];
  /** Sequence numbers in the range whose records failed their checksum. */
  corrupt: number[];
  /** The position after this read (exclusive). */
  next: number;
}

export interface SpoolState {
  bytes: number;
  readings: number;
  entries: number;
  full: boolean;
  disk_full: boolean;
  oldest_arrived_ms: number | undefined;
}

export class Spool {
  private readonly index = new SpoolIndex();
  private head = 0;
  /** Readers see entries only up to here: an entry is in the index before its commit resolves. */
  private committed = 0;
  private bytes = 0;
  private readonly positions = new Map<string, number>();
  private totals: SpoolTotals = emptyTotals(0);
  private full = false;
  private diskFull = false;
  private diskRetryAt = 0;
  private closed = false;
  private spaceWaiters: Array<() => void> = [];
  private recheck: ClockTimer | undefined;
  private writes = new Set<Promise<unknown>>();
  /** Meta keys of the dedupe journal, oldest first, and the number of the next one. */
  private journalKeys: string[] = [];
  private journalNext = 0;

  private constructor(private readonly store: SpoolStore, private readonly opts: SpoolOptions) {}

  /** Opens (or creates) the spool in `store`, rebuilding its index from what is committed. */
  static open(store: SpoolStore, opts: SpoolOptions): Spool {
    const s = new Spool(store, opts);
    s.load();
    return s;
  }

  private load(): void {
    const { store } = this;
    this.index.clear();
    this.bytes = 0;
    const raw: Array<{ key: number; bytes: number; arrivedMs: number; count: number }> = [];
    for (const e of store.entries()) {
      raw.push({ key: e.key, bytes: e.value.length + 8 + ENTRY_OVERHEAD, arrivedMs: firstArrivedMs(e.value) ?? this.opts.clock.now(), count: entryCount(e.value) });
    }
    const storedHead = store.getMeta('head');
    const last = raw[raw.length - 1];
    this.head = Math.max(typeof storedHead === 'number' ? storedHead : 0, last ? last.key + last.count : 0);
    this.committed = this.head;
    // An entry covers the sequence numbers up to the next entry's key (or the head): a corrupt
    // header cannot shift the numbering of anything after it.
    raw.forEach((e, i) => {
      const end = raw[i + 1]?.key ?? this.head;
      this.index.push(e.key, Math.max(0, end - e.key), e.bytes, e.arrivedMs);
      this.bytes += e.bytes;
    });
    const t = store.getMeta('totals');
    this.totals = isTotals(t) ? t : emptyTotals(this.opts.clock.now());
    if (typeof this.totals.since_ms !== 'number') this.totals.since_ms = this.opts.clock.now();
    const oldest = this.oldestKey();
    this.positions.clear();
    for (const name of this.opts.sinks) {
      const p = store.getMeta(`pos/${name}`);
      // A sink new to this spool starts at the oldest reading still held (it gets the backlog).
      const pos = typeof p === 'number' ? Math.min(Math.max(p, oldest), this.head) : oldest;
      this.positions.set(name, pos);
      if (this.totals.sinks[name] === undefined) this.totals.sinks[name] = { ingested: this.head - pos, delivered: 0, rejected: {}, evicted: 0 };
    }
    const journal: number[] = [];
    for (const k of store.metaKeys()) {
      if (k.startsWith('pos/') && !this.positions.has(k.slice(4))) void this.track(store.removeMeta(k));
      if (k.startsWith(JOURNAL_PREFIX)) journal.push(Number(k.slice(JOURNAL_PREFIX.length)));
    }
    journal.sort((a, b) => a - b);
    this.journalKeys = journal.map((n) => `${JOURNAL_PREFIX}${n}`);
    this.journalNext = (journal[journal.length - 1] ?? -1) + 1;
    for (const name of Object.keys(this.totals.sinks)) if (!this.positions.has(name)) delete this.totals.sinks[name];
    // A sink removed from the site file no longer holds entries back.
    void this.track(Promise.all(this.removeConfirmed())).catch(() => undefined);
  }

  /** The cumulative totals as committed (for resuming exported counters after a restart). */
  totalsSnapshot(): SpoolTotals { return structuredClone(this.totals); }

  /** The dedupe journal's entries as committed, oldest first. */
  journalEntries(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const k of this.journalKeys) {
      const v = this.store.getMeta(k);
      if (v instanceof Uint8Array) out.push(Uint8Array.prototype.slice.call(v)); // a copy: the store may reuse its read buffer
    }
    return out;
  }

  position(sink: string): number { return this.positions.get(sink) ?? this.head; }
  get headSeq(): number { return this.head; }

  pending(sink: string): number { return this.head - this.position(sink); }

  sinkTotals(sink: string): SinkTotals | undefined { return this.totals.sinks[sink]; }

  state(): SpoolState {
    const { index } = this;
    const first = index.empty ? undefined : index.start;
    return {
      bytes: this.bytes, readings: first !== undefined ? this.head - index.key(first) : 0, entries: index.entries,
      full: this.full, disk_full: this.diskFull, oldest_arrived_ms: first !== undefined ? index.arrivedMs(first) : undefined,
    };
  }

  /** Wall-clock arrival of the oldest reading `sink` has not confirmed; undefined when none. */
  oldestPendingArrivedMs(sink: string): number | undefined {
    const pos = this.position(sink);
    if (pos >= this.head) return undefined;
    const { index } = this;
    const i = index.find(pos);
    if (i >= index.end) return undefined;
    const key = index.key(i);
    if (pos === key) return index.arrivedMs(i);
    const value = this.store.getEntry(key);
    const rec = value ? decodeEntry(value, key).records.find((r) => r.seq >= pos) : undefined;
    return rec?.record.arrived_ms ?? index.arrivedMs(i);
  }

  /**
   * Commits one batch durably, with the ingest counts it carries. Resolves after the fsync. While
   * the spool (or the disk) is full: waits under `backpressure`, evicts under `drop_oldest`.
   */
  async append(records: readonly SpoolRecord[], delta: IngestDelta = { ingested: new Map(), dropped: new Map() }, journal?: Uint8Array): Promise<void> {
    if (records.length === 0 && delta.ingested.size === 0 && delta.dropped.size === 0 && journal === undefined) return;
    const value = records.length > 0 ? encodeEntry(records) : undefined;
    const size = value ? value.length + 8 + ENTRY_OVERHEAD : 0;
    for (;;) {
      let evictionFailed = false;
      for (;;) {
        if (this.closed) throw new Error('spool closed');
        if (!this.wouldOverflow(size)) break;
        if (this.opts.policy === 'drop_oldest' && !evictionFailed) {
          const ev = this.evictFor(size);
          if (ev !== undefined) {
            // The eviction commits on its own (a delete-only transaction may pass where the batch
            // cannot); then the room is checked again: a concurrent append may have taken it meanwhile.
            if (await ev.committed) continue;
            // Not committed (the disk refuses even that): the disk is the truth; try again in a second.
            await this.settle();
            this.load();
            this.setDiskFull(true);
            this.diskRetryAt = this.opts.clock.now() + RECHECK_MS;
            evictionFailed = true;
          }
        }
        if (!this.diskFull) this.setFull(true);
        await this.waitForSpace();
        evictionFailed = false;
      }
      if (!this.diskFull) this.setFull(false);
      try {
        await this.commit(records, value, size, delta, journal);
        this.setDiskFull(false);
        return;
      } catch (err) {
        // The transaction did not commit: the disk is the truth, rebuild the index from it.
        await this.settle();
        this.load();
        if (!isDiskFull(err)) throw err;
        // A full disk is a full spool: wait (backpressure) or evict (drop_oldest), then try again.
        this.setDiskFull(true);
        this.diskRetryAt = this.opts.clock.now() + RECHECK_MS;
      }
    }
  }

  private commit(records: readonly SpoolRecord[], value: Buffer | undefined, size: number, delta: IngestDelta, journal: Uint8Array | undefined): Promise<unknown> {
    const writes: Array<Promise<unknown>> = [];
    if (value !== undefined) {
      const key = this.head;
      this.head += records.length;
      this.index.push(key, records.length, size, records[0]?.arrived_ms ?? this.opts.clock.now());
      this.bytes += size;
      for (const t of Object.values(this.totals.sinks)) t.ingested += records.length;
      writes.push(this.store.putEntry(key, value), this.store.putMeta('head', this.head));
    }
    addDelta(this.totals, delta);
    writes.push(this.store.putMeta('totals', this.totals));
    if (journal !== undefined) {
      const key = `${JOURNAL_PREFIX}${this.journalNext++}`;
      this.journalKeys.push(key);
      writes.push(this.store.putMeta(key, journal));
      const keep = this.opts.journalBatches ?? JOURNAL_BATCHES;
      while (this.journalKeys.length > keep) writes.push(this.store.removeMeta(this.journalKeys.shift() as string));
    }
    const end = this.head;
    return this.track(Promise.all(writes)).then(() => {
      this.committed = Math.max(this.committed, end);
      // No sink takes anything: the entry has served its purpose once committed.
      if (this.positions.size === 0) void this.track(Promise.all(this.removeConfirmed())).catch(() => undefined);
    });
  }

  /** Up to `max` records of `sink` from its position on, in sequence order. */
  read(sink: string, max: number): ReadResult {
    return this.readFrom(this.position(sink), max);
  }

  /** Up to `max` committed records from sequence number `from` on (a forwarder reading ahead of its confirms). */
  readFrom(from: number, max: number): ReadResult {
    const out: ReadResult = { records: [], corrupt: [], next: from };
    const { index } = this;
    let i = index.find(from);
    while (out.next < this.committed && out.next - from < max) {
      if (i >= index.end) break;
      const key = index.key(i), count = index.count(i);
      i++;
      const value = this.store.getEntry(key);
      const decoded = value ? decodeEntry(value, key) : { records: [], corrupt: count };
      if (key + count > this.committed) break;
      const end = Math.min(key + count, from + max);
      let seq = Math.max(out.next, key);
      for (const r of decoded.records) {
        if (r.seq < seq || r.seq >= end) continue;
        while (seq < r.seq) out.corrupt.push(seq++);
        out.records.push(r);
        seq = r.seq + 1;
      }
      while (seq < end) out.corrupt.push(seq++);
      out.next = end;
    }
    return out;
  }

  /**
   * Moves `sink` to `next`: every reading in [from, next) was taken by the upstream except the
   * `rejected` ones (sequence number -> error_type). Readings an eviction already took from this
   * sink are not counted twice. Returns the number counted as delivered.
   */
  async confirm(sink: string, from: number, next: number, rejected: ReadonlyMap<number, string> = new Map()): Promise<number> {
    const pos = this.position(sink);
    const t = this.totals.sinks[sink];
    if (t === undefined || next <= pos) return 0;
    const start = Math.max(pos, from);
    let rejectedHere = 0;
    for (const [seq, type] of rejected) {
      if (seq < start || seq >= next) continue;
      t.rejected[type] = (t.rejected[type] ?? 0) + 1;
      rejectedHere++;
    }
    const delivered = next - start - rejectedHere;
    t.delivered += delivered;
    this.positions.set(sink, next);
    const writes = [this.store.putMeta(`pos/${sink}`, next), this.store.putMeta('totals', this.totals), ...this.removeConfirmed()];
    await this.track(Promise.all(writes));
    return delivered;
  }

  /** Stops waiting appends (they reject; their messages stay unacknowledged) and closes the store. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.recheck !== undefined) this.opts.clock.clearTimeout(this.recheck);
    this.recheck = undefined;
    for (const w of this.spaceWaiters.splice(0)) w();
    await this.settle();
    await this.store.close();
  }

  private oldestKey(): number { return this.index.empty ? this.head : this.index.key(this.index.start); }

  private minPosition(): number {
    let min = this.head;
    for (const p of this.positions.values()) min = Math.min(min, p);
    return min;
  }

  /** Removes the entries every sink is past; returns their delete writes. */
  private removeConfirmed(): Array<Promise<unknown>> {
    const min = this.minPosition();
    const writes: Array<Promise<unknown>> = [];
    const { index } = this;
    while (!index.empty) {
      const key = index.key(index.start);
      if (key + index.count(index.start) > min) break;
      writes.push(this.store.removeEntry(key));
      this.bytes -= index.dropFront();
    }
    if (writes.length > 0) this.spaceFreed();
    return writes;
  }

  private wouldOverflow(size: number): boolean {
    if (this.diskFull && this.opts.clock.now() < this.diskRetryAt) return true;
    // An empty spool takes any batch, however large: it would never fit otherwise.
    if (this.index.empty) return false;
    return this.bytes + size > this.opts.maxBytes || this.tooOld();
  }

  /**
   * drop_oldest: evicts from the front until `size` fits. Undefined when nothing was evicted; else
   * the eviction's commit (true once durable). The evicted readings
   * are reported (log, ems.meter.readings_dropped, ems.delivery.evicted) only once it is: an
   * eviction the disk refused is undone by the reload and must not be counted.
   */
  private evictFor(size: number): { committed: Promise<boolean> } | undefined {
    const byRegion = new Map<string, number>();
    const bySink = new Map<string, number>();
    const writes: Array<Promise<unknown>> = [];
    const min = this.minPosition();
    let evicted = 0;
    const { index } = this;
    while (!index.empty && (this.bytes + size > this.opts.maxBytes || this.tooOld() || (this.diskFull && evicted === 0))) {
      evicted++;
      const key = index.key(index.start);
      const end = key + index.count(index.start);
      const value = this.store.getEntry(key);
      const from = Math.max(key, min);
      let counted = 0;
      if (value) {
        for (const r of decodeEntry(value, key).records) {
          if (r.seq < from) continue;
          const region = recordRegion(r.record);
          byRegion.set(region, (byRegion.get(region) ?? 0) + 1);
          counted++;
        }
      }
      const lost = Math.max(0, end - from) - counted;
      if (lost > 0) byRegion.set('unknown', (byRegion.get('unknown') ?? 0) + lost);
      for (const [name, pos] of this.positions) {
        if (pos >= end) continue;
        const t = this.totals.sinks[name];
        const n = end - Math.max(pos, key);
        if (t) t.evicted += n;
        bySink.set(name, (bySink.get(name) ?? 0) + n);
        this.positions.set(name, end);
        writes.push(this.store.putMeta(`pos/${name}`, end));
      }
      writes.push(this.store.removeEntry(key));
      this.bytes -= index.dropFront();
    }
    if (evicted === 0) return undefined;
    if (byRegion.size > 0) {
      addDelta(this.totals, { ingested: new Map(), dropped: new Map([...byRegion].map(([r, n]) => [r, new Map([['spool_evicted', n]])])) });
      // The totals travel with the eviction: its evicted and dropped counts commit with its deletes.
      writes.push(this.store.putMeta('totals', this.totals));
    }
    const bytes = this.bytes;
    const committed = this.track(Promise.all(writes)).then(() => {
      if (byRegion.size > 0) {
        this.opts.logger.warn({ evicted: [...byRegion.values()].reduce((a, b) => a + b, 0), spool_bytes: bytes }, 'spool full (drop_oldest): oldest readings evicted');
        this.opts.onEvicted?.(byRegion, bySink);
      }
      return true;
    }, () => false);
    if (this.diskFull) this.diskRetryAt = 0;
    return { committed };
  }

  private tooOld(): boolean {
    const { index } = this;
    return !index.empty && this.opts.clock.now() - index.arrivedMs(index.start) > this.opts.maxAgeMs;
  }

  private setFull(full: boolean): void {
    if (full === this.full) return;
    this.full = full;
    if (full) this.opts.logger.warn({ spool_bytes: this.bytes, max_bytes: this.opts.maxBytes, policy: this.opts.policy }, 'spool full: readings stay unacknowledged until a sink catches up (backpressure)');
    else this.opts.logger.info({ spool_bytes: this.bytes }, 'spool has room again');
  }

  private setDiskFull(full: boolean): void {
    if (full === this.diskFull) return;
    this.diskFull = full;
    if (full) this.opts.logger.error({ spool_bytes: this.bytes }, 'disk full: the spool cannot commit; readings stay unacknowledged until space is freed');
    else this.opts.logger.info({ spool_bytes: this.bytes }, 'disk has room again: spool commits resumed');
  }

  private waitForSpace(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.spaceWaiters.push(resolve);
      // Age bounds and a full disk clear without a delete: look again now and then.
      if (this.recheck === undefined) {
        this.recheck = this.opts.clock.setTimeout(() => { this.recheck = undefined; this.spaceFreed(); }, RECHECK_MS);
      }
    });
  }

  private spaceFreed(): void {
    for (const w of this.spaceWaiters.splice(0)) w();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.writes.add(p);
    const done = (): void => { this.writes.delete(p); };
    p.then(done, done);
    return p;
  }

  private async settle(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }
}

function addDelta(t: SpoolTotals, d: IngestDelta): void {
  for (const [region, n] of d.ingested) t.ingested[region] = (t.ingested[region] ?? 0) + n;
  for (const [region, types] of d.dropped) {
    const r = (t.dropped[region] ??= {});
    for (const [type, n] of types) r[type] = (r[type] ?? 0) + n;
  }
}

function isTotals(v: unknown): v is SpoolTotals {
  return typeof v === 'object' && v !== null && 'ingested' in v && 'dropped' in v && 'sinks' in v;
}
