// The tuning database (bench/tuning/db.json): every candidate `podgen tune` measured, keyed the way
// Triton keys its autotune cache — by what decides the winner:
//
//   GPU name + compute capability | model shape (dtype, heads, D, KV cache) | workload mix
//
// An entry holds each candidate's build and verification outcome and its timing per workload (the
// highest-fidelity one: most iterations). Writes are atomic (temp file + rename) and happen after
// every measurement, so an interrupted tune resumes where it stopped. `tunedSpec` is the runtime
// loader: the best verified, fully measured candidate for the GPU in hand, or the base spec with a
// message saying why.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { writeFileAtomic } from "../../codegen/fs.ts";
import { JsonInputError, parseJson } from "../../codegen/json.ts";
import { canonicalJson, checkSpec, specFields, type KernelSpec, type SpacePoint } from "../../dsl/index.ts";
import type { BatchShape } from "../../runtime/batch.ts";

export const DB_VERSION = 1;
export const DEFAULT_DB = join(dirname(fileURLToPath(import.meta.url)), "..", "tuning", "db.json");

/** The GPU part of a key, from DeviceInfo (or a test's stand-in). */
export interface GpuId {
  name: string;
  ccMajor: number;
  ccMinor: number;
}

export interface WorkloadMix {
  /** The workload file's name (e.g. "paper.json") and, when filtered, the chosen names. */
  label: string;
  /** sha256 (12 hex) of the chosen workloads' names and shapes: the key part. */
  hash: string;
  names: string[];
}

export interface Timed {
  /** Median ms (null: the run failed or wrote non-finite outputs; see error). */
  ms: number | null;
  iters: number;
  error?: string;
  date: string;
}

export interface CandidateRecord {
  name: string;
  specHash: string;
  /** The space point that made it ({} for the base spec). */
  point: SpacePoint;
  isBase: boolean;
  /** The complete spec fields (normalizeSpec(fields) gives the candidate again). */
  fields: Record<string, unknown>;
  /** `key`: the build's content hash (spec, generated sources, kernel headers, nvcc, flags). */
  build?: { ok: boolean; key?: string; seconds?: number; error?: string; warnings?: string[] };
  verify?: { pass: boolean; worstO: number; worstLse: number; problems: string[] };
  /** Per workload name. */
  timings: Record<string, Timed>;
}

export interface RunSummary {
  date: string;
  strategy: string;
  /** Candidates in play after pruning (base included). */
  candidates: number;
  /** Timed launches used (Σ iterations of every fresh measurement) and as full evaluations (÷ workloads × iters). */
  cost: number;
  fullEvaluations: number;
  /** What exhaustive would cost: candidates × workloads × iters. */
  exhaustiveCost: number;
  best: { name: string; totalMs: number } | null;
  base: { name: string; totalMs: number } | null;
  /** Relative gap of this run's best to the best fully measured candidate of the entry (0 = found it). */
  gapToBest: number | null;
  stopped?: string;
}

export interface Entry {
  key: string;
  gpu: GpuId;
  shape: string;
  workloads: WorkloadMix;
  base: { name: string; specHash: string };
  updated: string;
  candidates: Record<string, CandidateRecord>;
  // No list of the points the resource model pruned: it follows from the space and the base spec
  // (enumerateSpace), and a stored one goes stale as soon as the model changes. Reports recompute it.
  runs: RunSummary[];
}

export interface TuningDb {
  version: number;
  entries: Record<string, Entry>;
}

// ---------------------------------------------------------------------------------------------
// Keys

export const gpuKey = (gpu: GpuId) => `${gpu.name} (cc ${gpu.ccMajor}.${gpu.ccMinor})`;

/** The model shape a kernel serves: what makes two specs interchangeable for one model. */
export function shapeKey(spec: Pick<KernelSpec, "dtype" | "heads" | "headDim" | "kvCache">): string {
  const kv = spec.kvCache.kind === "paged" ? `page ${spec.kvCache.pageSize}` : "contiguous";
  return `${spec.dtype} heads ${spec.heads.q}/${spec.heads.kv} D${spec.headDim} ${kv}`;
}

