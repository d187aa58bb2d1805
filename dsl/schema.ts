// The zod schema of a kernel spec as authors write it. Shapes, types and single-field ranges live
// here; rules that relate several fields (shared memory, warps per tile, ...) live in rules.ts.
import { z } from "zod";
import { TARGETS } from "./targets.ts";

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const SUPPORTED_HEAD_DIMS = [64, 96, 128, 256] as const;

const wavesSchema = z.strictObject({ kind: z.literal("waves"), waves: int(1, 16) });

export const kvCacheSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("paged"), pageSize: int(1, 1024) }),
  z.strictObject({ kind: z.literal("contiguous") }),
]);

export const scheduleSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("fifty-fifty") }),
  z.strictObject({ kind: z.literal("proportional") }),
]);

/** Element types of the KV cache: the 16-bit dtype, or fp8 e4m3 with fp32 dequantization scales. */
export const KV_DTYPES = ["fp16", "bf16", "e4m3"] as const;
export type KvDType = (typeof KV_DTYPES)[number];
/** fp8 KV scales: one fp32 for all of K (and one for V), or one per KV head. */
export const KV_SCALES = ["tensor", "head"] as const;
export type KvScale = (typeof KV_SCALES)[number];

/** The largest logits soft-cap: an fp32 constant of the traits, and far above any logit it could bend. */
export const MAX_LOGITS_SOFT_CAP = 1e6;

const tileSchema = z.strictObject({ q: int(16, 256), kv: int(16, 256) });

/** How the prefill tile loop is built (README, "Prefill engines"); absent: the target's default. */
export const PREFILL_ENGINES = ["mma", "wgmma", "warp-specialized"] as const;
export type PrefillEngine = (typeof PREFILL_ENGINES)[number];

export const prefillSchema = z.strictObject({
  engine: z.enum(PREFILL_ENGINES).optional(),
  tile: tileSchema,
  warps: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8)]),
  stages: int(1, 4),
  maxSplits: z.union([int(1, 256), wavesSchema]),
  // The prefill-only kernel's KV tile and stages (warp-specialized engine): it has the SM to itself,
  // so it may take larger tiles than the prefill role of the fused kernel. Absent: tile.kv, stages.
  standalone: z.strictObject({ tileKv: int(16, 256), stages: int(2, 4) }).optional(),
});

export const decodeSchema = z.strictObject({
  tile: z.strictObject({ q: int(16, 256), kv: int(16, 256) }),
  warps: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8)]),
  stages: int(1, 4),
  virtualCtas: z.union([z.literal(1), z.literal(2), z.literal(4)]),
  maxSplits: int(1, 256),
});

/** A complete spec: every field present (defaults already applied). */
export const specSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,47}$/, "lower_snake_case, starting with a letter, at most 48 characters"),
  target: z.enum(TARGETS),
  dtype: z.enum(["fp16", "bf16"]),
  heads: z.strictObject({ q: int(1, 256), kv: int(1, 256) }),
  headDim: z.number().int(),
  kvCache: kvCacheSchema,
  prefill: prefillSchema,
  decode: decodeSchema,
  ctasPerSm: z.union([z.literal(1), z.literal(2), z.literal(4)]),
  schedule: scheduleSchema,
  // Attention variants (README, "Attention variants"); absent: plain causal attention.
  window: int(1, 2 ** 31 - 1).optional(),
  logitsSoftCap: z.number().positive().max(MAX_LOGITS_SOFT_CAP).optional(),
  sinks: z.boolean().optional(),
  // The KV cache's element type (absent: dtype) and, for fp8, the granularity of its run-time
  // dequantization scales (README, "fp8 KV cache").
  kvDtype: z.enum(KV_DTYPES).optional(),
  kvScale: z.enum(KV_SCALES).optional(),
});

export type SpecFields = z.infer<typeof specSchema>;
export type KvCache = z.infer<typeof kvCacheSchema>;
export type Schedule = z.infer<typeof scheduleSchema>;
export type SplitLimit = SpecFields["prefill"]["maxSplits"];
export type DType = SpecFields["dtype"];

/** A head dimension podgen generates code for. */
export type HeadDim = (typeof SUPPORTED_HEAD_DIMS)[number];

type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/**
 * Dotted paths of an object type's fields: nested objects are followed; arrays, scalars and unions
 * of objects (kvCache, schedule: one field each) are leaves. For tables that must name every field.
 */
export type FieldPaths<T, Prefix extends string = ""> = {
  [K in keyof T & string]-?: NonNullable<T[K]> extends readonly unknown[]
    ? `${Prefix}${K}`
    : NonNullable<T[K]> extends object
      ? true extends IsUnion<NonNullable<T[K]>>
        ? `${Prefix}${K}`
        : FieldPaths<NonNullable<T[K]>, `${Prefix}${K}.`>
      : `${Prefix}${K}`;
}[keyof T & string];

/** Every field of a spec, e.g. "prefill.tile.q" (FIELD_REASONS in spec.ts names each). */
export type SpecFieldPath = FieldPaths<SpecFields>;
