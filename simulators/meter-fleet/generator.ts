// Deterministic meter fleet traffic: which meter sends what, and which fault, follow from the seed.
// The generator mirrors the gateway's documented rules (validate.ts, meter-state.ts) so it can say,
// per message, what the gateway must do with every reading: the report is the test's oracle.
import { seededRandom } from '../random.js';

/** What a reading is made to be, and what the gateway must count it as. */
export const FAULT_CATEGORIES = {
  valid: 'ingested',
  stale: 'ingested',                  // hours-old timestamp: ingested, shows in ems.meter.data_age_seconds
  duplicate: 'duplicate',             // the meter's latest accepted reading again
  malformed_json: 'malformed_json',   // always sent as its own message
  not_object: 'not_object',
  missing_field: 'missing_field',
  wrong_type: 'wrong_type',
  out_of_range: 'out_of_range',
  clock_skew: 'future_timestamp',     // the meter's clock runs an hour ahead
  kwh_decreasing: 'kwh_decreasing',
  unknown_region: 'unknown_region',
} as const;
export type FaultCategory = keyof typeof FAULT_CATEGORIES;

export interface FleetMessage {
  topic: string;
  payload: string;
}

export interface GeneratorOptions {
  meters: number;
  regions: string[];
  seed: number;
  /** Readings per message: 1 = one JSON object per message, >1 = a JSON array. */
  batchSize: number;
  /** Probability per reading of each fault; the rest are valid. */
  faults: Partial<Record<Exclude<FaultCategory, 'valid'>, number>>;
  topicPrefix: string;
  /** Put `region` in the payload (default) or only in the topic (`<prefix>/<region>/<meter>`). */
  regionInPayload: boolean;
  /** Wall clock for timestamps (epoch ms). */
  now: () => number;
  /** Meter ids are `<prefix><6 digits>`; default `m-`. Two fleets with different prefixes are two meter populations. */
  meterIdPrefix?: string;
}

export interface GeneratorReport {
  messages: number;
  readings: number;
  by_category: Record<FaultCategory, number>;
  expected: { ingested: number; dropped: Record<string, number> };
}

interface MeterSim {
  id: string;
  region: string;
  kwh: number;
  lastTs: number;         // newest timestamp this meter used (strictly increasing)
  accepted?: { ts: number; kwh: number; reading: Record<string, unknown> }; // the gateway's "latest"
  lastAccepted?: Record<string, unknown>;
  lastStaleTs?: number;
}

export class FleetGenerator {
  private readonly rnd: () => number;
  private readonly meters: MeterSim[];
  private readonly faultTable: Array<[FaultCategory, number]>;
  readonly report: GeneratorReport;

  constructor(private readonly opts: GeneratorOptions) {
    this.rnd = seededRandom(opts.seed);
    this.meters = Array.from({ length: opts.meters }, (_, i) => ({
      id: `${opts.meterIdPrefix ?? 'm-'}${String(i).padStart(6, '0')}`,
      region: opts.regions[i % opts.regions.length] ?? 'region-1',
      kwh: 1000 + Math.floor(this.rnd() * 50_000),
      lastTs: 0,
    }));
    let acc = 0;
    this.faultTable = [];
    for (const [cat, p] of Object.entries(opts.faults) as Array<[FaultCategory, number]>) {
      acc += p;
      this.faultTable.push([cat, acc]);
    }
    if (acc > 1) throw new Error(`meter fleet: fault probabilities add up to ${acc} > 1`);
    const by = Object.fromEntries(Object.keys(FAULT_CATEGORIES).map((k) => [k, 0])) as Record<FaultCategory, number>;
    this.report = { messages: 0, readings: 0, by_category: by, expected: { ingested: 0, dropped: {} } };
  }

  private pickFault(): FaultCategory {
    const x = this.rnd();
    for (const [cat, upTo] of this.faultTable) if (x < upTo) return cat;
    return 'valid';
  }

  private count(cat: FaultCategory): void {
    this.report.by_category[cat]++;
    this.report.readings++;
    const outcome = FAULT_CATEGORIES[cat];
    if (outcome === 'ingested') this.report.expected.ingested++;
    else this.report.expected.dropped[outcome] = (this.report.expected.dropped[outcome] ?? 0) + 1;
  }

  private topicFor(m: MeterSim): string {
    return `${this.opts.topicPrefix}/${m.region}/${m.id}`;
  }

  private nextTs(m: MeterSim): number {
    const ts = Math.max(Math.floor(this.opts.now()), m.lastTs + 1);
    m.lastTs = ts;
    return ts;
  }

  private formatTs(ts: number): number | string {
    // A mix of the three accepted encodings: epoch ms, RFC 3339 and fractional epoch seconds.
    const f = ts % 3;
    if (f === 0) return ts;
    if (f === 1) return new Date(ts).toISOString();
    return ts / 1000;
  }