export function workloadMix(file: string, workloads: readonly { name: string; shape: BatchShape }[], filtered: boolean): WorkloadMix {
  const names = workloads.map((w) => w.name);
  const hash = createHash("sha256")
    .update(canonicalJson(workloads.map((w) => ({ name: w.name, prefills: w.shape.prefills, decodes: w.shape.decodes }))))
    .digest("hex")
    .slice(0, 12);
  return { label: filtered ? `${basename(file)} [${names.join(", ")}]` : basename(file), hash, names };
}

export function entryKey(gpu: GpuId, shape: string, mix: WorkloadMix): string {
  return `${gpuKey(gpu)} | ${shape} | ${mix.label}#${mix.hash}`;
}

// ---------------------------------------------------------------------------------------------
// Reading and writing

export function emptyDb(): TuningDb {
  return { version: DB_VERSION, entries: {} };
}

// The database's schema, checked against the interfaces above (a field added to one and not the
// other fails typecheck). Objects keep fields this podgen does not know, so that a rewrite of a
// newer database loses none of them; missing or mistyped known fields are errors naming the field.
const timedSchema = z.looseObject({ ms: z.number().nullable(), iters: z.number(), error: z.string().optional(), date: z.string() });
const candidateSchema = z.looseObject({
  name: z.string(),
  specHash: z.string(),
  point: z.record(z.string(), z.unknown()),
  isBase: z.boolean(),
  fields: z.record(z.string(), z.unknown()),
  build: z.looseObject({ ok: z.boolean(), key: z.string().optional(), seconds: z.number().optional(), error: z.string().optional(), warnings: z.array(z.string()).optional() }).optional(),
  // NaN (a candidate that threw) is written as null.
  verify: z.looseObject({ pass: z.boolean(), worstO: z.number().nullable().transform((v) => v ?? NaN), worstLse: z.number().nullable().transform((v) => v ?? NaN), problems: z.array(z.string()) }).optional(),
  timings: z.record(z.string(), timedSchema),
}) satisfies z.ZodType<CandidateRecord>;
const bestSchema = z.looseObject({ name: z.string(), totalMs: z.number() }).nullable();
const runSchema = z.looseObject({
  date: z.string(),
  strategy: z.string(),
  candidates: z.number(),
  cost: z.number(),
  fullEvaluations: z.number(),
  exhaustiveCost: z.number(),
  best: bestSchema,
  base: bestSchema,
  gapToBest: z.number().nullable(),
  stopped: z.string().optional(),
}) satisfies z.ZodType<RunSummary>;
const entrySchema = z.looseObject({
  key: z.string(),
  gpu: z.looseObject({ name: z.string(), ccMajor: z.number(), ccMinor: z.number() }),
  shape: z.string(),
  workloads: z.looseObject({ label: z.string(), hash: z.string(), names: z.array(z.string()) }),
  base: z.looseObject({ name: z.string(), specHash: z.string() }),
  updated: z.string(),
  candidates: z.record(z.string(), candidateSchema),
  runs: z.array(runSchema),
}) satisfies z.ZodType<Entry>;
const dbSchema = z.looseObject({ version: z.number(), entries: z.record(z.string(), entrySchema) }) satisfies z.ZodType<TuningDb>;

export function readDb(path = DEFAULT_DB): TuningDb {
  if (!existsSync(path)) return emptyDb();
  const what = `tuning database ${path}`;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new JsonInputError(what, [`not valid JSON (${(e as Error).message}); move it away to start a new one`]);
  }
  // The version first: another version's fields are not this one's to judge.
  const { version } = parseJson(z.looseObject({ version: z.unknown() }), json, what);
  if (version !== DB_VERSION) throw new JsonInputError(what, [`version = ${JSON.stringify(version)}: this podgen reads version ${DB_VERSION}`]);
  const db = parseJson(dbSchema, json, what);
  // Databases written before pruned lists were dropped have one per entry (half the file): drop it
  // on read, so the next write migrates the file. Older podgens read an entry without it (optional).
  for (const entry of Object.values(db.entries)) delete (entry as { pruned?: unknown }).pruned;
  return db;
}

