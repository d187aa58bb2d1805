// Split-KV merge inside the tile kernels. Every split of a tile writes fp32 partials (o and lse
// per row); the last split of the tile to finish -- counted on the tile's merge item -- merges
// them, weighted by exp(lse_s - max_s lse_s), into o (DType) and lse. A split that saw no key of a
// row has lse = -inf and weight 0; a row no split saw writes o = 0 and lse = -inf (cannot happen
// for a valid row, kept safe anyway). Merging where the last split ends saves the separate
// combine launch that small decode batches would otherwise pay for.
#pragma once
#include "contract.h"
#include "primitives.cuh"
#include "tile_io.cuh"

namespace pod {

// Merges the splits of `it`'s tile; threads tid = 0 .. threads-1 share the rows.
template <class Traits, int kTileQ>
__device__ __forceinline__ void merge_splits(const PodParams& p, int op, const PodWorkItem& it, int tid,
                                             int threads) {
  using T = typename Traits::DType;
  constexpr int D = Traits::kHeadDim, G = Traits::kGroup;
  const int rows_valid = min(kTileQ, it.q_len * G - it.row_begin);
  const float* plse = p.partial_lse[op];
  const float* po = p.partial_o[op];
  for (int idx = tid; idx < rows_valid * (D / 4); idx += threads) {
    const int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
    const int64_t prow0 = (int64_t)it.partial_row + r;
    // Other CTAs wrote these: read them from L2 (.cg), never from a stale L1 line.
    float m = -INFINITY;
    for (int s = 0; s < it.num_splits; ++s) m = fmaxf(m, __ldcg(plse + prow0 + (int64_t)s * kTileQ));
    float l = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (m != -INFINITY) {
      for (int s = 0; s < it.num_splits; ++s) {
        const int64_t prow = prow0 + (int64_t)s * kTileQ;
        const float w = expf(__ldcg(plse + prow) - m);  // 0 for an empty split
        if (w == 0.f) continue;                          // its partial o may be anything finite; skip it
        const float4 x = __ldcg(reinterpret_cast<const float4*>(po + prow * D + c));
        l += w;
        acc.x = fmaf(w, x.x, acc.x); acc.y = fmaf(w, x.y, acc.y);
        acc.z = fmaf(w, x.z, acc.z); acc.w = fmaf(w, x.w, acc.w);
      }
    }
    const float inv_l = l > 0.f ? 1.f / l : 0.f;
    const int pr = it.row_begin + r;
    const int64_t lse_idx = (int64_t)(it.q_token_base + pr / G) * Traits::kNumHeadsQ + it.kv_head * G + pr % G;
    T* out = static_cast<T*>(p.o[op]) + lse_idx * D + c;
    uint2 packed;
    packed.x = Cvt<T>::pack(acc.x * inv_l, acc.y * inv_l);
    packed.y = Cvt<T>::pack(acc.z * inv_l, acc.w * inv_l);
    *reinterpret_cast<uint2*>(out) = packed;
    if (c == 0 && p.lse[op] != nullptr) p.lse[op][lse_idx] = l > 0.f ? m + logf(l) : -INFINITY;
  }
}

// Called by all `threads` threads of a split item (num_splits > 1) once they have written its
// partials; they share hardware barrier `barrier_id` and may overwrite the shared word s_flag.
// The classic fence / count / fence handshake: each thread's partials are visible GPU-wide before
// the tile's counter moves, and the split that moves it last sees every other split's partials.
// Not inlined: the merge's registers stay out of the tile loops' allocation.
template <class Traits, int kTileQ>
__device__ __noinline__ void finish_split(const PodParams& p, int op, const PodWorkItem* item, int tid,
                                          int threads, int barrier_id, volatile int* s_flag) {
  const PodWorkItem it = load_item(item);
  __threadfence();
  named_barrier(barrier_id, threads);
  if (tid == 0) {
    uint32_t* done = &p.merges[op][it.merge].splits_done;
    const bool last = atomicAdd(done, 1u) == (uint32_t)it.num_splits - 1;
    if (last) *done = 0;  // every split has arrived; the next launch counts from zero
    __threadfence();
    *s_flag = last;
  }
  named_barrier(barrier_id, threads);
  if (*s_flag) merge_splits<Traits, kTileQ>(p, op, it, tid, threads);
}

}  // namespace pod
