// Attention variants (spec: window, logitsSoftCap, sinks) as the tile loops apply them. Each is a
// compile-time fact of the Traits; the loops call these helpers only under `if constexpr` (or in
// expressions that fold to today's when the variant is off), so a spec without a variant keeps its
// kernels' code.
//
// Sliding window (Traits::kWindow = W > 0): a query at absolute position P sees the keys
// (P - W, P]. Query token t of a chunk of q_len tokens over kv_len keys sits at
// P = kv_len - q_len + t, so it sees [causal_base + t - W, causal_base + t) with
// causal_base = kv_len - q_len + 1. The planner starts each item at the KV tile holding the first
// key its first row sees (planner.h, first_live_key); the loops mask the keys before each row's.
//
// Logit soft-capping (kLogitsSoftCap = c > 0): the scaled logit x = sm_scale * q.k becomes
// c * tanh(x / c), as in Gemma 2 and FlashAttention's softcap (both cap the scaled logits). The loops
// cap the raw scores, then fold the capped logits with scale 1.
//
// Sinks (kSinks): a logit per query head (PodSinkParams::sinks, in units of the scaled logits) that
// joins the softmax denominator only: o = sum_j e^x_j v_j / (e^sink + sum_j e^x_j) and
// lse = log(e^sink + sum_j e^x_j). Counted once per row: where an unsplit item stores its rows, and
// for split items in the combine (never in a split's partial).
//
// fp8 KV cache (kKvFp8; kv_fp8.cuh): k = k_scale * k8 and v = v_scale * v8 with fp32 scales per
// tensor or per KV head. The tiles hold k8 and v8, so k_scale joins sm_scale in the logits and
// v_scale multiplies each output row (split partials included, so the combine needs neither).
#pragma once
#include "contract.h"
#include "softmax.cuh"

namespace pod {

template <class Traits>
struct Variants {
  static constexpr bool kWindow = Traits::kWindow > 0;
  static constexpr bool kSoftCap = Traits::kLogitsSoftCap > 0.f;
  static constexpr bool kSinks = Traits::kSinks;
  static constexpr bool kKvFp8 = Traits::kKvFp8;
  static_assert(Traits::kWindow >= 0 && Traits::kLogitsSoftCap >= 0.f, "0 turns a variant off");

  // The scales of an fp8 KV cache for KV head kv_head (the kernel's parameters are a PodKvScaleParams).
  static __device__ __forceinline__ float k_scale(const PodParams& p, int kv_head) {
    static_assert(kKvFp8, "only kernels with an fp8 KV cache have scales");
    return __ldg(static_cast<const typename Traits::Params&>(p).k_scale + (Traits::kKvScalePerHead ? kv_head : 0));
  }
  static __device__ __forceinline__ float v_scale(const PodParams& p, int kv_head) {
    static_assert(kKvFp8, "only kernels with an fp8 KV cache have scales");
    return __ldg(static_cast<const typename Traits::Params&>(p).v_scale + (Traits::kKvScalePerHead ? kv_head : 0));
  }

  // What a raw score of the tile (q.k, or q.k8 with an fp8 cache) is multiplied by to give the
  // scaled logit: sm_scale, times k_scale of the item's KV head with an fp8 cache (16-bit caches
  // ignore kv_head; the warp-specialized engine, which takes no fp8 cache, leaves it out).
  static __device__ __forceinline__ float logit_scale(const PodParams& p, int kv_head) {
    if constexpr (kKvFp8) return p.sm_scale * k_scale(p, kv_head);
    else return p.sm_scale;
  }

  // What SoftmaxRows::fold multiplies a score by (log2 units): the raw score by logit_scale * log2(e),
  // a capped logit (already scaled) by log2(e).
  static __device__ __forceinline__ float score_scale_log2(const PodParams& p, int kv_head = 0) {
    if constexpr (kSoftCap) return kLog2e;
    else return logit_scale(p, kv_head) * kLog2e;
  }

  // What soft_cap multiplies a raw score by to get u = logit_scale * score / c.
  static __device__ __forceinline__ float tanh_scale(const PodParams& p, int kv_head = 0) {
    return logit_scale(p, kv_head) / Traits::kLogitsSoftCap;
  }

  // s (raw q.k) becomes the capped logit c * tanh(u), with tanh.approx.f32 as FlashAttention's softcap
  // does: one MUFU op a score beside the softmax's ex2, where 1 - 2 / (e^2u + 1) takes two (ex2 and
  // rcp), and the MUFU pipe is what a capped tile's softmax waits on. Its relative error (< 2^-10.9)
  // moves a logit by at most c * 2^-10.9 (0.026 at c = 50, only where |u| is large).
  template <int kN>
  static __device__ __forceinline__ void soft_cap(float (&s)[kN][4], float tanh_scale) {
    constexpr float kCap = Traits::kLogitsSoftCap;
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = kCap * fast_tanh(s[n][e] * tanh_scale);
  }

  // The first key query token `token` sees (may be negative: then key 0).
  static __device__ __forceinline__ int first_key(int causal_base, int token) {
    return causal_base + token - Traits::kWindow;
  }

  // The sink logit of query head `head` in log2 units (the kernel's parameters are a PodSinkParams).
  static __device__ __forceinline__ float sink_log2(const PodParams& p, int head) {
    static_assert(kSinks, "only kernels with sinks have PodSinkParams");
    return __ldg(static_cast<const PodSinkParams&>(p).sinks + head) * kLog2e;
  }
};

// Sets the scores of keys before each row's first visible key to -inf (the sliding window's lower
// edge; mask_scores in prefill_tile.cuh is the upper): s holds the rows row0 + g and row0 + g + 8 of
// a 16-row fragment over keys sub_start + 8n ...; row_first(r) is the first key packed row r sees.
template <int kN, class RowFirst>
__device__ __forceinline__ void mask_before_window(float (&s)[kN][4], int row0, int lane, int sub_start,
                                                   const RowFirst& row_first) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int first = row_first(row0 + h * 8 + lane / 4) - sub_start;
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (n * 8 + (lane % 4) * 2 + e < first) s[n][2 * h + e] = -INFINITY;
  }
}

}  // namespace pod
