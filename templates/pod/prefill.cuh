// Prefill tile loop: one work item = up to Prefill::kTileQ packed query rows of one request and
// one KV head, against keys [kv_begin, kv_end). All kWarps warps of the CTA take part; each warp
// owns kMFrag fragments of 16 packed rows (frag_row0 below says which).
//
// Two ways to multiply, chosen at compile time (PrefillShape::kWgmma):
//  - wgmma (sm_90a, whole warpgroups): each warpgroup owns kTileQ / warpgroups rows as 64-row
//    blocks; the tensor cores read Q and K (S = Q K^T) and V (O += P V, P from registers) straight
//    from 128B-swizzled shared memory (wgmma.cuh). Warp w holds rows 16 (w % 4) .. +15 of each
//    block. A sub-block's softmax runs while the P V of the sub-block before it accumulates
//    (with 3+ stages also across KV tiles: kCarryPv).
//  - mma.sync (sm_80+): warp w owns rows [w * kRowsPerWarp, (w + 1) * kRowsPerWarp), fragments
//    loaded with ldmatrix from row-swizzled tiles (primitives.cuh:swz).
//
// Shared memory (bytes, 16-bit elements):
//   [ Q: kTileQ x D ][ stage 0: K kTileKv x D, V kTileKv x D ] ... [ stage kStages-1 ]
//   = kTileQ*D*2 + kStages*kTileKv*D*2*2
// Pipeline: cp.async groups, PrefillShape::kAhead KV tiles in flight ahead of the one being
// computed (kStages - 1, or kStages - 2 with kCarryPv).
// Per KV sub-block: S = Q K^T (fp32), causal/ragged mask, online softmax, O += P V with P packed
// to 16 bits as the A operand straight from the S registers.
#pragma once
#include "prefill_tile.cuh"

