// Prefill tile loop: one work item = up to Prefill::kTileQ packed query rows of one request and
// one KV head, against keys [kv_begin, kv_end). All kWarps warps of the CTA take part; warp w owns
// packed rows [w * kRowsPerWarp, (w + 1) * kRowsPerWarp) as kMFrag fragments of 16 rows.
//
// Shared memory (bytes, 16-bit elements, rows swizzled by primitives.cuh:swz):
//   [ Q: kTileQ x D ][ stage 0: K kTileKv x D, V kTileKv x D ] ... [ stage kStages-1 ]
//   = kTileQ*D*2 + kStages*kTileKv*D*2*2
// Pipeline: cp.async groups, kStages-1 KV tiles in flight ahead of the one being computed.
// Per KV tile and warp: S = Q K^T (ldmatrix + mma.sync, fp32), causal/ragged mask, online softmax,
// O += P V with P packed to 16 bits as the A operand straight from the S registers.
#pragma once
#include "softmax.cuh"
#include "tile_io.cuh"

namespace pod {

template <class Traits>
struct PrefillShape {
  using P = typename Traits::Prefill;
  static constexpr int D = Traits::kHeadDim;
  static constexpr int kTileQ = P::kTileQ;
  static constexpr int kTileKv = P::kTileKv;
  static constexpr int kWarps = P::kWarps;
  static constexpr int kStages = P::kStages;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRowsPerWarp = kTileQ / kWarps;
  static constexpr int kMFrag = kRowsPerWarp / 16;  // 16-row fragments per warp
  // Keys per sub-block of the S = Q K^T / softmax / P V step: scores of kMFrag fragments x kSubKv
  // keys take kMFrag * kSubKv / 2 registers per thread; keep them at 32 (64 when one fragment).
  static constexpr int sub_kv() {
    int best = 16;  // largest multiple of 16 that divides kTileKv with kMFrag * keys <= 64
    for (int k = 16; k <= kTileKv; k += 16)
      if (kTileKv % k == 0 && kMFrag * k <= 64) best = k;
    return best;
  }
  static constexpr int kSubKv = sub_kv();
  static constexpr int kN = kSubKv / 8;              // 8-key score fragments per sub-block
  static constexpr int kD8 = D / 8;                  // 8-column output fragments
  static constexpr int kChunks = D / 8;
  static constexpr int kQBytes = kTileQ * D * 2;
  static constexpr int kKvBytes = kTileKv * D * 2;   // one K (or V) stage
  static constexpr int kStageBytes = 2 * kKvBytes;
  static constexpr int kSmemBytes = kQBytes + kStages * kStageBytes;

