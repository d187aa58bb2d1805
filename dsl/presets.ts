// Presets: ordinary specs for common model shapes (heads per tensor-parallel rank).
import { normalizeSpec, type KernelInput, type KernelSpec } from "./spec.ts";

const paged16 = { kind: "paged", pageSize: 16 } as const;

const inputs: KernelInput[] = [
  // Llama-3-8B: GQA 32/8, the paper's main model. One CTA per SM (roles): a warp-specialized prefill
  // (TMA producer warps for K and V, two consumer warpgroups on 128 x 64 tiles, two stages) beside
  // a decode warpgroup on 16 x 64 tiles, fifty-fifty. On the H100, fused, it took 3–30% less time
  // than the paper-shaped 2-CTA config on four of the five paper batches and 2% more on the fifth
  // (bench/results/2026-12-06-h100-prefill-engines-run2.json; README, "A spec"). Its prefill-only
  // kernel, alone on the SM, runs 128 x 128 tiles (bench/NOTES.md, "prefill.standalone").
  {
    name: "llama3_8b", dtype: "bf16", heads: { q: 32, kv: 8 }, headDim: 128, kvCache: paged16, ctasPerSm: 1,
    prefill: { engine: "warp-specialized", tile: { q: 128, kv: 64 }, warps: 8, stages: 2, standalone: { tileKv: 128, stages: 2 } },
    decode: { tile: { q: 16, kv: 64 }, warps: 4, virtualCtas: 1, stages: 2 }, schedule: { kind: "fifty-fifty" },
  },
  // Llama-3-8B in the paper's CTA shape (the llama3_8b preset before it took the warp-specialized
  // prefill): two 4-warp CTAs per SM, a wgmma prefill on sm_90a (mma.sync elsewhere, so it builds for
  // every target), decode in one virtual CTA of 4 warps on 64-key tiles, fifty-fifty.
  {
    name: "llama3_8b_2cta", dtype: "bf16", heads: { q: 32, kv: 8 }, headDim: 128, kvCache: paged16,
    decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1 }, schedule: { kind: "fifty-fifty" },
  },
  // Llama-3-8B with an fp8 (e4m3) KV cache and a scale per KV head (vLLM's fp8 KV cache): half the
  // bytes per cached token. In llama3_8b_2cta's CTA shape, since the warp-specialized engine of
  // llama3_8b takes no fp8 KV yet; its wgmma prefill dequantizes the fp8 tiles in shared memory,
  // its decode reads them straight into mma fragments. The decode runs 3 fp8 stages (fewer bytes
  // than 2 bf16 stages, within the prefill tile's shared memory, so they cost no occupancy): in
  // bench/workloads/fp8-kv.json's sweep beside the bf16 llama3_8b_2cta, 3 stages beat 2 and 4 on
  // all five paper decodes (README "fp8 KV cache").
  {
    name: "llama3_8b_fp8", dtype: "bf16", heads: { q: 32, kv: 8 }, headDim: 128, kvCache: paged16,
    decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1, stages: 3 }, schedule: { kind: "fifty-fifty" },
    kvDtype: "e4m3", kvScale: "head",
  },
  // Llama-2-7B: multi-head attention (group 1), fp16.
  { name: "llama2_7b", dtype: "fp16", heads: { q: 32, kv: 32 }, headDim: 128, kvCache: paged16 },
  // Yi-6B: GQA 32/4.
  { name: "yi_6b", dtype: "bf16", heads: { q: 32, kv: 4 }, headDim: 128, kvCache: paged16 },
  // Llama-3-70B at tensor parallelism 8: 8 query heads and 1 KV head per GPU.
  { name: "llama3_70b_tp8", dtype: "bf16", heads: { q: 8, kv: 1 }, headDim: 128, kvCache: paged16 },
  // Qwen2-0.5B: D=64, an odd group of 7 query heads per KV head.
  { name: "qwen2_0_5b", dtype: "bf16", heads: { q: 14, kv: 2 }, headDim: 64, kvCache: paged16 },
  // Mistral-7B: Llama-3-8B's heads (and the llama3_8b_2cta preset's CTA shape) with a sliding window
  // of 4096 keys.
  {
    name: "mistral_7b", dtype: "bf16", heads: { q: 32, kv: 8 }, headDim: 128, kvCache: paged16,
    decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1 }, schedule: { kind: "fifty-fifty" }, window: 4096,
  },
  // gpt-oss-20b: D=64, 64 query and 8 KV heads, a learned sink logit per query head on every layer.
  // Its layers alternate: a sliding window of 128 keys (this preset), then full causal attention
  // (gpt_oss_20b_global); a model runs both kernels, one per kind of layer.
  { name: "gpt_oss_20b", dtype: "bf16", heads: { q: 64, kv: 8 }, headDim: 64, kvCache: paged16, window: 128, sinks: true },
  { name: "gpt_oss_20b_global", dtype: "bf16", heads: { q: 64, kv: 8 }, headDim: 64, kvCache: paged16, sinks: true },
  // Phi-3-mini: D=96, multi-head attention (32/32). 96 columns are not whole 64-column blocks, so the
  // wgmma engines refuse it (dsl/rules.ts) and the prefill runs the mma.sync engine on every target;
  // shared-memory rows are padded to 128 columns (resources.ts, smemHeadDim).
  { name: "phi3_mini", dtype: "bf16", heads: { q: 32, kv: 32 }, headDim: 96, kvCache: paged16 },
  // Gemma-2-9B: D=256, GQA 16/8, logits soft-capped at 50. Its layers alternate: global (this preset)
  // and local with a sliding window of 4096 keys (gemma2_9b_local). At D=256 the fp32 O of a 16-row
  // fragment is 128 registers a thread: the wgmma prefill takes 64-row tiles of one fragment a warp
  // (64 x 32, two stages: 96 KiB), the decode one 64-key stage (72 KiB), two CTAs per SM.
  {
    name: "gemma2_9b", dtype: "bf16", heads: { q: 16, kv: 8 }, headDim: 256, kvCache: paged16, logitsSoftCap: 50,
    prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1, stages: 1 },
    schedule: { kind: "fifty-fifty" },
  },
  {
    name: "gemma2_9b_local", dtype: "bf16", heads: { q: 16, kv: 8 }, headDim: 256, kvCache: paged16, logitsSoftCap: 50,
    window: 4096, prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1, stages: 1 },
    schedule: { kind: "fifty-fifty" },
  },
];

export const PRESETS: readonly KernelSpec[] = Object.freeze(inputs.map((i) => normalizeSpec(i)));
/** The preset `podgen build` builds, and that kernel fields (a verify case) start from, when none is named. */
export const DEFAULT_PRESET = "llama3_8b";

export function presetByName(name: string): KernelSpec | undefined {
  return PRESETS.find((p) => p.name === name);
}
