// Text columns for terminal tables (the CLI's and the bench and tune reports'): left-aligned unless
// `rightAligned` says a column holds numbers.
export function table(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  rightAligned: (column: number) => boolean = () => false,
): string {
  const cells = rows.map((r) => r.map(String));
  const c = columns(header, header.map((_, i) => Math.max(0, ...cells.map((r) => (r[i] ?? "").length))), rightAligned);
  return [c.head, ...cells.map(c.row)].join("\n");
}

/**
 * The same columns for a table printed a row at a time, as its rows come (`podgen verify`): the
 * widths are fixed up front, each at least its header's and `widths[i]`; a longer cell still
 * prints whole, shifting the rest of its row.
 */
export function columns(
  header: readonly string[],
  widths: readonly number[],
  rightAligned: (column: number) => boolean = () => false,
): { head: string; row: (cells: readonly (string | number)[]) => string } {
  const w = header.map((h, i) => Math.max(h.length, widths[i] ?? 0));
  const pad = (c: string, i: number) => (rightAligned(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!));
  const line = (r: readonly (string | number)[]) => r.map((c, i) => pad(String(c), i)).join("  ").trimEnd();
  return { head: [line(header), w.map((n) => "-".repeat(n)).join("  ")].join("\n"), row: line };
}
