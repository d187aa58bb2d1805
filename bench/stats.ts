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
