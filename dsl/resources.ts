// The resource model: what a spec costs on its target (shared memory, threads, registers) and
// what the target allows. Derived from the spec every time, never stored beside it.
import { TARGET_LIMITS, type TargetLimits } from "./targets.ts";
import type { PrefillEngine, SpecFields } from "./schema.ts";

const ELEMENT_BYTES = 2; // fp16 and bf16: q, o, and the K/V tiles the tensor cores read
const FP8_BYTES = 1;
/**
 * Columns of one 128-byte-swizzled block of a shared-memory tile (64 16-bit elements): the unit of
 * wgmma's 128B swizzle and of the row swizzle (primitives.cuh:swz), which both need whole blocks.
 */
const SWIZZLE_COLUMNS = 64;
/**
 * Registers a thread needs beside its accumulators (O and the scores of one step): addresses, loop
 * state, the softmax's row max and sum, fragments in flight. The register rule (rules.ts) asks for
 * this much headroom; ptxas has the truth, and the build warns about spills.
 */
export const REGISTER_HEADROOM = 32;
/** Roles kernel: where each role's leader hands its claimed ticket to the role (scheduler.cuh). */
const ROLE_CLAIM_BYTES = 16;
/** Warp-specialized prefill: its mbarriers and item slots (prefill_ws.cuh, WsLayout), rounded up. */
const PIPELINE_BYTES = 256;
/** Warp-specialized prefill: threads of the producer warpgroup. */
const PRODUCER_THREADS = 128;
/**
 * Warp-specialized prefill: registers a producer thread keeps after `setmaxnreg` (page lookups, the
 * TMA issue and the cp.async loops for Q and a tile's last rows; ptxas reports a spill if too few).
 */
const PRODUCER_REGISTERS = 56;

export interface ResourceModel {
  limits: TargetLimits;
  /**
   * Columns of a Q, K or V row in shared memory (Traits::kSmemHeadDim): headDim rounded up to whole
   * 64-column swizzle blocks. D=96 rows are padded to 128 columns, the padding never read.
   */
  smemHeadDim: number;
  /**
   * The prefill mainloop (prefill.engine, or the target's default: wgmma on sm_90a with whole
   * warpgroups, else mma). Traits::Prefill::kEngine.
   */
  prefillEngine: PrefillEngine;
  /** Threads of the prefill CTA (roles: the prefill role): prefill.warps, plus the producer warpgroup when warp-specialized. */
  prefillThreads: number;
  /**
   * Threads of the fused kernel's CTAs. With 2 or 4 CTAs per SM prefill and decode tiles share one
   * CTA shape (prefill.warps); with 1 (roles) a CTA holds prefill.warps + decode.warps warps.
   */
  threads: number;
  /**
   * Threads per CTA of the prefill-only and decode-only kernels (launch.cuh): `threads`, except
   * with roles, where each launches just its own role.
   */
  standaloneThreads: { prefill: number; decode: number };
  /** ctasPerSm 1: one persistent CTA per SM runs a prefill role and a decode role side by side. */
  roles: boolean;
  /** Warps of one virtual decode CTA. */
  decodeWarpsPerVirtualCta: number;
  /** Query heads per KV head. */
  group: number;
  /**
   * fp8 KV: K/V tiles held as fp8 in shared memory (Traits::Prefill::kKvStaging,
   * Decode::kKvStaging). The prefill loops copy fp8 rows into these staging stages and dequantize
   * the tile about to be computed into its 16-bit stage: one less than the stages (at least one),
   * since the tile being computed is already 16-bit. The decode loop reads its fp8 tiles straight
   * into mma fragments: every stage is fp8 (decode.stages), rows of 128 bytes (D = 64 padded) for
   * the row swizzle. 0: a 16-bit cache.
   */
  kvStaging: { prefill: number; decode: number };
  /** 16-bit K/V stages of the decode loop (Traits::Decode::kKvBuffers): decode.stages, 0 with an fp8 cache. */
  decodeKvBuffers: number;
  /** 16-row fragments a prefill warp holds (PrefillShape::kMFrag): tile.q / warps / 16. */
  prefillFragmentsPerWarp: number;
  /** Keys per S = Q K^T / softmax / P V step of the prefill loop (Traits::Prefill::kSubKv). */
  prefillSubBlockKeys: number;
  /**
   * The prefill-only kernel's prefill (Traits::PrefillAlone): with the warp-specialized engine it
   * has the SM to itself, so it takes prefill.standalone's KV tile and stages (absent: the fused
   * kernel's), its consumers' registers decide its sub-block, and its shared memory is its own.
   * Other engines: the fused kernel's prefill.
   */
  prefillAlone: { tileKv: number; stages: number; subBlockKeys: number; smem: number };
  smem: {
    /**
     * Q tile plus `stages` K and V tiles, plus fp8 staging (kvStaging.prefill K and V fp8 tiles);
     * warp-specialized: plus its barriers, to a 1 KiB multiple.
     */
    prefillTile: number;
    /** `virtualCtas` decode tiles, each with its Q tile and K/V stages. */
    decodeTiles: number;
    /** Dynamic shared memory of one CTA: the larger of the two (roles: both, plus the claim slots). */
    perCta: number;
    /** What one CTA may use at `ctasPerSm` CTAs per SM on this target. */
    perCtaLimit: number;
    /** What one CTA may use alone on an SM (the prefill-only kernel of a warp-specialized spec). */
    aloneLimit: number;
  };
  registers: {
    /** Registers per thread the compiler may use at `ctasPerSm` (what `__launch_bounds__` implies). */
    budgetPerThread: number;
    /**
     * Roles (ctasPerSm 1) on sm_90a: what each role's threads ask for with `setmaxnreg` (the decode
     * role gives registers to the prefill role); null otherwise.
     */
    roles: { prefill: number; decode: number } | null;
    /**
     * Warp-specialized prefill: `setmaxnreg` of the producer warpgroup and of the consumer
     * warpgroups in the prefill-only kernel (in the roles kernel the consumers get roles.prefill).
     */
    warpSpecialized: { atLaunch: number; producer: number; consumers: number } | null;
    /** Rough per-thread need of the prefill tile loop (accumulators + overhead); ptxas has the truth. */
    prefillEstimate: number;
    decodeEstimate: number;
    /**
     * What the fused kernel's tile loops must hold in registers per thread, and what they get: the
     * fp32 O accumulators of a thread's 16-row fragments (D/2 registers each) plus the scores of one
     * step; the budget is the role's setmaxnreg count (warp-specialized: the consumers') or the
     * launch's share.
     */
    accumulators: { prefill: number; decode: number };
    budgets: { prefill: number; decode: number };
  };
}

