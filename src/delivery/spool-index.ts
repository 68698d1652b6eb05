// The spool's in-memory index: per committed entry its first sequence number, record count, bytes
// and first arrival time. It is the one part of the gateway's heap that grows with the backlog
// (docs/delivery.md, "Memory during an outage"), by one entry per commit: one per message when
// messages arrive apart. Kept in four arrays of numbers (8 bytes a field, the arrival time
// unboxed) rather than one object per entry, which cost about 82 bytes with its boxed arrival
// time and its array slot: about 40 bytes an entry with the arrays' spare capacity.
// Entries are appended at the back and dropped from the front; positions are indices into the
// arrays, valid from `start` to `end` (the arrays are compacted now and then, so a position is not
// kept across a dropFront()).

export class SpoolIndex {
  private keys: number[] = [];
  private counts: number[] = [];
  private sizes: number[] = [];
  private arrived: number[] = [];
  /** Position of the oldest entry held; the ones before it were dropped. */
  start = 0;

  /** Position after the newest entry. */
  get end(): number { return this.keys.length; }
  get entries(): number { return this.keys.length - this.start; }
  get empty(): boolean { return this.start >= this.keys.length; }

  key(i: number): number { return this.keys[i] as number; }
  count(i: number): number { return this.counts[i] as number; }
  bytes(i: number): number { return this.sizes[i] as number; }
  arrivedMs(i: number): number { return this.arrived[i] as number; }

  push(key: number, count: number, bytes: number, arrivedMs: number): void {
    this.keys.push(key);
    this.counts.push(count);
    this.sizes.push(bytes);
    this.arrived.push(arrivedMs);
  }

  /** Drops the oldest entry; returns its bytes (0 when empty). */
  dropFront(): number {
    if (this.empty) return 0;
    const bytes = this.sizes[this.start] as number;
    this.start++;
    // Now and then the dropped front goes: into new arrays, as splice() would keep the capacity
    // the backlog once needed (after a drain, that is the whole outage's index).
    if (this.start > 1024 && this.start * 2 > this.keys.length) this.compact();
    return bytes;
  }

  clear(): void {
    this.start = this.keys.length;
    this.compact();
  }

  private compact(): void {
    const from = this.start;
    this.keys = this.keys.slice(from);
    this.counts = this.counts.slice(from);
    this.sizes = this.sizes.slice(from);
    this.arrived = this.arrived.slice(from);
    this.start = 0;
  }

  /** Position of the entry holding `seq` (or the first after it); `end` when none. */
  find(seq: number): number {
    let lo = this.start, hi = this.keys.length - 1, ans = this.keys.length;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.keys[mid] as number) + (this.counts[mid] as number) > seq) { ans = mid; hi = mid - 1; } else lo = mid + 1;
    }
    return ans;
  }
}
