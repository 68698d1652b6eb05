// The five alerts of the source design, and the gateway's own (broker session lost, delivery
// backlog), as the local evaluator computes them. Windows and `for` durations are the ones in
// config/alerts/ems.rules.yaml, so the edge box and the central Prometheus agree on when an alert
// fires; thresholds come from the site's `alerts:` section.
import type { AlertConfig, SiteInfo } from '../config/site-types.js';
import { DR_OUTCOMES } from '../telemetry/semconv.js';
import { histogramQuantile, type MetricSnapshot } from './metric-window.js';

export type AlertId = 'stale_meter_data' | 'ingestion_drops' | 'dr_not_acknowledged' | 'frequency_excursion' | 'slow_ingestion'
  | 'broker_session_lost' | 'delivery_backlog';

/** Default of alerts.delivery_backlog_age (the schema sets it; fixtures written before it may not). */
const DELIVERY_BACKLOG_AGE_MS = 3_600_000;

/** What some alerts need beyond the window's increases. */
interface AlertContext {
  config: AlertConfig;
  /** region -> ms since its ingested counter last moved (IngestActivity), regions seen only. */
  silentForMs: Map<string, number>;
}

export interface AlertDefinition {
  id: AlertId;
  /** The alert's name in the Prometheus rule file. */
  prometheusName: string;
  /** Window of the increases the condition is computed over. */
  windowMs: number;
  /** How long the condition must hold before the alert fires. */
  forMs: number;
  /** Unit of `value` and `threshold` in states and logs. */
  unit: string;
  threshold(cfg: AlertConfig): number;
  /** One value per label set (region, or '' for site-wide); null when there is nothing to judge. */
  values(window: MetricSnapshot, site: SiteInfo, ctx: AlertContext): Map<string, number | null>;
  /** The label the instances of values() are keyed by, for summaries; default region. */
  label?: 'region' | 'client' | 'sink';
  /** true when the value is in breach. */
  breached(value: number, threshold: number): boolean;
}

const MIN = 60_000;

function quantilesByRegion(hist: MetricSnapshot['latency']): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const [region, b] of hist) out.set(region, histogramQuantile(0.99, b));
  return out;
}

export const ALERTS: readonly AlertDefinition[] = [
  {
    id: 'stale_meter_data', prometheusName: 'EmsStaleMeterData', windowMs: 5 * MIN, forMs: 5 * MIN, unit: 's',
    threshold: (c) => c.stale_meter_data_age_ms / 1000,
    // P99 data age of the window's readings; and a region seen before that has had no reading
    // at all for longer than the threshold is stale too (the histogram alone would say "nothing
    // to judge"). Its value is the silence in s, a lower bound of its data age.
    values: (w, _site, ctx) => {
      const out = quantilesByRegion(w.dataAge);
      for (const [region, ms] of ctx.silentForMs) {
        if (ms > ctx.config.stale_meter_data_age_ms) out.set(region, Math.max(out.get(region) ?? 0, ms / 1000));
      }
      return out;
    },
    breached: (v, t) => v > t,
  },
  {
    id: 'ingestion_drops', prometheusName: 'EmsIngestionDrops', windowMs: 5 * MIN, forMs: 5 * MIN, unit: 'ratio',
    threshold: (c) => c.drop_ratio,
    values: (w) => {
      const out = new Map<string, number | null>();
      for (const [region, dropped] of w.dropped) {
        const total = dropped + (w.ingested.get(region) ?? 0);
        out.set(region, total > 0 ? dropped / total : null);
      }
      return out;
    },
    breached: (v, t) => v > t,
  },
  {
    id: 'dr_not_acknowledged', prometheusName: 'EmsDemandResponseNotAcknowledged', windowMs: 15 * MIN, forMs: 0, unit: 'ratio',
    threshold: (c) => c.dr_ack_rate_min,
    values: (w) => {
      let acked = 0, total = 0;
      for (const [outcome, n] of w.drCommands) {
        if (outcome === DR_OUTCOMES.dryRun) continue;
        total += n;
        if (outcome === DR_OUTCOMES.acknowledged) acked += n;
      }
      return new Map([['', total > 0 ? acked / total : null]]);
    },
    breached: (v, t) => v < t,
  },
  {
    id: 'frequency_excursion', prometheusName: 'EmsFrequencyExcursion', windowMs: 0, forMs: 30_000, unit: 'Hz',
    threshold: (c) => c.frequency_deviation_hz,
    // Locally the nominal is known exactly (site.nominal_frequency_hz); the rule file infers it.
    values: (w, site) => new Map([['', w.frequencyHz === null ? null : Math.abs(w.frequencyHz - site.nominal_frequency_hz)]]),
    breached: (v, t) => v > t,
  },
  {
    id: 'slow_ingestion', prometheusName: 'EmsSlowIngestion', windowMs: 5 * MIN, forMs: 5 * MIN, unit: 'ms',
    threshold: (c) => c.ingestion_latency_p99_ms,
    values: (w) => quantilesByRegion(w.latency),
    breached: (v, t) => v > t,
  },
  {
    // An event, not a level: the broker answered a reconnect without the client's persistent
    // session (QoS 1 messages published meanwhile are lost). Fires at once, per MQTT client, for
    // as long as the loss is inside the window.
    id: 'broker_session_lost', prometheusName: 'EmsBrokerSessionLost', windowMs: 15 * MIN, forMs: 0, unit: 'sessions', label: 'client',
    threshold: () => 0,
    values: (w) => new Map(w.sessionLost),
    breached: (v, t) => v > t,
  },
  {
    // One instance per sink: its oldest unconfirmed reading is older than the threshold, so the
    // upstream has been down (or too slow) that long.
    id: 'delivery_backlog', prometheusName: 'EmsDeliveryBacklog', windowMs: 0, forMs: 5 * MIN, unit: 's', label: 'sink',
    threshold: (c) => (c.delivery_backlog_age_ms ?? DELIVERY_BACKLOG_AGE_MS) / 1000,
    values: (w) => new Map(w.deliveryOldestAgeS),
    breached: (v, t) => v > t,
  },
];
