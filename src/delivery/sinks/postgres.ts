// PostgreSQL or TimescaleDB through `pg`: one connection, one statement per batch,
// INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT DO NOTHING (about 1.8x multi-row
// VALUES here, docs/delivery.md). The table's primary key (meter_id, ts) makes a redelivery after
// a crash exactly-once in the table. A constraint or data error (SQLSTATE class 22 or 23) is a
// poison batch: the forwarder splits it until the one bad reading is found.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { PostgresSinkConfig } from '../../config/site-types.js';
import type { Sequenced } from '../records.js';
import { networkFailure, SinkError, type DeliverySink } from './sink.js';

/** The documented tables (docs/delivery.md); names come validated from the site file. */
function createTableSql(cfg: Pick<PostgresSinkConfig, 'table' | 'device_table'>): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ident(cfg.table)} (
      meter_id text NOT NULL,
      ts timestamptz NOT NULL,
      region text NOT NULL,
      site text NOT NULL,
      kwh double precision,
      voltage double precision,
      current double precision,
      power_factor double precision,
      power_w double precision,
      arrived_at timestamptz NOT NULL,
      PRIMARY KEY (meter_id, ts))`,
    `CREATE TABLE IF NOT EXISTS ${ident(cfg.device_table)} (
      device_id text NOT NULL,
      point text NOT NULL,
      ts timestamptz NOT NULL,
      zone text NOT NULL,
      site text NOT NULL,
      value double precision,
      arrived_at timestamptz NOT NULL,
      PRIMARY KEY (device_id, point, ts))`,
  ];
}

/** A table name as written in the site file (schema-qualified allowed), quoted per part. */
function ident(name: string): string {
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}

// Epoch ms as bigint -> timestamptz exactly (to_timestamp(double) could round a millisecond).
const TS = (col: string): string => `timestamptz 'epoch' + ${col} * interval '1 millisecond'`;

export class PostgresSink implements DeliverySink {
  readonly type = 'postgres' as const;
  readonly target: string;
  private client: pg.Client | undefined;
  private readonly meterSql: string;
  private readonly deviceSql: string;

  constructor(private readonly cfg: PostgresSinkConfig, private readonly site: string) {
    this.target = cfg.url !== undefined ? redact(cfg.url) : `postgres://${cfg.user}@${cfg.host}:${cfg.port}/${cfg.database}`;
    this.meterSql = `INSERT INTO ${ident(cfg.table)} (meter_id, ts, region, site, kwh, voltage, current, power_factor, power_w, arrived_at)
      SELECT m, ${TS('t')}, r, $3, k, v, c, pf, p, ${TS('a')}
      FROM unnest($1::text[], $2::bigint[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bigint[]) AS u(m, t, r, k, v, c, pf, p, a)
      ON CONFLICT DO NOTHING`;
    this.deviceSql = `INSERT INTO ${ident(cfg.device_table)} (device_id, point, ts, zone, site, value, arrived_at)
      SELECT d, pt, ${TS('t')}, z, $4, v, ${TS('a')}
      FROM unnest($1::text[], $2::text[], $3::bigint[], $5::text[], $6::float8[], $7::bigint[]) AS u(d, pt, t, z, v, a)
      ON CONFLICT DO NOTHING`;
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = this.cfg;
    const ssl = c.tls ? {
      ...(c.tls.ca_file ? { ca: readFileSync(c.tls.ca_file, 'utf8') } : {}),
      ...(c.tls.cert_file ? { cert: readFileSync(c.tls.cert_file, 'utf8') } : {}),
      ...(c.tls.key_file ? { key: readFileSync(c.tls.key_file, 'utf8') } : {}),
      rejectUnauthorized: c.tls.reject_unauthorized,
    } : undefined;
    const client = new pg.Client({
      ...(c.url !== undefined ? { connectionString: c.url } : { host: c.host, port: c.port, database: c.database, user: c.user }),
      ...(c.password !== undefined ? { password: c.password } : {}),
      ...(ssl ? { ssl } : {}),
      connectionTimeoutMillis: c.timeout_ms, query_timeout: c.timeout_ms, application_name: 'ems-gateway',
    });
    // A dropped connection (server restart) surfaces here between queries: forget the client, the
    // next send reconnects. Without a listener pg would throw it as an uncaught 'error' event.
    client.on('error', () => { if (this.client === client) this.client = undefined; void client.end().catch(() => undefined); });
    try {
      await client.connect();
    } catch (err) {
      void client.end().catch(() => undefined);
      throw networkFailure(err, `postgres ${this.target}`);
    }
    this.client = client;
    return client;
  }

  async prepare(): Promise<void> {
    if (!this.cfg.create_table) return;
    const client = await this.connect();
    for (const sql of createTableSql(this.cfg)) await this.query(client, sql, []);
  }

  async send(records: readonly Sequenced[]): Promise<void> {
    const m = { id: [] as string[], t: [] as number[], r: [] as string[], k: [] as number[], v: [] as number[], c: [] as number[], pf: [] as number[], p: [] as number[], a: [] as number[] };
    const d = { id: [] as string[], pt: [] as string[], t: [] as number[], z: [] as string[], v: [] as number[], a: [] as number[] };
    for (const { record: r } of records) {
      if (r.kind === 'meter') {
        m.id.push(r.meter_id); m.t.push(Math.round(r.timestamp_ms)); m.r.push(r.region); m.k.push(r.kwh); m.v.push(r.voltage);
        m.c.push(r.current); m.pf.push(r.power_factor); m.p.push(r.power_w); m.a.push(Math.round(r.arrived_ms));
      } else {
        for (const [point, value] of Object.entries(r.values)) {
          d.id.push(r.device_id); d.pt.push(point); d.t.push(Math.round(r.timestamp_ms)); d.z.push(r.zone); d.v.push(value); d.a.push(Math.round(r.arrived_ms));
        }
      }
    }
    const client = await this.connect();
    if (m.id.length > 0) {
      await this.query(client, this.meterSql, [textArray(m.id), numArray(m.t), this.site, textArray(m.r), numArray(m.k), numArray(m.v), numArray(m.c), numArray(m.pf), numArray(m.p), numArray(m.a)]);
    }
    if (d.id.length > 0) await this.query(client, this.deviceSql, [textArray(d.id), textArray(d.pt), numArray(d.t), this.site, textArray(d.z), numArray(d.v), numArray(d.a)]);
  }

  private async query(client: pg.Client, sql: string, values: unknown[]): Promise<void> {
    try {
      await client.query(sql, values);
    } catch (err) {
      throw this.classify(err, client);
    }
  }

  private classify(err: unknown, client: pg.Client): SinkError {
    const code = (err as { code?: unknown }).code;
    const what = `postgres ${this.target}`;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      const msg = `${what}: ${code} ${(err as Error).message}`;
      // Class 22 (data exception) and 23 (integrity constraint): the content, not the server.
      if (code.startsWith('22') || code.startsWith('23')) return new SinkError(msg, 'poison', code.startsWith('23') ? 'constraint' : 'invalid_value', { cause: err });
      if (code.startsWith('28')) return new SinkError(msg, 'retry', 'unauthorized', { cause: err });
      if (code.startsWith('42')) return new SinkError(msg, 'retry', 'schema', { cause: err });
      return new SinkError(msg, 'retry', 'db_error', { cause: err });
    }
    // No SQLSTATE: the connection broke (server restart, network): reconnect on the next send.
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
    return networkFailure(err, what);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}

// Array parameters as PostgreSQL array literals, built here: pg's own serialisation prepares each
// element on its own (about 2.5x the time, bench:delivery's drain). Numbers print as PostgreSQL's
// float8/bigint input reads them (NaN, Infinity, 1e+21 included).
function numArray(xs: readonly number[]): string {
  let out = '{';
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    if (i > 0) out += ',';
    out += x === 0 && 1 / x < 0 ? '-0' : String(x); // String(-0) is "0"
  }
  return `${out}}`;
}

const NEEDS_QUOTES = /[",\\{}\s]/;
/** A text[] literal: an element is quoted when empty, NULL-like or holding a delimiter, quote, backslash or space. */
function textArray(xs: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as string;
    if (i > 0) out += ',';
    out += x === '' || NEEDS_QUOTES.test(x) || (x.length === 4 && x.toUpperCase() === 'NULL') ? `"${x.replace(/["\\]/g, '\\$&')}"` : x;
  }
  return `${out}}`;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'postgres (url)';
  }
}
