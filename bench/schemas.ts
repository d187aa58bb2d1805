// The bench harness's JSON files as zod schemas: workload files (bench/workloads/*.json, read by
// bench/run.ts), reports (bench/results/*.json, written by bench/run.ts and read back by
// `podgen bench --from` and bench/plot.ts), and a config family's raw candidate times and bench
// report (bench/tune/family.ts, bench/family-report.ts). A file that is not one fails where it is read, naming
// the file and the field. The report schema is checked against run.ts's interfaces (a field one
// has and the other lacks fails typecheck); report fields this podgen does not know are kept.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { kernelFieldsSchema } from "../dsl/index.ts";
import { readJsonFile } from "../codegen/json.ts";
import type { BenchReport, StandaloneBest, Timing, WorkloadResult } from "./report.ts";
import type { TorchReport, TorchWorkload } from "./torch.ts";
import { CHOICE_REASONS, MODES } from "../runtime/family.ts";
import { BATCH_SETS } from "./family-batches.ts";
import type { AutoTiming, CandidateTiming } from "./family-timing.ts";
import type { FamilyBenchBatch, FamilyBenchReport, FamilySetSummary, PlanTime, Speedups } from "./family-report.ts";
import type { FamilyTimings, FitSet } from "./tune/family.ts";

// ---------------------------------------------------------------------------------------------
// Workload files

const int = z.number().int();

export const workloadFileSchema = z.strictObject({
  description: z.string().optional(),
  /** Each variant's other fields are kernel fields (dsl/overrides.ts), judged when its spec is made. */
  variants: z.array(z.looseObject({ name: z.string() })).optional(),
  workloads: z.array(
    z.strictObject({
      name: z.string(),
      /** A preset (default: DEFAULT_PRESET, llama3_8b). */
      spec: z.string().optional(),
      /** Page size (or "contiguous") of this workload's batch, for its spec and every variant (default: the spec's). */
      pageSize: kernelFieldsSchema.shape.pageSize,
      /** Shuffle the batch's pages over its cache (default true, as a serving engine's free list leaves them); false: in order. */
      shufflePages: z.boolean().optional(),
      /** [qLen, kvLen] per prefill chunk. */
      prefills: z.array(z.tuple([int, int])).optional(),
      /** KV lengths, or `count` decodes of `kvLen` keys. */
      decodes: z.union([z.array(int), z.strictObject({ count: int.min(0), kvLen: int })]).optional(),
      /** Also time the file's variants on this workload. */
      variants: z.boolean().optional(),
    }),
  ),
});

// ---------------------------------------------------------------------------------------------
// Reports

const ms = z.number().nullable();

const timingSchema = z.looseObject({ ms: z.number(), p10: z.number(), p90: z.number(), copies: z.number() }) satisfies z.ZodType<Timing>;

const backendMs = z.looseObject({ backend: z.string(), ms: z.number() });
const torchWorkloadSchema = z.looseObject({
  name: z.string(),
  prefill: z.record(z.string(), z.number()),
  decode: z.record(z.string(), z.number()),
  errors: z.record(z.string(), z.string()),
  best_prefill: backendMs.optional(),
  best_decode: backendMs.optional(),
  best_serial_ms: z.number().optional(),
  best_serial_backends: z.array(z.string().nullable()).optional(),
  prefill_cudnn_noncausal_ms: z.number().optional(),
  prefill_cudnn_noncausal_gqa: z.enum(["enable_gqa", "repeat_interleave"]).optional(),
}) satisfies z.ZodType<TorchWorkload>;

const torchMetaShape = {
  torch: z.string(),
  cuda: z.string().nullable(),
  cudnn: z.number().nullable(),
  gpu: z.string(),
  iters: z.number(),
  warmup: z.number(),
  error: z.string().optional(),
};
// What the report keeps of the torch run: its metadata, not its per-workload list.
const torchMetaSchema = z.looseObject(torchMetaShape) satisfies z.ZodType<Omit<TorchReport, "workloads">>;
/** What bench/torch_baselines.py writes. */
export const torchReportSchema = z.looseObject({ ...torchMetaShape, workloads: z.array(torchWorkloadSchema) }) satisfies z.ZodType<TorchReport>;

const standaloneBestSchema = z.looseObject({
  prefill: z.looseObject({ config: z.string(), ms: z.number(), tflops: z.number() }).nullable(),
  decode: z.looseObject({ config: z.string(), ms: z.number(), tbps: z.number() }).nullable(),
}) satisfies z.ZodType<StandaloneBest>;

