// exactDecimal (src/meters/decimal.ts) against Number() of the same text: on random decimals of 1
// to 19 significant digits, on the exact midpoints between neighbouring doubles (ties, which it
// must leave to Number()) and on decimals a digit away from them, where a wrong rounding would
// show. Whatever it returns must be Number()'s value, bit for bit; NaN (undecided) must stay rare.
import { describe, expect, it } from 'vitest';
import { exactDecimal } from '../../src/meters/decimal.js';
import { seededRandom } from '../../simulators/random.js';

/** exactDecimal of a decimal text (optional '-'), sign applied as the scanner applies it. */
function read(text: string): number {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  const dot = body.indexOf('.');
  const frac = dot < 0 ? 0 : body.length - dot - 1;
  const v = exactDecimal(Buffer.from(body, 'latin1'), 0, body.length, frac);
  return neg ? -v : v;
}

/** The decimal text of the exact value n / 2^k (n, k >= 0), all its digits. */
function binaryToDecimal(n: bigint, k: number): string {
  // n / 2^k = n * 5^k / 10^k
  const digits = (n * 5n ** BigInt(k)).toString().padStart(k + 1, '0');
  return k === 0 ? digits : `${digits.slice(0, digits.length - k)}.${digits.slice(digits.length - k)}`;
}

/** The double's exact value as numerator and power-of-two denominator (positive normal doubles). */
function exactParts(x: number): [bigint, number] {
  const f = new Float64Array([x]);
  const bits = new BigUint64Array(f.buffer)[0] as bigint;
  const e = Number((bits >> 52n) & 0x7ffn);
  const mant = (bits & ((1n << 52n) - 1n)) | (1n << 52n);
  const k = 1075 - e; // x = mant * 2^(e - 1075)
  return k >= 0 ? [mant, k] : [mant << BigInt(-k), 0];
}

/** The text cut to `digits` significant digits (truncated), keeping the point where it is. */
function cut(text: string, digits: number): string {
  let seen = 0;
  let started = false;
  let out = '';
  for (const ch of text) {
    if (ch === '.') { out += ch; continue; }
    if (ch !== '0') started = true;
    if (started) seen++;
    if (seen > digits) out += '0';
    else out += ch;
  }
  return out.includes('.') ? out.replace(/0+$/, '').replace(/\.$/, '') : out;
}

/** Adds `delta` units of the last digit to a decimal text (same length and point; no carry past the front needed here). */
function bump(text: string, delta: 1 | -1): string {
  const chars = [...text];
  for (let i = chars.length - 1; i >= 0; i--) {
    if (chars[i] === '.') continue;
    const d = Number(chars[i]) + delta;
    if (d >= 0 && d <= 9) { chars[i] = String(d); return chars.join(''); }
    chars[i] = delta > 0 ? '0' : '9';
  }
  return text;
}

function expectSameAsNumber(text: string, undecided: { n: number }): void {
  const got = read(text);
  if (Number.isNaN(got)) { undecided.n++; return; }
  if (!Object.is(got, Number(text))) expect({ text, got }).toEqual({ text, got: Number(text) });
}

