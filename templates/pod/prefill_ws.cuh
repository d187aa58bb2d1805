// Warp-specialized prefill (sm_90a, Prefill::kEngine == POD_ENGINE_WARP_SPECIALIZED): one producer
// warpgroup loads, Prefill::kWarps / 4 consumer warpgroups multiply, and they meet only on
// mbarriers (mbarrier.cuh), so loads never wait for a CTA-wide barrier and the consumers' issue
// slots and registers go to wgmma and the softmax.
//
// Roles inside the prefill CTA (or the prefill role of the roles kernel), by thread index:
//   [0, kComputeThreads)            consumers: warpgroup w owns packed rows 64w .. 64w + 63
//   [kComputeThreads, kThreads)     producer: its first warp claims items and loads Q and K, its
//                                   second loads V
// setmaxnreg gives the producer few registers and the consumers the rest (resource model).
//
// The producer claims prefill tickets (header->ticket[0]) for the CTA, so the CTAs of the
// prefill-only kernel are persistent and balance the items among themselves. For each item it
// publishes the item index in a slot (item_full), copies the Q tile (q_full), then the KV tiles
// into a ring of kStages stages, K (k_full[stage]) from its first warp and V (v_full[stage]) from
// its second, each after k_empty / v_empty[stage] says the consumers are done with what the stage
// held. K and V pages come through the bulk copy engine (tensor_maps.cuh), one box a page per
// lane; the rows of a tile past its last whole page below kv_end come through cp.async (zeros past
// kv_end: a page's stale tail never reaches the tensor cores). So does Q where a tile holds rows past its
// request (its last tile; zeros there); every other Q tile is one box per 64 columns, whose
// latency -- not that of 64 cp.async a lane -- then starts each item. Consumers release Q
// (q_empty) at the end of the item, a stage's K once their last S = Q K^T over it has completed,
// and its V once their last P V has: K of tile j + 2 can then land while tile j + 1 is computed,
// with two stages.
//
// Consumer pipeline over the item's sub-blocks j of kSubKv keys (several per KV tile when the
// registers do not hold a whole tile's scores), with S(j+1) = Q K^T issued before O += P(j) V so
// that the softmax of j+1 runs while P V of j is on the tensor cores:
//   issue S(j+1) | issue P V(j) | wait S(j+1) | mask, fold j+1 | wait P V(j) | rescale O, pack P(j+1)
// Both warpgroups run the same steps (those of the tile's last row; the first rows' extra keys are
// masked), so they pass every stage in the same order. Each issues its products as soon as its data
// has landed: with each warpgroup's softmax under its own P V, turns between the two (named
// barriers, so that one's softmax ran under the other's products) made the prefill 6–12% slower on
// the H100 (stop 34, bench/NOTES.md).
#pragma once
#include "tensor_maps.cuh"
#include "mbarrier.cuh"
#include "prefill_tile.cuh"

