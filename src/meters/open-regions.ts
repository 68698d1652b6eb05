// Region names when `mqtt.meters.regions` is unset: any plain name ([A-Za-z0-9_.-]{1,64}) is a
// region, up to MAX_OPEN_REGIONS distinct ones. Each region is a series in every ems.meter.* stream
// and an entry in the spool's totals (rewritten with every commit, reopened at start), so a
// publisher inventing names must not grow them without bound: past the limit a new name is an
// `unknown_region` (counted under region `unknown`), as a name outside a configured list is. The
// names admitted are kept for the process's life, and a restart admits the committed ones first
// (ReadingSink.committedRegions): the set does not grow across restarts either.

/** Distinct regions taken while `mqtt.meters.regions` is unset (docs/meters.md). */
export const MAX_OPEN_REGIONS = 256;

export class OpenRegions {
  private readonly names = new Set<string>();

  /** `onFull`: called once, when the limit is reached (the next new name is refused). */
  constructor(private readonly limit = MAX_OPEN_REGIONS, private readonly onFull?: (limit: number) => void) {}

  get size(): number { return this.names.size; }

  /** True when `name` is (or, below the limit, becomes) an admitted region. */
  admit(name: string): boolean {
    if (this.names.has(name)) return true;
    if (this.names.size >= this.limit) return false;
    this.names.add(name);
    if (this.names.size === this.limit) this.onFull?.(this.limit);
    return true;
  }
}
