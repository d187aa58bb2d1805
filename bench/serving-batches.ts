// Serving-like hybrid batches, drawn from a seed: what a chunked-prefill scheduler (vLLM, Sarathi)
// hands the attention kernel at each step, for fitting and judging a family's cost model on more
// than the paper's five batches. A batch has a token budget; decodes take one token each, the rest
// goes to prefill chunks (the last one partial), each continuing a prompt with a prefix already in
// the cache; decode contexts are log-normal (a long tail of long conversations). Same seed, same
// batches: the fit and the held-out set are reproducible from their seeds alone.
import { Rng, type BatchShape } from "../runtime/index.ts";

export interface ServingMix {
  /** Tokens per step (prefill chunk tokens + one per decode). */
  tokenBudget: number;
  /** Decodes per batch: uniform in [min, max]. */
  decodes: { min: number; max: number };
  /** Decode KV lengths: log-normal with this median and log-space sigma, clamped to [1, maxKv]. */
  decodeKv: { median: number; sigma: number };
  /** Prefill chunks per batch at most (each at least `minChunk` tokens). */
  maxChunks: number;
  minChunk: number;
  /** Prefix already in the cache before a chunk: uniform in [0, maxPrefix]. */
  maxPrefix: number;
  maxKv: number;
}

/**
 * One mix per model shape of the presets, named after the preset (bench/family-batches.ts
 * servingMixFor; mistral_7b has llama3_8b's shape, and gpt_oss_20b_global gpt_oss_20b's):
 * - llama3_8b on one GPU, and llama3_70b_tp8 (8/1 heads a GPU) with a larger step;
 * - llama2_7b: a 4K context window, and MHA decodes read 4x the KV bytes of Llama-3-8B's: fewer;
 * - yi_6b: GQA 8 (half the 8B's KV bytes a decode), so a step holds more decodes;
 * - qwen2_0_5b: a small model serves many short requests at once;
 * - gpt_oss_20b: 64/8 heads at D=64, long conversations, a larger step.
 */
export const SERVING_MIXES = {
  llama3_8b: { tokenBudget: 4096, decodes: { min: 16, max: 192 }, decodeKv: { median: 2048, sigma: 0.9 }, maxChunks: 3, minChunk: 128, maxPrefix: 12288, maxKv: 32768 },
  llama3_70b_tp8: { tokenBudget: 8192, decodes: { min: 32, max: 256 }, decodeKv: { median: 3072, sigma: 1.0 }, maxChunks: 4, minChunk: 256, maxPrefix: 16384, maxKv: 32768 },
  llama2_7b: { tokenBudget: 4096, decodes: { min: 8, max: 96 }, decodeKv: { median: 1024, sigma: 0.8 }, maxChunks: 3, minChunk: 128, maxPrefix: 3072, maxKv: 4096 },
  yi_6b: { tokenBudget: 4096, decodes: { min: 32, max: 256 }, decodeKv: { median: 2048, sigma: 0.9 }, maxChunks: 3, minChunk: 128, maxPrefix: 12288, maxKv: 32768 },
  qwen2_0_5b: { tokenBudget: 4096, decodes: { min: 32, max: 256 }, decodeKv: { median: 1024, sigma: 1.0 }, maxChunks: 4, minChunk: 128, maxPrefix: 8192, maxKv: 32768 },
  gpt_oss_20b: { tokenBudget: 8192, decodes: { min: 32, max: 256 }, decodeKv: { median: 4096, sigma: 1.0 }, maxChunks: 4, minChunk: 256, maxPrefix: 16384, maxKv: 32768 },
} as const satisfies Record<string, ServingMix>;

export interface ServingBatch {
  name: string;
  shape: BatchShape;
}

/** `count` batches of the mix from `seed`, named `<prefix>-<i>`. */
export function servingBatches(mix: ServingMix, seed: number, count: number, prefix = `serving-s${seed}`): ServingBatch[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const numDecodes = rng.int(mix.decodes.min, mix.decodes.max);
    const decodes = Array.from({ length: numDecodes }, () => {
      const kv = Math.round(mix.decodeKv.median * Math.exp(mix.decodeKv.sigma * rng.normal()));
      return Math.min(mix.maxKv, Math.max(1, kv));
    });
    let left = Math.max(0, mix.tokenBudget - numDecodes);
    const chunks = rng.int(1, mix.maxChunks);
    const prefills: BatchShape["prefills"] = [];
    for (let c = 0; c < chunks && left >= mix.minChunk; c++) {
      // The last chunk takes what is left; earlier ones a random share of it.
      const qLen = c === chunks - 1 ? left : rng.int(mix.minChunk, Math.max(mix.minChunk, Math.floor(left / 2)));
      const prefix = rng.int(0, mix.maxPrefix);
      prefills.push({ qLen, kvLen: Math.min(mix.maxKv, prefix + qLen) });
      left -= qLen;
    }
    return { name: `${prefix}-${i}`, shape: { prefills, decodes } };
  });
}