namespace pod {

// Where the pipeline's barriers and item slots sit: after the tiles, within Prefill::kSmemBytes.
template <class Traits>
struct WsLayout {
  using S = PrefillShape<Traits>;
  static constexpr int kItemFull = S::kTileBytes;           // the item slot is written (1 arrival)
  static constexpr int kQFull = kItemFull + 8;              // Q landed (33 arrivals + bytes, as K and V)
  static constexpr int kQEmpty = kQFull + 8;                // consumers are done with Q (consumer threads)
  static constexpr int kKFull = kQEmpty + 8;                // [stage] K landed (ws_load_tile: 33 arrivals + bytes)
  static constexpr int kVFull = kKFull + 8 * S::kStages;    // [stage] V landed (the same)
  static constexpr int kKEmpty = kVFull + 8 * S::kStages;   // [stage] consumers are done with its K
  static constexpr int kVEmpty = kKEmpty + 8 * S::kStages;  // [stage] consumers are done with its V
  static constexpr int kSlots = kVEmpty + 8 * S::kStages;   // int[2]: item index, by round parity
  static constexpr int kEnd = kSlots + 8;
  static_assert(S::kWarpSpecialized && S::kThreads - S::kComputeThreads == 128, "one producer warpgroup");
  static_assert(kEnd <= S::kSmemBytes, "the resource model reserves room for the pipeline's barriers");
  static_assert(S::kStages >= 2, "a ring of at least two stages");
  static_assert(S::kWarps == 4 || S::kWarps == 8, "one or two consumer warpgroups");
};

// Boxes of a KV tile starting at key tile_start: its whole pages (or runs of rows) below kv_end.
template <class Traits>
__device__ __forceinline__ int ws_boxes(int tile_start, int kv_end) {
  using B = KvBoxes<Traits>;
  static_assert(!B::kEnabled || B::kTileKv / B::kRows <= 32, "one box per lane");
  return B::kEnabled ? max(0, min(kv_end - tile_start, B::kTileKv)) / B::kRows : 0;
}

// The first cache row of the lane's box of the KV tile at tile_start (0 for a lane without a box): a
// page-table read at a paged cache, which the producer issues before it waits for the tile's stage
// so that the read's latency passes during the wait instead of after it.
template <class Traits>
__device__ __forceinline__ int ws_box_row(const PodParams& p, int page_base, int tile_start, int kv_end, int lane) {
  return lane < ws_boxes<Traits>(tile_start, kv_end)
             ? TileIo<Traits>::kv_row(p, page_base, tile_start + lane * KvBoxes<Traits>::kRows)
             : 0;
}

// Copies rows [0, kTileKv) of one K or V (kIsV) tile into the stage at dst and arrives at its barrier
// `full`: whole boxes below kv_end through the bulk copy engine (lane < boxes copies a page, or a
// run of rows: K as one box per 64 columns, V as one box), the rest -- a page's last rows, and zeros
// past kv_end (a page's stale tail never reaches the tensor cores) -- with the warp's cp.async.
// 33 arrivals: lane 0's expect_tx and every lane's. `row` is the lane's box's first row in the cache
// (ws_box_row), read by the caller ahead of the stage's wait.
template <class Traits, bool kIsV>
__device__ __forceinline__ void ws_load_tile(const PodParams& p, const CUtensorMap* map, const void* src,
                                             int page_base, int kv_head, int tile_start, int kv_end, int row,
                                             uint32_t dst, uint32_t full, int lane) {
  using B = KvBoxes<Traits>;
  using Io = TileIo<Traits>;
  using T = typename Traits::DType;
  using KLayout = Sw128Tile<B::kTileKv>;
  using VLayout = VTileLayout<Traits>;
  constexpr int D = Traits::kHeadDim, kChunks = D / 8;
  const int boxes = ws_boxes<Traits>(tile_start, kv_end);
  if (lane == 0) mbarrier_arrive_expect_tx(full, (uint32_t)boxes * B::kBytes);
  __syncwarp();  // the transaction count is raised before any box can land
  if (lane < boxes) {
    if constexpr (kIsV) {
      tma_load_4d(dst + lane * VLayout::kBlockBytes, map, 0, row, 0, kv_head, full);
    } else {
#pragma unroll
      for (int cb = 0; cb < D / 64; ++cb)
        tma_load_3d(dst + cb * B::kTileKv * 128 + lane * B::kRows * 128, map, cb * 64, kv_head, row, full);
    }
  }
  const int rest = boxes * B::kRows;
  if (rest == B::kTileKv) {
    mbarrier_arrive(full);
    return;
  }
#pragma unroll 1
  for (int i = lane; i < (B::kTileKv - rest) * kChunks; i += 32) {
    const int r = rest + i / kChunks, ch = i % kChunks;
    const int j = tile_start + r;
    const bool valid = j < kv_end;
    const int64_t off = valid ? ((int64_t)Io::kv_row(p, page_base, j) * Traits::kNumHeadsKv + kv_head) * D + ch * 8 : 0;
    cp_async_16(dst + (kIsV ? VLayout::offset(r, ch) : KLayout::offset(r, ch)), static_cast<const T*>(src) + off, valid);
  }
  mbarrier_arrive_on_copies(full);
}

// The producer: two warps of the producer warpgroup (the other two wait at the kernel's end). Warp 0
// claims the items and copies Q and the K tiles, warp 1 copies the V tiles of the same items (it
// reads each item from the slot warp 0 fills), so a V stage that the consumers release late never
// holds up the K copies queued behind it in one warp's program order.
template <class Traits>
__device__ __forceinline__ void ws_produce(const PodParams& p, const PodTensorMaps& maps, uint8_t* smem, int pt) {
  using S = PrefillShape<Traits>;
  using L = WsLayout<Traits>;
  using T = typename Traits::DType;
  using Io = TileIo<Traits>;
  if (pt >= 64) return;
  const bool k_warp = pt < 32;
  const int lane = pt % 32;
  const uint32_t base = smem_u32(smem);
  volatile int* slots = reinterpret_cast<volatile int*>(smem + L::kSlots);
  PodDeviceHeader* h = p.header;
  const int n = h->num_tickets[POD_OP_PREFILL];
  int fill = 0;  // KV tiles of earlier items: tile i of this item goes to stage (fill + i) % kStages
  for (int round = 0;; ++round) {
    // Warp 0 overwrites the slot of round - 2 only after the consumers are done with round - 1's
    // item, which needs round - 1's V tiles: warp 1 has read both slots by then.
    if (k_warp) {
      mbarrier_wait(base + L::kQEmpty, (round & 1) ^ 1);  // the consumers are done with the last item
      if (lane == 0) {
        slots[round & 1] = (int)atomicAdd(&h->ticket[POD_OP_PREFILL], 1u);
        mbarrier_arrive(base + L::kItemFull);
      }
    }
    mbarrier_wait(base + L::kItemFull, round & 1);
    const int ticket = slots[round & 1];
    if (ticket >= n) break;
    const PodWorkItem it = load_item(item_ref<Traits>(p.items[POD_OP_PREFILL], ticket));
    if (k_warp) {
      const int rows_valid = min(S::kTileQ, it.q_len * Traits::kGroup - it.row_begin);
      // Q: a tile whose rows all belong to the request through the bulk copy engine (one box per 64
      // columns); the request's last tile with the warp's cp.async, zeros past its rows (two copies
      // per unrolled step keep the producer within its registers). 33 arrivals, as in ws_load_tile.
      using QB = QBoxes<Traits>;
      const bool q_boxes = QB::kEnabled && rows_valid == S::kTileQ;
      if (lane == 0) mbarrier_arrive_expect_tx(base + L::kQFull, q_boxes ? QB::kBytes : 0u);
      __syncwarp();  // the transaction count is raised before any box can land
      if (q_boxes) {
        if (lane < S::D / 64)
          tma_load_3d(base + lane * S::kTileQ * 128, &maps.q, lane * 64, it.kv_head * Traits::kGroup,
                      it.q_token_base + it.row_begin / Traits::kGroup, base + L::kQFull);
      } else {
        constexpr int kChunks = S::kChunks;
#pragma unroll 2
        for (int i = lane; i < S::kTileQ * kChunks; i += 32) {
          const int r = i / kChunks, ch = i % kChunks, pr = it.row_begin + r;
          const bool valid = r < rows_valid;
          const T* src = static_cast<const T*>(p.q[POD_OP_PREFILL]);
          if (valid) src += Io::qo_offset(it.q_token_base + pr / Traits::kGroup, it.kv_head * Traits::kGroup + pr % Traits::kGroup) + ch * 8;
          cp_async_16(base + S::QLayout::offset(r, ch), src, valid);
        }
      }
      mbarrier_arrive_on_copies(base + L::kQFull);
    }
    const int page_base = __ldg(p.page_indptr + it.request);
    const int num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
    // Each warp copies its half of every tile (K or V) in tile order, a stage at a time as the
    // consumers free it; the page-table entries of the next tile are read before the wait for this
    // one's stage, so their latency passes during the wait.
    const auto box_row = [&](int i) { return ws_box_row<Traits>(p, page_base, it.kv_begin + i * S::kTileKv, it.kv_end, lane); };
    int row = num_tiles > 0 ? box_row(0) : 0;
    for (int i = 0; i < num_tiles; ++i) {
      const int next_row = i + 1 < num_tiles ? box_row(i + 1) : 0;
      const int f = fill + i, stage = f % S::kStages;
      mbarrier_wait(base + (k_warp ? L::kKEmpty : L::kVEmpty) + 8 * stage, ((f / S::kStages) & 1) ^ 1);
      const uint32_t dst = base + S::kQBytes + stage * S::kStageBytes;
      const int tile_start = it.kv_begin + i * S::kTileKv;
      if (k_warp)
        ws_load_tile<Traits, false>(p, &maps.k, p.k, page_base, it.kv_head, tile_start, it.kv_end, row, dst,
                                    base + L::kKFull + 8 * stage, lane);
      else
        ws_load_tile<Traits, true>(p, &maps.v, p.v, page_base, it.kv_head, tile_start, it.kv_end, row,
                                   dst + S::kKvBytes, base + L::kVFull + 8 * stage, lane);
      row = next_row;
    }
    fill += num_tiles;
  }
}

template <class Traits, int kSubKv>
__device__ __forceinline__ void ws_consume(const PodParams& p, uint8_t* smem, int tid) {
  using S = PrefillShape<Traits>;
  using L = WsLayout<Traits>;
  using T = typename Traits::DType;
  constexpr int D = S::D, G = Traits::kGroup, kN = kSubKv / 8, kD8 = S::kD8;
  constexpr int kSubBlocks = S::kTileKv / kSubKv;
  static_assert(S::kMFrag == 1 && S::kRowsPerGroup == 64, "a consumer warpgroup owns one 64-row block");
  static_assert(kSubKv % 16 == 0 && S::kTileKv % kSubKv == 0 && kSubKv <= 128 && (kSubKv & (kSubKv - 1)) == 0,
                "sub-blocks: N = 16, 32, 64 or 128 keys tiling the KV tile");

  const int warp = tid / 32, lane = tid % 32;
  const uint32_t base = smem_u32(smem);
  const volatile int* slots = reinterpret_cast<const volatile int*>(smem + L::kSlots);
  const int n = p.header->num_tickets[POD_OP_PREFILL];
  const int row0 = S::frag_row0(warp, 0);     // this warp's 16 rows
  const int unit_row0 = S::unit_row0(warp);   // this warpgroup's 64 rows
  using V = Variants<Traits>;
  const float scale_log2 = V::score_scale_log2(p);
  int fill = 0;
  for (int round = 0;; ++round) {
    mbarrier_wait(base + L::kItemFull, round & 1);
    const int ticket = slots[round & 1];
    if (ticket >= n) break;
    const ItemRef item = item_ref<Traits>(p.items[POD_OP_PREFILL], ticket);
    PodWorkItem it = load_item(item);
    const int num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
    const int causal_base = it.kv_len - it.q_len + 1;
    auto row_limit = [&](int r) { return min(causal_base + (it.row_begin + r) / G, it.kv_end); };
    const int warp_limit_lo = row_limit(row0);
    const int live_end = row_limit(S::kTileQ - 1);  // one past the tile's last visible key
    const int steps = live_end > it.kv_begin ? (live_end - it.kv_begin + kSubKv - 1) / kSubKv : 0;

    float o[kD8][4];
#pragma unroll
    for (int d = 0; d < kD8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    SoftmaxRows rows;
    rows.init();
    float s[kN][4];
    uint32_t pa[kN / 2][4];
    float alpha[2];

    // Shared-memory descriptors are built once (Q) or once a step (K, V) and advanced by constants:
    // their address field is linear, and every address stays below 256 KiB.
    const uint64_t q_desc = sw128_desc(base + unit_row0 * 128, 16, 1024);
    auto stage_of = [&](int j) { return (fill + j / kSubBlocks) % S::kStages; };
    auto parity_of = [&](int j) { return (uint32_t)(((fill + j / kSubBlocks) / S::kStages) & 1); };
    auto k_tile = [&](int j) { return base + S::kQBytes + stage_of(j) * S::kStageBytes; };
    // K (V) of sub-block j has landed.
    auto await_k = [&](int j) {
      if (j % kSubBlocks == 0) {
        mbarrier_wait(base + L::kKFull + 8 * stage_of(j), parity_of(j));
        fence_proxy_async();  // the producer's cp.async wrote K through the generic proxy
      }
    };
    auto await_v = [&](int j) {
      if (j % kSubBlocks == 0) {
        mbarrier_wait(base + L::kVFull + 8 * stage_of(j), parity_of(j));
        fence_proxy_async();
      }
    };
    auto issue_qk = [&](int j) {
      const uint64_t k_desc = sw128_desc(k_tile(j) + (j % kSubBlocks) * kSubKv * 128, 16, 1024);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t col = (kk % 4) * 32;  // the 16 columns' byte offset in a 128-byte row
        const uint64_t a = q_desc + (((kk / 4) * S::kTileQ * 128 + col) >> 4);
        const uint64_t b = k_desc + (((kk / 4) * S::kTileKv * 128 + col) >> 4);
        Wgmma<T, kSubKv>::ss(s, a, b, kk > 0);
      }
      wgmma_commit();
    };
    auto issue_pv = [&](int j) {
      using VL = VTileLayout<Traits>;
      const uint64_t v_desc = sw128_desc(k_tile(j) + S::kKvBytes, VL::kLeading, VL::kStride);
      const int key0 = (j % kSubBlocks) * kSubKv;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kN / 2; ++kk) Wgmma<T, D>::rs(o, pa[kk], v_desc + (VL::key_offset(key0 + kk * 16) >> 4), 1);
      wgmma_commit();
    };
    auto mask_and_fold = [&](int j) {
      const int sub_start = it.kv_begin + j * kSubKv;
      if constexpr (V::kSoftCap) V::soft_cap(s, V::tanh_scale(p));  // before the masks
      if (sub_start + kSubKv > warp_limit_lo) mask_scores(s, row0, lane, sub_start, row_limit);
      if constexpr (V::kWindow) {
        auto row_first = [&](int r) { return V::first_key(causal_base, (it.row_begin + r) / G); };
        if (sub_start < row_first(row0 + 15)) mask_before_window(s, row0, lane, sub_start, row_first);
      }
      rows.fold(s, scale_log2, alpha);
    };
    // A stage's K is released once the last S = Q K^T that reads it has completed, its V once the
    // last P V has.
    auto last_of_tile = [&](int j) { return j % kSubBlocks == kSubBlocks - 1 || j == steps - 1; };
    auto release_k = [&](int j) {
      if (last_of_tile(j)) {
        __syncwarp();  // the warp's reads come before its one arrival
        if (lane == 0) mbarrier_arrive(base + L::kKEmpty + 8 * stage_of(j));
      }
    };
    auto release_v = [&](int j) {
      if (last_of_tile(j)) {
        __syncwarp();
        if (lane == 0) mbarrier_arrive(base + L::kVEmpty + 8 * stage_of(j));
      }
    };

    mbarrier_wait(base + L::kQFull, round & 1);
    if (steps > 0) {
      await_k(0);
      issue_qk(0);
      wgmma_wait<0>();
      pin_registers(s);
      release_k(0);
      mask_and_fold(0);
      pack_p<T>(pa, s);
      for (int j = 0; j + 1 < steps; ++j) {
        await_k(j + 1);
        await_v(j);
        issue_qk(j + 1);
        issue_pv(j);
        wgmma_wait<1>();  // S(j+1) is in; P V(j) may still run
        pin_registers(s);
        release_k(j + 1);
        mask_and_fold(j + 1);
        wgmma_wait_after<0>(rows.l[0] + rows.l[1]);  // after every exp of j + 1 (the row sums need them)
        pin_registers(o);
        release_v(j);
        SoftmaxRows::rescale(o, alpha);
        pack_p<T>(pa, s);
      }
      await_v(steps - 1);
      issue_pv(steps - 1);
      wgmma_wait<0>();
      pin_registers(o);
      release_v(steps - 1);
    }
    // KV tiles past the tile's last row (the planner's kv_end makes these rare): pass their stages on.
    for (int i = (steps + kSubBlocks - 1) / kSubBlocks; i < num_tiles; ++i) {
      const int stage = (fill + i) % S::kStages;
      const uint32_t parity = (uint32_t)(((fill + i) / S::kStages) & 1);
      mbarrier_wait(base + L::kKFull + 8 * stage, parity);
      mbarrier_wait(base + L::kVFull + 8 * stage, parity);
      __syncwarp();
      if (lane == 0) {
        mbarrier_arrive(base + L::kKEmpty + 8 * stage);
        mbarrier_arrive(base + L::kVEmpty + 8 * stage);
      }
    }
    fill += num_tiles;
    mbarrier_arrive(base + L::kQEmpty);  // Q and the item slot may be reused

    it = load_item(item);
    const int rows_valid = min(S::kTileQ, it.q_len * G - it.row_begin);
    store_prefill_rows<Traits, S::kTileQ>(p, it, rows_valid, row0, lane, o, rows);
    if (tid == 0) count_tile<Traits>(p, POD_OP_PREFILL);
  }
}