const workloadResultSchema = z.looseObject({
  name: z.string(),
  spec: z.string(),
  prefill_chunk: z.number(),
  prefill_kv: z.number(),
  decode_batch: z.number(),
  decode_kv: z.number(),
  prefills: z.array(z.tuple([z.number(), z.number()])),
  // Reports recorded before the Hopper serial figure (2026-12-06) lack its fields: null / none.
  ms: z.looseObject({
    prefill: ms,
    decode: ms,
    serial: ms,
    two_streams: ms,
    fused_best: ms,
    torch_best_serial: ms,
    cudnn_noncausal_prefill: ms.default(null),
    hopper_serial: ms.default(null),
  }),
  fused_ms: z.record(z.string(), ms),
  fused_best_config: z.string().nullable(),
  prefill_tflops: ms,
  decode_tbps: ms,
  fused_tflops_equivalent: ms,
  speedup_vs_serial: ms,
  speedup_vs_two_streams: ms,
  speedup_vs_torch: ms,
  torch_serial_missing: z.array(z.enum(["prefill", "decode"])).default([]),
  hopper_serial: z
    .looseObject({ ms: z.number(), prefill_ms: z.number(), decode_ms: z.number(), decode_kernel: z.string() })
    .nullable()
    .default(null),
  speedup_vs_hopper_serial: ms.default(null),
  preset_speedup_vs_hopper_serial: ms.default(null),
  overlap_efficiency: ms,
  standalone: z
    .looseObject({ ms: z.record(z.string(), z.looseObject({ prefill: ms, decode: ms })), best: standaloneBestSchema })
    .optional(),
  timings: z.record(z.string(), timingSchema),
  nonfinite_outputs: z.record(z.string(), z.number()),
  plans: z.record(z.string(), z.unknown()),
  torch: torchWorkloadSchema.nullable(),
  errors: z.array(z.string()),
}) satisfies z.ZodType<WorkloadResult>;

export const benchReportSchema = z.looseObject({
  commit: z.string(),
  gpu: z.string(),
  driver: z.string(),
  cuda: z.string(),
  sms: z.number(),
  date: z.string(),
  iters: z.number(),
  warmup: z.number(),
  specs: z.record(z.string(), z.string()),
  torch: torchMetaSchema.nullable(),
  workloads: z.array(workloadResultSchema),
  summary: z.record(z.string(), ms),
}) satisfies z.ZodType<BenchReport>;

/** A bench report file, validated (JsonInputError naming the file and the field otherwise). */
export function readBenchReport(path: string): BenchReport {
  return readJsonFile(benchReportSchema, path, `bench report ${path}`);
}

// ---------------------------------------------------------------------------------------------
// Config families: the raw candidate times of `podgen tune --family --out` and the report of
// `podgen bench --family`

const modeSchema = z.enum(MODES);
const lengthsShape = { prefills: z.array(z.tuple([int, int])), decodes: z.array(int) };

/** How the generated fit batches were drawn (FamilyTimings.fitSet, kept in the cost model's `fit`). */
export const fitSetSchema = z.strictObject({ mix: z.string(), seed: int, count: int, lightDecode: int.optional() }) satisfies z.ZodType<FitSet>;

const candidateTimingSchema = z.strictObject({
  member: z.string(),
  mode: modeSchema,
  features: z.array(z.number()),
  predictedUs: ms,
  us: ms,
  error: z.string().optional(),
}) satisfies z.ZodType<CandidateTiming>;

const autoTimingSchema = z.strictObject({
  member: z.string(),
  mode: modeSchema,
  reason: z.enum(CHOICE_REASONS),
  predictedUs: ms,
  us: ms,
  sameLaunchAsCandidate: z.boolean().optional(),
  error: z.string().optional(),
}) satisfies z.ZodType<AutoTiming>;

export const familyTimingsSchema = z
  .strictObject({
    kind: z.literal("family-timings"),
    version: z.literal(1),
    family: z.string(),
    familyHash: z.string(),
    buildKey: z.string(),
    timingKey: z.string().optional(),
    gpu: z.string(),
    driver: z.string(),
    sms: int,
    commit: z.string(),
    date: z.string(),
    iters: int,
    warmup: int,
    timing: z.literal("interleaved").optional(),
    fitSet: fitSetSchema,
    features: z.array(z.string()),
    members: z.array(z.string()).min(1),
    batches: z.array(z.strictObject({ name: z.string(), set: z.enum(BATCH_SETS), ...lengthsShape, candidates: z.array(candidateTimingSchema) })),
  })
  .superRefine((t, ctx) => {
    // The fit reads features by position: every candidate's must be the file's, in number.
    t.batches.forEach((b, i) =>
      b.candidates.forEach((c, j) => {
        if (c.features.length !== t.features.length) ctx.addIssue({ code: "custom", path: ["batches", i, "candidates", j, "features"], message: `has ${c.features.length} values; the file names ${t.features.length} features` });
        if (!t.members.includes(c.member)) ctx.addIssue({ code: "custom", path: ["batches", i, "candidates", j, "member"], message: `"${c.member}" is not one of the file's members (${t.members.join(", ")})` });
      }),
    );
  }) satisfies z.ZodType<FamilyTimings>;

