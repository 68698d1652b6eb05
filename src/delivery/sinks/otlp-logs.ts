// Readings as OTLP log records (event `ems.meter.reading`) through
// @opentelemetry/exporter-logs-otlp-proto to the same collector as the metrics: the scale-out path
// (the Collector tier routes them to Kafka, ClickHouse or any store). The exporter is called
// directly with one batch at a time, never through the SDK's batch processor, which would drop
// records past its queue: the spool is the queue. The standard OTEL_EXPORTER_OTLP_LOGS_*
// variables win over the site file (as OTEL_* do for metrics and traces, docs/telemetry.md).
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { SeverityNumber, type LogAttributes } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OtlpLogsSinkConfig, TelemetryConfig } from '../../config/site-types.js';
import { LOG_ATTRS, LOG_EVENTS } from '../../telemetry/semconv.js';
import { DEFAULT_OTLP_ENDPOINT, parseKeyValueList } from '../../telemetry/settings.js';
import { INSTRUMENTATION_SCOPE } from '../../telemetry/setup.js';
import type { Sequenced, SpoolRecord } from '../records.js';
import { httpFailure, networkFailure, SinkError, type DeliverySink } from './sink.js';

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** The logs URL and headers: OTEL_EXPORTER_OTLP_LOGS_* > the sink's keys > OTEL_EXPORTER_OTLP_* > telemetry section. */
function otlpLogsTarget(cfg: OtlpLogsSinkConfig, telemetry: TelemetryConfig, env: NodeJS.ProcessEnv): { url: string; headers: Record<string, string> } {
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']) ?? nonEmpty(telemetry.otlp_endpoint) ?? DEFAULT_OTLP_ENDPOINT;
  const url = nonEmpty(env['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT']) ?? nonEmpty(cfg.endpoint) ?? `${base.replace(/\/+$/, '')}/v1/logs`;
  const headers = {
    ...telemetry.otlp_headers, ...parseKeyValueList(env['OTEL_EXPORTER_OTLP_HEADERS']), ...cfg.headers,
    ...parseKeyValueList(env['OTEL_EXPORTER_OTLP_LOGS_HEADERS']),
  };
  return { url, headers };
}

const hr = (ms: number): [number, number] => {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
};

export class OtlpLogsSink implements DeliverySink {
  readonly type = 'otlp_logs' as const;
  readonly target: string;
  private readonly exporter: OTLPLogExporter;
  private readonly scope = { name: INSTRUMENTATION_SCOPE };

  constructor(cfg: OtlpLogsSinkConfig, telemetry: TelemetryConfig, env: NodeJS.ProcessEnv, private readonly resource: Resource) {
    const { url, headers } = otlpLogsTarget(cfg, telemetry, env);
    this.target = url;
    this.exporter = new OTLPLogExporter({ url, headers, timeoutMillis: cfg.timeout_ms });
  }

  async prepare(): Promise<void> { /* the collector needs nothing set up */ }

  private toLog(r: SpoolRecord): ReadableLogRecord {
    const attributes: LogAttributes = r.kind === 'meter'
      ? {
        [LOG_ATTRS.meterId]: r.meter_id, [LOG_ATTRS.region]: r.region, [LOG_ATTRS.kwh]: r.kwh, [LOG_ATTRS.voltage]: r.voltage,
        [LOG_ATTRS.current]: r.current, [LOG_ATTRS.powerFactor]: r.power_factor, [LOG_ATTRS.powerW]: r.power_w,
      }
      : { [LOG_ATTRS.deviceId]: r.device_id, [LOG_ATTRS.zone]: r.zone, [LOG_ATTRS.role]: r.role, ...pointAttrs(r.values) };
    return {
      hrTime: hr(r.timestamp_ms), hrTimeObserved: hr(r.arrived_ms), severityNumber: SeverityNumber.INFO, severityText: 'INFO',
      eventName: r.kind === 'meter' ? LOG_EVENTS.meterReading : LOG_EVENTS.deviceSample,
      resource: this.resource, instrumentationScope: this.scope, attributes, droppedAttributesCount: 0,
    };
  }

  send(records: readonly Sequenced[]): Promise<void> {
    const logs = records.map((r) => this.toLog(r.record));
    return new Promise<void>((resolve, reject) => {
      this.exporter.export(logs, (res: ExportResult) => {
        if (res.code === ExportResultCode.SUCCESS) resolve();
        else reject(classify(res.error, this.target));
      });
    });
  }

  async close(): Promise<void> { await this.exporter.shutdown(); }
}

function pointAttrs(values: Record<string, number>): LogAttributes {
  const out: LogAttributes = {};
  for (const [k, v] of Object.entries(values)) out[`${LOG_ATTRS.pointPrefix}${k}`] = v;
  return out;
}

function classify(err: Error | undefined, target: string): SinkError {
  const code = (err as { code?: unknown } | undefined)?.code;
  const data = (err as { data?: unknown } | undefined)?.data;
  if (typeof code === 'number' && code >= 100) return httpFailure(code, typeof data === 'string' ? data : '', `otlp_logs ${target}`);
  return networkFailure(err ?? new Error('export failed'), `otlp_logs ${target}`);
}
