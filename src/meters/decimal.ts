// The correctly rounded double of a plain decimal of up to 19 significant digits, without making
// a string for Number(): what payload-scan.ts needs for the 16 and 17 digit decimals a float sum
// prints (19334.960000000003, 0.9500000000000001), whose digits no longer fit a double exactly.
//
// The digits' integer m (< 10^19 < 2^64) is held exactly as the sum of two doubles; a candidate
// q = m / 10^f is checked by its exact residual m - q * 10^f (Dekker's error-free product), which
// says whether m / 10^f lies inside q's rounding interval. A candidate that is not, is replaced by
// its neighbour; when the exact value lies too near an interval's edge for the check's own error
// (a tie, or nearer to one than 2^-49 times the size of the residual's terms, about an ulp x 10^f),
// the answer is NaN: the caller asks Number(), which decides ties (round half to even) itself. So
// a value returned is always Number()'s value of the same text.

/** 2^27 + 1: Veltkamp's split of a double into two halves of 26 bits. */
const SPLITTER = 134217729;
/** Powers of ten exact as doubles: 10^0 to 10^22. */
export const POW10: readonly number[] = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** A double's bits, for its exponent (a store and two 32-bit loads of it: no slow store forwarding). */
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
/** ULP[e]: the spacing of the doubles whose biased exponent is e (normal ones: 2^(e - 1075)). */
const ULP = Float64Array.from({ length: 2048 }, (_, e) => 2 ** (Math.max(e, 1) - 1075));

/** The rounding error of a * b (exactly a * b - fl(a * b)), for |a|, |b| far from overflow and underflow. */
function productError(a: number, b: number, p: number): number {
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/** The most significant digits this reads; a longer decimal is NaN (Number() reads it). */
const MAX_EXACT_DIGITS = 19;

/**
 * The value of the unsigned decimal b[s..e): ASCII digits with at most one '.', no sign, no
 * exponent, `frac` of the digits after the point (at most 22). NaN when it has more than 19
 * significant digits or lies too close to a tie between two doubles to decide here.
 */
export function exactDecimal(b: Uint8Array, s: number, e: number, frac: number): number {
  if (frac >= POW10.length) return NaN;
  // m = hi * 10^r + lo: hi the first (up to) 10 significant digits (< 10^10), lo the r after them (< 10^9).
  let hi = 0;
  let lo = 0;
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = b[i] as number;
    if (c === 0x2e) continue;
    if (n < 10) {
      hi = hi * 10 + (c - 48);
      if (hi !== 0) n++; // leading zeros are not significant
    } else {
      lo = lo * 10 + (c - 48);
      n++;
    }
  }
  if (n > MAX_EXACT_DIGITS) return NaN;
  const scale = POW10[n > 10 ? n - 10 : 0] as number;
  // hi * 10^r may exceed 2^53: as hh * 10^r * 2^17 + hl * 10^r, each term exact (< 2^64, 47 significant bits).
  const hh = Math.floor(hi / 131072);
  const t1 = hh * scale * 131072;
  const t2 = (hi - hh * 131072) * scale + lo;
  // m exactly as mh + ml (TwoSum).
  const mh = t1 + t2;
  if (mh === 0) return 0;
  const bv = mh - t1;
  const ml = (t1 - (mh - bv)) + (t2 - bv);
  const p = POW10[frac] as number;
  let q = mh / p;
  // q is within an ulp of m / p; at most two steps find the double whose rounding interval holds it.
  for (let step = 0; step < 3; step++) {
    const qp = q * p;
    const qe = productError(q, p, qp);
    const d = mh - qp; // exact (Sterbenz: qp is within a factor of 2 of mh)
    const r = d + (ml - qe); // m - q * p, to within `tol`
    const tol = (Math.abs(d) + Math.abs(ml) + Math.abs(qe) + Math.abs(r)) * 2 ** -49;
    F64[0] = q;
    const hw = U32[HI] as number;
    const ulp = ULP[(hw >>> 20) & 0x7ff] as number;
    // below a power of two the doubles are twice as dense
    const ulpBelow = (hw & 0xfffff) === 0 && U32[LO] === 0 ? ulp / 2 : ulp;
    const up = ulp * p * 0.5;
    const down = ulpBelow * p * 0.5;
    if (r < up - tol && r > tol - down) return q;
    if (Math.abs(r - up) <= tol || Math.abs(r + down) <= tol) return NaN; // (nearly) a tie
    q = r > 0 ? q + ulp : q - ulpBelow;
  }
  return NaN;
}
