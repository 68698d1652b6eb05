// Shared config slices for the telemetry tests (the defaults src/config applies).
import type { TelemetryConfig } from '../../src/config/site-types.js';

export function telemetryConfig(over: Partial<TelemetryConfig> = {}): TelemetryConfig {
  return {
    service_name: 'ems-gateway', otlp_headers: {}, export_interval_ms: 60_000, export_timeout_ms: 2_000,
    resource_attributes: {}, cardinality_limit: 2000, span_queue_size: 2048, span_batch_size: 512, enabled: true, ...over,
  };
}
