// What the grid state (src/grid) reads: samples from the Modbus pollers' snapshot and from the
// meter ingest's latest-power table. Producers implement GridSampleSource; the grid module owns
// staleness, unit conversion and the totals.
import type { PointRole } from '../config/profile-types.js';

export type GridRole = Extract<PointRole, 'generation' | 'load' | 'battery_power' | 'grid_import' | 'grid_export' | 'frequency'>;

export interface GridSample {
  /** Device id, or `meters:<region>` for the meter fleet's aggregated power. */
  source: string;
  /** The point id within the device (for messages), or `power` for meters. */
  point: string;
  role: GridRole;
  value: number;
  /** Unit of `value` as in the profile: W, kW, MW, Hz (converted explicitly by src/grid). */
  unit: string;
  /** Wall-clock epoch ms when the value was read (device) or the newest contributing reading's time (meters). */
  observedAtMs: number;
}

export interface GridSampleSource {
  gridSamples(): GridSample[];
  /**
   * The roles this source will feed once read (e.g. the configured devices' points), read or
   * not: a total one of them feeds is absent, not 0, until it has a fresh sample.
   */
  gridRoles?(): Iterable<GridRole>;
}