/** Atomic: a reader (or a crash) never sees half a file. Keys are written sorted: same DB, same bytes. */
export function writeDb(db: TuningDb, path = DEFAULT_DB): void {
  writeFileAtomic(path, JSON.stringify(JSON.parse(canonicalJson(db)), null, 1) + "\n");
}

export function newEntry(key: string, gpu: GpuId, base: KernelSpec, mix: WorkloadMix): Entry {
  return { key, gpu, shape: shapeKey(base), workloads: mix, base: { name: base.name, specHash: base.hash }, updated: new Date().toISOString(), candidates: {}, runs: [] };
}

export function candidateRecord(c: { name: string; spec: KernelSpec; point: SpacePoint; isBase: boolean }): CandidateRecord {
  return { name: c.name, specHash: c.spec.hash, point: c.point, isBase: c.isBase, fields: specFields(c.spec) as unknown as Record<string, unknown>, timings: {} };
}

/**
 * An entry of one tuning run, written through to disk after every change (`save`). The run reads
 * the file once; it is the only writer of its entry.
 */
export class TuningStore {
  readonly entry: Entry;
  private readonly db: TuningDb;

  constructor(
    readonly path: string,
    key: string,
    init: () => Entry,
    /** Keep the DB in memory only (tests, dry runs). */
    private readonly persist = true,
  ) {
    this.db = persist ? readDb(path) : emptyDb();
    this.entry = this.db.entries[key] ??= init();
  }

  candidate(c: { name: string; spec: KernelSpec; point: SpacePoint; isBase: boolean }): CandidateRecord {
    const existing = this.entry.candidates[c.spec.hash];
    if (existing) return existing;
    return (this.entry.candidates[c.spec.hash] = candidateRecord(c));
  }

  /** A timing at ≥ `iters` iterations, if one was recorded. */
  timing(specHash: string, workload: string, iters: number): Timed | undefined {
    const t = this.entry.candidates[specHash]?.timings[workload];
    return t && t.iters >= iters ? t : undefined;
  }

  /** Record a timing; a lower-fidelity one never replaces a higher-fidelity one. */
  recordTiming(specHash: string, workload: string, t: Timed): void {
    const rec = this.entry.candidates[specHash];
    if (!rec) throw new Error(`internal: timing for unknown candidate ${specHash}`);
    const old = rec.timings[workload];
    if (!old || t.iters >= old.iters) rec.timings[workload] = t;
    this.save();
  }

  save(): void {
    this.entry.updated = new Date().toISOString();
    if (this.persist) writeDb(this.db, this.path);
  }
}

// ---------------------------------------------------------------------------------------------
// Ranking and lookup

export interface Ranked {
  record: CandidateRecord;
  totalMs: number;
  perWorkload: number[];
}

/**
 * Candidates that passed verification and have a successful timing at ≥ `minIters` for every
 * workload of the mix, fastest total first. A candidate that failed verification is never ranked.
 */
export function rankEntry(entry: Entry, minIters = 1): Ranked[] {
  const out: Ranked[] = [];
  for (const record of Object.values(entry.candidates)) {
    if (!record.verify?.pass) continue;
    const per = entry.workloads.names.map((w) => {
      const t = record.timings[w];
      return t && t.ms !== null && t.iters >= minIters ? t.ms : null;
    });
    if (per.some((x) => x === null)) continue;
    out.push({ record, perWorkload: per as number[], totalMs: (per as number[]).reduce((a, b) => a + b, 0) });
  }
  return out.sort((a, b) => a.totalMs - b.totalMs || a.record.name.localeCompare(b.record.name));
}

/** Entries for a base spec's model shape, optionally one GPU and one workload mix. */
export function findEntries(db: TuningDb, base: KernelSpec, filter: { gpu?: GpuId; mixHash?: string } = {}): Entry[] {
  const shape = shapeKey(base);
  return Object.values(db.entries).filter(
    (e) =>
      e.shape === shape &&
      (!filter.gpu || gpuKey(e.gpu) === gpuKey(filter.gpu)) &&
      (!filter.mixHash || e.workloads.hash === filter.mixHash),
  );
}

