// Case files for `podgen verify` (and the GPU suite): JSON describing batches and the kernel each
// runs on. A case's kernel is a preset (or `defaults.spec`) with the case's overrides applied
// (the kernel fields of dsl/overrides.ts, which bench workload variants share).
import { readFileSync } from "node:fs";
import { z } from "zod";
import { kernelFieldsShape, kernelFieldsSpec, SpecError, type KernelSpec } from "../dsl/index.ts";
import type { BatchShape } from "../runtime/batch.ts";
import { Rng } from "../runtime/numerics.ts";
import { UsageError } from "./usage-error.ts";

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
  ...kernelFieldsShape,
});

export const caseFileSchema = z.strictObject({
  defaults: z.strictObject(kernelFieldsShape).optional(),
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
    let spec: KernelSpec;
    try {
      spec = kernelFieldsSpec(merged);
    } catch (e) {
      // Name the file and the case; the spec's problems follow, each naming its field.
      if (e instanceof SpecError) throw new UsageError(`${label}: cases.${i}${name ? ` (${name})` : ""}: ${e.message}`);
      throw e;
    }
    return { name: name ?? `case ${i}`, seed, shape, shufflePages: shufflePages ?? true, spec };
  });
}
