// Spec validation errors: each issue names the field, the value, the limit and why.

export interface SpecIssue {
  /** Dotted field path, e.g. "prefill.tile.q". */
  path: string;
  value: unknown;
  /** What the field may be, e.g. "a multiple of 64" or "at most 113 KiB". */
  limit: string;
  /** Why the limit exists. */
  reason: string;
}

export function formatValue(value: unknown): string {
  if (value === undefined) return "(missing)";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

export function formatIssue(issue: SpecIssue): string {
  return `${issue.path} = ${formatValue(issue.value)}: must be ${issue.limit} — ${issue.reason}`;
}

export class SpecError extends Error {
  readonly issues: readonly SpecIssue[];
  readonly specName: string;
  constructor(specName: string, issues: SpecIssue[]) {
    const head = `invalid kernel spec "${specName}" (${issues.length} problem${issues.length === 1 ? "" : "s"}):`;
    super([head, ...issues.map((i) => `  - ${formatIssue(i)}`)].join("\n"));
    this.name = "SpecError";
    this.issues = issues;
    this.specName = specName;
  }
}
