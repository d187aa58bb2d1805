// Prefill tile loop: one work item = up to Prefill::kTileQ packed query rows of one request and
// one KV head, against keys [kv_begin, kv_end), run by all warps of the CTA (or of the prefill
// role). One mainloop per engine (Prefill::kEngine, chosen by the resource model), over the helpers
// of prefill_tile.cuh:
//  - prefill_mma.cuh: mma.sync with ldmatrix fragments (sm_80+);
//  - prefill_wgmma.cuh: warpgroup MMAs reading shared memory, the softmax under the P V (sm_90a);
//  - prefill_ws.cuh: the warp-specialized engine, which owns its CTA (scheduler.cuh calls it).
// The first two share the CTA's cp.async pipeline:
//   [ Q: kTileQ x D ][ stage 0: K kTileKv x D, V kTileKv x D ] ... [ stage kStages-1 ]
//   = kTileQ*D*2 + kStages*kTileKv*D*2*2 bytes, PrefillShape::kAhead KV tiles in flight ahead of
//   the one being computed (kStages - 1, or kStages - 2 with kCarryPv).
#pragma once
#include "prefill_mma.cuh"
#include "prefill_wgmma.cuh"

namespace pod {

template <class Traits>
__device__ __forceinline__ void prefill_tile(const PodParams& p, ItemRef item, uint8_t* smem, int tid) {
  if constexpr (PrefillShape<Traits>::kWgmma) prefill_tile_wgmma<Traits>(p, item, smem, tid);
  else prefill_tile_mma<Traits>(p, item, smem, tid);
}

}  // namespace pod
