// InfluxDB line protocol over HTTP: v1 `/write?db=` (InfluxDB 1.x, VictoriaMetrics, InfluxDB 3's
// v1 compatibility) and v2 `/api/v2/write?org=&bucket=` with a token (InfluxDB 2.x and 3.x).
// Mapping (docs/delivery.md): measurement `meter_reading`, tags meter_id, region, site; fields
// kwh, voltage, current, power_factor, power_w; timestamp = the reading's time in milliseconds.
// Device samples: measurement `device_sample`, tags device_id, zone, role, site; one field per point.
// Influx keeps one point per (measurement, tags, timestamp): a redelivered batch overwrites itself.
import type { InfluxSinkConfig } from '../../config/site-types.js';
import type { Sequenced, SpoolRecord } from '../records.js';
import { HttpPoster } from './http-post.js';
import { httpFailure, type DeliverySink } from './sink.js';

const TAG_SPECIAL = /[\\,= \n\r]/;
/** Escapes a tag key/value or a field key (commas, spaces, '=' and backslashes); most need nothing. */
function tag(s: string): string {
  if (!TAG_SPECIAL.test(s)) return s;
  return s.replace(/[\\,= \n\r]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`));
}

function measurementName(s: string): string {
  return s.replace(/[\\, \n\r]/g, (c) => `\\${c}`);
}

/** One float field, `key=` already escaped; Influx has no NaN or Infinity: such fields are left out. */
function field(key: string, v: number, fields: string): string {
  if (!Number.isFinite(v)) return fields;
  return fields === '' ? `${key}${v}` : `${fields},${key}${v}`;
}

/** The escaped parts of a line that do not change per record (one per sink). */
interface LineConstants { meterPrefix: string; devicePrefix: string; siteTag: string }

function lineConstants(site: string, cfg: Pick<InfluxSinkConfig, 'measurement' | 'device_measurement'>): LineConstants {
  return { meterPrefix: `${measurementName(cfg.measurement)},meter_id=`, devicePrefix: `${measurementName(cfg.device_measurement)},device_id=`, siteTag: tag(site) };
}

export function lineFor(r: SpoolRecord, site: string, cfg: Pick<InfluxSinkConfig, 'measurement' | 'device_measurement'>, k: LineConstants = lineConstants(site, cfg)): string | undefined {
  const ts = Math.round(r.timestamp_ms);
  if (r.kind === 'meter') {
    let f = field('kwh=', r.kwh, '');
    f = field('voltage=', r.voltage, f);
    f = field('current=', r.current, f);
    f = field('power_factor=', r.power_factor, f);
    f = field('power_w=', r.power_w, f);
    if (f === '') return undefined;
    return `${k.meterPrefix}${tag(r.meter_id)},region=${tag(r.region)},site=${k.siteTag} ${f} ${ts}`;
  }
  let f = '';
  for (const [key, v] of Object.entries(r.values)) f = field(`${tag(key)}=`, v, f);
  if (f === '') return undefined;
  const role = r.role === '' ? '' : `,role=${tag(r.role)}`;
  return `${k.devicePrefix}${tag(r.device_id)}${role},site=${k.siteTag},zone=${tag(r.zone)} ${f} ${ts}`;
}

export class InfluxSink implements DeliverySink {
  readonly type = 'influx' as const;
  readonly target: string;
  private readonly poster: HttpPoster;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly k: LineConstants;

  constructor(private readonly cfg: InfluxSinkConfig, private readonly site: string) {
    this.k = lineConstants(site, cfg);
    const base = new URL(cfg.url);
    this.target = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    this.poster = new HttpPoster(base, cfg.tls, cfg.timeout_ms);
    const prefix = base.pathname.replace(/\/+$/, '');
    this.headers = { 'content-type': 'text/plain; charset=utf-8' };
    if (cfg.api === 'v2') {
      const q = new URLSearchParams({ org: cfg.org ?? '', bucket: cfg.bucket ?? '', precision: 'ms' });
      this.path = `${prefix}/api/v2/write?${q.toString()}`;
      if (cfg.token !== undefined) this.headers['authorization'] = `Token ${cfg.token}`;
    } else {
      const q = new URLSearchParams({ db: cfg.database ?? '', precision: 'ms' });
      if (cfg.retention_policy !== undefined) q.set('rp', cfg.retention_policy);
      this.path = `${prefix}/write?${q.toString()}`;
      if (cfg.username !== undefined) {
        this.headers['authorization'] = `Basic ${Buffer.from(`${cfg.username}:${cfg.password ?? ''}`).toString('base64')}`;
      }
    }
  }

  async prepare(): Promise<void> { /* nothing to create: the database or bucket is the operator's */ }

  async send(records: readonly Sequenced[]): Promise<void> {
    const lines: string[] = [];
    for (const r of records) {
      const l = lineFor(r.record, this.site, this.cfg, this.k);
      if (l !== undefined) lines.push(l);
    }
    if (lines.length === 0) return;
    const res = await this.poster.post(this.path, `${lines.join('\n')}\n`, this.headers, `influx ${this.target}`);
    if (res.status === 204 || res.status === 200) return;
    throw httpFailure(res.status, res.body, `influx ${this.target}`);
  }

  async close(): Promise<void> { this.poster.close(); }
}
