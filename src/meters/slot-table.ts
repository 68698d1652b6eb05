// Per-meter state kept in columns (typed arrays indexed by a slot number) rather than one object
// per meter: an object with a few number fields costs about 170 bytes per meter in V8 (each double
// is a boxed heap number), and a Map entry about 30; here a meter costs its id (a string and a
// reference), about 80 bytes of columns and 16 of index, which is what lets one gateway remember a
// million meters in about 140 MB (docs/meters.md "Bounded meter state").
//
// The index from meter id to slot is an open-addressing hash table (linear probing, deletion by
// backward shift), at most half full, hashed with a per-table random seed so a publisher cannot
// pick ids that collide. Each slot keeps its id's hash, so growing the index and compacting never
// hash a string again. Its buckets are a plain array of small integers on the V8 heap, sized to
// the meters held: a typed array of a few MB, freed as the index grows, would be a mid-sized C
// allocation, and freeing those raises glibc's mmap and trim thresholds, after which ~16 MB of
// freed memory stays resident for good.
//
// One table holds several column sets (attach()): the dedupe state and the power table share one,
// so a meter's id and index entry are stored once. All columns live in one ArrayBuffer sized for
// `maxSize` slots from the first meter on: the system maps it zero-filled and only the pages of slots in
// use become resident, so the table never copies itself to grow, and a large buffer is mapped and
// unmapped whole by the C allocator (many mid-sized blocks would stay in its heap after a shrink).
//
// Slots are chained in the order they were last touched (a doubly linked list through `prev` and
// `next`), so at `maxSize` the least recently touched meter is evicted in O(1), and the meters
// silent for longer than `forgetAfterMs` are found from the head of the list without a scan.
// `sweep()` (called periodically by the owner, never per reading) forgets them and, once the slots
// in use are mostly free, moves the live ones together into a fresh buffer (the old buffer's
// resident pages go back once it is collected).
//
// The list is ordered by touch, not by the time value: after the wall clock steps back, a sweep
// stops at the first meter that still looks recent and the ones behind it wait for a later sweep
// (the cap still holds).

import { randomBytes } from 'node:crypto';

const NONE = -1;
const MIN_BUCKETS = 2048;
/** Below this many slots in use, free slots are not worth a compaction. */
export const MIN_COMPACT = 1024;
/** At most this many meters are forgotten per sweep() call, so one call stays short. */
export const SWEEP_BATCH = 50_000;

export type Column = Float64Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;
export interface ColumnSpec {
  kind: 'f64' | 'i32' | 'u8';
  /** Values per slot. */
  stride: number;
}

/** A set of per-slot columns attached to a SlotTable. */
export interface SlotColumns {
  /** The columns it needs, in the order bind() receives them. */
  readonly layout: readonly ColumnSpec[];
  /** The columns after an allocation, values copied: slot j holds what slot from[j] held (compaction), or slot j's own (from null). */
  bind(cols: Column[], from: Int32Array | null, n: number): void;
  /** A slot was given to a new meter: reset its values. */
  cleared(s: number): void;
  /** A slot is freed (its meter forgotten or evicted). */
  released(s: number): void;
  /** True when its own storage outside the columns is sparse enough to be worth a compaction. */
  wantsCompaction(): boolean;
}

interface SlotTableOptions {
  /** Most meters held at once; at this size the least recently touched one is evicted. */
  maxSize: number;
  /** A meter untouched for longer is forgotten by sweep(). */
  forgetAfterMs: number;
  /** An evicted meter touched within this many ms is counted in `activeEvictions`. */
  activeMs: number;
}

// touched, prev, next, hash
const OWN_LAYOUT: readonly ColumnSpec[] = [{ kind: 'f64', stride: 1 }, { kind: 'i32', stride: 1 }, { kind: 'i32', stride: 1 }, { kind: 'i32', stride: 1 }];
const BYTES = { f64: 8, i32: 4, u8: 1 } as const;

export class SlotTable {
  readonly maxSize: number;
  readonly forgetAfterMs: number;
  private readonly activeMs: number;
  private readonly seed = randomBytes(4).readInt32LE(0);
  private buckets = newBuckets(MIN_BUCKETS); // slot + 1, 0 = empty
  private mask = MIN_BUCKETS - 1;
  private count = 0;
  private hashOf = new Int32Array(0);    // per slot: its id's hash
  private keys: Array<string | undefined> = [];
  private touched = new Float64Array(0); // when each slot was last touched (the owner's clock, ms)
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private cols: Column[] = [];           // every column, own ones first, then each attached set's
  private readonly sets: SlotColumns[] = [];
  private head = NONE;
  private tail = NONE;
  private freeList = NONE; // free slots chained through next[]
  private used = 0;        // slots handed out at least once since the last compaction: every slot < used; memory follows it
  private evictedAll = 0;
  private evictedActive = 0;
  /** The columns exist (the first add() makes them). */
  private allocated = false;

