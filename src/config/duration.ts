// Durations carry units in YAML (`500ms`, `1s`, `15m`, `1h`, `1.5s`) and become milliseconds.

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';
const RE = new RegExp(DURATION_PATTERN);
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when the text is not a duration with a unit. */
export function parseDuration(text: string): number | undefined {
  const m = RE.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] ?? 'ms';
  const n = Number.parseFloat(text) * (UNIT_MS[unit] ?? 1);
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

/** The shortest readable form: 1500 -> "1.5s", 900000 -> "15m". */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 100 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