  static_assert(kWarps >= 1 && kThreads == Traits::kThreads, "Prefill::kWarps * 32 == kThreads");
  static_assert(kTileQ % (16 * kWarps) == 0, "Prefill::kTileQ must be a multiple of 16 * kWarps");
  static_assert(kTileKv % 16 == 0 && kTileKv >= 16, "Prefill::kTileKv must be a multiple of 16");
  static_assert(kStages >= 1, "Prefill::kStages >= 1");
  static_assert(kTileKv % kSubKv == 0, "sub-blocks tile the KV tile");
  static_assert(kSmemBytes <= Traits::kSmemBytes, "prefill tiles exceed Traits::kSmemBytes");
};

template <class Traits>
__device__ __forceinline__ void prefill_tile(const PodParams& p, const PodWorkItem* item,
                                             uint8_t* smem, int tid) {
  using S = PrefillShape<Traits>;
  using T = typename Traits::DType;
  using Io = TileIo<Traits>;
  using Out = RowOut<Traits, POD_OP_PREFILL, S::kTileQ>;
  constexpr int D = S::D, G = Traits::kGroup, kMFrag = S::kMFrag, kN = S::kN, kD8 = S::kD8;
  constexpr int kChunks = S::kChunks;

  const int warp = tid / 32, lane = tid % 32;
  PodWorkItem it = load_item(item);
  const int rows_valid = min(S::kTileQ, it.q_len * G - it.row_begin);
  const int num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
  const int page_base = __ldg(p.page_indptr + it.request);
  const int warp_row0 = warp * S::kRowsPerWarp;
  // Keys j < limit(row) are visible to a row: causal bound (bottom-right) and the split's end.
  const int causal_base = it.kv_len - it.q_len + 1;
  auto row_limit = [&](int r) { return min(causal_base + (it.row_begin + r) / G, it.kv_end); };
  const int warp_limit_lo = row_limit(warp_row0);                        // first row of the warp
  const int warp_limit_hi = row_limit(warp_row0 + S::kRowsPerWarp - 1);  // last row of the warp
  const float scale_log2 = p.sm_scale * kLog2e;

  const uint32_t s_q = smem_u32(smem);
  const uint32_t s_kv = s_q + S::kQBytes;
  // Per-lane ldmatrix offsets (primitives.cuh:lane_off): Q as A (row lane%16, chunk lane/16),
  // K as B of Q K^T (key (lane/16)*8 + lane%8, chunk (lane/8)%2), V as B of P V via .trans
  // (key ((lane/8)%2)*8 + lane%8, chunk lane/16).
  const uint32_t lq = lane_off<kChunks>(warp_row0 % 8 + lane % 16, lane / 16) + (warp_row0 / 8) * 8 * kChunks * 16;
  const uint32_t lk = lane_off<kChunks>((lane / 16) * 8 + lane % 8, (lane / 8) % 2);
  const uint32_t lv = lane_off<kChunks>(((lane / 8) % 2) * 8 + lane % 8, lane / 16);

  float o[kMFrag][kD8][4];
  SoftmaxRows rows[kMFrag];
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf) {
    rows[mf].init();
#pragma unroll
    for (int d = 0; d < kD8; ++d) o[mf][d][0] = o[mf][d][1] = o[mf][d][2] = o[mf][d][3] = 0.f;
  }

