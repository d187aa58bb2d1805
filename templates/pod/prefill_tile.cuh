// Pieces the prefill mainloops share (prefill_mma.cuh, prefill_wgmma.cuh, prefill_ws.cuh): the
// tile's shape and shared-memory layout, the causal mask of a score fragment, packing
// probabilities into an A fragment, storing a fragment's rows, and (for the first two) the work
// item and the CTA's cp.async pipeline.
//
// Fragments are those of mma.sync m16n8k16 (and of a warp's rows in a wgmma accumulator): a thread
// holds rows g and g + 8 (g = lane / 4) of 16, and of each 8-key group the keys 2 (lane % 4) + {0, 1}.
#pragma once
#include <type_traits>
#include "softmax.cuh"
#include "tile_io.cuh"
#include "variants.cuh"
#include "wgmma.cuh"

namespace pod {

// The traits of the prefill-only kernel (warp-specialized engine): the spec's, with Prefill
// replaced by Traits::PrefillAlone (its own KV tile, stages and sub-block; the same plan).
template <class Traits>
struct PrefillAloneTraits : Traits {
  using Prefill = typename Traits::PrefillAlone;
};

template <class Traits>
struct PrefillShape {
  using P = typename Traits::Prefill;
  static constexpr int D = Traits::kHeadDim;
  static constexpr int kTileQ = P::kTileQ;
  static constexpr int kTileKv = P::kTileKv;
  static constexpr int kWarps = P::kWarps;     // warps that compute (consumers when warp-specialized)
  static constexpr int kStages = P::kStages;
  static constexpr int kThreads = P::kThreads;  // the prefill CTA (roles: the prefill role), producer included
  static constexpr int kComputeThreads = kWarps * 32;
  static constexpr bool kWarpSpecialized = P::kEngine == POD_ENGINE_WARP_SPECIALIZED;
  static constexpr bool kWgmma = P::kEngine != POD_ENGINE_MMA;
  static constexpr int kRowsPerWarp = kTileQ / kWarps;
  static constexpr int kMFrag = kRowsPerWarp / 16;  // 16-row fragments per warp
  static constexpr int kRowsPerGroup = 4 * kRowsPerWarp;  // rows of one warpgroup (wgmma)
  // Keys per sub-block of the S = Q K^T / softmax / P V step, chosen by the resource model
  // (dsl/resources.ts, prefillSubBlockKeys) so that the scores fit the register budget.
  static constexpr int kSubKv = P::kSubKv;
  static constexpr int kN = kSubKv / 8;              // 8-key score fragments per sub-block
  static constexpr int kD8 = D / 8;                  // 8-column output fragments
  static constexpr int kChunks = D / 8;              // 16-byte chunks of a row in global memory
  static constexpr int kSmemChunks = Traits::kSmemHeadDim / 8;  // ... and of a shared-memory row (D=96: padded)
  static constexpr int kQBytes = kTileQ * Traits::kSmemHeadDim * 2;
  static constexpr int kKvBytes = kTileKv * Traits::kSmemHeadDim * 2;   // one K (or V) stage
  static constexpr int kStageBytes = 2 * kKvBytes;
  // fp8 KV: kKvStaging fp8 K/V tiles after the stages, for the tiles in flight (kv_fp8.cuh).
  static constexpr int kKvStaging = P::kKvStaging;
  static constexpr int kStagingKvBytes = kTileKv * D;  // one fp8 K (or V) tile
  static constexpr int kStagingBytes = 2 * kStagingKvBytes;
  static constexpr int kTileBytes = kQBytes + kStages * kStageBytes + kKvStaging * kStagingBytes;
  static constexpr int kSmemBytes = P::kSmemBytes;   // tiles (+ the pipeline's barriers), resource model
  // wgmma with 3+ stages and one warpgroup: a tile's last P V is carried over into the next tile
  // (prefill_tile), so it may still read its stage while the next tile's refill is issued; the
  // refill then runs one tile less ahead. One warpgroup, because then every KV tile of an item has
  // keys for it (the planner clips kv_end to the item's last row), so a P V is never left queued
  // behind a tile that the warpgroup skips. kAhead: KV tiles in flight ahead of the one computed.
  static constexpr bool kCarryPv = P::kEngine == POD_ENGINE_WGMMA && kStages >= 3 && kWarps == 4;
  static constexpr int kAhead = kCarryPv ? kStages - 2 : kStages - 1;
  using QLayout = typename std::conditional<kWgmma, Sw128Tile<kTileQ>, RowSwizzledTile<kSmemChunks>>::type;
  using KvLayout = typename std::conditional<kWgmma, Sw128Tile<kTileKv>, RowSwizzledTile<kSmemChunks>>::type;