  private base(m: MeterSim, ts: number, kwh: number): Record<string, unknown> {
    const voltage = 220 + Math.round(this.rnd() * 200) / 10;
    const current = Math.round(this.rnd() * 400) / 10;
    const r: Record<string, unknown> = {
      meter_id: m.id, timestamp: this.formatTs(ts), kwh, voltage, current, power_factor: 0.9 + Math.round(this.rnd() * 10) / 100,
    };
    if (this.opts.regionInPayload) r['region'] = m.region;
    return r;
  }

  /** One reading (object or raw JSON text for malformed_json) and its category. */
  private reading(m: MeterSim, wanted: FaultCategory): { cat: FaultCategory; value: unknown } {
    let cat = wanted;
    if ((cat === 'duplicate' || cat === 'kwh_decreasing') && m.accepted === undefined) cat = 'valid';
    switch (cat) {
      case 'duplicate':
        return { cat, value: m.lastAccepted };
      case 'kwh_decreasing': {
        const acc = m.accepted;
        if (acc === undefined || acc.kwh < 1) return this.reading(m, 'valid');
        return { cat, value: this.base(m, this.nextTs(m), acc.kwh - 0.5) };
      }
      case 'stale': {
        // Older than the meter's newest: accepted out of order, never moves its latest values.
        // Strictly decreasing per meter, so two stale readings never share a timestamp.
        let ts = Math.max(1, (m.accepted?.ts ?? this.opts.now()) - 2 * 3_600_000 - Math.floor(this.rnd() * 1000));
        if (m.lastStaleTs !== undefined && ts >= m.lastStaleTs) ts = m.lastStaleTs - 1;
        m.lastStaleTs = ts;
        const r = this.base(m, ts, Math.max(0, m.kwh - 1));
        if (m.accepted === undefined) m.accepted = { ts, kwh: Math.max(0, m.kwh - 1), reading: r };
        m.lastAccepted = r;
        return { cat, value: r };
      }
      case 'clock_skew':
        return { cat, value: this.base(m, this.opts.now() + 3_600_000 + Math.floor(this.rnd() * 1000), m.kwh) };
      case 'missing_field': {
        const r = this.base(m, this.nextTs(m), m.kwh);
        delete r[['kwh', 'voltage', 'current', 'power_factor', 'timestamp'][Math.floor(this.rnd() * 5)] ?? 'kwh'];
        return { cat, value: r };
      }
      case 'wrong_type':
        return { cat, value: { ...this.base(m, this.nextTs(m), m.kwh), kwh: String(m.kwh) } };
      case 'out_of_range':
        return { cat, value: { ...this.base(m, this.nextTs(m), m.kwh), power_factor: 1.5 + this.rnd() } };
      case 'unknown_region':
        return { cat, value: { ...this.base(m, this.nextTs(m), m.kwh), region: 'atlantis' } };
      case 'not_object':
        return { cat, value: [1, 2, 3][Math.floor(this.rnd() * 3)] };
      case 'malformed_json':
        return { cat, value: undefined };
      case 'valid':
      default: {
        m.kwh += Math.round(this.rnd() * 100) / 100;
        const ts = this.nextTs(m);
        const r = this.base(m, ts, m.kwh);
        m.accepted = { ts, kwh: m.kwh, reading: r };
        m.lastAccepted = r;
        return { cat: 'valid', value: r };
      }
    }
  }

  /** The next message(s): a batch message, plus a separate message for any malformed_json fault. */
  next(): FleetMessage[] {
    const out: FleetMessage[] = [];
    const items: unknown[] = [];
    let topic = '';
    // A batch comes from one head-end: readings of one region (meters of that region only, when
    // the region travels in the topic).
    const first = this.meters[Math.floor(this.rnd() * this.meters.length)];
    if (first === undefined) return out;
    topic = this.topicFor(first);
    for (let i = 0; i < this.opts.batchSize; i++) {
      const m = i === 0 ? first : this.pickMeter(first.region);
      const { cat, value } = this.reading(m, this.pickFault());
      this.count(cat);
      if (cat === 'malformed_json') {
        out.push({ topic: this.topicFor(m), payload: `{"meter_id":"${m.id}","kwh":${m.kwh},` });
        this.report.messages++;
        continue;
      }
      items.push(value);
    }
    if (items.length > 0) {
      out.push({ topic, payload: JSON.stringify(this.opts.batchSize === 1 ? items[0] : items) });
      this.report.messages++;
    }
    return out;
  }

  private pickMeter(region: string): MeterSim {
    // Meters are assigned to regions round-robin: pick one with the same index modulo regions.
    const n = this.opts.regions.length;
    const ri = Math.max(0, this.opts.regions.indexOf(region));
    const perRegion = Math.ceil((this.meters.length - ri) / n);
    const k = Math.floor(this.rnd() * perRegion);
    return this.meters[ri + k * n] ?? this.meters[ri] ?? (this.meters[0] as MeterSim);
  }
}
