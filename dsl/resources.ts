// The resource model: what a spec costs on its target (shared memory, threads, registers) and
// what the target allows. Derived from the spec every time, never stored beside it.
import { TARGET_LIMITS, type TargetLimits } from "./targets.ts";
import type { SpecFields } from "./schema.ts";

const ELEMENT_BYTES = 2; // fp16 and bf16

export interface ResourceModel {
  limits: TargetLimits;
  /** Threads of every CTA of this spec (prefill and decode tiles share the CTA shape). */
  threads: number;
  /** Warps of one virtual decode CTA. */
  decodeWarpsPerVirtualCta: number;
  /** Query heads per KV head. */
  group: number;
  /** Keys per S = Q K^T / softmax / P V step of the prefill loop (Traits::Prefill::kSubKv). */
  prefillSubBlockKeys: number;
  smem: {
    /** Q tile plus `stages` K and V tiles. */
    prefillTile: number;
    /** `virtualCtas` decode tiles, each with its Q tile and K/V stages. */
    decodeTiles: number;
    /** Dynamic shared memory of one CTA: the larger of the two. */
    perCta: number;
    /** What one CTA may use at `ctasPerSm` CTAs per SM on this target. */
    perCtaLimit: number;
  };
  registers: {
    /** Registers per thread the compiler may use at `ctasPerSm` (what `__launch_bounds__` implies). */
    budgetPerThread: number;
    /** Rough per-thread need of the prefill tile loop (accumulators + overhead); ptxas has the truth. */
    prefillEstimate: number;
    decodeEstimate: number;
  };
}

/** Shared memory of one attention tile: a Q tile plus `stages` buffers of K and V. */
function tileSmem(tileQ: number, tileKv: number, stages: number, headDim: number): number {
  return (tileQ + 2 * stages * tileKv) * headDim * ELEMENT_BYTES;
}

export function resourceModel(spec: SpecFields): ResourceModel {
  const limits = TARGET_LIMITS[spec.target];
  const { prefill, decode, headDim, ctasPerSm } = spec;
  const threads = prefill.warps * 32;
  const decodeWarps = Math.max(1, Math.floor(decode.warps / decode.virtualCtas));

  const prefillTile = tileSmem(prefill.tile.q, prefill.tile.kv, prefill.stages, headDim);
  const decodeTiles =
    decode.virtualCtas * tileSmem(decode.tile.q, decode.tile.kv, decode.stages, headDim);
  const perCtaLimit = Math.min(
    limits.smemPerCtaMax,
    Math.floor(limits.smemPerSm / ctasPerSm) - limits.smemReservedPerCta,
  );

  const rawBudget = Math.floor(limits.registersPerSm / (threads * ctasPerSm));
  const budgetPerThread = Math.min(limits.registersPerThreadMax, Math.floor(rawBudget / 8) * 8);
  // mma.m16n8k16 accumulators: 4 fp32 registers per thread per 16x8 output tile.
  const prefillRowTiles = Math.max(1, prefill.tile.q / prefill.warps / 16);
  const subKv = prefillSubBlockKeys(spec, prefillRowTiles, rawBudget);
  const prefillEstimate = prefillRowTiles * ((headDim / 8) * 4 + (subKv / 8) * 4 + 4) + 48;
  const decodeKeysPerWarp = Math.max(8, decode.tile.kv / decodeWarps);
  const decodeEstimate = (headDim / 8) * 4 + (decodeKeysPerWarp / 8) * 4 + 4 + 48;

  return {
    limits,
    threads,
    decodeWarpsPerVirtualCta: decodeWarps,
    group: Math.max(1, Math.floor(spec.heads.q / spec.heads.kv)),
    smem: { prefillTile, decodeTiles, perCta: Math.max(prefillTile, decodeTiles), perCtaLimit },
    prefillSubBlockKeys: subKv,
    registers: { budgetPerThread, prefillEstimate, decodeEstimate },
  };
}

/**
 * The prefill loop's sub-block width (the generated Traits::Prefill::kSubKv): the largest multiple
 * of 16 keys dividing the KV tile (a power of two up to 128 with wgmma) whose scores stay within
 * 64 columns across a thread's 16-row fragments -- or, with wgmma and one fragment per warp (no
 * registers for Q, K, V fragments), within 128 columns at 168+ registers a thread and 32 below:
 * at 128 registers (8-warp CTAs, 4 CTAs per SM) wider scores make ptxas serialize the wgmmas (C7512).
 */
function prefillSubBlockKeys(spec: SpecFields, rowTiles: number, registers: number): number {
  const wgmma = spec.target === "sm_90a" && spec.prefill.warps % 4 === 0;
  const maxScores = wgmma && rowTiles === 1 ? (registers >= 168 ? 128 : 32) : 64;
  let best = 16;
  for (let k = 16; k <= spec.prefill.tile.kv && k <= 128; k += 16) {
    if (spec.prefill.tile.kv % k === 0 && rowTiles * k <= maxScores && (!wgmma || (k & (k - 1)) === 0)) best = k;
  }
  return best;
}