  constructor(opts: SlotTableOptions) {
    if (!Number.isInteger(opts.maxSize) || opts.maxSize < 1) throw new Error(`max meters must be a positive integer, got ${opts.maxSize}`);
    this.maxSize = opts.maxSize;
    this.forgetAfterMs = opts.forgetAfterMs;
    this.activeMs = opts.activeMs;
  }

  /**
   * Adds a column set (before the first add()); its columns follow every compaction. The columns
   * are allocated by allocateColumns(), once every set is attached (at the latest by the first
   * add()): one buffer of maxSize slots, not one per attach() (each a large external allocation,
   * which prompts V8 to collect).
   */
  attach(c: SlotColumns): void {
    this.sets.push(c);
    if (this.allocated) this.allocate(null, this.used);
  }

  /** Allocates the columns now (the owner, once every set is attached: a failure shows at start-up, not at the first meter). */
  allocateColumns(): void {
    if (!this.allocated) this.allocate(null, 0);
  }

  /** Meters held. */
  get size(): number { return this.count; }
  /** Slots handed out since the last compaction (resident memory follows it; tests check it shrinks again). */
  get slotsInUse(): number { return this.used; }
  /** Meters evicted at maxSize, in all. */
  get evictions(): number { return this.evictedAll; }
  /** Meters evicted at maxSize although touched within `activeMs`: their state was still in use. */
  get activeEvictions(): number { return this.evictedActive; }

  /**
   * Forgets meters untouched for longer than `forgetAfterMs` (oldest first, at most `limit`), then
   * moves the live slots together when the columns are mostly empty. Returns how many were
   * forgotten: `limit` means there may be more (call again soon).
   */
  sweep(nowMs: number, limit = SWEEP_BATCH): number {
    let removed = 0;
    while (this.head !== NONE && removed < limit && nowMs - (this.touched[this.head] as number) > this.forgetAfterMs) {
      this.remove(this.head);
      removed++;
    }
    if (this.allocated && removed < limit && (this.sparse() || this.sets.some((c) => c.wantsCompaction()))) this.compact();
    return removed;
  }

  /** The slot of a meter, or -1. */
  find(key: string): number {
    const buckets = this.buckets;
    for (let i = this.hash(key) & this.mask; ; i = (i + 1) & this.mask) {
      const b = buckets[i] as number;
      if (b === 0) return NONE;
      if (this.keys[b - 1] === key) return b - 1;
    }
  }

  /**
   * The slot of the meter whose id is the bytes b[s..e), or -1: find() without making the id
   * string first (payload-scan.ts reads ids from payload bytes). For ASCII bytes only, each byte
   * one UTF-16 code unit: then the hash is the same as the string's.
   */
  findBytes(b: Uint8Array, s: number, e: number): number {
    let h = this.seed ^ 0x811c9dc5;
    for (let i = s; i < e; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const buckets = this.buckets;
    const n = e - s;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const slot = buckets[i] as number;
      if (slot === 0) return NONE;
      if (this.hashOf[slot - 1] !== h) continue;
      const key = this.keys[slot - 1] as string;
      if (key.length !== n) continue;
      let j = 0;
      while (j < n && key.charCodeAt(j) === b[s + j]) j++;
      if (j === n) return slot - 1;
    }
  }

  /** A new slot for `key`, most recently touched; at maxSize the least recently touched meter goes first. */
  add(key: string, nowMs: number): number {
    if (!this.allocated) this.allocate(null, 0);
    if (this.count >= this.maxSize) this.evict(nowMs);
    let s: number;
    if (this.freeList !== NONE) {
      s = this.freeList;
      this.freeList = this.next[s] as number;
    } else {
      s = this.used++;
    }
    if (s === this.keys.length) this.keys.push(key);
    else this.keys[s] = key;
    const h = this.hash(key);
    this.hashOf[s] = h;
    if (++this.count > this.buckets.length / 2) this.rehash(this.buckets.length * 2, this.used);
    else this.insert(h, s);
    this.touched[s] = nowMs;
    this.link(s);
    for (const c of this.sets) c.cleared(s);
    return s;
  }

  /** Marks a slot as touched now: it moves to the end of the eviction order. */
  touch(s: number, nowMs: number): void {
    this.touched[s] = nowMs;
    if (s === this.tail) return;
    this.unlink(s);
    this.link(s);
  }

  /** When a slot was last touched. */
  touchedAt(s: number): number { return this.touched[s] as number; }
  /** Slots from the least to the most recently touched: `first()`, then `after(s)` until -1. */
  first(): number { return this.head; }
  after(s: number): number { return this.next[s] as number; }
  keyOf(s: number): string { return this.keys[s] as string; }

  /** The seeded hash of an id: FNV-1a over its UTF-16 code units, then murmur3's finalizer. */
  private hash(key: string): number {
    let h = this.seed ^ 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  private insert(h: number, s: number): void {
    let i = h & this.mask;
    while (this.buckets[i] !== 0) i = (i + 1) & this.mask;
    this.buckets[i] = s + 1;
  }

  /** Takes slot `s` out of the index; the entries after it in its probe run shift back into the gap. */
  private unindex(s: number): void {
    const buckets = this.buckets;
    const mask = this.mask;
    let i = (this.hashOf[s] as number) & mask;
    while (buckets[i] !== s + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const b = buckets[j] as number;
      if (b === 0) break;
      const home = (this.hashOf[b - 1] as number) & mask;
      // The entry at j may move to the gap at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        buckets[i] = b;
        i = j;
      }
    }
    buckets[i] = 0;
  }