// The warp-specialized prefill CTA (or prefill role): thread is the index within it. The register
// counts are the kernel's (the prefill-only kernel and the roles kernel split differently);
// kLaunchRegs is what each thread holds when the kernel starts.
template <class Traits, int kLaunchRegs, int kProducerRegs, int kConsumerRegs, int kSubKv>
__device__ __forceinline__ void prefill_ws(const PodParams& p, const PodTensorMaps& maps, uint8_t* smem, int thread) {
  using S = PrefillShape<Traits>;
  using L = WsLayout<Traits>;
  const uint32_t base = smem_u32(smem);
  if (thread == 0) {
    mbarrier_init(base + L::kItemFull, 1);
    mbarrier_init(base + L::kQFull, 33);
    mbarrier_init(base + L::kQEmpty, S::kComputeThreads);  // every consumer thread read the item slot
    for (int s = 0; s < S::kStages; ++s) {
      mbarrier_init(base + L::kKFull + 8 * s, 33);
      mbarrier_init(base + L::kVFull + 8 * s, 33);
      mbarrier_init(base + L::kKEmpty + 8 * s, S::kWarps);
      mbarrier_init(base + L::kVEmpty + 8 * s, S::kWarps);
    }
    mbarrier_init_fence();
  }
  prefill_sync<Traits>();
  if (thread < S::kComputeThreads) {
    setmaxnreg<kConsumerRegs, kLaunchRegs>();
    ws_consume<Traits, kSubKv>(p, smem, thread);
  } else {
    setmaxnreg<kProducerRegs, kLaunchRegs>();
    ws_produce<Traits>(p, maps, smem, thread - S::kComputeThreads);
  }
}

}  // namespace pod
