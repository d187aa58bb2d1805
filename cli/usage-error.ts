/** Bad arguments or input files: exit code 2, like an invalid spec. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A command-line number that must be positive (an integer unless `integer` is false). */
export function positiveArg(name: string, v: string, integer = true): number {
  const n = Number(v);
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n <= 0) throw new UsageError(`${name} = ${v}: must be a positive ${integer ? "integer" : "number"}`);
  return n;
}
