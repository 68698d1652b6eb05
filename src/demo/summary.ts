// The demo's live terminal summary: a few plain lines every ~2 s from the gateway's own status and
// one pull collection of its metrics (for the data-age p99, which only the histogram knows).
// Append-only text (no cursor tricks), so it reads the same in a terminal, a pipe and a CI log.
import { DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { METRICS } from '../telemetry/semconv.js';
import type { StatusReport } from '../status/status-model.js';

type Buckets = { boundaries: number[]; counts: number[] };

/** Cumulative data-age buckets over all regions, from one collection. */
export function dataAgeBuckets(rm: ResourceMetrics): Buckets | undefined {
  let out: Buckets | undefined;
  for (const m of rm.scopeMetrics.flatMap((s) => s.metrics)) {
    if (m.descriptor.name !== METRICS.meterDataAge || m.dataPointType !== DataPointType.HISTOGRAM) continue;
    for (const p of m.dataPoints) {
      const v = p.value as { buckets: { boundaries: number[]; counts: number[] } };
      if (!out) out = { boundaries: [...v.buckets.boundaries], counts: [...v.buckets.counts] };
      else if (out.boundaries.join() === v.buckets.boundaries.join()) out.counts = out.counts.map((c, i) => c + (v.buckets.counts[i] ?? 0));
    }
  }
  return out;
}

/** The upper bound of the bucket holding quantile q of the increase between two collections (Prometheus-style, no interpolation past the last bound). */
export function quantileOfIncrease(q: number, now: Buckets | undefined, before: Buckets | undefined): number | null {
  if (!now) return null;
  const counts = now.counts.map((c, i) => c - (before && before.boundaries.join() === now.boundaries.join() ? (before.counts[i] ?? 0) : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] ?? 0;
    if (seen >= rank) {
      const upper = now.boundaries[i];
      if (upper === undefined) return now.boundaries.at(-1) ?? null;
      const lower = i === 0 ? 0 : (now.boundaries[i - 1] ?? 0);
      const inBucket = counts[i] ?? 0;
      // Linear within the bucket, as histogram_quantile does.
      return inBucket === 0 ? upper : lower + (upper - lower) * ((rank - (seen - inBucket)) / inBucket);
    }
  }
  return null;
}

const n0 = (v: number): string => Math.round(v).toLocaleString('en-US');
const fx = (v: number | null | undefined, d: number): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

interface SummaryInput {
  elapsedMs: number;
  status: StatusReport;
  dataAgeP99S: number | null;
}

/** The lines printed every tick. */
export function formatSummary(inp: SummaryInput): string[] {
  const s = inp.status;
  const t = Math.floor(inp.elapsedMs / 1000);
  const stamp = `[${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}]`;
  const pad = ' '.repeat(stamp.length);
  const lines: string[] = [];

  const m = s.meters !== null && !('error' in s.meters) ? s.meters : undefined;
  if (m) {
    const reasons = Object.entries(m.dropped_by_reason).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n0(v)}`).join(', ');
    lines.push(`${stamp} meters   ${n0(m.readings_per_s)} readings/s  ingested ${n0(m.ingested_total)}  dropped ${n0(m.dropped_total)}${reasons ? ` (${reasons})` : ''}  data age p99 ${fx(inp.dataAgeP99S, 1)} s`);
  } else {
    lines.push(`${stamp} meters   (not running)`);
  }

  const g = s.grid !== null && !('error' in s.grid) ? s.grid : undefined;
  const devs = Array.isArray(s.devices) ? s.devices : undefined;
  const devText = devs ? `devices ${devs.filter((d) => d.up).length}/${devs.length} up${devs.some((d) => !d.up) ? ` (down: ${devs.filter((d) => !d.up).map((d) => d.id).join(', ')})` : ''}` : 'devices (not polled)';
  lines.push(`${pad} grid     ${fx(g?.frequency_hz, 3)} Hz  generation ${fx(g?.generation_mw, 3)} MW  load ${fx(g?.load_mw, 3)} MW  ${devText}`);

  const dr = s.demand_response !== null && !('error' in s.demand_response) ? s.demand_response : undefined;
  const drText = dr
    ? `DR ack rate ${dr.ack_rate === null ? '—' : `${fx(dr.ack_rate * 100, 0)} %`} (${dr.commands_total ?? 0} command${dr.commands_total === 1 ? '' : 's'}, ${dr.active.length} active${dr.active[0] ? `: ${dr.active[0].command_id} ${fx(dr.active[0].reduction_mw, 2)} MW in ${dr.active[0].zone}` : ''})`
    : 'DR (not running)';
  const alerts = Array.isArray(s.alerts) ? s.alerts : undefined;
  const firing = alerts?.filter((a) => a.state === 'firing').map((a) => a.name) ?? [];
  const pending = alerts?.filter((a) => a.state !== 'firing' && a.summary?.includes('pending')).map((a) => a.name) ?? [];
  const pendingText = pending.length ? ` (pending: ${pending.join(', ')})` : '';
  const alertText = alerts ? `${firing.length ? `alerts FIRING: ${firing.join(', ')}` : 'alerts: none firing'}${pendingText}` : 'alerts (not evaluated)';
  lines.push(`${pad} ${drText}  ${alertText}`);
  const dl = s.delivery !== null && s.delivery !== undefined && !('error' in s.delivery) ? s.delivery : undefined;
  if (dl) {
    const sinks = dl.sinks.map((k) => `${k.name} ${k.state}, backlog ${n0(k.backlog)}${k.backlog > 0 ? ` (oldest ${fx(k.oldest_pending_age_s, 0)} s)` : ''}, delivered ${n0(k.delivered_total)}`).join('; ');
    lines.push(`${pad} spool    ${n0(dl.spool.readings)} readings, ${fx(dl.spool.bytes / 1048576, 1)} MiB${dl.spool.full ? ' FULL' : ''}  ${sinks || 'no sinks (set OTEL_EXPORTER_OTLP_ENDPOINT for otlp_logs)'}`);
  }
  return lines;
}

/** Alert transitions between two status reports, as lines for the demo (`» alert X FIRING: ...`). */
export function alertTransitions(before: Set<string>, status: StatusReport): { lines: string[]; firing: Set<string> } {
  const alerts = Array.isArray(status.alerts) ? status.alerts : [];
  const firing = new Set(alerts.filter((a) => a.state === 'firing').map((a) => a.name));
  const lines: string[] = [];
  for (const a of alerts) {
    if (firing.has(a.name) && !before.has(a.name)) lines.push(`» alert ${a.name} FIRING: ${a.summary ?? ''}`);
    if (!firing.has(a.name) && before.has(a.name)) lines.push(`» alert ${a.name} resolved: ${a.summary ?? ''}`);
  }
  return { lines, firing };
}
