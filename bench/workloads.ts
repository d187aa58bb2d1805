// Benchmark workloads (bench/workloads/*.json): hybrid batches and the kernel configs each runs
// (its spec, then the file's variants), validated with zod; and what a batch costs, for the
// report's TFLOP/s and TB/s.
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { workloadFileSchema } from "./schemas.ts";
import { parseJson } from "../codegen/json.ts";
import { DEFAULT_PRESET, kernelFieldsSchema, kernelFieldsSpec, presetByName, type KernelSpec } from "../dsl/index.ts";
import type { BatchShape } from "../runtime/index.ts";

export interface KernelConfig {
  /** "default" or the variant's name. */
  label: string;
  spec: KernelSpec;
}

export interface Workload {
  name: string;
  specName: string;
  shape: BatchShape;
  /** Pages shuffled over the cache (default) or in order. */
  shufflePages: boolean;
  /** The workload's spec first ("default"), then its variants. */
  configs: KernelConfig[];
}

type WorkloadFile = z.infer<typeof workloadFileSchema>;

/** A spec with the variant's overrides: kernel fields, as in the verify case files (dsl/overrides.ts). */
function variantSpec(base: string, fields: Record<string, unknown>): KernelSpec {
  const { name, ...kernel } = fields;
  return kernelFieldsSpec(parseJson(kernelFieldsSchema, { spec: base, ...kernel }, `variant ${JSON.stringify(name)}`));
}

export function parseWorkloads(json: unknown, label = "workloads"): Workload[] {
  const file: WorkloadFile = parseJson(workloadFileSchema, json, label);
  // A workload runs the file's variants only where it says so: variants that no workload asks for
  // would be compiled for nothing and silently left out of every table.
  const variants = file.variants ?? [];
  if (variants.length > 0 && !file.workloads.some((w) => w.variants)) {
    throw new Error(
      `${label}: variants: ${variants.length} defined (${variants.map((v) => JSON.stringify(v.name)).join(", ")}) but no workload sets "variants": true, so none would run; set it on the workloads that should run them`,
    );
  }
  return file.workloads.map((w, i) => {
    const where = `${label}: workloads.${i} (${w.name ?? "unnamed"})`;
    if (typeof w.name !== "string") throw new Error(`${where}: needs a name`);
    const specName = w.spec ?? DEFAULT_PRESET;
    const preset = presetByName(specName);
    if (!preset) throw new Error(`${where}: spec "${specName}" is not a preset`);
    const layout = w.pageSize !== undefined ? { pageSize: w.pageSize } : {};
    const base = w.pageSize !== undefined ? variantSpec(specName, { name: "default", ...layout }) : preset;
    const prefills = (w.prefills ?? []).map(([qLen, kvLen]) => {
      if (!(Number.isInteger(qLen) && Number.isInteger(kvLen) && qLen >= 1 && kvLen >= qLen)) {
        throw new Error(`${where}: prefill [${qLen}, ${kvLen}] needs 1 ≤ qLen ≤ kvLen`);
      }
      return { qLen, kvLen };
    });
    const d = w.decodes ?? [];
    const decodes = Array.isArray(d) ? [...d] : Array.from({ length: d.count }, () => d.kvLen);
    if (decodes.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${where}: decode kvLens must be positive integers`);
    if (prefills.length === 0 || decodes.length === 0) throw new Error(`${where}: a benchmark workload needs prefills and decodes`);
    const configs: KernelConfig[] = [{ label: "default", spec: base }];
    for (const v of w.variants ? (file.variants ?? []) : []) {
      const spec = variantSpec(specName, { ...v, ...layout });
      // Every config runs on the workload's one batch, whose pages follow the workload's spec.
      if (JSON.stringify(spec.kvCache) !== JSON.stringify(base.kvCache)) {
        throw new Error(`${where}: variant ${JSON.stringify(v.name)}: kvCache = ${JSON.stringify(spec.kvCache)} must equal ${JSON.stringify(base.kvCache)} (the workload spec's): the configs of a workload share its batch`);
      }
      const kvDtype = (s: KernelSpec) => s.kvDtype ?? s.dtype;
      if (kvDtype(spec) !== kvDtype(base)) {
        throw new Error(`${where}: variant ${JSON.stringify(v.name)}: kvDtype = ${kvDtype(spec)} must equal ${kvDtype(base)} (the workload spec's): the configs of a workload share its K/V cache`);
      }
      if (spec.sinks && !base.sinks) {
        throw new Error(`${where}: variant ${JSON.stringify(v.name)}: sinks = true but the workload spec has none: the configs of a workload share its batch, whose sink logits follow its spec`);
      }
      configs.push({ label: v.name, spec });
    }
    return { name: w.name, specName, shape: { prefills, decodes }, shufflePages: w.shufflePages ?? true, configs };
  });
}

export function loadWorkloads(path: string): Workload[] {
  return parseWorkloads(JSON.parse(readFileSync(path, "utf8")), path);
}

/** Every distinct spec the workloads run (by hash). */
export function specsOf(workloads: Workload[]): KernelSpec[] {
  return [...new Map(workloads.flatMap((w) => w.configs.map((c) => [c.spec.hash, c.spec] as const))).values()];
}

/** What bench/torch_baselines.py reads. */
export function resolvedWorkloads(workloads: Workload[]) {
  return {
    workloads: workloads.map((w) => {
      const s = w.configs[0]!.spec;
      return {
        name: w.name,
        prefills: w.shape.prefills.map((p) => [p.qLen, p.kvLen]),
        decodes: w.shape.decodes,
        heads_q: s.heads.q,
        heads_kv: s.heads.kv,
        head_dim: s.headDim,
        dtype: s.dtype,
        /** Sliding window: the keys a query sees, itself included; null for full causal attention. */
        window: s.window ?? null,
        // Variants bench/torch_baselines.py has no backend for (soft-cap) or times without (sinks).
        logits_soft_cap: s.logitsSoftCap ?? 0,
        sinks: s.sinks ?? false,
      };
    }),
  };
}

/**
 * The workloads of a file whose names contain one of `filters` (all without any); with `variants`
 * false each keeps only its own spec's config (what a user of that preset gets).
 */
export function selectWorkloads(path: string, filters: string[], { variants = true } = {}): Workload[] {
  const all = loadWorkloads(path);
  const chosen = filters.length ? all.filter((w) => filters.some((f) => w.name.includes(f))) : all;
  if (chosen.length === 0) throw new Error(`no workload of ${path} matches ${filters.join(", ")}`);
  return variants ? chosen : chosen.map((w) => ({ ...w, configs: w.configs.slice(0, 1) }));
}

/**
 * Causal attention FLOPs of the prefills: 4·D·Hq·Σ over query tokens of the keys each sees (with a
 * sliding window, at most `window` of them).
 */
export function prefillFlops(shape: BatchShape, hq: number, d: number, window = Infinity): number {
  let visible = 0;
  for (const { qLen: q, kvLen: kv } of shape.prefills) {
    if (window >= kv) visible += q * (kv - q) + (q * (q + 1)) / 2;
    else for (let t = 0; t < q; ++t) visible += Math.min(window, kv - q + t + 1);
  }
  return 4 * d * hq * visible;
}

/**
 * K and V bytes the decodes read, each once (elementBytes: 1 for an fp8 cache; with a sliding
 * window, the last `window` keys of each).
 */
export function decodeKvBytes(shape: BatchShape, hkv: number, d: number, elementBytes = 2, window = Infinity): number {
  return shape.decodes.reduce((s, kv) => s + Math.min(kv, window), 0) * hkv * d * elementBytes * 2;
}
