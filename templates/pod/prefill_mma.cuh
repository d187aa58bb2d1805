// The mma.sync prefill mainloop (sm_80+, Prefill::kEngine == POD_ENGINE_MMA): every warp of the
// CTA loads with cp.async into row-swizzled tiles (primitives.cuh:swz) and owns rows
// [w * kRowsPerWarp, (w + 1) * kRowsPerWarp); its fragments come from shared memory with ldmatrix
// and its products run on mma.sync m16n8k16, sub-block after sub-block:
//   S = Q K^T | mask, fold, rescale O, pack P | O += P V
#pragma once
#include "prefill_tile.cuh"

namespace pod {

template <class Traits>
__device__ __forceinline__ void prefill_tile_mma(const PodParams& p, ItemRef item, uint8_t* smem,
                                                 int tid) {
  using S = PrefillShape<Traits>;
  using T = typename Traits::DType;
  constexpr int D = S::D, kMFrag = S::kMFrag, kN = S::kN, kD8 = S::kD8;
  constexpr int kChunks = S::kSmemChunks;  // the row stride of the row-swizzled tiles
  constexpr int kSubBlocks = S::kTileKv / S::kSubKv;
  static_assert(!S::kWgmma, "the mma.sync engine");
  using V = Variants<Traits>;

  const int warp = tid / 32, lane = tid % 32;
  const PrefillItem<Traits> item_of(p, item);
  const PodWorkItem& it = item_of.it;
  const int num_tiles = item_of.num_tiles;
  auto row_limit = [&](int r) { return item_of.row_limit(r); };
  const int warp_row0 = S::frag_row0(warp, 0);
  const int warp_limit_lo = row_limit(warp_row0);  // the warp's first row
  const int unit_limit_hi = row_limit(S::unit_row0(warp) + S::kRowsPerUnit - 1);
  const float scale_log2 = V::score_scale_log2(p, it.kv_head);

  const uint32_t s_q = smem_u32(smem);
  const uint32_t s_kv = s_q + S::kQBytes;
  // Per-lane ldmatrix offsets (primitives.cuh:lane_off): Q as A (row lane%16, chunk lane/16), K as
  // B of Q K^T (key (lane/16)*8 + lane%8, chunk (lane/8)%2), V as B of P V via .trans
  // (key ((lane/8)%2)*8 + lane%8, chunk lane/16).
  const uint32_t lq = lane_off<kChunks>(warp_row0 % 8 + lane % 16, lane / 16) + (warp_row0 / 8) * 8 * kChunks * 16;
  const uint32_t lk = lane_off<kChunks>((lane / 16) * 8 + lane % 8, (lane / 8) % 2);
  const uint32_t lv = lane_off<kChunks>(((lane / 8) % 2) * 8 + lane % 8, lane / 16);

  float o[kMFrag][kD8][4];
  SoftmaxRows rows[kMFrag];
  clear_rows(o, rows);

  // ---- S = Q K^T for sub-block sb of the tile whose K starts at s_k
  float s[kMFrag][kN][4] = {};
  auto compute_qk = [&](uint32_t s_k, int sb) {
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
  };
  // ---- O += P V for sub-block sb of the tile whose V starts at s_v, P packed in pa
  uint32_t pa[kMFrag][kN / 2][4];
  auto compute_pv = [&](uint32_t s_v, int sb) {
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
  };

  if (num_tiles > 0) {
    item_of.load_ahead(p, s_q, s_kv, tid);

    for (int i = 0; i < num_tiles; ++i) {
      item_of.template next_tile<false>(p, s_kv, i, tid);
      const int tile_start = it.kv_begin + i * S::kTileKv;
      const uint32_t s_k = s_kv + (i % S::kStages) * S::kStageBytes;
      const uint32_t s_v = s_k + S::kKvBytes;
      // The tile is consumed in sub-blocks of kSubKv keys so that the scores of all kMFrag
      // fragments fit in registers next to the output accumulators. A sub-block whose keys are
      // all masked for every row of the warp is skipped (and so are the later ones).
      if (tile_start < unit_limit_hi) {
        compute_qk(s_k, 0);
#pragma unroll
        for (int sb = 0; sb < kSubBlocks; ++sb) {
          const int sub_start = tile_start + sb * S::kSubKv;
          if (sb > 0 && sub_start >= unit_limit_hi) break;

          // ---- soft-cap (before the masks: -inf must stay -inf)
          if constexpr (V::kSoftCap) {
#pragma unroll
            for (int mf = 0; mf < kMFrag; ++mf) V::soft_cap(s[mf], V::tanh_scale(p, it.kv_head));
          }
          // ---- mask (only on sub-blocks that cross a row's limit, or a row's window start)
          if (sub_start + S::kSubKv > warp_limit_lo) {
#pragma unroll
            for (int mf = 0; mf < kMFrag; ++mf) mask_scores(s[mf], S::frag_row0(warp, mf), lane, sub_start, row_limit);
          }
          if constexpr (V::kWindow) {
            if (sub_start < item_of.row_first(S::frag_row0(warp, kMFrag - 1) + 15)) {  // the warp's last row
#pragma unroll
              for (int mf = 0; mf < kMFrag; ++mf)
                mask_before_window(s[mf], S::frag_row0(warp, mf), lane, sub_start, [&](int r) { return item_of.row_first(r); });
            }
          }

          // ---- online softmax, then O += P V and the next sub-block's S = Q K^T
          float alpha[kMFrag][2];
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) rows[mf].fold(s[mf], scale_log2, alpha[mf]);
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) SoftmaxRows::rescale(o[mf], alpha[mf]);
#pragma unroll
          for (int mf = 0; mf < kMFrag; ++mf) pack_p<T>(pa[mf], s[mf]);
          compute_pv(s_v, sb);
          if (sb + 1 < kSubBlocks && sub_start + S::kSubKv < unit_limit_hi) compute_qk(s_k, sb + 1);
        }
      }
      if constexpr (S::kStages == 1) prefill_sync<Traits>();  // stage 0 is overwritten next
    }
    cp_async_wait<0>();  // only empty groups can remain; leaves nothing in flight
  }

  // ---- epilogue: normalize and store this thread's rows straight from the fragments (the item
  // read again, so that the fields only the epilogue needs held no register in the loop)
  const PodWorkItem again = load_item(item);
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf)
    store_prefill_rows<Traits, S::kTileQ>(p, again, item_of.rows_valid, S::frag_row0(warp, mf), lane, o[mf], rows[mf]);
}

}  // namespace pod