  if (num_tiles > 0) {
    auto load_tile = [&](int i) {
      const uint32_t k = s_kv + (i % S::kStages) * S::kStageBytes;
      Io::template load_kv<S::kTileKv, S::kThreads>(p, page_base, it.kv_head,
                                                    it.kv_begin + i * S::kTileKv, it.kv_end, 0, k,
                                                    k + S::kKvBytes, tid);
    };
    Io::template load_q<S::kTileQ, S::kThreads>(static_cast<const T*>(p.q[POD_OP_PREFILL]), it,
                                                rows_valid, s_q, tid);
#pragma unroll
    for (int i = 0; i < S::kStages - 1; ++i) {
      if (i < num_tiles) load_tile(i);
      cp_async_commit();
    }

    for (int i = 0; i < num_tiles; ++i) {
      if constexpr (S::kStages == 1) {
        load_tile(i);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
      } else {
        cp_async_wait<S::kStages - 2>();  // tile i (and Q) landed for this thread's copies
        __syncthreads();                  // ... for everyone's; stage (i-1) % kStages is free
        if (i + S::kStages - 1 < num_tiles) load_tile(i + S::kStages - 1);
        cp_async_commit();
      }
      const int tile_start = it.kv_begin + i * S::kTileKv;
      const uint32_t s_k = s_kv + (i % S::kStages) * S::kStageBytes;
      const uint32_t s_v = s_k + S::kKvBytes;
      // The tile is consumed in sub-blocks of kSubKv keys so that the scores of all kMFrag
      // fragments fit in registers next to the output accumulators.
#pragma unroll
      for (int sb = 0; sb < S::kTileKv / S::kSubKv; ++sb) {
        const int sub_start = tile_start + sb * S::kSubKv;
        if (sub_start >= warp_limit_hi) break;  // this and later keys are masked for the warp

        // ---- S = Q K^T
        float s[kMFrag][kN][4];
#pragma unroll
        for (int mf = 0; mf < kMFrag; ++mf)
#pragma unroll
          for (int n = 0; n < kN; ++n) s[mf][n][0] = s[mf][n][1] = s[mf][n][2] = s[mf][n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          uint32_t qa[kMFrag][4];
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf)
            ldmatrix_x4(qa[mf], s_q + frag_off<kChunks>(lq, mf * 16, kk * 2));
#pragma unroll
          for (int n2 = 0; n2 < kN / 2; ++n2) {
            uint32_t kb[4];
            ldmatrix_x4(kb, s_k + frag_off<kChunks>(lk, sb * S::kSubKv + n2 * 16, kk * 2));
#pragma unroll
            for (int mf = 0; mf < kMFrag; ++mf) {
              Mma<T>::run(s[mf][2 * n2], qa[mf], kb[0], kb[1]);
              Mma<T>::run(s[mf][2 * n2 + 1], qa[mf], kb[2], kb[3]);
            }
          }
        }

        // ---- mask (only on sub-blocks that cross a row's limit)
        if (sub_start + S::kSubKv > warp_limit_lo) {
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int lim = row_limit(warp_row0 + mf * 16 + h * 8 + lane / 4) - sub_start;
#pragma unroll
              for (int n = 0; n < kN; ++n)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                  if (n * 8 + (lane % 4) * 2 + e >= lim) s[mf][n][2 * h + e] = -INFINITY;
            }
        }

        // ---- online softmax
#pragma unroll
        for (int mf = 0; mf < kMFrag; ++mf) rows[mf].update(s[mf], o[mf], scale_log2);

        // ---- O += P V
#pragma unroll
        for (int kk = 0; kk < kN / 2; ++kk) {
          uint32_t pa[kMFrag][4];
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) {
            pa[mf][0] = Cvt<T>::pack(s[mf][2 * kk][0], s[mf][2 * kk][1]);
            pa[mf][1] = Cvt<T>::pack(s[mf][2 * kk][2], s[mf][2 * kk][3]);
            pa[mf][2] = Cvt<T>::pack(s[mf][2 * kk + 1][0], s[mf][2 * kk + 1][1]);
            pa[mf][3] = Cvt<T>::pack(s[mf][2 * kk + 1][2], s[mf][2 * kk + 1][3]);
          }
#pragma unroll
          for (int d2 = 0; d2 < D / 16; ++d2) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, s_v + frag_off<kChunks>(lv, sb * S::kSubKv + kk * 16, d2 * 2));
#pragma unroll
            for (int mf = 0; mf < kMFrag; ++mf) {
              Mma<T>::run(o[mf][2 * d2], pa[mf], vb[0], vb[1]);
              Mma<T>::run(o[mf][2 * d2 + 1], pa[mf], vb[2], vb[3]);
            }
          }
        }
      }
      if constexpr (S::kStages == 1) __syncthreads();  // stage 0 is overwritten next
    }
    cp_async_wait<0>();  // only empty groups can remain; leaves nothing in flight
  }

  // ---- epilogue: normalize and store this thread's rows straight from the fragments
  it = load_item(item);
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf) {
    float inv_l[2], lse[2];
    rows[mf].finalize(inv_l, lse);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = warp_row0 + mf * 16 + h * 8 + lane / 4;
      if (r >= rows_valid) continue;
      int64_t o_off, lse_idx;
      Out::locate(it, r, o_off, lse_idx);
      const int col = (lane % 4) * 2;
      if (it.num_splits == 1) {
        T* out = static_cast<T*>(p.o[POD_OP_PREFILL]) + o_off + col;
#pragma unroll
        for (int d = 0; d < kD8; ++d)
          *reinterpret_cast<uint32_t*>(out + d * 8) =
              Cvt<T>::pack(o[mf][d][2 * h] * inv_l[h], o[mf][d][2 * h + 1] * inv_l[h]);
        if (p.lse[POD_OP_PREFILL] != nullptr && lane % 4 == 0) p.lse[POD_OP_PREFILL][lse_idx] = lse[h];
      } else {
        float* out = p.partial_o[POD_OP_PREFILL] + o_off + col;
#pragma unroll
        for (int d = 0; d < kD8; ++d)
          *reinterpret_cast<float2*>(out + d * 8) =
              make_float2(o[mf][d][2 * h] * inv_l[h], o[mf][d][2 * h + 1] * inv_l[h]);
        if (lane % 4 == 0) p.partial_lse[POD_OP_PREFILL][lse_idx] = lse[h];
      }
    }
  }
}

}  // namespace pod
