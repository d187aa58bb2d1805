// Split-KV combine: for every merge item (a tile whose keys were split num_splits ways), merge the
// fp32 partials of each valid row, weighted by exp(lse_s - max_s lse_s), into o (DType) and lse.
// A split that saw no key of a row has lse = -inf and weight 0; a row no split saw writes o = 0
// and lse = -inf (cannot happen for a valid row, kept safe anyway). With sinks, each row counts its
// head's sink here, once (the splits' partials leave it out).
#pragma once
#include "contract.h"
#include "primitives.cuh"
#include "variants.cuh"

#include <type_traits>

namespace pod {

// Rows [row_lo, row_hi) of the item's tile (one of its pod_combine_chunks chunks).
template <class Traits, int kTileQ>
__device__ __forceinline__ void combine_item(const PodParams& p, int op, const PodMergeItem& it, int row_lo,
                                             int row_hi, int tid, int threads) {
  using T = typename Traits::DType;
  constexpr int D = Traits::kHeadDim, G = Traits::kGroup;
  const int rows_valid = min(row_hi, it.q_len * G - it.row_begin);
  const float* plse = p.partial_lse[op];
  const float* po = p.partial_o[op];
  for (int idx = row_lo * (D / 4) + tid; idx < rows_valid * (D / 4); idx += threads) {
    const int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
    const int64_t prow0 = (int64_t)it.partial_row + r;
    float m = -INFINITY;
    for (int s = 0; s < it.num_splits; ++s) m = fmaxf(m, plse[prow0 + (int64_t)s * kTileQ]);
    float l = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (m != -INFINITY) {
      for (int s = 0; s < it.num_splits; ++s) {
        const int64_t prow = prow0 + (int64_t)s * kTileQ;
        const float w = expf(plse[prow] - m);  // 0 for an empty split
        if (w == 0.f) continue;                 // its partial o may be anything finite; skip it
        const float4 x = *reinterpret_cast<const float4*>(po + prow * D + c);
        l += w;
        acc.x = fmaf(w, x.x, acc.x); acc.y = fmaf(w, x.y, acc.y);
        acc.z = fmaf(w, x.z, acc.z); acc.w = fmaf(w, x.w, acc.w);
      }
    }
    float inv_l = l > 0.f ? 1.f / l : 0.f;
    const int pr = it.row_begin + r;
    const int64_t lse_idx = (int64_t)(it.q_token_base + pr / G) * Traits::kNumHeadsQ + it.kv_head * G + pr % G;
    float sink_lse;
    if constexpr (Variants<Traits>::kSinks)  // in log2 units: the weights exp(lse_s - m) are exp2's of them
      normalize_with_sink(m * kLog2e, l, Variants<Traits>::sink_log2(p, it.kv_head * G + pr % G), inv_l, sink_lse);
    T* out = static_cast<T*>(p.o[op]) + lse_idx * D + c;
    uint2 packed;
    packed.x = Cvt<T>::pack(acc.x * inv_l, acc.y * inv_l);
    packed.y = Cvt<T>::pack(acc.z * inv_l, acc.w * inv_l);
    *reinterpret_cast<uint2*>(out) = packed;
    if (c == 0 && p.lse[op] != nullptr) {
      if constexpr (Variants<Traits>::kSinks) p.lse[op][lse_idx] = sink_lse;
      else p.lse[op][lse_idx] = l > 0.f ? m + logf(l) : -INFINITY;
    }
  }
}

// Grid-stride over header->num_merges[op] x the op's chunks; op 0 prefill, 1 decode.
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) pod_combine_kernel(const __grid_constant__ KernelParams<Traits> p,
                                                                      int op) {
  const PodMergeItem* items = p.merges[op];
  const auto run = [&](auto tile_q) {
    constexpr int kTileQ = decltype(tile_q)::value, kChunks = pod_combine_chunks(kTileQ), kRows = kTileQ / kChunks;
    const int n = p.header->num_merges[op] * kChunks;
    for (int b = blockIdx.x; b < n; b += gridDim.x) {
      const int m = b / kChunks, chunk = b % kChunks;
      const PodMergeItem it = pod_item_for_head(items[m / Traits::kNumHeadsKv], m % Traits::kNumHeadsKv);
      combine_item<Traits, kTileQ>(p, op, it, chunk * kRows, (chunk + 1) * kRows, threadIdx.x, blockDim.x);
    }
  };
  if (op == POD_OP_PREFILL) run(std::integral_constant<int, Traits::Prefill::kTileQ>{});
  else run(std::integral_constant<int, Traits::Decode::kTileQ>{});
}

}  // namespace pod
