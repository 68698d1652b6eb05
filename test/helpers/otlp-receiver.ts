// A minimal OTLP/HTTP collector for tests: POST /v1/metrics, /v1/traces and /v1/logs on a loopback port 0,
// each body decoded with protobufjs against the official OTLP .proto files vendored under
// test/fixtures/otlp-proto (Apache-2.0, from open-telemetry/opentelemetry-proto). The decoding is
// independent of the SDK's own serializer, so a test asserting on this sees what a collector sees.
// `failWith(503)` makes it answer every export with that status (collector outage tests).
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/otlp-proto');

export type AttrValue = string | number | boolean | AttrValue[] | null;
export type Attrs = Record<string, AttrValue>;

export interface ReceivedPoint {
  attributes: Attrs;
  /** Gauge / sum value. */
  value?: number;
  /** Sum points: start_time_unix_nano in epoch ms (the start of a cumulative series). */
  startMs?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  description: string;
  kind: 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary' | 'unknown';
  monotonic?: boolean;
  /** 1 = delta, 2 = cumulative (AggregationTemporality enum). */
  temporality?: number;
  points: ReceivedPoint[];
  resource: Attrs;
  scope: string;
}

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  kind: number;
  attributes: Attrs;
  status: { code: number; message: string };
  durationMs: number;
  resource: Attrs;
  scope: string;
}

interface PbAnyValue { string_value?: string; bool_value?: boolean; int_value?: string | number; double_value?: number; array_value?: { values?: PbAnyValue[] }; bytes_value?: string; value?: string }
interface PbKeyValue { key: string; value?: PbAnyValue }
type PbObject = Record<string, unknown>;

function anyValue(v: PbAnyValue | undefined): AttrValue {
  if (v === undefined) return null;
  switch (v.value) {
    case 'string_value': return v.string_value ?? '';
    case 'bool_value': return v.bool_value ?? false;
    case 'int_value': return Number(v.int_value);
    case 'double_value': return v.double_value ?? 0;
    case 'array_value': return (v.array_value?.values ?? []).map(anyValue);
    case 'bytes_value': return v.bytes_value ?? '';
    default: return null;
  }
}

