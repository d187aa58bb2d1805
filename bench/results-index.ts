// bench/results/index.json: one line per recorded result in bench/results — when, on which GPU, at
// which commit, what kind of run, and what it says — so a reader can find a run without opening
// seventy files. The index is derived from the files (never edited by hand); a test fails when a
// result is missing from it or it is stale.
//
//   npx tsx bench/results-index.ts            rewrite bench/results/index.json
//   npx tsx bench/results-index.ts --check    exit 1 (listing the differences) when it is out of date
//
// The files were written by several tools over time (podgen bench, the GPU suite, compute-sanitizer
// and ncu runs written up by hand, tune summaries), so each field is read from whichever of the
// known places a file has it, and is null where it has none.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { writeFileAtomic } from "../codegen/fs.ts";
import { readJsonFile } from "../codegen/json.ts";

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "results");
export const INDEX_FILE = "index.json";

export const RESULT_KINDS = ["bench", "family-bench", "tune", "gpu-suite", "sanitizers", "ncu", "other"] as const;
export type ResultKind = (typeof RESULT_KINDS)[number];

export interface IndexRow {
  file: string;
  /** The run's own timestamp where it recorded one, else the date of its file name. */
  date: string | null;
  gpu: string | null;
  /** The leading commit hash of the file's commit field ("-dirty": measured from a modified tree). */
  commit: string | null;
  kind: ResultKind;
  summary: string;
}

export interface ResultsIndex {
  generatedBy: string;
  files: IndexRow[];
}

const indexSchema = z.strictObject({
  generatedBy: z.string(),
  files: z.array(
    z.strictObject({
      file: z.string().regex(/\.json$/),
      date: z.string().nullable(),
      gpu: z.string().nullable(),
      commit: z.string().nullable(),
      kind: z.enum(RESULT_KINDS),
      summary: z.string().regex(/^[^\n]*$/, "one line"),
    }),
  ),
}) satisfies z.ZodType<ResultsIndex>;

export function readResultsIndex(path = join(RESULTS_DIR, INDEX_FILE)): ResultsIndex {
  return readJsonFile(indexSchema, path, `results index ${path}`);
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === "string" && v.trim() !== "" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const SUMMARY_CHARS = 160;

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= SUMMARY_CHARS ? flat : `${flat.slice(0, SUMMARY_CHARS - 1)}…`;
}

/** A podgen bench report: per-workload rows with the fused times (as bench/schemas.ts reads them). */
const isBenchReport = (j: Json) => Array.isArray(j.workloads) && typeof j.workloads[0] === "object" && j.workloads[0] !== null && "fused_ms" in j.workloads[0];

function kindOf(file: string, j: Json): ResultKind {
  // The name says what a hand-written record is; its fields may look like anything.
  if (file.includes("gpu-suite")) return "gpu-suite";
  if (file.includes("-sanitizers")) return "sanitizers";
  if (file.includes("-ncu")) return "ncu";
  if (file.includes("-tune")) return "tune";
  if (isBenchReport(j)) return "bench";
  if (j.kind === "family-bench") return "family-bench";
  if (Array.isArray(j.cases) && "passed" in j) return "gpu-suite";
  return "other";
}

/** compute-sanitizer's summary line of one tool, from the forms the records keep it in (a list of output lines, or {summary, result}). */
function sanitizerSummary(v: unknown): string | undefined {
  const lines = Array.isArray(v) ? v : typeof v === "object" && v !== null ? Object.values(v as Json) : [];
  const line = lines.map(str).find((l) => l !== undefined && /SUMMARY:/.test(l));
  return line?.replace(/^=+\s*/, "");
}

function summaryOf(file: string, j: Json, kind: ResultKind, copyOf: string | undefined): string {
  if (copyOf) return `the same bytes as ${copyOf}`;
  // Written-up records say what they are in one of these fields, the most specific first.
  const prose = ["note", "description", "what", "question", "experiment", "change", "result", "commit_note", "caveat", "reading", "per_workload_note"]
    .map((k) => str(j[k]))
    .find((v) => v !== undefined);
  if (kind === "bench") {
    const s = (j.summary ?? {}) as Json;
    const serial = num(s.geomean_speedup_vs_serial);
    const torch = num(s.geomean_speedup_vs_torch);
    const figures = [`${(j.workloads as unknown[]).length} workloads`];
    if (serial !== undefined) figures.push(`fused ${serial.toFixed(2)}× serial`);
    if (torch !== undefined) figures.push(`${torch.toFixed(2)}× PyTorch (geomeans)`);
    return oneLine(figures.join(", ") + (prose ? `; ${prose}` : ""));
  }
  if (kind === "family-bench") {
    // bench/family-report.ts: what auto gets on the batches it was not fitted on.
    const held = ((j.summary ?? {}) as Json).heldout as Json | undefined;
    const auto = ((held?.speedup ?? {}) as Json).auto as Json | undefined;
    const x = (v: unknown, digits: number) => (num(v) === undefined ? "-" : num(v)!.toFixed(digits));
    return oneLine(
      `${str(j.family) ?? "family"}: ${num(held?.batches) ?? 0} held-out batches, auto ${x(auto?.vsOwnSerial, 2)}× our serial, ${x(auto?.vsTorch, 2)}× PyTorch, ` +
        `auto / best-of-family ${x(held?.autoOverBest, 3)} (geomeans)`,
    );
  }
  if (j.kind === "family-timings" && Array.isArray(j.batches) && Array.isArray(j.members)) {
    return oneLine(`${str(j.family) ?? "family"}: every member fused and serial timed on ${j.batches.length} batches, the cost model's fit (podgen tune --family)`);
  }
  if (kind === "sanitizers") {
    const tools = ["memcheck", "racecheck", "synccheck", "initcheck"].flatMap((t) => {
      const line = sanitizerSummary(j[t]);
      return line ? [`${t}: ${line}`] : [];
    });
    if (tools.length > 0) return oneLine(tools.join("; "));
  }
  if (kind === "gpu-suite" && num(j.passed) !== undefined) {
    return oneLine(`${j.passed} passed, ${num(j.failed) ?? 0} failed, ${num(j.skipped) ?? 0} skipped` + (prose ? `; ${prose}` : ""));
  }
  if (kind === "gpu-suite" && typeof j.suite === "object" && j.suite !== null) {
    const note = str((j.suite as Json).note);
    if (note) return oneLine(note);
  }
  if (prose) return oneLine(prose);
  const command = str(j.command) ?? (Array.isArray(j.commands) ? str(j.commands[0]) : undefined);
  if (command) return oneLine(command);
  if (file === "build.json" && str(j.preset)) return oneLine(`generate and nvcc build times of ${j.preset} (scripts in bench/build-speed.ts)`);
  return oneLine(`fields: ${Object.keys(j).join(", ")}`);
}