export interface TunedLookupOptions {
  db?: TuningDb;
  dbPath?: string;
  mixHash?: string;
  /**
   * The build key the current templates and nvcc give a spec (codegen/build.ts buildKeyFor). Given,
   * a candidate whose recorded build key differs is stale -- its timings are of other kernels -- and
   * is not ranked. Omitted, build keys are not checked (no nvcc to ask).
   */
  buildKey?: (spec: KernelSpec) => string;
}

export interface TunedLookup {
  spec: KernelSpec;
  tuned: boolean;
  /** Why this spec: the entry and its gain, or why the base is used. */
  message: string;
  entry?: Entry;
  best?: Ranked;
  /** Measured candidates left out: built from other kernels (stale), or whose fields no longer give the measured spec. */
  ignored: { stale: number; invalid: number };
}

/**
 * The best tuned spec for `base` on `gpu`: among the DB's entries for this GPU and model shape
 * (one workload mix if `mixHash` is given, else the most recently updated entry that has a ranked
 * candidate), the fastest verified, fully measured candidate with the same target that still is
 * the kernel that was measured: its fields validate to the recorded spec hash and, with
 * `opts.buildKey`, its recorded build key is the current one. Candidates that are not are ignored
 * and counted. Falls back to `base`, saying why, when none is left (no GPU, no entry, nothing
 * measured, only stale candidates).
 */
export function tunedSpec(base: KernelSpec, gpu: GpuId | null, opts: TunedLookupOptions = {}): TunedLookup {
  const ignored = { stale: 0, invalid: 0 };
  const fallback = (why: string): TunedLookup => ({ spec: base, tuned: false, message: `${why}; using ${base.name} as is`, ignored });
  if (!gpu) return fallback("no GPU to look up tuning results for");
  const db = opts.db ?? readDb(opts.dbPath ?? DEFAULT_DB);
  // The spec a ranked candidate builds today, or undefined (counted) when that is not what was measured.
  const current = (r: Ranked): KernelSpec | undefined => {
    const check = checkSpec(r.record.fields);
    if (!check.ok || check.spec.hash !== r.record.specHash) return void ignored.invalid++;
    if (opts.buildKey && (!r.record.build?.ok || r.record.build.key !== opts.buildKey(check.spec))) return void ignored.stale++;
    return check.spec;
  };
  const found = findEntries(db, base, { gpu, mixHash: opts.mixHash });
  const entries = found
    .map((entry) => ({
      entry,
      ranked: rankEntry(entry)
        .filter((r) => r.record.fields.target === base.target)
        .flatMap((r) => {
          const spec = current(r);
          return spec ? [{ ...r, spec }] : [];
        }),
    }))
    .filter((x) => x.ranked.length > 0)
    .sort((a, b) => b.entry.updated.localeCompare(a.entry.updated));
  const where = `${shapeKey(base)} on ${gpuKey(gpu)}${opts.mixHash ? ` and workload mix #${opts.mixHash}` : ""}`;
  const left = ignoredText(ignored);
  if (entries.length === 0 && left) return fallback(`no measured candidate for ${where} is the kernel podgen builds now (${left}); re-run \`podgen tune\``);
  if (entries.length === 0) return fallback(`no tuning results for ${where} in the tuning database (run \`podgen tune\`)`);
  const { entry, ranked } = entries[0]!;
  const best = ranked[0]!;
  const baseRank = ranked.find((r) => r.record.isBase);
  const gain = baseRank ? ` (${((baseRank.totalMs / best.totalMs - 1) * 100).toFixed(1)}% faster than ${base.name} on the mix)` : "";
  return {
    spec: best.spec,
    tuned: true,
    message: `tuned: ${best.record.name} for ${gpuKey(gpu)}, workloads ${entry.workloads.label}: ${best.totalMs.toFixed(3)} ms${gain}${left ? `; ignored ${left}` : ""}`,
    entry,
    best,
    ignored,
  };
}

function ignoredText({ stale, invalid }: TunedLookup["ignored"]): string {
  const parts: string[] = [];
  if (stale > 0) parts.push(`${stale} stale candidate${stale === 1 ? "" : "s"} (measured on a build whose key differs from the one the current templates and nvcc give)`);
  if (invalid > 0) parts.push(`${invalid} candidate${invalid === 1 ? "" : "s"} whose fields no longer give the measured spec`);
  return parts.join(", ");
}