function attrs(list: unknown): Attrs {
  const out: Attrs = {};
  for (const kv of (list as PbKeyValue[] | undefined) ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

const arr = (v: unknown): PbObject[] => (Array.isArray(v) ? (v as PbObject[]) : []);
const hex = (b64: unknown): string => (typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('hex') : '');

function numberPoint(p: PbObject): ReceivedPoint {
  const value = p['value'] === 'as_int' ? Number(p['as_int']) : Number(p['as_double']);
  const start = p['start_time_unix_nano'];
  return { attributes: attrs(p['attributes']), value, ...(start !== undefined ? { startMs: Number(BigInt(String(start)) / 1_000_000n) } : {}) };
}

function histogramPoint(p: PbObject): ReceivedPoint {
  return {
    attributes: attrs(p['attributes']),
    count: Number(p['count']),
    sum: Number(p['sum']),
    bucketCounts: arr(p['bucket_counts']).map(Number),
    explicitBounds: (p['explicit_bounds'] as number[] | undefined) ?? [],
  };
}

function decodeMetric(m: PbObject, resource: Attrs, scope: string): ReceivedMetric {
  const base = { name: String(m['name']), unit: String(m['unit'] ?? ''), description: String(m['description'] ?? ''), resource, scope };
  const kind = m['data'];
  const body = (typeof kind === 'string' ? m[kind] : undefined) as PbObject | undefined;
  switch (kind) {
    case 'gauge': return { ...base, kind, points: arr(body?.['data_points']).map(numberPoint) };
    case 'sum': return {
      ...base, kind, monotonic: Boolean(body?.['is_monotonic']), temporality: Number(body?.['aggregation_temporality']),
      points: arr(body?.['data_points']).map(numberPoint),
    };
    case 'histogram': return { ...base, kind, temporality: Number(body?.['aggregation_temporality']), points: arr(body?.['data_points']).map(histogramPoint) };
    case 'exponential_histogram':
    case 'summary': return { ...base, kind, points: [] };
    default: return { ...base, kind: 'unknown', points: [] };
  }
}

export interface ReceivedLog {
  eventName: string;
  /** Epoch ms of time_unix_nano / observed_time_unix_nano (exact to the millisecond for ms inputs). */
  timeMs: number;
  observedMs: number;
  severityNumber: number;
  attributes: Attrs;
  resource: Attrs;
  scope: string;
}

export interface OtlpReceiverStats { metricsRequests: number; tracesRequests: number; logsRequests: number; rejected: number; bytes: number }

export class OtlpReceiver {
  private server: http.Server | undefined;
  private failStatus: number | undefined;
  private readonly receivedMetrics: ReceivedMetric[] = [];
  private readonly receivedSpans: ReceivedSpan[] = [];
  private readonly resources: Attrs[] = [];
  private readonly receivedLogs: ReceivedLog[] = [];
  readonly stats: OtlpReceiverStats = { metricsRequests: 0, tracesRequests: 0, logsRequests: 0, rejected: 0, bytes: 0 };
  /** The raw protobuf bodies accepted, by path (for cross-checks with another decoder, e.g. protoc). */
  readonly bodies: Array<{ path: string; body: Buffer }> = [];
  private readonly metricsType: protobuf.Type;
  private readonly tracesType: protobuf.Type;
  private readonly logsType: protobuf.Type;
  /** Answer a logs export whose records carry this attribute value with 400 (a poison record). */
  rejectLogsWith: ((log: ReceivedLog) => boolean) | undefined;
  port = 0;

  private constructor() {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
    root.loadSync([
      'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
      'opentelemetry/proto/collector/trace/v1/trace_service.proto',
      'opentelemetry/proto/collector/logs/v1/logs_service.proto',
    ], { keepCase: true });
    this.logsType = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
    this.metricsType = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
    this.tracesType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  }

  /** Starts on 127.0.0.1 (port 0 unless a port is given, e.g. to come back on the same port after `stop()`). */
  static async start(port = 0): Promise<OtlpReceiver> {
    const r = new OtlpReceiver();
    await r.listen(port);
    return r;
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }

  async listen(port = this.port): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : port;
    this.server = server;
  }

  /** Answer every export with this HTTP status (e.g. 503), or undefined to accept again. */
  failWith(status: number | undefined): void { this.failStatus = status; }

  metrics(): ReceivedMetric[] { return [...this.receivedMetrics]; }
  metricNames(): Set<string> { return new Set(this.receivedMetrics.map((m) => m.name)); }
  /** Every exported occurrence of one metric, oldest first. */
  metric(name: string): ReceivedMetric[] { return this.receivedMetrics.filter((m) => m.name === name); }
  spans(): ReceivedSpan[] { return [...this.receivedSpans]; }
  spanNames(): Set<string> { return new Set(this.receivedSpans.map((s) => s.name)); }
  logs(): ReceivedLog[] { return [...this.receivedLogs]; }
  /** The resource attributes of every request received, in order. */
  resourceAttributes(): Attrs[] { return [...this.resources]; }

  clear(): void {
    this.receivedMetrics.length = 0;
    this.receivedSpans.length = 0;
    this.receivedLogs.length = 0;
    this.resources.length = 0;
  }

  /** `what` names the wait in the timeout error; a function is called then, to say what is missing. */
  async waitFor(pred: (r: OtlpReceiver) => boolean, timeoutMs: number, what: string | (() => string) = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`OtlpReceiver: timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Closes the port (a collector that is down, not one answering errors). Data received is kept. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let status = 200;
      try {
        if (this.failStatus !== undefined) {
          this.stats.rejected += 1;
          status = this.failStatus;
        } else {
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          this.stats.bytes += body.length;
          if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-protobuf') status = 415;
          else if (req.url === '/v1/metrics') this.onMetrics(body);
          else if (req.url === '/v1/traces') this.onTraces(body);
          else if (req.url === '/v1/logs') status = this.onLogs(body);
          else status = 404;
          if (status === 200 && this.bodies.length < 1000) this.bodies.push({ path: req.url ?? '', body });
        }
      } catch {
        status = 400;
      }
      // An empty body is a valid (empty) Export*ServiceResponse.
      res.writeHead(status, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  }

  private toObject(type: protobuf.Type, body: Buffer): PbObject {
    return type.toObject(type.decode(body), { longs: String, bytes: String, enums: Number, oneofs: true, defaults: false, arrays: true }) as PbObject;
  }

  private onMetrics(body: Buffer): void {
    this.stats.metricsRequests += 1;
    for (const rm of arr(this.toObject(this.metricsType, body)['resource_metrics'])) {
      const resource = attrs((rm['resource'] as PbObject | undefined)?.['attributes']);
      this.resources.push(resource);
      for (const sm of arr(rm['scope_metrics'])) {
        const scope = String((sm['scope'] as PbObject | undefined)?.['name'] ?? '');
        for (const m of arr(sm['metrics'])) this.receivedMetrics.push(decodeMetric(m, resource, scope));
      }
    }
  }

  /** 400 (nothing kept) when rejectLogsWith matches a record of the request. */
  private onLogs(body: Buffer): number {
    this.stats.logsRequests += 1;
    const batch: ReceivedLog[] = [];
    for (const rl of arr(this.toObject(this.logsType, body)['resource_logs'])) {
      const resource = attrs((rl['resource'] as PbObject | undefined)?.['attributes']);
      for (const sl of arr(rl['scope_logs'])) {
        const scope = String((sl['scope'] as PbObject | undefined)?.['name'] ?? '');
        for (const l of arr(sl['log_records'])) {
          batch.push({
            eventName: String(l['event_name'] ?? ''),
            timeMs: Number(BigInt(String(l['time_unix_nano'] ?? '0')) / 1_000_000n),
            observedMs: Number(BigInt(String(l['observed_time_unix_nano'] ?? '0')) / 1_000_000n),
            severityNumber: Number(l['severity_number'] ?? 0),
            attributes: attrs(l['attributes']),
            resource,
            scope,
          });
        }
      }
    }
    if (this.rejectLogsWith && batch.some(this.rejectLogsWith)) { this.stats.rejected += 1; return 400; }
    this.receivedLogs.push(...batch);
    return 200;
  }

  private onTraces(body: Buffer): void {
    this.stats.tracesRequests += 1;
    for (const rs of arr(this.toObject(this.tracesType, body)['resource_spans'])) {
      const resource = attrs((rs['resource'] as PbObject | undefined)?.['attributes']);
      this.resources.push(resource);
      for (const ss of arr(rs['scope_spans'])) {
        const scope = String((ss['scope'] as PbObject | undefined)?.['name'] ?? '');
        for (const s of arr(ss['spans'])) {
          const status = (s['status'] as PbObject | undefined) ?? {};
          this.receivedSpans.push({
            name: String(s['name']),
            traceId: hex(s['trace_id']),
            spanId: hex(s['span_id']),
            parentSpanId: hex(s['parent_span_id']),
            kind: Number(s['kind'] ?? 0),
            attributes: attrs(s['attributes']),
            status: { code: Number(status['code'] ?? 0), message: String(status['message'] ?? '') },
            durationMs: (Number(s['end_time_unix_nano']) - Number(s['start_time_unix_nano'])) / 1e6,
            resource,
            scope,
          });
        }
      }
    }
  }
}
