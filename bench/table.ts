// Text columns for terminal tables (the CLI's and the bench and tune reports'): left-aligned unless
// `rightAligned` says a column holds numbers.
export function table(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  rightAligned: (column: number) => boolean = () => false,
): string {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const pad = (c: string, i: number) => (rightAligned(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!));
  const line = (r: readonly string[]) => r.map(pad).join("  ").trimEnd();
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}