  // First packed row of fragment mf of warp `warp`.
  static __device__ __forceinline__ int frag_row0(int warp, int mf) {
    if constexpr (kWgmma) return (warp / 4) * kRowsPerGroup + mf * 64 + (warp % 4) * 16;
    else return warp * kRowsPerWarp + mf * 16;
  }
  // Rows that run their products together (a warpgroup with wgmma, a warp with mma.sync): the
  // first and last; a sub-block is skipped only when it is masked for all of them.
  static __device__ __forceinline__ int unit_row0(int warp) {
    return kWgmma ? (warp / 4) * kRowsPerGroup : warp * kRowsPerWarp;
  }
  static constexpr int kRowsPerUnit = kWgmma ? kRowsPerGroup : kRowsPerWarp;

  // ctasPerSm 1 (roles): the prefill role is the CTA's first kThreads threads.
  static constexpr bool kRole = Traits::kRoles;
  static_assert(kWarps >= 1 && (kRole ? kThreads < Traits::kThreads : kThreads == Traits::kThreads),
                "Prefill::kThreads == kThreads (roles: the prefill role's share)");
  static_assert(kThreads == kComputeThreads + (kWarpSpecialized ? 128 : 0),
                "the warp-specialized engine adds one producer warpgroup");
  static_assert(kTileQ % (16 * kWarps) == 0, "Prefill::kTileQ must be a multiple of 16 * kWarps");
  static_assert(kTileKv % 16 == 0 && kTileKv >= 16, "Prefill::kTileKv must be a multiple of 16");
  static_assert(kStages >= 1, "Prefill::kStages >= 1");
  static_assert(kSubKv % 16 == 0 && kTileKv % kSubKv == 0, "sub-blocks of 16-key multiples tile the KV tile");
  static_assert(!kWgmma || (kSubKv <= 128 && (kSubKv & (kSubKv - 1)) == 0), "wgmma sub-blocks: N = 16, 32, 64, 128");
  static_assert(!kWgmma || kWarps % 4 == 0, "wgmma runs on whole warpgroups");
  static_assert(Traits::kKvFp8 ? kKvStaging >= (kAhead > 0 ? kAhead : 1) : kKvStaging == 0,
                "fp8 KV: a staging stage for each tile in flight (Prefill::kKvStaging)");
  static_assert(!(Traits::kKvFp8 && kWarpSpecialized), "the warp-specialized engine takes no fp8 KV cache (dsl/rules.ts)");
  static_assert(!kWgmma || D == Traits::kSmemHeadDim, "wgmma operands are whole 64-column blocks (D = 96 takes the mma engine)");
  // The prefill-only kernel's tiles (PrefillAloneTraits) have the SM to themselves (launch_prefill).
  static_assert(kTileBytes <= kSmemBytes && (kSmemBytes <= Traits::kSmemBytes || std::is_same<P, typename Traits::PrefillAlone>::value),
                "prefill tiles exceed Traits::kSmemBytes");
#if defined(__CUDA_ARCH__)
  static_assert(!kWgmma || POD_HAS_WGMMA, "the wgmma engines are compiled for sm_90a only");
#endif
  // wgmma operands start on 1024-byte boundaries (the kernels align dynamic shared memory so).
  static_assert(!kWgmma || (kQBytes % 1024 == 0 && kKvBytes % 1024 == 0), "1024-byte tiles");
};

// Sets the scores of keys at or past each row's limit to -inf: s holds the rows row0 + g and
// row0 + g + 8 of a 16-row fragment over keys sub_start + 8n ...; row_limit(r) is the first key
// that packed row r may not see.
template <int kN, class RowLimit>
__device__ __forceinline__ void mask_scores(float (&s)[kN][4], int row0, int lane, int sub_start,
                                            const RowLimit& row_limit) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int lim = row_limit(row0 + h * 8 + lane / 4) - sub_start;
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (n * 8 + (lane % 4) * 2 + e >= lim) s[n][2 * h + e] = -INFINITY;
  }
}

