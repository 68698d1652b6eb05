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

/** Escapes a tag key/value or a measurement (commas, spaces, '=' and backslashes). */
function tag(s: string): string {
  return s.replace(/[\\,= \n\r]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`));
}

function measurementName(s: string): string {
  return s.replace(/[\\, \n\r]/g, (c) => `\\${c}`);
}

/** A float field value; Influx has no NaN or Infinity: such fields are left out. */
function field(name: string, v: number, out: string[]): void {
  if (Number.isFinite(v)) out.push(`${tag(name)}=${v}`);
}

export function lineFor(r: SpoolRecord, site: string, cfg: Pick<InfluxSinkConfig, 'measurement' | 'device_measurement'>): string | undefined {
  const fields: string[] = [];
  const ts = Math.round(r.timestamp_ms);
  if (r.kind === 'meter') {
    field('kwh', r.kwh, fields); field('voltage', r.voltage, fields); field('current', r.current, fields);
    field('power_factor', r.power_factor, fields); field('power_w', r.power_w, fields);
    if (fields.length === 0) return undefined;
    return `${measurementName(cfg.measurement)},meter_id=${tag(r.meter_id)},region=${tag(r.region)},site=${tag(site)} ${fields.join(',')} ${ts}`;
  }
  for (const [k, v] of Object.entries(r.values)) field(k, v, fields);
  if (fields.length === 0) return undefined;
  const role = r.role === '' ? '' : `,role=${tag(r.role)}`;
  return `${measurementName(cfg.device_measurement)},device_id=${tag(r.device_id)}${role},site=${tag(site)},zone=${tag(r.zone)} ${fields.join(',')} ${ts}`;
}

export class InfluxSink implements DeliverySink {
  readonly type = 'influx' as const;
  readonly target: string;
  private readonly poster: HttpPoster;
  private readonly path: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly cfg: InfluxSinkConfig, private readonly site: string) {
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
      const l = lineFor(r.record, this.site, this.cfg);
      if (l !== undefined) lines.push(l);
    }
    if (lines.length === 0) return;
    const res = await this.poster.post(this.path, `${lines.join('\n')}\n`, this.headers, `influx ${this.target}`);
    if (res.status === 204 || res.status === 200) return;
    throw httpFailure(res.status, res.body, `influx ${this.target}`);
  }

  async close(): Promise<void> { this.poster.close(); }
}
