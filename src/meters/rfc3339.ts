// A fast path for RFC 3339 timestamps read straight from payload bytes (payload-scan.ts), so the
// common reading needs neither a timestamp string nor Date.parse. It takes only the plain form
// `YYYY-MM-DDTHH:MM:SS[.fraction]Z|±HH:MM` (upper-case T or a space, upper-case Z) with every field
// in its ordinary range, and answers exactly what validate.ts's parseTimestamp (the RFC3339 pattern,
// then Date.parse) answers for it: V8 lets a day run past its month's end (Feb 30 is March 2, as
// Date.UTC counts) and truncates a fraction to whole ms. Everything else (lower-case t/z, hour 24,
// a leap second, a malformed string) gets NaN, meaning "not sure": the caller then takes the string
// through parseTimestamp, so what is accepted or refused never depends on this file
// (test/meters/rfc3339.test.ts compares both on a large generated set).

const DAY_MS = 86_400_000;

/** Days from 1970-01-01 to the first of month `m` (1-12) of year `y` (proleptic Gregorian, as Date.UTC). */
function daysFromCivil(y: number, m: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5);
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The digits b[at..at+n) as a number, or -1 when one is not a digit. */
function digits(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = (b[i] as number) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Epoch ms of the RFC 3339 timestamp in b[start..end), or NaN when it is not in the plain form. */
export function rfc3339Ms(b: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len < 20) return NaN;
  if (b[start + 4] !== 0x2d || b[start + 7] !== 0x2d || b[start + 13] !== 0x3a || b[start + 16] !== 0x3a) return NaN;
  const t = b[start + 10];
  if (t !== 0x54 && t !== 0x20) return NaN; // 'T' or ' '
  const year = digits(b, start, 4);
  const month = digits(b, start + 5, 2);
  const day = digits(b, start + 8, 2);
  const hour = digits(b, start + 11, 2);
  const minute = digits(b, start + 14, 2);
  const second = digits(b, start + 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return NaN;
  let i = start + 19;
  let ms = 0;
  if (b[i] === 0x2e) { // '.': 1 to 9 digits, whole ms kept
    i++;
    const from = i;
    while (i < end && i - from < 9) {
      const d = (b[i] as number) - 48;
      if (d < 0 || d > 9) break;
      if (i - from < 3) ms = ms * 10 + d;
      i++;
    }
    const n = i - from;
    if (n === 0) return NaN;
    if (n === 1) ms *= 100;
    else if (n === 2) ms *= 10;
  }
  let offsetMin = 0;
  const z = b[i];
  if (z === 0x5a) { // 'Z'
    i++;
  } else if (z === 0x2b || z === 0x2d) { // '+' or '-'
    if (end - i !== 6 || b[i + 3] !== 0x3a) return NaN;
    const oh = digits(b, i + 1, 2);
    const om = digits(b, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
    offsetMin = (oh * 60 + om) * (z === 0x2b ? 1 : -1);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== end) return NaN;
  const days = daysFromCivil(year, month) + day - 1;
  return days * DAY_MS + ((hour * 60 + minute - offsetMin) * 60 + second) * 1000 + ms;
}
