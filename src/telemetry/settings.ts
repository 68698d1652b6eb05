// The effective telemetry settings: the site file's `telemetry:` section overlaid by the standard
// OTEL_* environment variables. Environment wins (the OTel SDK convention, and what an operator
// reaching for a one-off override expects); docs/telemetry.md has the full precedence table.
// A pure function of (config, site, env) so the precedence is unit-tested without sockets.
import os from 'node:os';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { envPositiveInt } from '../config/env-values.js';
import type { SiteInfo, TelemetryConfig } from '../config/site-types.js';
import { RESOURCE_ATTRS } from './semconv.js';

export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';

export interface TelemetrySettings {
  /** false when OTEL_SDK_DISABLED=true or `telemetry.enabled: false`: nothing is exported, local readers still work. */
  enabled: boolean;
  metricsUrl: string;
  tracesUrl: string;
  metricsHeaders: Record<string, string>;
  tracesHeaders: Record<string, string>;
  exportIntervalMs: number;
  exportTimeoutMs: number;
  cardinalityLimit: number;
  /** Spans held for export (the BatchSpanProcessor's maxQueueSize); past it new spans are dropped and counted. */
  spanQueueSize: number;
  /** Spans per export request, at most spanQueueSize. */
  spanBatchSize: number;
  resourceAttributes: Record<string, string>;
}

interface SettingsInput {
  config: TelemetryConfig;
  site: SiteInfo;
  env: NodeJS.ProcessEnv;
  serviceVersion: string;
  hostName?: string;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** `a=1,b=x%20y` (W3C baggage-like, as OTEL_RESOURCE_ATTRIBUTES and OTEL_*_HEADERS are written). */
export function parseKeyValueList(raw: string | undefined): Record<string, string> {
  const v = nonEmpty(raw);
  return v === undefined ? {} : parseKeyPairsIntoRecord(v);
}

function signalUrl(env: NodeJS.ProcessEnv, config: TelemetryConfig, signal: 'METRICS' | 'TRACES'): string {
  const path = signal === 'METRICS' ? 'v1/metrics' : 'v1/traces';
  // A per-signal endpoint is used as is (OTLP spec); a base endpoint gets the signal path appended.
  const specific = nonEmpty(env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);
  if (specific !== undefined) return specific;
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']) ?? nonEmpty(config.otlp_endpoint) ?? DEFAULT_OTLP_ENDPOINT;
  return `${base.replace(/\/+$/, '')}/${path}`;
}

export function resolveTelemetrySettings(input: SettingsInput): TelemetrySettings {
  const { config, site, env } = input;
  const hostName = input.hostName ?? os.hostname();
  const disabledByEnv = nonEmpty(env['OTEL_SDK_DISABLED'])?.toLowerCase() === 'true';

  const resourceAttributes: Record<string, string> = {
    'service.name': config.service_name,
    'service.version': input.serviceVersion,
    // Stable across restarts so the collector's `instance` label does not churn; two gateways
    // on one host for one site set it apart with OTEL_RESOURCE_ATTRIBUTES.
    'service.instance.id': `${site.id}@${hostName}`,
    'host.name': hostName,
    [RESOURCE_ATTRS.siteId]: site.id,
    [RESOURCE_ATTRS.siteRegion]: site.region,
    ...config.resource_attributes,
    ...parseKeyValueList(env['OTEL_RESOURCE_ATTRIBUTES']),
  };
  const envService = nonEmpty(env['OTEL_SERVICE_NAME']);
  if (envService !== undefined) resourceAttributes['service.name'] = envService;

  const commonHeaders = { ...config.otlp_headers, ...parseKeyValueList(env['OTEL_EXPORTER_OTLP_HEADERS']) };
  const exportIntervalMs = envPositiveInt(env['OTEL_METRIC_EXPORT_INTERVAL']) ?? config.export_interval_ms;
  const timeout = envPositiveInt(env['OTEL_METRIC_EXPORT_TIMEOUT']) ?? config.export_timeout_ms;
  const spanQueueSize = envPositiveInt(env['OTEL_BSP_MAX_QUEUE_SIZE']) ?? config.span_queue_size;
  const spanBatchSize = envPositiveInt(env['OTEL_BSP_MAX_EXPORT_BATCH_SIZE']) ?? config.span_batch_size;
  return {
    enabled: config.enabled && !disabledByEnv,
    metricsUrl: signalUrl(env, config, 'METRICS'),
    tracesUrl: signalUrl(env, config, 'TRACES'),
    metricsHeaders: { ...commonHeaders, ...parseKeyValueList(env['OTEL_EXPORTER_OTLP_METRICS_HEADERS']) },
    tracesHeaders: { ...commonHeaders, ...parseKeyValueList(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS']) },
    exportIntervalMs,
    // The SDK rejects an export timeout longer than the interval.
    exportTimeoutMs: Math.min(timeout, exportIntervalMs),
    cardinalityLimit: config.cardinality_limit,
    spanQueueSize,
    // The SDK caps a batch at the queue size too (with a warning); an env override may cross them.
    spanBatchSize: Math.min(spanBatchSize, spanQueueSize),
    resourceAttributes,
  };
}
