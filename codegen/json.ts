// JSON that podgen reads back (case and workload files, bench reports, the tuning database, build
// manifests) is parsed with a zod schema where it is read, so a bad file fails there, naming the
// file and the field, instead of as an undefined deep inside whatever uses it.
import { readFileSync } from "node:fs";
import type { z } from "zod";

/** A JSON file or value that does not have the shape its reader needs: bad input (exit code 2). */
export class JsonInputError extends Error {
  override name = "JsonInputError";
  constructor(
    /** The file (or what the value is), e.g. "bench/results/latest.json". */
    readonly where: string,
    /** Each problem as `field.path: message`. */
    readonly problems: readonly string[],
  ) {
    super(problems.length === 1 ? `${where}: ${problems[0]}` : `${where}: ${problems.length} problems:\n  - ${problems.join("\n  - ")}`);
  }
}

/** At most this many problems are listed (a wrong file can have thousands). */
const MAX_PROBLEMS = 8;

/** `value` as the schema's output; throws JsonInputError naming `where` and each bad field. */
export function parseJson<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join(".");
    // Name the misspelled field itself, not the object holding it.
    if (issue.code === "unrecognized_keys") return issue.keys.map((k) => `${path ? `${path}.` : ""}${k}: unknown field (check the spelling)`);
    return [`${path || "(top level)"}: ${issue.message}`];
  });
  const shown = problems.slice(0, MAX_PROBLEMS);
  if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more`);
  throw new JsonInputError(where, shown);
}

/** Read and parse a JSON file (`what` names it in messages; default: its path). */
export function readJsonFile<S extends z.ZodType>(schema: S, path: string, what = path): z.output<S> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new JsonInputError(what, [`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new JsonInputError(what, [`not valid JSON (${(e as Error).message})`]);
  }
  return parseJson(schema, value, what);
}
