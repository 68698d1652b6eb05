// The metric names an OpenTelemetry Collector's Prometheus exporter writes for an OTLP metric,
// with its default translation (prometheus/otlptranslator, UnderscoreEscapingWithSuffixes):
// invalid characters split the name into tokens joined by `_`; the unit is mapped (ms ->
// milliseconds, s -> seconds, Hz -> hertz, ...) and appended unless a token already equals it;
// `{annotations}` give no suffix; counters end in `_total`; gauges with unit `1` in `_ratio`.
// config/alerts/ems.rules.yaml is written against these names and a test checks it with this.

type PromMetricType = 'counter' | 'gauge' | 'histogram';

const UNIT_WORDS: Readonly<Record<string, string>> = {
  d: 'days', h: 'hours', min: 'minutes', s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds',
  By: 'bytes', KiBy: 'kibibytes', MiBy: 'mebibytes', GiBy: 'gibibytes', TiBy: 'tibibytes',
  KBy: 'kilobytes', MBy: 'megabytes', GBy: 'gigabytes', TBy: 'terabytes',
  m: 'meters', V: 'volts', A: 'amperes', J: 'joules', W: 'watts', g: 'grams',
  Cel: 'celsius', Hz: 'hertz', '1': '', '%': 'percent',
};
const PER_UNIT_WORDS: Readonly<Record<string, string>> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };

const tokens = (s: string): string[] => s.split(/[^a-zA-Z0-9:]+/).filter((t) => t !== '');

function unitSuffixes(unit: string): { main: string; per: string } {
  const [mainRaw = '', perRaw] = unit.split(/\/(.*)/s, 2);
  const main = mainRaw.trim();
  const per = perRaw?.trim() ?? '';
  const mainWord = main !== '' && !/[{}]/.test(main) ? (UNIT_WORDS[main] ?? main) : '';
  const perWord = per !== '' && !/[{}]/.test(per) ? (PER_UNIT_WORDS[per] ?? per) : '';
  return { main: tokens(mainWord).join('_'), per: perWord === '' ? '' : `per_${tokens(perWord).join('_')}` };
}

/** The base Prometheus name (histograms add `_bucket`, `_sum`, `_count` to it). */
export function prometheusName(name: string, unit: string, type: PromMetricType): string {
  let parts = tokens(name);
  const { main, per } = unitSuffixes(unit);
  if (main !== '' && !parts.includes(main)) parts.push(main);
  if (per !== '' && !parts.includes(per)) parts.push(per);
  if (type === 'counter') parts = [...parts.filter((t) => t !== 'total'), 'total'];
  if (unit === '1' && type === 'gauge') parts = [...parts.filter((t) => t !== 'ratio'), 'ratio'];
  const out = parts.join('_');
  return /^[0-9]/.test(out) ? `_${out}` : out;
}