describe('exactDecimal: the correctly rounded double of a plain decimal, or NaN', () => {
  it('reads the long decimals float sums print, exactly, without giving up', () => {
    for (const t of ['0.9500000000000001', '0.9400000000000001', '19334.960000000003', '8677.039999999999', '3757.3799999999997',
      '0.30000000000000004', '9007199254740994', '18014398509481985', '12345678901234568', '1234567890123456789', '4503599627370497.4',
      '0.12345678901234567', '1796679227.9880001', '-0.9500000000000001', '9999999999999999999', '0.000001234567890123456']) {
      expect(Object.is(read(t), Number(t)), t).toBe(true);
    }
  });

  it('gives up on what it does not read: exact ties, more than 19 digits, more than 22 after the point', () => {
    expect(read('9007199254740993')).toBeNaN(); // 2^53 + 1: halfway between 2^53 and 2^53 + 2
    expect(read('-9007199254740995')).toBeNaN();
    expect(read('12345678901234567890')).toBeNaN();
    expect(read('0.12345678901234567890')).toBeNaN();
    expect(read('0.00000000000000000000001')).toBeNaN(); // 23 digits after the point
  });

  it('agrees with Number() on 200,000 random decimals of 1 to 19 significant digits', () => {
    const rnd = seededRandom(8);
    const undecided = { n: 0 };
    const total = 200_000;
    for (let i = 0; i < total; i++) {
      const digits = 1 + Math.floor(rnd() * 19);
      let d = String(1 + Math.floor(rnd() * 9));
      for (let j = 1; j < digits; j++) d += String(Math.floor(rnd() * 10));
      const zeros = rnd() < 0.2 ? Math.floor(rnd() * 4) : 0;
      const body = `${'0'.repeat(zeros)}${d}`;
      const point = Math.floor(rnd() * (body.length + 1));
      let text = point === body.length ? body : `${body.slice(0, point) || '0'}.${body.slice(point)}`;
      if (text.includes('.') && text.length - text.indexOf('.') - 1 > 22) continue;
      if (rnd() < 0.3) text = `-${text}`;
      expectSameAsNumber(text, undecided);
    }
    expect(undecided.n).toBeLessThan(total / 1000);
  });

  it('leaves exact ties to Number(), and rounds the decimals either side of them right', () => {
    const rnd = seededRandom(9);
    const undecided = { n: 0 };
    let ties = 0;
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      // a double in [2^-20, 2^63), its upper neighbour, and the exact midpoint between them
      const x = 2 ** (Math.floor(rnd() * 83) - 20) * (1 + rnd());
      const [n, k] = exactParts(x);
      const mid = binaryToDecimal(2n * n + 1n, k + 1);
      const dot = mid.indexOf('.');
      const frac = dot < 0 ? 0 : mid.length - dot - 1;
      const sig = mid.replace('.', '').replace(/^0+/, '').length;
      if (sig <= 19 && frac <= 22) {
        ties++;
        const got = read(mid);
        // A tie is decided by Number() (round half to even): never a guess here.
        expect(Number.isNaN(got) || Object.is(got, Number(mid)), mid).toBe(true);
      }
      // Near the tie: the midpoint cut to 17-19 digits, and a last-digit step either way.
      const c = cut(mid, 17 + Math.floor(rnd() * 3));
      const cd = c.indexOf('.');
      if (cd >= 0 && c.length - cd - 1 > 22) continue;
      for (const t of [c, bump(c, 1), bump(c, -1)]) {
        if (t.replace('.', '').replace(/^0+/, '').length > 19) continue;
        expectSameAsNumber(t, undecided);
        checked++;
      }
    }
    expect(ties).toBeGreaterThan(100);
    expect(checked).toBeGreaterThan(10_000);
    // Near-ties within its own error bound are left to Number(); they are rare even here.
    expect(undecided.n).toBeLessThan(checked / 10);
  });

  it('rounds right around powers of two, where the doubles below are twice as dense as above', () => {
    const undecided = { n: 0 };
    let checked = 0;
    for (let k = 0; k < 64; k++) {
      // 2^k + f * 2^(k - 56): f eighths of the spacing of the doubles below 2^k (sixteenths above it); no ties (-4, 8)
      for (const f of [-7, -6, -5, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14, 15]) {
        const n = (1n << 56n) + BigInt(f);
        const exact = k >= 56 ? binaryToDecimal(n << BigInt(k - 56), 0) : binaryToDecimal(n, 56 - k);
        for (const text of [cut(exact, 19), cut(exact, 18)]) {
          expectSameAsNumber(text, undecided);
          checked++;
        }
      }
    }
    expect(checked).toBe(64 * 19 * 2);
    expect(undecided.n).toBe(0);
  });
});
