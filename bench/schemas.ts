// The bench harness's JSON files as zod schemas: workload files (bench/workloads/*.json, read by
// bench/run.ts) and reports (bench/results/*.json, written by bench/run.ts and read back by
// `podgen bench --from` and bench/plot.ts). A file that is not one fails where it is read, naming
// the file and the field. The report schema is checked against run.ts's interfaces (a field one
// has and the other lacks fails typecheck); report fields this podgen does not know are kept.
import { z } from "zod";
import { readJsonFile } from "../codegen/json.ts";
import type { BenchReport, StandaloneBest, Timing, WorkloadResult } from "./report.ts";
import type { TorchReport, TorchWorkload } from "./torch.ts";

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
