// Summary statistics of the bench and tune reports.

/** The geometric mean of the positive values (null and the rest left out); null when there are none. */
export function geomean(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && x > 0);
  return v.length ? Math.exp(v.reduce((s, x) => s + Math.log(x), 0) / v.length) : null;
}

/** The middle value (of an even count, the upper of the two); null when there are none. */
export function upperMedian(xs: readonly number[]): number | null {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : null;
}

/** The nearest-rank q-quantile (0 < q < 1): the smallest value with at least q of them at or below it; null when there are none. */
export function quantile(xs: readonly number[], q: number): number | null {
  if (!(q > 0 && q < 1)) throw new RangeError(`quantile: q = ${q} must be in (0, 1)`);
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.ceil(q * s.length) - 1]! : null;
}