function commitOf(j: Json): string | null {
  const raw = str(j.commit) ?? str(j.kernels_commit) ?? str(j.bundle_commit);
  return raw ? (/^[0-9a-f]{7,40}(-dirty)?/.exec(raw)?.[0] ?? null) : null;
}

function dateOf(file: string, j: Json): string | null {
  return str(j.date) ?? str(j.startedAt) ?? /^\d{4}-\d{2}-\d{2}/.exec(file)?.[0] ?? null;
}

function gpuOf(j: Json): string | null {
  // Some records keep nvidia-smi's whole CSV line ("NAME, driver, clock, ..."): its first column.
  const raw = str(j.gpu);
  return raw ? raw.split(",")[0]!.trim() : null;
}

/** The index of every JSON file in `dir` (but the index itself), sorted by file name. */
export function buildResultsIndex(dir = RESULTS_DIR): ResultsIndex {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json") && f !== INDEX_FILE)
    .sort();
  const texts = new Map(files.map((f) => [f, readFileSync(join(dir, f), "utf8")]));
  const rows = files.map((file): IndexRow => {
    const text = texts.get(file)!;
    let j: Json;
    try {
      const parsed: unknown = JSON.parse(text);
      j = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Json) : {};
    } catch (e) {
      throw new Error(`${join(dir, file)}: not valid JSON (${(e as Error).message})`);
    }
    // latest.json is a copy of a dated report; say which, so the index does not list a run twice unexplained.
    const copyOf = files.find((other) => other !== file && other !== "latest.json" && texts.get(other) === text);
    const kind = kindOf(file, j);
    return { file, date: dateOf(file, j), gpu: gpuOf(j), commit: commitOf(j), kind, summary: summaryOf(file, j, kind, file === "latest.json" ? copyOf : undefined) };
  });
  return { generatedBy: "npx tsx bench/results-index.ts", files: rows };
}

export const formatResultsIndex = (index: ResultsIndex) => JSON.stringify(index, null, 1) + "\n";

/** What is out of date in `dir`'s index: missing or extra files, stale rows. Empty: up to date. */
export function checkResultsIndex(dir = RESULTS_DIR): string[] {
  const want = buildResultsIndex(dir);
  let have: ResultsIndex;
  try {
    have = readResultsIndex(join(dir, INDEX_FILE));
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  const haveRows = new Map(have.files.map((r) => [r.file, r]));
  const wantFiles = new Set(want.files.map((r) => r.file));
  for (const r of want.files) {
    const old = haveRows.get(r.file);
    if (!old) problems.push(`${r.file}: not in the index`);
    else if (JSON.stringify(old) !== JSON.stringify(r)) problems.push(`${r.file}: stale row`);
  }
  for (const f of haveRows.keys()) if (!wantFiles.has(f)) problems.push(`${f}: in the index, but no such file`);
  if (problems.length === 0 && formatResultsIndex(have) !== formatResultsIndex(want)) problems.push("the index's order or header differs from a fresh one");
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = join(RESULTS_DIR, INDEX_FILE);
  if (process.argv.includes("--check")) {
    const problems = checkResultsIndex();
    if (problems.length > 0) {
      console.error(`bench/results/${INDEX_FILE} is out of date (run \`npx tsx bench/results-index.ts\`):\n  ${problems.join("\n  ")}`);
      process.exitCode = 1;
    } else console.log(`bench/results/${INDEX_FILE} is up to date`);
  } else {
    const index = buildResultsIndex();
    writeFileAtomic(path, formatResultsIndex(index));
    console.log(`wrote bench/results/${INDEX_FILE}: ${index.files.length} files`);
  }
}
