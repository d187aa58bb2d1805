// The wgmma prefill mainloop (sm_90a, Prefill::kEngine == POD_ENGINE_WGMMA): every warp of the
// CTA loads with cp.async, and each warpgroup owns kTileQ / warpgroups rows as 64-row blocks whose
// products the tensor cores read straight from 128B-swizzled shared memory: S = Q K^T from Q and K,
// O += P V from P in registers and V (wgmma.cuh). Warp w holds rows 16 (w % 4) .. +15 of each block.
//
// Per KV sub-block the softmax runs while the P V of the sub-block before it accumulates:
//   wait S(sb) | mask, fold | wait P V(sb-1) | rescale O, pack P | issue S(sb+1), P V(sb)
// With 3+ stages and one warpgroup (kCarryPv) a tile's last P V is issued at the start of the next
// tile, behind that tile's first Q K^T, so it too runs under a softmax.
#pragma once
#include "prefill_tile.cuh"

namespace pod {

template <class Traits>
__device__ __forceinline__ void prefill_tile_wgmma(const PodParams& p, ItemRef item, uint8_t* smem,
                                                   int tid) {
  using S = PrefillShape<Traits>;
  using T = typename Traits::DType;
  constexpr int D = S::D, kMFrag = S::kMFrag, kN = S::kN, kD8 = S::kD8;
  constexpr int kSubBlocks = S::kTileKv / S::kSubKv;
  static_assert(S::kWgmma && !S::kWarpSpecialized, "the wgmma engine");
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

  float o[kMFrag][kD8][4];
  SoftmaxRows rows[kMFrag];
  clear_rows(o, rows);

  // ---- S = Q K^T for sub-block sb of the tile whose K starts at s_k, issued as one group.
  float s[kMFrag][kN][4] = {};
  auto issue_qk = [&](uint32_t s_k, int sb) {
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
  };
  // ---- O += P V for sub-block sb of the tile whose V starts at s_v, P packed in pa; one group.
  uint32_t pa[kMFrag][kN / 2][4];
  auto issue_pv = [&](uint32_t s_v, int sb) {
    wgmma_fence();
#pragma unroll
    for (int mf = 0; mf < kMFrag; ++mf)
#pragma unroll
      for (int kk = 0; kk < kN / 2; ++kk)
        Wgmma<T, D>::rs(o[mf], pa[mf][kk],
                        sw128_desc(s_v + (sb * S::kSubKv + kk * 16) * 128, S::kTileKv * 128, 1024), 1);
    wgmma_commit();
  };
  // Wait for the newest Q K^T (groups complete in order, so a P V issued after it may stay in
  // flight), or for everything; then pin the registers that are now written.
  auto wait_scores = [&](bool pv_behind) {
    if (pv_behind) wgmma_wait<1>();  // a P V (or an empty group) was issued after the Q K^T
    else wgmma_wait<0>();
#pragma unroll
    for (int mf = 0; mf < kMFrag; ++mf) pin_registers(s[mf]);
  };
  auto wait_all = [&]() {
    wgmma_wait<0>();
#pragma unroll
    for (int mf = 0; mf < kMFrag; ++mf) pin_registers(o[mf]);
  };

  if (num_tiles > 0) {
    item_of.load_ahead(p, s_q, s_kv, tid);

    // Which products are issued and waited for depends only on compile-time positions (and on
    // the tile's live rows): ptxas serializes wgmma when an issue and its wait are tied by
    // runtime conditions it cannot follow.
    bool pv_queued = false;
    uint32_t queued_s_v = 0;
    for (int i = 0; i < num_tiles; ++i) {
      item_of.template next_tile<true>(p, s_kv, i, tid);
      const int tile_start = it.kv_begin + i * S::kTileKv;
      const uint32_t s_k = s_kv + (i % S::kStages) * S::kStageBytes;
      const uint32_t s_v = s_k + S::kKvBytes;
      // The tile is consumed in sub-blocks of kSubKv keys so that the scores of all kMFrag
      // fragments fit in registers next to the output accumulators. A sub-block whose keys are
      // all masked for every row of the warpgroup is skipped (and so are the later ones).
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
          if (sb > 0 && sub_start >= unit_limit_hi) {  // (the Q K^T issued for it is dropped)
            wait_all();  // (ptxas serializes wgmma without this wait on the way out)
            break;
          }
          wait_scores(S::kCarryPv || sb > 0);

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
          if (sb + 1 < kSubBlocks) issue_qk(s_k, sb + 1);
          if (S::kCarryPv && sb + 1 == kSubBlocks) {
            pv_queued = true;
            queued_s_v = s_v;
          } else {
            issue_pv(s_v, sb);
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

  // ---- epilogue: normalize and store this thread's rows straight from the fragments (the item
  // read again, so that the fields only the epilogue needs held no register in the loop)
  const PodWorkItem again = load_item(item);
#pragma unroll
  for (int mf = 0; mf < kMFrag; ++mf)
    store_prefill_rows<Traits, S::kTileQ>(p, again, item_of.rows_valid, S::frag_row0(warp, mf), lane, o[mf], rows[mf]);
}

}  // namespace pod
