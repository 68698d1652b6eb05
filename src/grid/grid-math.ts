// The grid arithmetic, pure: samples in, totals out. Kept apart from the timer and the telemetry
// so every rule (staleness, units, signs, frequency choice) is tested with plain numbers.
//
// Sign conventions (docs/telemetry.md): generation = generation points + battery discharge;
// load = load points (the meter fleet's aggregated power is a load point) + battery charge;
// imbalance = generation - load (positive: surplus); imbalance % is relative to load.
// grid_import / grid_export are reported per source but are not part of either total: the seed
// defines load as what the meters and load points measure, not a balance of the feeder.
import type { GridRole, GridSample } from './sources.js';

const POWER_TO_MW: Readonly<Record<string, number>> = { W: 1e-6, kW: 1e-3, MW: 1, GW: 1e3 };
const FREQUENCY_TO_HZ: Readonly<Record<string, number>> = { Hz: 1, mHz: 1e-3 };

type ExclusionReason = 'stale' | 'missing' | 'bad_unit' | 'not_finite';

export interface Exclusion {
  source: string;
  point: string;
  reason: ExclusionReason;
}

interface GridComputation {
  /** null: generation sources exist (read or not) but none is fresh (absent, not zero). 0 when the site has none. */
  generationMw: number | null;
  loadMw: number | null;
  imbalanceMw: number | null;
  /** null when load is 0 or unknown. */
  imbalancePct: number | null;
  frequencyHz: number | null;
  frequencyDeviationHz: number | null;
  frequencySource: string | null;
  contributing: number;
  excluded: Exclusion[];
}

interface GridMathInput {
  samples: readonly GridSample[];
  nowMs: number;
  staleAfterMs: number;
  nominalHz: 50 | 60;
  frequencySource?: string;
  /**
   * `source/point` keys seen before, with their role: one that has disappeared counts as missing,
   * and its kind stays known (the total it fed is absent, not 0, while nothing of its kind is fresh).
   */
  known: ReadonlyMap<string, GridRole>;
  /** Roles the site's sources feed, read or not (a total fed by one is absent until fresh). */
  expectedRoles?: ReadonlySet<string>;
}

export const sampleKey = (s: Pick<GridSample, 'source' | 'point'>): string => `${s.source}/${s.point}`;

/** Converts a power value to MW; undefined for a unit that is not a power unit. */
function toMegawatts(value: number, unit: string): number | undefined {
  const f = POWER_TO_MW[unit];
  return f === undefined ? undefined : value * f;
}

function toHertz(value: number, unit: string): number | undefined {
  const f = FREQUENCY_TO_HZ[unit];
  return f === undefined ? undefined : value * f;
}

export function computeGrid(input: GridMathInput): GridComputation {
  const excluded: Exclusion[] = [];
  const present = new Set<string>();
  let generation = 0, load = 0, contributing = 0;
  const expected = input.expectedRoles ?? new Set<string>();
  let generationKnown = expected.has('generation') || expected.has('battery_power');
  let loadKnown = expected.has('load') || expected.has('battery_power');
  let generationFresh = false, loadFresh = false;
  let chosen: { hz: number; source: string; at: number; preferred: boolean } | undefined;

  for (const s of input.samples) {
    present.add(sampleKey(s));
    const isFrequency = s.role === 'frequency';
    const feedsGeneration = s.role === 'generation' || s.role === 'battery_power';
    const feedsLoad = s.role === 'load' || s.role === 'battery_power';
    if (feedsGeneration) generationKnown = true;
    if (feedsLoad) loadKnown = true;
    if (!isFrequency && !feedsGeneration && !feedsLoad) continue;   // grid_import / grid_export
    const exclude = (reason: ExclusionReason): void => { excluded.push({ source: s.source, point: s.point, reason }); };
    if (!Number.isFinite(s.value)) { exclude('not_finite'); continue; }
    if (input.nowMs - s.observedAtMs > input.staleAfterMs) { exclude('stale'); continue; }

    if (isFrequency) {
      const hz = toHertz(s.value, s.unit);
      if (hz === undefined) { exclude('bad_unit'); continue; }
      contributing += 1;
      const preferred = s.source === input.frequencySource;
      // The configured source wins while fresh; otherwise the freshest frequency reading.
      if (!chosen || (preferred && !chosen.preferred) || (preferred === chosen.preferred && s.observedAtMs > chosen.at)) {
        chosen = { hz, source: s.source, at: s.observedAtMs, preferred };
      }
      continue;
    }
    const mw = toMegawatts(s.value, s.unit);
    if (mw === undefined) { exclude('bad_unit'); continue; }
    contributing += 1;
    if (s.role === 'battery_power') {
      // A fresh battery reading is known for both totals: it adds to one and 0 to the other.
      if (mw >= 0) generation += mw; else load += -mw;
      generationFresh = true;
      loadFresh = true;
    } else if (s.role === 'generation') {
      generation += mw; generationFresh = true;
    } else {
      load += mw; loadFresh = true;
    }
  }
  for (const [key, role] of input.known) {
    if (present.has(key)) continue;
    if (role === 'generation' || role === 'battery_power') generationKnown = true;
    if (role === 'load' || role === 'battery_power') loadKnown = true;
    const slash = key.lastIndexOf('/');
    excluded.push({ source: key.slice(0, slash), point: key.slice(slash + 1), reason: 'missing' });
  }

  // A total is known when any source of its kind is fresh, or when the site has none of its kind.
  const generationMw = generationFresh || !generationKnown ? generation : null;
  const loadMw = loadFresh || !loadKnown ? load : null;
  const imbalanceMw = generationMw !== null && loadMw !== null ? generationMw - loadMw : null;
  const imbalancePct = imbalanceMw !== null && loadMw !== null && loadMw > 0 ? (imbalanceMw / loadMw) * 100 : null;
  const frequencyHz = chosen?.hz ?? null;
  return {
    generationMw, loadMw, imbalanceMw, imbalancePct,
    frequencyHz,
    frequencyDeviationHz: frequencyHz === null ? null : frequencyHz - input.nominalHz,
    frequencySource: chosen?.source ?? null,
    contributing,
    excluded,
  };
}