const speedupsSchema = z.strictObject({ vsOwnSerial: ms, vsTorch: ms }) satisfies z.ZodType<Speedups>;
const speedupTripleSchema = z.strictObject({ auto: speedupsSchema, preset: speedupsSchema, best: speedupsSchema });

// Reports before interleaved timing have no autoUs: they judged auto by its own time.
const judgedByOwnTime = (b: unknown) => {
  if (typeof b !== "object" || b === null || "autoUs" in b) return b;
  const auto = (b as { auto?: { us?: unknown } }).auto;
  return { ...b, autoUs: auto?.us ?? null, autoOwnOverCandidate: null };
};

const familyBenchBatchSchema = z.preprocess(
  judgedByOwnTime,
  z.strictObject({
    name: z.string(),
    set: z.enum(["paper", "heldout"]),
    ...lengthsShape,
    auto: autoTimingSchema,
    autoUs: ms,
    autoOwnOverCandidate: ms,
    presetUs: ms,
    best: z.strictObject({ member: z.string(), mode: modeSchema, us: z.number() }).nullable(),
    ownSerialUs: ms,
    torchSerialUs: ms,
    torchSerialMissing: z.array(z.enum(["prefill", "decode"])),
    speedup: speedupTripleSchema,
    autoOverBest: ms,
    candidates: z.array(candidateTimingSchema),
    torch: torchWorkloadSchema.nullable(),
    errors: z.array(z.string()),
  }),
) satisfies z.ZodType<FamilyBenchBatch>;

const familySetSummarySchema = z.strictObject({
  batches: int,
  speedup: speedupTripleSchema,
  autoOverBest: ms,
  autoChoseFastest: int,
  autoMedianPredictionError: ms,
  autoOwnOverCandidate: z.strictObject({ batches: int, median: z.number(), min: z.number(), max: z.number() }).nullable().default(null),
}) satisfies z.ZodType<FamilySetSummary>;

export const familyBenchReportSchema = z.strictObject({
  kind: z.literal("family-bench"),
  version: z.literal(1),
  family: z.string(),
  familyHash: z.string(),
  buildKey: z.string(),
  gpu: z.string(),
  driver: z.string(),
  cuda: z.string(),
  sms: int,
  commit: z.string(),
  date: z.string(),
  iters: int,
  warmup: int,
  timing: z.literal("interleaved").optional(),
  costModel: z.strictObject({ used: z.boolean(), fitted: z.string().nullable(), why: z.string().nullable() }),
  heldOut: z.strictObject({ mix: z.string(), seed: int }),
  torch: torchMetaSchema.nullable(),
  planTime: z.strictObject({
    requests: int,
    prefills: int,
    decodes: int,
    choice: z.string(),
    cUsPerPlan: z.number(),
    cIters: int,
    bindingUsPerPlan: z.number(),
    bindingIters: int,
  }) satisfies z.ZodType<PlanTime>,
  batches: z.array(familyBenchBatchSchema),
  summary: z.strictObject({ paper: familySetSummarySchema, heldout: familySetSummarySchema }),
  paperStyle: z.string().nullable().optional(),
}) satisfies z.ZodType<FamilyBenchReport>;

/** A `podgen tune --family --out` file, validated (JsonInputError naming the file and the field otherwise). */
export function readFamilyTimings(path: string): FamilyTimings {
  return readJsonFile(familyTimingsSchema, path, `family timings ${path}`);
}

/** Whether a JSON file says it is a `podgen bench --family` report (its `kind`); false when it cannot be read. */
export function isFamilyBenchReport(path: string): boolean {
  try {
    return familyBenchReportSchema.pick({ kind: true }).loose().safeParse(JSON.parse(readFileSync(path, "utf8"))).success;
  } catch {
    return false; // the reader of the other report kind says what is wrong with it
  }
}

/** A `podgen bench --family` report, validated. */
export function readFamilyBenchReport(path: string): FamilyBenchReport {
  return readJsonFile(familyBenchReportSchema, path, `family bench report ${path}`);
}
