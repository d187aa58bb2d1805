// The fp32 reference attention (a deliberately naive oracle for tests; not fast, obviously right).
// One CTA of 128 threads per (query row, query head): query rows are the prefill tokens, then the
// decodes; thread t sums output columns t, t + 128, ... Two passes over the visible keys
// j <= kv_len - q_len + t (with a sliding window of W keys, only the last W of them): the max of
// the logits s_j = scale * q.k_j (soft-capped: cap * tanh(s_j / cap), with tanhf), then
// sum_j exp(s_j - max) and sum_j exp(s_j - max) * v_j; a sink logit joins the sum only. Inputs
// DType (an fp8 KV cache: e4m3, dequantized in fp32 with its scales, k = k_scale * k8), all
// arithmetic fp32; writes fp32 o and, when asked, lse (natural log). Needs podgen_reference_args
// from pod_attention.h.
//
// Also the random inputs that tests and benchmarks feed the kernels, drawn on the GPU (drawing
// the K/V cache of a long batch on the host takes minutes; here it takes milliseconds).
#pragma once
#include "kv_fp8.cuh"
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
  constexpr int kColumnsPerThread = (D + kReferenceThreads - 1) / kReferenceThreads;  // columns c, c + 128, ...
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
  using KvT = typename Traits::KvDType;
  const KvT* k = static_cast<const KvT*>(a.k);
  const KvT* v = static_cast<const KvT*>(a.v);
  float k_scale = 1.f, v_scale = 1.f;
  if constexpr (Traits::kKvFp8) {
    k_scale = a.k_scale[Traits::kKvScalePerHead ? kv_head : 0];
    v_scale = a.v_scale[Traits::kKvScalePerHead ? kv_head : 0];
  }
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
    const KvT* kj = k + kv_row(j);
    float acc = 0.f;
    for (int d = 0; d < D; ++d) acc += s_q[d] * (Cvt<KvT>::to_float(kj[d]) * k_scale);
    if constexpr (Traits::kLogitsSoftCap > 0.f) return Traits::kLogitsSoftCap * tanhf(acc * scale / Traits::kLogitsSoftCap);
    else return acc * scale;
  };

  for (int d = threadIdx.x; d < D; d += blockDim.x) s_q[d] = Cvt<T>::to_float(q[qo + d]);
  __syncthreads();

  float m = -INFINITY;
  for (int j = first + threadIdx.x; j < visible; j += blockDim.x) m = fmaxf(m, score(j));
  m = block_reduce(m, true, s_red);

  float l = 0.f, acc[kColumnsPerThread] = {};
  for (int base = first; base < visible; base += kReferenceThreads) {
    const int j = base + threadIdx.x;
    const float pj = j < visible ? expf(score(j) - m) : 0.f;
    l += pj;
    s_p[threadIdx.x] = pj;
    __syncthreads();
    const int n = min(kReferenceThreads, visible - base);
#pragma unroll
    for (int c = 0; c < kColumnsPerThread; ++c) {
      const int d = threadIdx.x + c * kReferenceThreads;
      if (d < D)
        for (int jj = 0; jj < n; ++jj) acc[c] += s_p[jj] * (Cvt<KvT>::to_float(v[kv_row(base + jj) + d]) * v_scale);
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
#pragma unroll
  for (int c = 0; c < kColumnsPerThread; ++c) {
    const int d = threadIdx.x + c * kReferenceThreads;
    if (d < D) o[qo + d] = visible > 0 ? acc[c] * keep / l : 0.f;
  }
  if (threadIdx.x == 0 && lse != nullptr) lse[(int64_t)local_row * Hq + head] = visible > 0 ? m + logf(l) : -INFINITY;
}

// ---------------------------------------------------------------- random inputs
// Counter-based: element i of the tensor numbered `tensor`, drawn with `seed`, depends on
// (seed, tensor, i) only, not on the launch shape or the GPU, so the same seed gives the same data
// everywhere. Philox4x32-10 (Salmon et al., SC'11; Random123's known-answer vectors hold) of the
// counter (c low, c high, tensor, 0) under the key (seed low, seed high), c = i / 4, gives four
// words; each word keeps its top 24 bits as a uniform in (0, 1) (never 0 or 1), and Box-Muller
// turns words 0, 1 into elements 4c, 4c+1 (r = sqrt(-2 ln u0); r cos, r sin of 2 pi u1) and
// words 2, 3 into 4c+2, 4c+3.
// Magnitudes below 2^-24 (the smallest fp16 subnormal) are raised to it: no element is zero in
// either 16-bit type, as zeros hide bugs. fp8 (e4m3) elements: below 2^-9, its smallest subnormal,
// raised to that (and rounded to e4m3 saturating, so never NaN).
constexpr float kRandomMinMagnitude = 0x1p-24f;
constexpr float kRandomMinMagnitudeFp8 = 0x1p-9f;

__host__ __device__ inline void philox4x32_10(uint32_t (&ctr)[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0], p1 = (uint64_t)0xCD9E8D57u * ctr[2];
    const uint32_t x0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ k0, x2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1;
    ctr[0] = x0;
    ctr[1] = (uint32_t)p1;
    ctr[2] = x2;
    ctr[3] = (uint32_t)p0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

__host__ __device__ inline float random_open_unit(uint32_t word) {
  return ((float)(word >> 8) + 0.5f) * 0x1p-24f;
}

// sin and cos of 2*pi*u. On the GPU sincospif, whose argument reduction is exact and needs no
// local memory (sinf/cosf carry a large-argument path that does); the host (tests) in double.
__host__ __device__ inline void sincos_turn(float u, float* s, float* c) {
#ifdef __CUDA_ARCH__
  sincospif(2.f * u, s, c);
#else
  *s = (float)sin(6.283185307179586 * u);
  *c = (float)cos(6.283185307179586 * u);
#endif
}

__host__ __device__ inline float away_from_zero(float x, float min_magnitude) {
  return fabsf(x) < min_magnitude ? copysignf(min_magnitude, x) : x;
}

__host__ __device__ inline float away_from_zero(float x) {
  return away_from_zero(x, kRandomMinMagnitude);
}

// Elements 4c .. 4c+3 of (seed, tensor), approximately standard normal.
__host__ __device__ inline void random_normal4(uint64_t seed, uint32_t tensor, uint64_t c,
                                              float (&out)[4]) {
  uint32_t w[4] = {(uint32_t)c, (uint32_t)(c >> 32), tensor, 0u};
  philox4x32_10(w, (uint32_t)seed, (uint32_t)(seed >> 32));
  for (int pair = 0; pair < 2; ++pair) {
    const float r = sqrtf(-2.f * logf(random_open_unit(w[2 * pair])));
    float sin_t, cos_t;
    sincos_turn(random_open_unit(w[2 * pair + 1]), &sin_t, &cos_t);
    out[2 * pair] = away_from_zero(r * cos_t);
    out[2 * pair + 1] = away_from_zero(r * sin_t);
  }
}

constexpr int kFillThreads = 256;

// Grid-stride over groups of four elements; the last group may be partial.
template <class T>
__global__ void __launch_bounds__(kFillThreads)
    pod_fill_random_kernel(T* out, uint64_t count, uint64_t seed, uint32_t tensor) {
  const uint64_t groups = (count + 3) / 4;
  for (uint64_t c = blockIdx.x * (uint64_t)kFillThreads + threadIdx.x; c < groups;
       c += (uint64_t)gridDim.x * kFillThreads) {
    float v[4];
    random_normal4(seed, tensor, c, v);
    for (int j = 0; j < 4; ++j)
      if (4 * c + j < count)
        out[4 * c + j] = Cvt<T>::from_float(sizeof(T) == 1 ? away_from_zero(v[j], kRandomMinMagnitudeFp8) : v[j]);
  }
}

}  // namespace pod