namespace pod {

template <class Traits>
__device__ __forceinline__ void prefill_tile(const PodParams& p, const PodWorkItem* item,
                                             uint8_t* smem, int tid) {
  using S = PrefillShape<Traits>;
  using T = typename Traits::DType;
  using Io = TileIo<Traits>;
  constexpr int D = S::D, G = Traits::kGroup, kMFrag = S::kMFrag, kN = S::kN, kD8 = S::kD8;
  constexpr int kChunks = S::kChunks;
  constexpr int kSubBlocks = S::kTileKv / S::kSubKv;

  const int warp = tid / 32, lane = tid % 32;
  PodWorkItem it = load_item(item);
  const int rows_valid = min(S::kTileQ, it.q_len * G - it.row_begin);
  const int num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
  const int page_base = __ldg(p.page_indptr + it.request);
  // Keys j < limit(row) are visible to a row: causal bound (bottom-right) and the split's end.
  const int causal_base = it.kv_len - it.q_len + 1;
  auto row_limit = [&](int r) { return min(causal_base + (it.row_begin + r) / G, it.kv_end); };
  const int warp_row0 = S::frag_row0(warp, 0);
  const int warp_limit_lo = row_limit(warp_row0);  // the warp's first row
  const int unit_limit_hi = row_limit(S::unit_row0(warp) + S::kRowsPerUnit - 1);
  const float scale_log2 = p.sm_scale * kLog2e;

  const uint32_t s_q = smem_u32(smem);
  const uint32_t s_kv = s_q + S::kQBytes;
  // mma.sync only: per-lane ldmatrix offsets (primitives.cuh:lane_off): Q as A (row lane%16,
  // chunk lane/16), K as B of Q K^T (key (lane/16)*8 + lane%8, chunk (lane/8)%2), V as B of P V
  // via .trans (key ((lane/8)%2)*8 + lane%8, chunk lane/16).
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

  // ---- S = Q K^T for sub-block sb of the tile whose K starts at s_k. With wgmma this only
  // issues the products as one group (after a wgmma_fence); with mma.sync it computes them.
  float s[kMFrag][kN][4] = {};
  auto issue_qk = [&](uint32_t s_k, int sb) {
    if constexpr (S::kWgmma) {
      wgmma_fence();
#pragma unroll
      for (int mf = 0; mf < kMFrag; ++mf)
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          const uint32_t col = (kk % 4) * 32;  // the 16 columns' byte offset in a 128-byte row
          const uint64_t a = sw128_desc(s_q + (kk / 4) * S::kTileQ * 128 +
                                            (S::unit_row0(warp) + mf * 64) * 128 + col, 16, 1024);
          const uint64_t b = sw128_desc(s_k + (kk / 4) * S::kTileKv * 128 + sb * S::kSubKv * 128 + col,
                                        16, 1024);
          Wgmma<T, S::kSubKv>::ss(s[mf], a, b, kk > 0);
        }
      wgmma_commit();
    } else {
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
    }
  };
  // ---- O += P V for sub-block sb of the tile whose V starts at s_v, P packed in pa. wgmma:
  // issued as one group, like issue_qk.
  uint32_t pa[kMFrag][kN / 2][4];
  auto issue_pv = [&](uint32_t s_v, int sb) {
    if constexpr (S::kWgmma) {
      wgmma_fence();
#pragma unroll
      for (int mf = 0; mf < kMFrag; ++mf)
#pragma unroll
        for (int kk = 0; kk < kN / 2; ++kk)
          Wgmma<T, D>::rs(o[mf], pa[mf][kk],
                          sw128_desc(s_v + (sb * S::kSubKv + kk * 16) * 128, S::kTileKv * 128, 1024), 1);
      wgmma_commit();
    } else {
#pragma unroll
      for (int kk = 0; kk < kN / 2; ++kk)
#pragma unroll
        for (int d2 = 0; d2 < D / 16; ++d2) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, s_v + frag_off<kChunks>(lv, sb * S::kSubKv + kk * 16, d2 * 2));
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) {
            Mma<T>::run(o[mf][2 * d2], pa[mf][kk], vb[0], vb[1]);
            Mma<T>::run(o[mf][2 * d2 + 1], pa[mf][kk], vb[2], vb[3]);
          }
        }
    }
  };
  // wgmma only: wait for the newest Q K^T (groups complete in order, so a P V issued after it may
  // stay in flight), or for everything; then pin the registers that are now written.
  auto wait_scores = [&](bool pv_behind) {
    if constexpr (S::kWgmma) {
      if (pv_behind) wgmma_wait<1>();  // a P V (or an empty group) was issued after the Q K^T
      else wgmma_wait<0>();
#pragma unroll
      for (int mf = 0; mf < kMFrag; ++mf) pin_registers(s[mf]);
    }
  };
  auto wait_all = [&]() {
    if constexpr (S::kWgmma) {
      wgmma_wait<0>();
#pragma unroll
      for (int mf = 0; mf < kMFrag; ++mf) pin_registers(o[mf]);
    }
  };

  if (num_tiles > 0) {
    auto load_tile = [&](int i) {
      const uint32_t k = s_kv + (i % S::kStages) * S::kStageBytes;
      Io::template load_kv<S::kTileKv, S::kThreads, typename S::KvLayout>(
          p, page_base, it.kv_head, it.kv_begin + i * S::kTileKv, it.kv_end, 0, k, k + S::kKvBytes, tid);
    };
    Io::template load_q<S::kTileQ, S::kThreads, typename S::QLayout>(
        static_cast<const T*>(p.q[POD_OP_PREFILL]), it, rows_valid, s_q, tid);
#pragma unroll
    for (int i = 0; i < S::kAhead; ++i) {
      if (i < num_tiles) load_tile(i);
      cp_async_commit();
    }

    // With kCarryPv the last P V of a tile is issued at the start of the next one, behind that
    // tile's first Q K^T, so that it too runs under a softmax. Which products are issued and
    // waited for depends only on compile-time positions (and on `live`): ptxas serializes wgmma
    // when an issue and its wait are tied by runtime conditions it cannot follow.
    bool pv_queued = false;
    uint32_t queued_s_v = 0;
    for (int i = 0; i < num_tiles; ++i) {
      if constexpr (S::kAhead == 0) {
        load_tile(i);
        cp_async_commit();
        cp_async_wait<0>();
      } else {
        cp_async_wait<S::kAhead - 1>();  // tile i (and Q) landed for this thread's copies
      }
      if constexpr (S::kWgmma) fence_proxy_async();  // (see wgmma.cuh)
      // ... for everyone's. Everyone has also finished every product that read stage
      // (i + kAhead) % kStages: only the queued P V reads an older tile, tile i - 1.
      prefill_sync<Traits>();
      if constexpr (S::kAhead > 0) {
        if (i + S::kAhead < num_tiles) load_tile(i + S::kAhead);
        cp_async_commit();
      }
      const int tile_start = it.kv_begin + i * S::kTileKv;
      const uint32_t s_k = s_kv + (i % S::kStages) * S::kStageBytes;
      const uint32_t s_v = s_k + S::kKvBytes;
      // The tile is consumed in sub-blocks of kSubKv keys so that the scores of all kMFrag
      // fragments fit in registers next to the output accumulators. A sub-block whose keys are
      // all masked for every row of the unit is skipped (and so are the later ones). With wgmma,
      // a sub-block's softmax runs while the P V of the sub-block before it accumulates:
      //   wait S(sb) | mask, fold | wait P V(sb-1) | rescale O, pack P | issue S(sb+1), P V(sb)
      if (tile_start < unit_limit_hi) {
        issue_qk(s_k, 0);
        if constexpr (S::kCarryPv) {
          // The queued P V, or an empty group: one group always follows this Q K^T.
          if (pv_queued) issue_pv(queued_s_v, kSubBlocks - 1);
          else wgmma_commit();
          pv_queued = false;
        }
#pragma unroll
        for (int sb = 0; sb < kSubBlocks; ++sb) {
          const int sub_start = tile_start + sb * S::kSubKv;
          if (sb > 0 && sub_start >= unit_limit_hi) {  // (wgmma: the Q K^T issued for it is dropped)
            wait_all();  // (ptxas serializes wgmma without this wait on the way out)
            break;
          }
          wait_scores(S::kCarryPv || sb > 0);

          // ---- mask (only on sub-blocks that cross a row's limit)
          if (sub_start + S::kSubKv > warp_limit_lo) {
#pragma unroll
            for (int mf = 0; mf < kMFrag; ++mf) mask_scores(s[mf], S::frag_row0(warp, mf), lane, sub_start, row_limit);
          }

          // ---- online softmax: fold the scores, then (once the P V before is done) rescale O
          float alpha[kMFrag][2];
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) rows[mf].fold(s[mf], scale_log2, alpha[mf]);
          wait_all();
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) SoftmaxRows::rescale(o[mf], alpha[mf]);
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) pack_p<T>(pa[mf], s[mf]);

          // ---- the next sub-block's S = Q K^T, then O += P V (queued at the end of the tile)
          if constexpr (S::kWgmma) {
            if (sb + 1 < kSubBlocks) issue_qk(s_k, sb + 1);
            if (S::kCarryPv && sb + 1 == kSubBlocks) {
              pv_queued = true;
              queued_s_v = s_v;
            } else {
              issue_pv(s_v, sb);
            }
          } else {
            issue_pv(s_v, sb);
            if (sb + 1 < kSubBlocks && sub_start + S::kSubKv < unit_limit_hi) issue_qk(s_k, sb + 1);
          }
        }
      }
      // Nothing may read a stage once a later barrier lets it be refilled; with kCarryPv only the
      // queued P V reads tile i, whose stage is refilled two barriers later.
      wait_all();
      if constexpr (S::kStages == 1) prefill_sync<Traits>();  // stage 0 is overwritten next
    }
    if constexpr (S::kCarryPv) {
      if (pv_queued) issue_pv(queued_s_v, kSubBlocks - 1);
      wait_all();
    }
    cp_async_wait<0>();  // only empty groups can remain; leaves nothing in flight
  }

  // ---- epilogue: normalize and store this thread's rows straight from the fragments
  it = load_item(item);
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf) store_prefill_rows<Traits, S::kTileQ>(p, it, rows_valid, S::frag_row0(warp, mf), lane, o[mf], rows[mf]);
}

}  // namespace pod
