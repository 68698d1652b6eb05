// The human page at `/`: one self-contained HTML document rendered on the server from the status
// report (inline CSS; the first paint needs no JavaScript), and a small inline script that swaps in
// a fresh render of its live part (/page) every 2 s. Made for a field technician on a laptop in a
// substation: big up/down marks, ages in plain words, firing alerts at the top, each device's live
// values beside what its own display shows. No external assets: the box may be offline.
import type {
  AlertStatus, BrokerSessionStatus, DeliveryStatusSection, DeviceStatus, DeviceValue, DrStatus, ExporterStatus, GridStatus, MeterStatus,
  SectionError, StatusReport,
} from './status-model.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;background:#f3f4f6;color:#111827}
header{background:#1f2937;color:#fff;padding:14px 24px;display:flex;align-items:center;gap:18px;flex-wrap:wrap}
header h1{font-size:22px;margin:0;font-weight:600}
header .meta{color:#d1d5db;font-size:14px}
main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:16px}
section{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow-x:auto}
section.wide{grid-column:1/-1}
h2{font-size:15px;text-transform:uppercase;letter-spacing:.05em;color:#4b5563;margin:0 0 10px}
table{width:100%;border-collapse:collapse}
td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;font-size:15px;white-space:nowrap}
td.err{white-space:normal}
th{color:#6b7280;font-weight:500;font-size:13px}
.pill{display:inline-block;min-width:64px;text-align:center;padding:3px 10px;border-radius:999px;font-weight:700;font-size:14px;color:#fff}
.pending{background:#b45309}.up,.ok{background:#15803d}.down,.firing,.failed{background:#b91c1c}.unknown,.absent,.idle,.stopped,.stopping,.starting{background:#6b7280}.running{background:#15803d}
.big{font-size:30px;font-weight:700}
.kv{display:grid;grid-template-columns:auto 1fr;gap:4px 16px}
.kv dt{color:#6b7280}.kv dd{margin:0;font-weight:600}
.banner{padding:10px 24px;font-weight:700;font-size:18px;color:#fff}
.banner.bad{background:#b91c1c}.banner.good{background:#15803d}.banner.stale{background:#92400e}
.muted{color:#6b7280;font-size:14px}
.err{color:#b91c1c;font-size:14px}
.dev{margin-top:14px}
.dev h3{font-size:16px;margin:0 0 4px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.dev h3 a{font-size:13px;font-weight:400;color:#1d4ed8}
table.vals td{font-size:14px;padding:4px 8px}
table.vals td.v{font-weight:600;font-variant-numeric:tabular-nums;white-space:normal;overflow-wrap:anywhere}
table.vals td.note{white-space:normal;overflow-wrap:anywhere;color:#374151}
.tag{display:inline-block;padding:1px 7px;border-radius:6px;font-size:12px;font-weight:700;color:#fff;background:#6b7280}
.tag.implausible,.tag.failed_read,.tag.malformed{background:#b91c1c}.tag.sentinel,.tag.not_read{background:#6b7280}
`;

const DASH = '\u2014';

/** "just now", "12 s ago", "3 min ago", "never". */
function age(s: number | null | undefined): string {
  if (s === null || s === undefined) return 'never';
  const x = Math.max(0, s);
  if (x < 1) return 'just now';
  if (x < 90) return `${Math.round(x)} s ago`;
  if (x < 5400) return `${Math.round(x / 60)} min ago`;
  if (x < 172800) return `${Math.round(x / 3600)} h ago`;
  return `${Math.round(x / 86400)} days ago`;
}
function until(s: number): string {
  const x = Math.max(0, s);
  return x < 90 ? `${Math.round(x)} s` : `${Math.round(x / 60)} min`;
}
function num(v: number | null | undefined, d: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? DASH : v.toFixed(d);
}
const esc = (v: unknown): string => escapeHtml(String(v));
const pill = (cls: string, text: string): string => `<span class="pill ${esc(cls)}">${esc(text)}</span>`;

function isError(sec: unknown): sec is SectionError {
  return typeof sec === 'object' && sec !== null && 'error' in sec && typeof (sec as SectionError).error === 'string';
}
/** A section that is not running (null) or whose accessor failed; null when it has data. */
function absent(sec: unknown, name: string): string | null {
  if (sec === null) return `<p class="muted">${esc(name)} not running on this gateway</p>`;
  if (isError(sec)) return `<p class="err">status unavailable: ${esc(sec.error)}</p>`;
  return null;
}
function session(x: BrokerSessionStatus | undefined, now: number): string {
  if (!x) return '';
  const v = x.lost_total > 0
    ? pill('down', `LOST ${x.lost_total}\u00d7`) + (x.last_lost_ms ? ` <span class="muted">last ${age((now - x.last_lost_ms) / 1000)}</span>` : '')
    : x.persistent ? 'kept' : '<span class="muted">not persistent</span>';
  return `<dt>broker session</dt><dd>${v}</dd>`;
}

/** A value as a technician compares it with the device: up to 7 significant digits, enum label, flags. */
function formatValue(v: DeviceValue): string {
  const raw = v.value;
  let text = typeof raw === 'number' ? (Number.isInteger(raw) ? String(raw) : String(Number(raw.toPrecision(7)))) : String(raw);
  if (v.label !== undefined) text += ` ${v.label}`;
  if (v.flags !== undefined) text += v.flags.length > 0 ? `: ${v.flags.join(', ')}` : ' (no flags)';
  return text;
}

const ABSENT_TEXT: Record<string, string> = {
  sentinel: 'NOT IMPLEMENTED', failed_read: 'READ FAILED', implausible: 'IMPLAUSIBLE', malformed: 'MALFORMED', not_read: 'NOT READ YET',
};

function valuesTable(values: readonly DeviceValue[]): string {
  const rows = values.map((v) => {
    const name = v.name !== undefined && v.name !== v.id ? ` <span class="muted">${esc(v.name)}</span>` : '';
    const cell = v.absent === undefined
      ? `<td class="v">${esc(formatValue(v))}</td><td>${esc(v.unit ?? '')}</td><td>${age(v.age_s)}</td><td class="note"></td>`
      : `<td class="v"><span class="tag ${esc(v.absent)}">${esc(ABSENT_TEXT[v.absent] ?? v.absent)}</span></td><td>${esc(v.unit ?? '')}</td><td>${age(v.age_s)}</td><td class="note">${esc(v.reason ?? '')}</td>`;
    return `<tr><td>${esc(v.id)}${name}</td>${cell}</tr>`;
  }).join('');
  return `<table class="vals"><tr><th>point</th><th>value</th><th>unit</th><th>read</th><th>note</th></tr>${rows}</table>`;
}

/** Up to this many devices the page shows every device's values; beyond, those of the one picked (?device=<id>). */
export const INLINE_VALUES_MAX = 24;

/** A SunSpec device's chain as found at connect, and what it lacks (not read, no control). */
function sunspecLine(d: DeviceStatus): string {
  const c = d.sunspec;
  if (c === undefined) return '';
  const chain = c.models.map((m) => `${m.id} ${m.name} @${m.start}+${m.length}`).join(', ');
  const absent = c.absent.map((a) => `${a.reason}: ${a.points.join(', ')}`);
  const lengths = c.length_mismatches.map((m) => `model ${m.model} length ${m.device_length} (profile ${m.profile_length})`);
  return `<p class="muted">SunSpec 'SunS' at ${esc(c.base)}: ${esc(chain)}${[...absent, ...lengths].map((x) => `<br>${esc(x)}`).join('')}</p>`;
}

function devicesHtml(sec: StatusReport['devices'], picked: string | undefined): string {
  const h = absent(sec, 'Modbus polling');
  if (h !== null) return h;
  const devs = sec as DeviceStatus[];
  const inline = devs.length <= INLINE_VALUES_MAX;
  const name = (d: DeviceStatus): string => (inline ? `<b>${esc(d.id)}</b>` : `<a href="/?device=${encodeURIComponent(d.id)}"><b>${esc(d.id)}</b></a>`);
  const table = `<table><tr><th>device</th><th>state</th><th>last good read</th><th>zone</th><th>role</th><th>last error</th></tr>${devs.map((d) =>
    `<tr><td>${name(d)}</td><td>${pill(d.up ? 'up' : 'down', d.up ? 'UP' : 'DOWN')}</td><td>${age(d.last_good_age_s)}</td><td>${esc(d.zone ?? '')}</td><td>${esc(d.role ?? '')}</td><td class="err">${esc(d.up ? '' : (d.last_error ?? ''))}</td></tr>`).join('')}</table>`;
  const shown = devs.filter((d) => d.values !== undefined && d.values.length > 0 && (inline || d.id === picked));
  const hint = inline || shown.length > 0 ? '' : `<p class="muted">${devs.length} devices: pick one to see its live values.</p>`;
  const live = shown.map((d) => {
    const ident = d.identity === undefined ? '' : ` <span class="muted">${esc(Object.values(d.identity).filter((x) => typeof x === 'string' && x !== '').join(' \u00b7 '))}</span>`;
    return `<div class="dev" id="dev-${esc(d.id)}"><h3>${esc(d.id)} ${pill(d.up ? 'up' : 'down', d.up ? 'UP' : 'DOWN')}${ident}<a href="/status/devices/${encodeURIComponent(d.id)}">raw registers</a></h3>${sunspecLine(d)}${valuesTable(d.values ?? [])}</div>`;
  }).join('');
  return table + hint + live;
}

function alertsHtml(sec: StatusReport['alerts'], now: number): string {
  const h = absent(sec, 'Alert evaluation');
  if (h !== null) return h;
  const alerts = sec as AlertStatus[];
  return `<table><tr><th>alert</th><th>state</th><th>since</th><th>detail</th></tr>${alerts.map((a) =>
    `<tr><td><b>${esc(a.name)}</b></td><td>${pill(a.state, a.state === 'ok' ? 'OK' : a.state.toUpperCase())}</td><td>${a.since_ms ? age((now - a.since_ms) / 1000) : ''}</td><td class="err" style="color:#374151">${esc(a.summary ?? `value ${num(a.value, 3)}, threshold ${a.threshold === undefined ? '' : a.threshold}`)}</td></tr>`).join('')}</table>`;
}

function metersHtml(sec: StatusReport['meters'], now: number): string {
  const h = absent(sec, 'Meter ingest');
  if (h !== null) return h;
  const m = sec as MeterStatus;
  const reasons = Object.entries(m.dropped_by_reason ?? {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('');
  const broker = m.connected === undefined ? DASH : m.connected ? pill('up', 'CONNECTED') : pill('down', 'DISCONNECTED');
  return `<div class="big">${num(m.readings_per_s, 0)} <span class="muted">readings/s</span></div><dl class="kv"><dt>broker</dt><dd>${broker}${m.connected && m.flow_confirmed === false ? ` ${pill('pending', 'FLOW UNCONFIRMED')}` : ''}</dd>${session(m.session, now)}<dt>ingested</dt><dd>${esc(m.ingested_total)}</dd><dt>dropped</dt><dd>${esc(m.dropped_total)}</dd><dt>data age p99</dt><dd>${num(m.data_age_p99_s, 1)} s</dd><dt>latency p99</dt><dd>${num(m.ingestion_latency_p99_ms, 1)} ms</dd></dl>${reasons ? `<table><tr><th>drop reason</th><th>count</th></tr>${reasons}</table>` : '<p class="muted">no drops</p>'}`;
}

function gridHtml(sec: StatusReport['grid']): string {
  const h = absent(sec, 'Grid state');
  if (h !== null) return h;
  const g = sec as GridStatus;
  return `<div class="big">${num(g.frequency_hz, 3)} <span class="muted">Hz${g.nominal_frequency_hz ? ` (nominal ${esc(g.nominal_frequency_hz)})` : ''}</span></div><dl class="kv"><dt>generation</dt><dd>${num(g.generation_mw, 3)} MW</dd><dt>load</dt><dd>${num(g.load_mw, 3)} MW</dd><dt>imbalance</dt><dd>${num(g.imbalance_mw, 3)} MW</dd><dt>sources</dt><dd>${g.sources_contributing === undefined ? DASH : `${esc(g.sources_contributing)} contributing, ${esc(g.sources_excluded ?? 0)} excluded`}</dd><dt>computed</dt><dd>${age(g.updated_age_s)}</dd></dl>`;
}

function drHtml(sec: StatusReport['demand_response'], now: number): string {
  const h = absent(sec, 'Demand response');
  if (h !== null) return h;
  const d = sec as DrStatus;
  const topic = d.connected === undefined ? '' : `<dt>command topic</dt><dd>${d.connected ? pill('up', 'CONNECTED') : pill('down', 'DISCONNECTED')}${d.dry_run ? ` ${pill('pending', 'DRY RUN')}` : ''}</dd>`;
  const active = d.active.length
    ? `<table><tr><th>active command</th><th>zone</th><th>MW</th><th>ends</th></tr>${d.active.map((c) => `<tr><td>${esc(c.command_id)}</td><td>${esc(c.zone)}</td><td>${num(c.reduction_mw, 2)}</td><td>${c.ends_at_ms ? `in ${until((c.ends_at_ms - now) / 1000)}` : ''}</td></tr>`).join('')}</table>`
    : '<p class="muted">no active commands</p>';
  return `<dl class="kv">${topic}${session(d.session, now)}<dt>ack rate</dt><dd>${d.ack_rate === null ? DASH : `${num(d.ack_rate * 100, 1)} %`}</dd><dt>commands</dt><dd>${esc(d.commands_total ?? DASH)}</dd></dl>${active}`;
}

function exporterHtml(sec: StatusReport['exporter']): string {
  const h = absent(sec, 'Telemetry export');
  if (h !== null) return h;
  const e = sec as ExporterStatus;
  const state = !e.enabled ? pill('unknown', 'OFF') : e.healthy === null ? pill('unknown', 'PENDING') : e.healthy ? pill('ok', 'OK') : pill('down', 'FAILING');
  const sp = e.spans;
  const spans = sp
    ? `<dt>span queue</dt><dd>${esc(sp.queued)} / ${esc(sp.queue_size)}</dd><dt>spans dropped</dt><dd>${sp.dropped_total > 0 ? pill('down', String(sp.dropped_total)) : '0'}${sp.dropped_total > 0 ? ` <span class="muted">${Object.entries(sp.dropped_by_reason).filter(([, n]) => n > 0).map(([k, n]) => `${esc(k.replace('_', ' '))} ${esc(n)}`).join(', ')}</span>` : ''}</dd>`
    : '';
  return `<dl class="kv"><dt>OTLP export</dt><dd>${state}</dd><dt>endpoint</dt><dd>${esc(e.endpoint ?? DASH)}</dd><dt>failures</dt><dd>${esc(e.failures_total ?? DASH)}</dd>${spans}</dl>${e.last_error ? `<p class="err">${esc(e.last_error)}</p>` : ''}`;
}

function deliveryHtml(sec: StatusReport['delivery']): string {
  const h = absent(sec, 'Reading delivery');
  if (h !== null) return h;
  const dl = sec as DeliveryStatusSection;
  const sp = dl.spool;
  const state = sp.disk_full ? pill('down', 'DISK FULL') : sp.full ? pill('pending', 'FULL') : pill('ok', 'OK');
  return `<dl class="kv"><dt>spool</dt><dd>${state} ${esc(sp.readings)} readings, ${num(sp.bytes / 1048576, 1)} of ${num(sp.max_bytes / 1048576, 0)} MiB (${esc(sp.policy)})</dd></dl><table><tr><th>sink</th><th>state</th><th>backlog</th><th>oldest</th><th>drains in</th><th>delivered</th><th>target</th></tr>${dl.sinks.map((k) =>
    `<tr><td><b>${esc(k.name)}</b></td><td>${pill(k.state === 'retrying' ? 'down' : k.state === 'stopped' ? 'stopped' : 'ok', k.state.toUpperCase())}</td><td>${esc(k.backlog)}</td><td>${k.backlog > 0 ? age(k.oldest_pending_age_s) : DASH}</td><td>${k.drain_estimate_s === null ? DASH : until(k.drain_estimate_s)}</td><td>${esc(k.delivered_total)}</td><td class="err" style="color:#374151">${esc(k.target)}${k.last_error ? `<br><span class="err">${esc(k.last_error)}</span>` : ''}</td></tr>`).join('')}</table>`;
}

function bannerHtml(s: StatusReport): string {
  const alerts = Array.isArray(s.alerts) ? s.alerts : [];
  const firing = alerts.filter((a) => a.state === 'firing');
  const pend = alerts.filter((a) => a.state === 'pending');
  const devs = Array.isArray(s.devices) ? s.devices : [];
  const down = devs.filter((d) => !d.up);
  if (firing.length || down.length || !s.ready) {
    const text = (firing.length ? `${firing.length} alert${firing.length > 1 ? 's' : ''} firing: ${firing.map((a) => a.name).join(', ')}. ` : '')
      + (down.length ? `${down.length} device${down.length > 1 ? 's' : ''} down: ${down.map((d) => d.id).join(', ')}. ` : '')
      + (s.ready ? '' : 'Gateway not fully running.');
    return `<div id="banner" class="banner bad">${esc(text)}</div>`;
  }
  return `<div id="banner" class="banner good">${esc(`All ${devs.length} devices up, no alerts firing.${pend.length ? ` Pending: ${pend.map((a) => a.name).join(', ')}.` : ''}`)}</div>`;
}

/** The page's live part (header, banner, sections): the first paint, and what its script swaps in from /page. */
export function renderStatusBody(s: StatusReport, picked?: string): string {
  const now = s.generated_at_ms;
  const site = s.site;
  const updated = new Date(now).toISOString().slice(11, 19);
  const parts = s.parts.map((p) => pill(p.state, `${p.name}: ${p.state}`) + (p.error ? ` <span class="err">${esc(p.error)}</span>` : '')).join(' ');
  return `<header><h1>${esc(site.name ?? site.id)}</h1><span class="meta">site ${esc(site.id)} · region ${esc(site.region)}</span><span class="meta" id="meta">v${esc(s.version)} · up ${Math.round(s.uptime_s / 60)} min · updated ${updated} UTC</span></header>
${bannerHtml(s)}
<main>
<section class="wide"><h2>Alerts</h2><div id="alerts">${alertsHtml(s.alerts, now)}</div></section>
<section class="wide"><h2>Devices (Modbus)</h2><div id="devices">${devicesHtml(s.devices, picked)}</div></section>
<section><h2>Meters (MQTT)</h2><div id="meters">${metersHtml(s.meters, now)}</div></section>
<section><h2>Grid</h2><div id="grid">${gridHtml(s.grid)}</div></section>
<section><h2>Demand response</h2><div id="dr">${drHtml(s.demand_response, now)}</div></section>
<section><h2>Telemetry export</h2><div id="exporter">${exporterHtml(s.exporter)}</div></section>
<section class="wide"><h2>Reading delivery</h2><div id="delivery">${deliveryHtml(s.delivery)}</div></section>
<section class="wide"><h2>Gateway parts</h2><div id="parts">${parts}</div></section>
</main>`;
}

// Runs in the browser, ES2017 and dependency-free: it only swaps in the server's fresh render of
// the live part every 2 s, and marks the figures stale when the gateway does not answer.
const SCRIPT = `
(function(){
var live=document.getElementById('live');
function stale(m){var b=document.getElementById('banner');if(b){b.className='banner stale';b.textContent='Cannot reach the gateway ('+m+'): figures below are stale.'}}
function tick(){
  fetch('/page'+location.search,{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text()}).then(function(h){live.innerHTML=h}).catch(function(e){stale(e.message)}).then(function(){setTimeout(tick,2000)});
}
setTimeout(tick,2000);
})();
`;

export function renderStatusPage(s: StatusReport, picked?: string): string {
  const title = `${s.site.name ?? s.site.id} · ems-gateway`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body>
<div id="live">
${renderStatusBody(s, picked)}
</div>
<script>${SCRIPT}</script>
</body></html>
`;
}