/**
 * Shared memory of one attention tile: a Q tile plus `buffers` 16-bit buffers of K and V (rows of
 * smemHeadDim columns), plus `staging` fp8 buffers of K and V (fp8 caches) with rows of
 * `stagingRowBytes` (prefill: headDim bytes, since fp8 is allowed at D = 64 and 128 only; decode:
 * FP8_DECODE_ROW_BYTES).
 */
function tileSmem(tileQ: number, tileKv: number, buffers: number, staging: number, headDim: number, stagingRowBytes: number): number {
  return (tileQ + 2 * buffers * tileKv) * smemHeadDim(headDim) * ELEMENT_BYTES + 2 * staging * tileKv * stagingRowBytes;
}

/** Bytes of a decode fp8 tile row (kv_fp8.cuh, kFp8TileRowBytes): 8 chunks, the row swizzle's unit. */
const FP8_DECODE_ROW_BYTES = 128;

/**
 * The decode's merge scratch in a virtual CTA (decode.cuh, DecodeShape::kMergeBytes): each warp's
 * row maxima and sums, then its fp32 O rows. A virtual CTA is at least that large.
 */
const decodeMergeSmem = (warps: number, tileQ: number, headDim: number) => warps * tileQ * (2 + headDim) * 4;

/** headDim in whole swizzle blocks: the columns of a row in shared memory. */
export function smemHeadDim(headDim: number): number {
  return Math.ceil(headDim / SWIZZLE_COLUMNS) * SWIZZLE_COLUMNS;
}

/**
 * Whether the wgmma engines can take this head dimension: their operands are 64-column blocks of
 * the 128-byte swizzle, and P V's V is read column-major (MN-major), where a block is read whole.
 */
export function wgmmaHeadDim(headDim: number): boolean {
  return headDim % SWIZZLE_COLUMNS === 0;
}

/**
 * The prefill mainloop a spec gets: its own choice, or the target's default (wgmma on sm_90a with
 * whole warpgroups and whole 64-column blocks; else mma, e.g. for D=96).
 */
function prefillEngine(spec: SpecFields): PrefillEngine {
  const limits = TARGET_LIMITS[spec.target];
  const wgmma = limits.wgmma && spec.prefill.warps % 4 === 0 && wgmmaHeadDim(spec.headDim);
  return spec.prefill.engine ?? (wgmma ? "wgmma" : "mma");
}