// Probabilities of kN 8-key fragments packed to 16 bits as the A fragments of P V (16 keys each).
template <class T, int kN>
__device__ __forceinline__ void pack_p(uint32_t (&pa)[kN / 2][4], const float (&s)[kN][4]) {
#pragma unroll
  for (int kk = 0; kk < kN / 2; ++kk) {
    pa[kk][0] = Cvt<T>::pack(s[2 * kk][0], s[2 * kk][1]);
    pa[kk][1] = Cvt<T>::pack(s[2 * kk][2], s[2 * kk][3]);
    pa[kk][2] = Cvt<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    pa[kk][3] = Cvt<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

// Normalizes and stores the two rows this thread holds of the 16-row fragment at tile row row0:
// to o (and lse) when the item is not split, else to this split's fp32 partials. With sinks an
// unsplit row counts its head's sink here; a split row leaves it to the combine.
template <class Traits, int kTileQ>
__device__ __forceinline__ void store_prefill_rows(const PodParams& p, const PodWorkItem& it, int rows_valid,
                                                   int row0, int lane, const float (&o)[Traits::kHeadDim / 8][4],
                                                   SoftmaxRows& rows) {
  using T = typename Traits::DType;
  using Out = RowOut<Traits, POD_OP_PREFILL, kTileQ>;
  constexpr int kD8 = Traits::kHeadDim / 8;
  float inv_l[2], lse[2];
  if constexpr (Variants<Traits>::kSinks) {
    if (it.num_splits == 1) {
      float sink[2];
#pragma unroll
      for (int h = 0; h < 2; ++h)
        sink[h] = Variants<Traits>::sink_log2(p, it.kv_head * Traits::kGroup + (it.row_begin + row0 + h * 8 + lane / 4) % Traits::kGroup);
      rows.finalize(inv_l, lse, sink);
    } else {
      rows.finalize(inv_l, lse);
    }
  } else {
    rows.finalize(inv_l, lse);
  }
  if constexpr (Variants<Traits>::kKvFp8) {
    const float v_scale = Variants<Traits>::v_scale(p, it.kv_head);
    inv_l[0] *= v_scale;
    inv_l[1] *= v_scale;
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = row0 + h * 8 + lane / 4;
    if (r >= rows_valid) continue;
    int64_t o_off, lse_idx;
    Out::locate(it, r, o_off, lse_idx);
    const int col = (lane % 4) * 2;
    if (it.num_splits == 1) {
      T* out = static_cast<T*>(p.o[POD_OP_PREFILL]) + o_off + col;
#pragma unroll
      for (int d = 0; d < kD8; ++d)
        *reinterpret_cast<uint32_t*>(out + d * 8) = Cvt<T>::pack(o[d][2 * h] * inv_l[h], o[d][2 * h + 1] * inv_l[h]);
      if (p.lse[POD_OP_PREFILL] != nullptr && lane % 4 == 0) p.lse[POD_OP_PREFILL][lse_idx] = lse[h];
    } else {
      float* out = p.partial_o[POD_OP_PREFILL] + o_off + col;
#pragma unroll
      for (int d = 0; d < kD8; ++d)
        *reinterpret_cast<float2*>(out + d * 8) = make_float2(o[d][2 * h] * inv_l[h], o[d][2 * h + 1] * inv_l[h]);
      if (lane % 4 == 0) p.partial_lse[POD_OP_PREFILL][lse_idx] = lse[h];
    }
  }
}

// Barrier of the threads that run a prefill tile: the whole CTA, or with roles (ctasPerSm 1) the
// prefill role only, on its own hardware barrier (the decode role's virtual CTAs use ids
// 1 .. kVirtualCtas, its ticket hand-over 14; scheduler.cuh).
constexpr int kPrefillRoleBarrier = 15;
template <class Traits>
__device__ __forceinline__ void prefill_sync() {
  if constexpr (PrefillShape<Traits>::kRole) named_barrier(kPrefillRoleBarrier, PrefillShape<Traits>::kThreads);
  else __syncthreads();
}

// What the cp.async mainloops (prefill_mma.cuh, prefill_wgmma.cuh) need of their work item, and
// their shared pipeline: Q and the first kAhead KV tiles, then load(i) for tile i into stage
// i % kStages (all of the prefill's threads copy; zeros past the item's rows and keys).
template <class Traits>
struct PrefillItem {
  using S = PrefillShape<Traits>;
  PodWorkItem it;
  int rows_valid, num_tiles, page_base;
  int causal_base;  // keys j < causal_base + token of packed row r are visible to it (bottom-right)

  __device__ __forceinline__ PrefillItem(const PodParams& p, ItemRef item) : it(load_item(item)) {
    rows_valid = min(S::kTileQ, it.q_len * Traits::kGroup - it.row_begin);
    num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
    page_base = __ldg(p.page_indptr + it.request);
    causal_base = it.kv_len - it.q_len + 1;
  }
  // One past the last key packed row r sees: its causal bound and the split's end.
  __device__ __forceinline__ int row_limit(int r) const {
    return min(causal_base + (it.row_begin + r) / Traits::kGroup, it.kv_end);
  }
  // The first key packed row r sees (sliding window; may be negative).
  __device__ __forceinline__ int row_first(int r) const {
    return Variants<Traits>::first_key(causal_base, (it.row_begin + r) / Traits::kGroup);
  }
  // Tile i into stage i % kStages, or with an fp8 cache into staging stage i % kKvStaging.
  __device__ __forceinline__ void load_tile(const PodParams& p, uint32_t s_kv, int i, int tid) const {
    using Io = TileIo<Traits>;
    const uint32_t k = Traits::kKvFp8 ? staging(s_kv, i) : s_kv + (i % S::kStages) * S::kStageBytes;
    const uint32_t v = k + (Traits::kKvFp8 ? S::kStagingKvBytes : S::kKvBytes);
    Io::template load_kv<S::kTileKv, S::kThreads, typename Io::template KvCopyLayout<typename S::KvLayout>>(
        p, page_base, it.kv_head, it.kv_begin + i * S::kTileKv, it.kv_end, 0, k, v, tid);
  }
  static __device__ __forceinline__ uint32_t staging(uint32_t s_kv, int i) {
    return s_kv + S::kStages * S::kStageBytes + (i % (S::kKvStaging > 0 ? S::kKvStaging : 1)) * S::kStagingBytes;
  }
  // fp8: tile i, landed in staging for every thread, into its 16-bit stage.
  __device__ __forceinline__ void dequantize_tile(uint32_t s_kv, int i, int tid) const {
    using T = typename Traits::DType;
    const uint32_t src = staging(s_kv, i), dst = s_kv + (i % S::kStages) * S::kStageBytes;
    dequantize_rows<T, S::D, S::kTileKv, S::kThreads, typename S::KvLayout>(src, dst, 0, tid);
    dequantize_rows<T, S::D, S::kTileKv, S::kThreads, typename S::KvLayout>(src + S::kStagingKvBytes, dst + S::kKvBytes, 0, tid);
  }
  // Q, then the first kAhead tiles, each tile its own cp.async group (empty past the last tile).
  __device__ __forceinline__ void load_ahead(const PodParams& p, uint32_t s_q, uint32_t s_kv, int tid) const {
    TileIo<Traits>::template load_q<S::kTileQ, S::kThreads, typename S::QLayout>(
        static_cast<const typename Traits::DType*>(p.q[POD_OP_PREFILL]), it, rows_valid, s_q, tid);
#pragma unroll
    for (int i = 0; i < S::kAhead; ++i) {
      if (i < num_tiles) load_tile(p, s_kv, i, tid);
      cp_async_commit();
    }
  }
  // Tile i has landed for every thread of the prefill (kAsyncProxy: and is visible to the tensor
  // cores, which read shared memory through the async proxy; wgmma.cuh), and every product that
  // read stage (i + kAhead) % kStages has finished; then that stage starts loading tile i + kAhead.
  // fp8: tile i lands in staging; once every thread's copies have, it is dequantized into stage
  // i % kStages (whose last reader, tile i - kStages, is done), and only then may the refill reuse
  // its staging stage.
  template <bool kAsyncProxy>
  __device__ __forceinline__ void next_tile(const PodParams& p, uint32_t s_kv, int i, int tid) const {
    if constexpr (S::kAhead == 0) {
      load_tile(p, s_kv, i, tid);
      cp_async_commit();
      cp_async_wait<0>();
    } else {
      cp_async_wait<S::kAhead - 1>();  // tile i (and Q) landed for this thread's copies
    }
    if constexpr (Traits::kKvFp8) {
      prefill_sync<Traits>();
      dequantize_tile(s_kv, i, tid);
    }
    if constexpr (kAsyncProxy) fence_proxy_async();
    prefill_sync<Traits>();  // ... and for everyone's
    if constexpr (S::kAhead > 0) {
      if (i + S::kAhead < num_tiles) load_tile(p, s_kv, i + S::kAhead, tid);
      cp_async_commit();
    }
  }
};

// Zeroed output accumulators and softmax state of a warp's kMFrag fragments.
template <int kMFrag, int kD8>
__device__ __forceinline__ void clear_rows(float (&o)[kMFrag][kD8][4], SoftmaxRows (&rows)[kMFrag]) {
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf) {
    rows[mf].init();
#pragma unroll
    for (int d = 0; d < kD8; ++d) o[mf][d][0] = o[mf][d][1] = o[mf][d][2] = o[mf][d][3] = 0.f;
  }
}

}  // namespace pod
