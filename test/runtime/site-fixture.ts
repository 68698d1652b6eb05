// A validated site built in code, for tests of the composition root that need no config files.
import type { LoadedSite, SiteConfig } from '../../src/config/site-types.js';

export function minimalSite(overrides: Partial<SiteConfig> = {}): LoadedSite {
  const site: SiteConfig = {
    version: 1,
    site: { id: 'test-site', region: 'eu-test', nominal_frequency_hz: 50, name: 'Test site' },
    devices: [],
    telemetry: {
      service_name: 'ems-gateway', otlp_headers: {}, export_interval_ms: 60_000, export_timeout_ms: 2000,
      resource_attributes: {}, cardinality_limit: 2000, span_queue_size: 2048, span_batch_size: 512, enabled: false,
    },
    grid: { update_interval_ms: 1000, stale_after_ms: 10_000 },
    alerts: {
      evaluate_interval_ms: 1000, stale_meter_data_age_ms: 900_000, drop_ratio: 0.001, dr_ack_rate_min: 0.9,
      frequency_deviation_hz: 0.5, ingestion_latency_p99_ms: 5000,
    },
    status: { host: '127.0.0.1', port: 0, enabled: true },
    logging: { level: 'info' },
    source: '/nonexistent/test-site.yaml',
    ...overrides,
  };
  return { site, profiles: new Map(), warnings: [] };
}