export function resourceModel(spec: SpecFields): ResourceModel {
  const limits = TARGET_LIMITS[spec.target];
  const { prefill, decode, headDim, ctasPerSm } = spec;
  const roles = ctasPerSm === 1;
  const engine = prefillEngine(spec);
  const warpSpecialized = engine === "warp-specialized";
  const prefillThreads = prefill.warps * 32 + (warpSpecialized ? PRODUCER_THREADS : 0);
  const threads = prefillThreads + (roles ? decode.warps * 32 : 0);
  const decodeWarps = Math.max(1, Math.floor(decode.warps / decode.virtualCtas));

  const fp8 = spec.kvDtype === "e4m3";
  const kvStaging = { prefill: fp8 ? Math.max(1, prefill.stages - 1) : 0, decode: fp8 ? decode.stages : 0 };
  const decodeKvBuffers = fp8 ? 0 : decode.stages;
  const prefillSmem = (tileKv: number, stages: number) => {
    const tiles = tileSmem(prefill.tile.q, tileKv, stages, kvStaging.prefill, headDim, headDim * FP8_BYTES);
    return warpSpecialized ? Math.ceil((tiles + PIPELINE_BYTES) / 1024) * 1024 : tiles;
  };
  const prefillTile = prefillSmem(prefill.tile.kv, prefill.stages);
  const decodeVirtualCta = Math.max(
    tileSmem(decode.tile.q, decode.tile.kv, decodeKvBuffers, kvStaging.decode, headDim, FP8_DECODE_ROW_BYTES),
    decodeMergeSmem(decodeWarps, decode.tile.q, headDim),
  );
  const decodeTiles = decode.virtualCtas * decodeVirtualCta;
  const perCtaLimit = Math.min(
    limits.smemPerCtaMax,
    Math.floor(limits.smemPerSm / ctasPerSm) - limits.smemReservedPerCta,
  );

  const rawBudget = Math.floor(limits.registersPerSm / (threads * ctasPerSm));
  const budgetPerThread = Math.min(limits.registersPerThreadMax, Math.floor(rawBudget / 8) * 8);
  const roleRegisters = roles ? splitRoleRegisters(spec, prefillThreads, limits) : null;
  const wsRegisters = warpSpecialized ? splitWarpSpecialized(prefill.warps * 32, prefillThreads, limits) : null;
  // mma.m16n8k16 accumulators: 4 fp32 registers per thread per 16x8 output tile.
  const prefillRowTiles = Math.max(1, prefill.tile.q / prefill.warps / 16);
  const subKv = prefillSubBlockKeys(spec, engine, prefill.tile.kv, prefillRowTiles, roleRegisters?.prefill ?? rawBudget);
  const alone = (warpSpecialized && prefill.standalone) || { tileKv: prefill.tile.kv, stages: prefill.stages };
  const prefillAlone = {
    ...alone,
    subBlockKeys: wsRegisters ? prefillSubBlockKeys(spec, engine, alone.tileKv, prefillRowTiles, wsRegisters.consumers) : subKv,
    smem: prefillSmem(alone.tileKv, alone.stages),
  };
  const prefillEstimate = prefillRowTiles * ((headDim / 8) * 4 + (subKv / 8) * 4 + 4) + 48;
  const decodeKeysPerWarp = Math.max(8, decode.tile.kv / decodeWarps);
  const decodeEstimate = (headDim / 8) * 4 + (decodeKeysPerWarp / 8) * 4 + 4 + 48;
  const accumulators = {
    prefill: prefillRowTiles * (headDim / 2 + subKv / 2),
    decode: headDim / 2 + decodeKeysPerWarp / 2,
  };
  const budgets = {
    prefill: roleRegisters?.prefill ?? budgetPerThread,
    decode: roleRegisters?.decode ?? budgetPerThread,
  };

  return {
    limits,
    smemHeadDim: smemHeadDim(headDim),
    prefillEngine: engine,
    prefillThreads,
    threads,
    // Without roles decode.warps equals prefill.warps (rules.ts), so both are `threads`.
    standaloneThreads: { prefill: prefillThreads, decode: decode.warps * 32 },
    decodeWarpsPerVirtualCta: decodeWarps,
    group: Math.max(1, Math.floor(spec.heads.q / spec.heads.kv)),
    prefillFragmentsPerWarp: prefillRowTiles,
    roles,
    smem: {
      prefillTile,
      decodeTiles,
      perCta: roles ? prefillTile + decodeTiles + ROLE_CLAIM_BYTES : Math.max(prefillTile, decodeTiles),
      perCtaLimit,
      aloneLimit: Math.min(limits.smemPerCtaMax, limits.smemPerSm - limits.smemReservedPerCta),
    },
    kvStaging,
    decodeKvBuffers,
    prefillSubBlockKeys: subKv,
    prefillAlone,
    registers: {
      budgetPerThread,
      roles: roleRegisters,
      warpSpecialized: wsRegisters,
      prefillEstimate,
      decodeEstimate,
      accumulators,
      budgets,
    },
  };
}

