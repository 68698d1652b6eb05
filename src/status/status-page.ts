// The human page at `/`: one self-contained HTML document (inline CSS, a small inline script that
// polls /status every 2 s). Made for a field technician on a laptop in a substation: big up/down
// marks, ages in plain words, firing alerts at the top. No external assets: the box may be offline.

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
`;

// Runs in the browser. Kept ES2017 and dependency-free; all text goes through esc().
const SCRIPT = `
(function(){
var $=function(id){return document.getElementById(id)};
function esc(v){return String(v).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]})}
function age(s){if(s===null||s===undefined)return 'never';s=Math.max(0,s);if(s<1)return 'just now';if(s<90)return Math.round(s)+' s ago';if(s<5400)return Math.round(s/60)+' min ago';if(s<172800)return Math.round(s/3600)+' h ago';return Math.round(s/86400)+' days ago'}
function until(s){s=Math.max(0,s);return s<90?Math.round(s)+' s':Math.round(s/60)+' min'}
function num(v,d){return (v===null||v===undefined||!isFinite(v))?'\\u2014':Number(v).toFixed(d)}
function pill(cls,text){return '<span class="pill '+esc(cls)+'">'+esc(text)+'</span>'}
function sess(x,now){if(!x)return '';return '<dt>broker session</dt><dd>'+(x.lost_total>0?pill('down','LOST '+x.lost_total+'\\u00d7')+(x.last_lost_ms?' <span class="muted">last '+age((now-x.last_lost_ms)/1000)+'</span>':''):(x.persistent?'kept':'<span class="muted">not persistent</span>'))+'</dd>'}
function absent(sec,name){if(sec===null)return '<p class="muted">'+esc(name)+' not running on this gateway</p>';if(sec&&sec.error)return '<p class="err">status unavailable: '+esc(sec.error)+'</p>';return null}
function render(s){
  $('meta').textContent='v'+s.version+' \\u00b7 up '+Math.round(s.uptime_s/60)+' min \\u00b7 updated '+new Date(s.generated_at_ms).toLocaleTimeString();
  var alerts=Array.isArray(s.alerts)?s.alerts:[];var firing=alerts.filter(function(a){return a.state==='firing'});var pend=alerts.filter(function(a){return a.state==='pending'});
  var devs=Array.isArray(s.devices)?s.devices:[];var down=devs.filter(function(d){return !d.up});
  var b=$('banner');
  if(firing.length||down.length||!s.ready){b.className='banner bad';b.textContent=(firing.length?firing.length+' alert'+(firing.length>1?'s':'')+' firing: '+firing.map(function(a){return a.name}).join(', ')+'. ':'')+(down.length?down.length+' device'+(down.length>1?'s':'')+' down: '+down.map(function(d){return d.id}).join(', ')+'. ':'')+(s.ready?'':'Gateway not fully running.')}
  else{b.className='banner good';b.textContent='All '+devs.length+' devices up, no alerts firing.'+(pend.length?' Pending: '+pend.map(function(a){return a.name}).join(', ')+'.':'')}
  var h=absent(s.alerts,'Alert evaluation');
  $('alerts').innerHTML=h!==null?h:'<table><tr><th>alert</th><th>state</th><th>since</th><th>detail</th></tr>'+alerts.map(function(a){return '<tr><td><b>'+esc(a.name)+'</b></td><td>'+pill(a.state,a.state==='ok'?'OK':a.state.toUpperCase())+'</td><td>'+(a.since_ms?age((s.generated_at_ms-a.since_ms)/1000):'')+'</td><td class="err" style="color:#374151">'+esc(a.summary||('value '+num(a.value,3)+', threshold '+(a.threshold===undefined?'':a.threshold)))+'</td></tr>'}).join('')+'</table>';
  h=absent(s.devices,'Modbus polling');
  $('devices').innerHTML=h!==null?h:'<table><tr><th>device</th><th>state</th><th>last good read</th><th>zone</th><th>role</th><th>last error</th></tr>'+devs.map(function(d){return '<tr><td><b>'+esc(d.id)+'</b></td><td>'+pill(d.up?'up':'down',d.up?'UP':'DOWN')+'</td><td>'+age(d.last_good_age_s)+'</td><td>'+esc(d.zone||'')+'</td><td>'+esc(d.role||'')+'</td><td class="err">'+esc(d.up?'':(d.last_error||''))+'</td></tr>'}).join('')+'</table>';
  var m=s.meters;h=absent(m,'Meter ingest');
  if(h===null){var r=Object.keys(m.dropped_by_reason||{}).map(function(k){return '<tr><td>'+esc(k)+'</td><td>'+esc(m.dropped_by_reason[k])+'</td></tr>'}).join('');
    h='<div class="big">'+num(m.readings_per_s,0)+' <span class="muted">readings/s</span></div><dl class="kv"><dt>broker</dt><dd>'+(m.connected===undefined?'\\u2014':(m.connected?pill('up','CONNECTED'):pill('down','DISCONNECTED')))+(m.connected&&m.flow_confirmed===false?' '+pill('pending','FLOW UNCONFIRMED'):'')+'</dd>'+sess(m.session,s.generated_at_ms)+'<dt>ingested</dt><dd>'+esc(m.ingested_total)+'</dd><dt>dropped</dt><dd>'+esc(m.dropped_total)+'</dd><dt>data age p99</dt><dd>'+num(m.data_age_p99_s,1)+' s</dd><dt>latency p99</dt><dd>'+num(m.ingestion_latency_p99_ms,1)+' ms</dd></dl>'+(r?'<table><tr><th>drop reason</th><th>count</th></tr>'+r+'</table>':'<p class="muted">no drops</p>')}
  $('meters').innerHTML=h;
  var g=s.grid;h=absent(g,'Grid state');
  if(h===null){h='<div class="big">'+num(g.frequency_hz,3)+' <span class="muted">Hz'+(g.nominal_frequency_hz?' (nominal '+esc(g.nominal_frequency_hz)+')':'')+'</span></div><dl class="kv"><dt>generation</dt><dd>'+num(g.generation_mw,3)+' MW</dd><dt>load</dt><dd>'+num(g.load_mw,3)+' MW</dd><dt>imbalance</dt><dd>'+num(g.imbalance_mw,3)+' MW</dd><dt>sources</dt><dd>'+(g.sources_contributing===undefined?'\\u2014':esc(g.sources_contributing)+' contributing, '+esc(g.sources_excluded||0)+' excluded')+'</dd><dt>computed</dt><dd>'+age(g.updated_age_s)+'</dd></dl>'}
  $('grid').innerHTML=h;
  var d=s.demand_response;h=absent(d,'Demand response');
  if(h===null){h='<dl class="kv">'+(d.connected===undefined?'':'<dt>command topic</dt><dd>'+(d.connected?pill('up','CONNECTED'):pill('down','DISCONNECTED'))+(d.dry_run?' '+pill('pending','DRY RUN'):'')+'</dd>')+sess(d.session,s.generated_at_ms)+'<dt>ack rate</dt><dd>'+(d.ack_rate===null?'\\u2014':num(d.ack_rate*100,1)+' %')+'</dd><dt>commands</dt><dd>'+esc(d.commands_total===undefined?'\\u2014':d.commands_total)+'</dd></dl>'+(d.active.length?'<table><tr><th>active command</th><th>zone</th><th>MW</th><th>ends</th></tr>'+d.active.map(function(c){return '<tr><td>'+esc(c.command_id)+'</td><td>'+esc(c.zone)+'</td><td>'+num(c.reduction_mw,2)+'</td><td>'+(c.ends_at_ms?'in '+until((c.ends_at_ms-s.generated_at_ms)/1000):'')+'</td></tr>'}).join('')+'</table>':'<p class="muted">no active commands</p>')}
  $('dr').innerHTML=h;
  var e=s.exporter;h=absent(e,'Telemetry export');
  if(h===null){h='<dl class="kv"><dt>OTLP export</dt><dd>'+(!e.enabled?pill('unknown','OFF'):e.healthy===null?pill('unknown','PENDING'):e.healthy?pill('ok','OK'):pill('down','FAILING'))+'</dd><dt>endpoint</dt><dd>'+esc(e.endpoint||'\\u2014')+'</dd><dt>failures</dt><dd>'+esc(e.failures_total===undefined?'\\u2014':e.failures_total)+'</dd>'+(e.spans?'<dt>span queue</dt><dd>'+esc(e.spans.queued)+' / '+esc(e.spans.queue_size)+'</dd><dt>spans dropped</dt><dd>'+(e.spans.dropped_total>0?pill('down',String(e.spans.dropped_total)):'0')+(e.spans.dropped_total>0?' <span class="muted">'+Object.keys(e.spans.dropped_by_reason).filter(function(k){return e.spans.dropped_by_reason[k]>0}).map(function(k){return esc(k.replace('_',' '))+' '+esc(e.spans.dropped_by_reason[k])}).join(', ')+'</span>':'')+'</dd>':'')+'</dl>'+(e.last_error?'<p class="err">'+esc(e.last_error)+'</p>':'')}
  $('exporter').innerHTML=h;
  var dl=s.delivery;h=absent(dl,'Reading delivery');
  if(h===null){var sp=dl.spool;h='<dl class="kv"><dt>spool</dt><dd>'+(sp.disk_full?pill('down','DISK FULL'):sp.full?pill('pending','FULL'):pill('ok','OK'))+' '+esc(sp.readings)+' readings, '+num(sp.bytes/1048576,1)+' of '+num(sp.max_bytes/1048576,0)+' MiB ('+esc(sp.policy)+')</dd></dl><table><tr><th>sink</th><th>state</th><th>backlog</th><th>oldest</th><th>drains in</th><th>delivered</th><th>target</th></tr>'+dl.sinks.map(function(k){return '<tr><td><b>'+esc(k.name)+'</b></td><td>'+pill(k.state==='retrying'?'down':k.state==='stopped'?'stopped':'ok',k.state.toUpperCase())+'</td><td>'+esc(k.backlog)+'</td><td>'+(k.backlog>0?age(k.oldest_pending_age_s):'\u2014')+'</td><td>'+(k.drain_estimate_s===null?'\u2014':until(k.drain_estimate_s))+'</td><td>'+esc(k.delivered_total)+'</td><td class="err" style="color:#374151">'+esc(k.target)+(k.last_error?'<br><span class="err">'+esc(k.last_error)+'</span>':'')+'</td></tr>'}).join('')+'</table>'}
  $('delivery').innerHTML=h;
  $('parts').innerHTML=s.parts.map(function(p){return pill(p.state,p.name+': '+p.state)+(p.error?' <span class="err">'+esc(p.error)+'</span>':'')}).join(' ');
}
function tick(){
  fetch('/status',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json()}).then(function(s){render(s)}).catch(function(err){var b=$('banner');b.className='banner stale';b.textContent='Cannot reach the gateway ('+err.message+'): figures below are stale.'}).then(function(){setTimeout(tick,2000)});
}
tick();
})();
`;

export function renderStatusPage(site: { id: string; region: string; name?: string }, version: string): string {
  const title = `${site.name ?? site.id} · ems-gateway`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body>
<header><h1>${escapeHtml(site.name ?? site.id)}</h1><span class="meta">site ${escapeHtml(site.id)} · region ${escapeHtml(site.region)}</span><span class="meta" id="meta">v${escapeHtml(version)} · loading…</span></header>
<div id="banner" class="banner stale">Loading status…</div>
<main>
<section class="wide"><h2>Alerts</h2><div id="alerts"></div></section>
<section class="wide"><h2>Devices (Modbus)</h2><div id="devices"></div></section>
<section><h2>Meters (MQTT)</h2><div id="meters"></div></section>
<section><h2>Grid</h2><div id="grid"></div></section>
<section><h2>Demand response</h2><div id="dr"></div></section>
<section><h2>Telemetry export</h2><div id="exporter"></div></section>
<section class="wide"><h2>Reading delivery</h2><div id="delivery"></div></section>
<section class="wide"><h2>Gateway parts</h2><div id="parts"></div></section>
</main>
<noscript><p style="padding:0 24px">This page needs JavaScript to refresh; the raw figures are at <a href="/status">/status</a>.</p></noscript>
<script>${SCRIPT}</script>
</body></html>
`;
}
