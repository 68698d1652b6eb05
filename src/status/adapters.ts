// Adapters from each part's own status() shape to the status endpoint's sections (status-model.ts).
// They live here, not in the parts, so a part's internal snapshot can change without the page
// changing, and the page's JSON stays one documented shape.
import type { GridSnapshot } from '../grid/grid-state.js';
import type { ExporterHealth } from '../telemetry/export-health.js';
import type { TelemetrySettings } from '../telemetry/settings.js';
import type { ExporterStatus, GridStatus } from './status-model.js';

export function gridStatus(snap: GridSnapshot | undefined, nominalHz: number, nowMs: number): GridStatus {
  if (!snap) return { frequency_hz: null, nominal_frequency_hz: nominalHz, generation_mw: null, load_mw: null, updated_age_s: null };
  return {
    frequency_hz: snap.frequency_hz,
    nominal_frequency_hz: snap.nominal_frequency_hz,
    generation_mw: snap.generation_mw,
    load_mw: snap.load_mw,
    imbalance_mw: snap.imbalance_mw,
    sources_contributing: snap.sources_contributing,
    sources_excluded: snap.sources_excluded,
    updated_age_s: Math.max(0, (nowMs - snap.at_ms) / 1000),
  };
}

/** Both signals in one line for a technician: healthy only when neither is failing. */
export function exporterStatus(settings: TelemetrySettings, health: ExporterHealth): ExporterStatus {
  const states = [health.metrics.state, health.traces.state];
  const enabled = settings.enabled;
  const failing = states.includes('failing');
  const known = states.some((s) => s === 'ok' || s === 'failing');
  const lastError = health.metrics.lastError ?? health.traces.lastError;
  return {
    enabled,
    endpoint: settings.metricsUrl,
    healthy: !enabled || !known ? null : !failing,
    failures_total: health.metrics.failures + health.traces.failures,
    ...(failing && lastError !== undefined ? { last_error: lastError } : {}),
  };
}