/**
 * The prefill-only kernel of a warp-specialized spec: one CTA per SM; the producer warpgroup keeps
 * PRODUCER_REGISTERS a thread and the consumers take the rest of what the CTA got at launch.
 */
function splitWarpSpecialized(
  consumerThreads: number,
  prefillThreads: number,
  limits: TargetLimits,
): { atLaunch: number; producer: number; consumers: number } {
  const atLaunch = Math.floor(limits.registersPerSm / prefillThreads / 8) * 8;
  const held = atLaunch * prefillThreads;
  const consumers = Math.floor((held - PRODUCER_THREADS * PRODUCER_REGISTERS) / consumerThreads / 8) * 8;
  return { atLaunch, producer: PRODUCER_REGISTERS, consumers: Math.min(SETMAXNREG_MAX, consumers) };
}

/** The most registers `setmaxnreg` may ask for (PTX ISA). */
const SETMAXNREG_MAX = 256;

/**
 * Registers a thread of the roles CTA's decode role keeps after `setmaxnreg`: enough for a decode
 * tile that re-reads Q from shared memory (decode.cuh, kQInRegs) at D <= 128; a wider head adds its
 * extra O accumulators (D/2 a thread), e.g. 200 at D=256.
 */
function decodeRoleRegisters(headDim: number): number {
  return 136 + extraOutputRegisters(headDim);
}

/** O accumulator registers a thread holds per 16-row fragment beyond those of D=128 (0 at D <= 128). */
function extraOutputRegisters(headDim: number): number {
  return Math.max(0, (headDim - 128) / 2);
}

/**
 * Roles on sm_90a with whole warpgroups per role: the decode role holds 136 registers a thread
 * (fewer than at launch with an 8-warp prefill role, more beside a warp-specialized one, whose
 * producer gives up the most) and the prefill role -- its consumers when warp-specialized -- takes
 * the rest of what the CTA got at launch (setmaxnreg moves registers only within the CTA's
 * allocation, in multiples of 8 a thread; asking for more than it holds blocks forever).
 * Elsewhere both keep the launch's even share.
 */
function splitRoleRegisters(
  spec: SpecFields,
  prefillThreads: number,
  limits: TargetLimits,
): { prefill: number; decode: number } | null {
  const decodeThreads = spec.decode.warps * 32;
  if (!limits.wgmma || spec.prefill.warps % 4 !== 0 || spec.decode.warps % 4 !== 0) return null;
  const atLaunch = Math.floor(limits.registersPerSm / (prefillThreads + decodeThreads) / 8) * 8;
  const held = atLaunch * (prefillThreads + decodeThreads);
  // Warp-specialized: the producer warpgroup keeps PRODUCER_REGISTERS; "prefill" is the consumers'.
  const producer = prefillThreads - spec.prefill.warps * 32;
  const computeThreads = spec.prefill.warps * 32;
  const decodeRegisters = decodeRoleRegisters(spec.headDim);
  const prefill = Math.min(
    SETMAXNREG_MAX,
    Math.floor((held - decodeThreads * decodeRegisters - producer * PRODUCER_REGISTERS) / computeThreads / 8) * 8,
  );
  return prefill > atLaunch ? { prefill, decode: decodeRegisters } : null;
}

/**
 * The prefill loop's sub-block width (the generated Traits::Prefill::kSubKv): the largest multiple
 * of 16 keys dividing the KV tile `tileKv` (a power of two up to 128 with wgmma) whose scores stay within
 * 64 columns across a thread's 16-row fragments -- or, with wgmma and one fragment per warp (no
 * registers for Q, K, V fragments), within 128 columns at 200+ registers a thread, 64 at 168+ (the
 * roles CTA of 12 warps) and 32 below: at 128 registers (8-warp CTAs, 4 CTAs per SM) wider scores
 * make ptxas serialize the wgmmas (C7512). The thresholds are those of D <= 128; a wider head's
 * extra O accumulators come off the registers first.
 */
function prefillSubBlockKeys(spec: SpecFields, engine: PrefillEngine, tileKv: number, rowTiles: number, budget: number): number {
  const wgmma = engine !== "mma";
  const registers = budget - rowTiles * extraOutputRegisters(spec.headDim);
  // Warp-specialized consumers hold the next sub-block's scores, this one's P and O at once.
  const maxScores =
    engine === "warp-specialized"
      ? registers >= 200 ? 128 : registers >= 160 ? 64 : 32
      : wgmma && rowTiles === 1 ? (registers >= 200 ? 128 : registers >= 168 ? 64 : 32) : 64;
  let best = 16;
  for (let k = 16; k <= tileKv && k <= 128; k += 16) {
    if (tileKv % k === 0 && rowTiles * k <= maxScores && (!wgmma || (k & (k - 1)) === 0)) best = k;
  }
  return best;
}