  /** A new index of `size` buckets over the live slots below `used`. */
  private rehash(size: number, used: number): void {
    this.buckets = newBuckets(size);
    this.mask = size - 1;
    for (let s = 0; s < used; s++) if (this.keys[s] !== undefined) this.insert(this.hashOf[s] as number, s);
  }

  private sparse(): boolean {
    return this.used > MIN_COMPACT && this.count <= this.used / 4;
  }

  private evict(nowMs: number): void {
    const s = this.head;
    if (s === NONE) return;
    this.evictedAll++;
    if (nowMs - (this.touched[s] as number) <= this.activeMs) this.evictedActive++;
    this.remove(s);
  }

  private remove(s: number): void {
    this.unlink(s);
    this.unindex(s);
    this.count--;
    this.keys[s] = undefined;
    for (const c of this.sets) c.released(s);
    this.next[s] = this.freeList;
    this.freeList = s;
  }

  private link(s: number): void {
    this.prev[s] = this.tail;
    this.next[s] = NONE;
    if (this.tail === NONE) this.head = s;
    else this.next[this.tail] = s;
    this.tail = s;
  }

  private unlink(s: number): void {
    const p = this.prev[s] as number;
    const n = this.next[s] as number;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
  }

  /** Live slots to 0..size-1 in eviction order, in a fresh buffer. */
  private compact(): void {
    const n = this.count;
    const from = new Int32Array(n);
    const keys: string[] = new Array<string>(n);
    let j = 0;
    for (let s = this.head; s !== NONE; s = this.next[s] as number) {
      from[j] = s;
      keys[j] = this.keys[s] as string;
      j++;
    }
    this.allocate(from, n);
    this.keys = keys;
    this.rehash(Math.max(MIN_BUCKETS, 2 ** Math.ceil(Math.log2(4 * n + 1))), n);
    for (let i = 0; i < n; i++) {
      this.prev[i] = i - 1;
      this.next[i] = i + 1 < n ? i + 1 : NONE;
    }
    this.head = n > 0 ? 0 : NONE;
    this.tail = n - 1;
    this.freeList = NONE;
    this.used = n;
  }

  /** Every column in one new ArrayBuffer of `maxSize` slots, the first `n` slots' values copied (gathered through `from`). */
  private allocate(from: Int32Array | null, n: number): void {
    const capacity = this.maxSize;
    const layout = [...OWN_LAYOUT, ...this.sets.flatMap((c) => c.layout)];
    let bytes = 0;
    for (const kind of ['f64', 'i32', 'u8'] as const) for (const c of layout) if (c.kind === kind) bytes += capacity * c.stride * BYTES[kind];
    const buffer = new ArrayBuffer(bytes);
    this.allocated = true;
    const offsets: number[] = [];
    let at = 0;
    for (const kind of ['f64', 'i32', 'u8'] as const) {
      layout.forEach((c, i) => {
        if (c.kind !== kind) return;
        offsets[i] = at;
        at += capacity * c.stride * BYTES[kind];
      });
    }
    const cols = layout.map((c, i): Column => {
      const len = capacity * c.stride;
      const off = offsets[i] as number;
      const col = c.kind === 'f64' ? new Float64Array(buffer, off, len) : c.kind === 'i32' ? new Int32Array(buffer, off, len) : new Uint8Array(buffer, off, len);
      const old = this.cols[i];
      if (old !== undefined) copyColumn(old, col, from, n, c.stride);
      return col;
    });
    this.cols = cols;
    this.touched = cols[0] as Float64Array<ArrayBuffer>;
    this.prev = cols[1] as Int32Array<ArrayBuffer>;
    this.next = cols[2] as Int32Array<ArrayBuffer>;
    this.hashOf = cols[3] as Int32Array<ArrayBuffer>;
    let k = OWN_LAYOUT.length;
    for (const set of this.sets) {
      set.bind(cols.slice(k, k + set.layout.length), from, n);
      k += set.layout.length;
    }
  }
}

/** Copies `n` slots of `stride` values from `src` into `dst`: slot j from `from[j]`, or from j when `from` is null. */
function copyColumn(src: Column, dst: Column, from: Int32Array | null, n: number, stride: number): void {
  if (from === null) {
    (dst as Float64Array).set((src as Float64Array).subarray(0, Math.min(n * stride, src.length)));
    return;
  }
  for (let j = 0; j < n; j++) {
    const s = (from[j] as number) * stride;
    for (let k = 0; k < stride; k++) dst[j * stride + k] = src[s + k] as number;
  }
}

/** Index buckets: a V8 array of small integers (see the header), all 0. */
function newBuckets(size: number): number[] {
  return new Array<number>(size).fill(0);
}
