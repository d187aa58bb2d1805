// Case files for `podgen verify` (and the GPU suite): JSON describing batches and the kernel each
// runs on. A case's kernel is a preset (or `defaults.spec`) with the case's overrides applied.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { canonicalJson, normalizeSpec, presetByName, specFields, type KernelSpec } from "../dsl/index.ts";
import type { BatchShape } from "../runtime/batch.ts";
import { Rng } from "../runtime/numerics.ts";
import { UsageError } from "./usage-error.ts";

const kernelFields = {
  /** Preset the case starts from (default: defaults.spec, else llama3_8b). */
  spec: z.string().optional(),
  heads: z.strictObject({ q: z.number().int(), kv: z.number().int() }).optional(),
  headDim: z.number().int().optional(),
  dtype: z.enum(["fp16", "bf16"]).optional(),
  /** A page size, or "contiguous". */
  pageSize: z.union([z.number().int(), z.literal("contiguous")]).optional(),
  policy: z.enum(["proportional", "fifty-fifty"]).optional(),
  ctasPerSm: z.number().int().optional(),
  virtualCtas: z.number().int().optional(),
  /** Any other spec fields (tiles, stages, ...), as in pod.kernel({...}). */
  kernel: z.record(z.string(), z.unknown()).optional(),
};

const caseSchema = z.strictObject({
  name: z.string().optional(),
  seed: z.number().int(),
  /** [qLen, kvLen] per prefill chunk. */
  prefills: z.array(z.tuple([z.number().int().min(1), z.number().int().min(1)])).default([]),
  /** KV length per decode request, or `{count, kvMin, kvMax}` for lengths drawn from the seed. */
  decodes: z
    .union([
      z.array(z.number().int().min(1)),
      z.strictObject({ count: z.number().int().min(0), kvMin: z.number().int().min(1), kvMax: z.number().int().min(1) }),
    ])
    .default([]),
  /** Scatter pages in random order (default true). */
  shufflePages: z.boolean().optional(),
  ...kernelFields,
});

export const caseFileSchema = z.strictObject({
  defaults: z.strictObject(kernelFields).optional(),
  cases: z.array(caseSchema).min(1),
});

export type CaseFile = z.infer<typeof caseFileSchema>;
export interface VerifyCase {
  name: string;
  seed: number;
  shape: BatchShape;
  shufflePages: boolean;
  spec: KernelSpec;
}

/** The spec a case runs on: its preset with its overrides, named after what changed. */
function caseSpec(fields: z.infer<z.ZodObject<typeof kernelFields>>): KernelSpec {
  const baseName = fields.spec ?? "llama3_8b";
  const base = presetByName(baseName);
  if (!base) throw new UsageError(`spec = "${baseName}": not a preset`);
  const overrides: Record<string, unknown> = { ...(fields.kernel ?? {}) };
  if (fields.heads) overrides.heads = fields.heads;
  if (fields.headDim !== undefined) overrides.headDim = fields.headDim;
  if (fields.dtype) overrides.dtype = fields.dtype;
  if (fields.pageSize !== undefined) {
    overrides.kvCache = fields.pageSize === "contiguous" ? { kind: "contiguous" } : { kind: "paged", pageSize: fields.pageSize };
  }
  if (fields.policy) overrides.schedule = { kind: fields.policy };
  if (fields.ctasPerSm !== undefined) overrides.ctasPerSm = fields.ctasPerSm;
  if (fields.virtualCtas !== undefined) {
    overrides.decode = { ...((overrides.decode as object) ?? {}), virtualCtas: fields.virtualCtas };
  }
  if (Object.keys(overrides).length === 0) return base;
  const tag = createHash("sha256").update(canonicalJson(overrides)).digest("hex").slice(0, 8);
  const fieldsOf = specFields(base);
  const merged = {
    ...fieldsOf,
    ...overrides,
    name: `${base.name}_${tag}`,
    prefill: { ...fieldsOf.prefill, ...((overrides.prefill as object) ?? {}) },
    decode: { ...fieldsOf.decode, ...((overrides.decode as object) ?? {}) },
  };
  return normalizeSpec(merged);
}

export function parseCaseFile(path: string): VerifyCase[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
  return casesFrom(json, path);
}

export function casesFrom(json: unknown, label = "case file"): VerifyCase[] {
  const parsed = caseFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`${label}: ${issue.path.join(".") || "(file)"}: ${issue.message}`);
  }
  const { defaults = {}, cases } = parsed.data;
  return cases.map((c, i) => {
    const { name, seed, prefills, decodes, shufflePages, ...kernel } = c;
    const merged = { ...defaults, ...Object.fromEntries(Object.entries(kernel).filter(([, v]) => v !== undefined)) };
    const rng = new Rng(seed ^ 0x5eed);
    const decodeLens = Array.isArray(decodes) ? decodes : Array.from({ length: decodes.count }, () => rng.int(decodes.kvMin, Math.max(decodes.kvMin, decodes.kvMax)));
    const shape: BatchShape = { prefills: prefills.map(([qLen, kvLen]) => ({ qLen, kvLen })), decodes: decodeLens };
    for (const [j, p] of shape.prefills.entries()) {
      if (p.kvLen < p.qLen) throw new UsageError(`${label}: cases.${i}.prefills.${j} = [${p.qLen}, ${p.kvLen}]: kvLen must be ≥ qLen`);
    }
    if (shape.prefills.length + decodeLens.length === 0) throw new UsageError(`${label}: cases.${i}: a case needs a prefill or a decode`);
    return { name: name ?? `case ${i}`, seed, shape, shufflePages: shufflePages ?? true, spec: caseSpec(merged) };
  });
}
