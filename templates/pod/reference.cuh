// The fp32 reference attention (a deliberately naive oracle for tests; not fast, obviously right).
// One CTA of 128 threads per (query row, query head): query rows are the prefill tokens, then the
// decodes. Two passes over the visible keys j <= kv_len - q_len + t (with a sliding window of W
// keys, only the last W of them): the max of the logits s_j = scale * q.k_j (soft-capped:
// cap * tanh(s_j / cap), with tanhf), then sum_j exp(s_j - max) and sum_j exp(s_j - max) * v_j;
// a sink logit joins the sum only. Inputs DType, all arithmetic fp32; writes fp32 o and, when
// asked, lse (natural log). Needs podgen_reference_args from pod_attention.h.
#pragma once
#include "primitives.cuh"

namespace pod {

constexpr int kReferenceThreads = 128;

__device__ __forceinline__ float block_reduce(float x, bool is_max, float* s_red) {
  for (int o = 16; o > 0; o /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? fmaxf(x, y) : x + y;
  }
  __syncthreads();  // s_red may still be read from a previous reduction
  if (threadIdx.x % 32 == 0) s_red[threadIdx.x / 32] = x;
  __syncthreads();
  float r = s_red[0];
  for (int w = 1; w < kReferenceThreads / 32; ++w) r = is_max ? fmaxf(r, s_red[w]) : r + s_red[w];
  return r;
}

template <class Traits>
__global__ void __launch_bounds__(kReferenceThreads) pod_reference_kernel(const podgen_reference_args a,
                                                                          float scale) {
  using T = typename Traits::DType;
  constexpr int D = Traits::kHeadDim, Hq = Traits::kNumHeadsQ, Hkv = Traits::kNumHeadsKv;
  static_assert(D <= kReferenceThreads, "one thread per output column");
  __shared__ float s_q[D];
  __shared__ float s_p[kReferenceThreads];
  __shared__ float s_red[kReferenceThreads / 32];

  const int row = blockIdx.x, head = blockIdx.y, kv_head = head / Traits::kGroup;
  const int num_prefill_rows = a.total_prefill_tokens;
  int request, q_len, t;
  const T* q;
  float* o;
  float* lse;
  if (row < num_prefill_rows) {
    request = 0;
    while (request + 1 < a.num_prefills && a.qo_indptr[request + 1] <= row) ++request;
    q_len = a.qo_indptr[request + 1] - a.qo_indptr[request];
    t = row - a.qo_indptr[request];
    q = static_cast<const T*>(a.q_prefill);
    o = a.o_prefill;
    lse = a.lse_prefill;
  } else {
    const int d = row - num_prefill_rows;
    request = a.num_prefills + d;
    q_len = 1;
    t = 0;
    q = static_cast<const T*>(a.q_decode);
    o = a.o_decode;
    lse = a.lse_decode;
  }
  const int local_row = row < num_prefill_rows ? row : row - num_prefill_rows;
  const int64_t qo = ((int64_t)local_row * Hq + head) * D;
  const int kv_len = a.kv_lens[request];
  const int visible = kv_len - q_len + t + 1;  // keys first .. visible-1
  const int first = Traits::kWindow > 0 ? max(0, visible - Traits::kWindow) : 0;
  const int page_base = a.page_indptr[request];
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  auto kv_row = [&](int j) -> int64_t {
    int64_t r;
    if (Traits::kPaged) {
      r = (int64_t)a.page_indices[page_base + j / Traits::kPageSize] * Traits::kPageSize + j % Traits::kPageSize;
    } else {
      r = (int64_t)page_base + j;
    }
    return (r * Hkv + kv_head) * D;
  };
  auto score = [&](int j) {
    const T* kj = k + kv_row(j);
    float acc = 0.f;
    for (int d = 0; d < D; ++d) acc += s_q[d] * Cvt<T>::to_float(kj[d]);
    if constexpr (Traits::kLogitsSoftCap > 0.f) return Traits::kLogitsSoftCap * tanhf(acc * scale / Traits::kLogitsSoftCap);
    else return acc * scale;
  };

  for (int d = threadIdx.x; d < D; d += blockDim.x) s_q[d] = Cvt<T>::to_float(q[qo + d]);
  __syncthreads();

  float m = -INFINITY;
  for (int j = first + threadIdx.x; j < visible; j += blockDim.x) m = fmaxf(m, score(j));
  m = block_reduce(m, true, s_red);

  float l = 0.f, acc = 0.f;
  for (int base = first; base < visible; base += kReferenceThreads) {
    const int j = base + threadIdx.x;
    const float pj = j < visible ? expf(score(j) - m) : 0.f;
    l += pj;
    s_p[threadIdx.x] = pj;
    __syncthreads();
    if (threadIdx.x < D) {
      const int n = min(kReferenceThreads, visible - base);
      for (int jj = 0; jj < n; ++jj) acc += s_p[jj] * Cvt<T>::to_float(v[kv_row(base + jj) + threadIdx.x]);
    }
    __syncthreads();
  }
  l = block_reduce(l, false, s_red);
  float keep = 1.f;  // what o's terms are scaled by when a sink raises the max
  if constexpr (Traits::kSinks) {
    const float sink = a.sinks[head], m_all = fmaxf(m, sink);
    keep = expf(m - m_all);
    l = l * keep + expf(sink - m_all);
    m = m_all;
  }
  if (threadIdx.x < D) o[qo + threadIdx.x] = visible > 0 ? acc * keep / l : 0.f;
  if (threadIdx.x == 0 && lse != nullptr) lse[(int64_t)local_row * Hq + head] = visible > 0 ? m + logf(l) : -INFINITY;
}

}  // namespace pod
