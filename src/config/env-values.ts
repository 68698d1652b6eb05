// Numbers read from environment variables, one rule for every reader (the telemetry settings at run
// time, the site checks that warn about them at validate time).

/** A positive number from an environment variable, floored; undefined when unset, blank or not one. */
export function envPositiveInt(raw: string | undefined): number | undefined {
  const v = raw?.trim();
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}
