// Online softmax over the accumulator fragments of mma.sync (FlashAttention-2 style).
//
// A thread owns two rows of every 16-row fragment: row g (h = 0) and row g + 8 (h = 1), where
// g = lane / 4; a score fragment s[n][4] covers keys 8n .. 8n+7 with s[n][2h], s[n][2h+1] on row h.
// Scores stay raw (q·k) in registers; the running max m is kept in log2 units of the scaled score
// (m = max(q·k) * scale * log2(e)), so p = exp2(q·k * scale_log2 - m) costs one FMA and one ex2.
// l is this thread's partial row sum (its quad's four lanes together hold the whole row sum);
// it is reduced across the quad only once, in finalize().
#pragma once
#include "primitives.cuh"

namespace pod {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// A row's normalization with a sink: m (log2 units) and sum are the row's max and its sum of
// exp2(x - m) over the keys; the sink joins the sum. inv_l scales the row's accumulated
// sum_j exp2(x_j - m) v_j into o; lse is natural-log. A row that saw no key gets o = 0 and
// lse = sink (and with a sink of -inf, lse = -inf).
__device__ __forceinline__ void normalize_with_sink(float m, float sum, float sink_log2, float& inv_l,
                                                    float& lse) {
  const float mx = fmaxf(m, sink_log2);
  if (mx == -INFINITY) {
    inv_l = 0.f;
    lse = -INFINITY;
    return;
  }
  const float keep = fast_exp2(m - mx);  // 0 when the row saw no key
  const float total = fmaf(sum, keep, fast_exp2(sink_log2 - mx));
  inv_l = keep / total;
  lse = (mx + log2f(total)) * kLn2;
}

struct SoftmaxRows {
  float m[2];  // running max, log2 units of the scaled score; -inf before the first visible key
  float l[2];  // this lane's partial sum of exp2(score - m)

  __device__ __forceinline__ void init() {
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.f;
  }

  // Fold one block of scores into the state: s (raw scores, -inf where masked) becomes the
  // probabilities p; alpha is what the output accumulator must be multiplied by (rescale()). The
  // two are separate so that the scores of one block can be folded while the P V product of the
  // block before it is still accumulating into o (wgmma).
  template <int kN>
  __device__ __forceinline__ void fold(float (&s)[kN][4], float scale_log2, float (&alpha)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kN; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
      mx = quad_max(mx) * scale_log2;
      const float m_new = fmaxf(m[h], mx);
      // Nothing visible yet on this row: subtract 0 so that exp2(-inf - 0) = 0, never NaN.
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[h] = m_new == m[h] ? 1.f : fast_exp2(m[h] - m_use);  // exactly 1 when the max held
      m[h] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < kN; ++n) {
        s[n][2 * h] = fast_exp2(fmaf(s[n][2 * h], scale_log2, -m_use));
        s[n][2 * h + 1] = fast_exp2(fmaf(s[n][2 * h + 1], scale_log2, -m_use));
        sum += s[n][2 * h] + s[n][2 * h + 1];
      }
      l[h] = fmaf(l[h], alpha[h], sum);
    }
  }

  // o *= alpha (per row). Once the running maxima settle (after the first few blocks of a long
  // row) alpha is exactly 1 on every row of the warp; skipping the 4 * kD8 multiplies then changes
  // no bit of o and takes them off the path to the next P V. The vote keeps the branch
  // warp-uniform, so all 32 lanes must call it.
  template <int kD8>
  __device__ __forceinline__ static void rescale(float (&o)[kD8][4], const float (&alpha)[2]) {
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
      for (int d = 0; d < kD8; ++d) {
        o[d][0] *= alpha[0];
        o[d][1] *= alpha[0];
        o[d][2] *= alpha[1];
        o[d][3] *= alpha[1];
      }
    }
  }

  // fold() and rescale() together, for callers that have o in hand.
  template <int kN, int kD8>
  __device__ __forceinline__ void update(float (&s)[kN][4], float (&o)[kD8][4], float scale_log2) {
    float alpha[2];
    fold(s, scale_log2, alpha);
    rescale(o, alpha);
  }

  // Reduce l across the quad. Afterwards, for each row h: inv_l (0 when the row saw no key) and
  // lse (natural log of sum_j exp(scale * q·k_j); -inf when the row saw no key).
  __device__ __forceinline__ void finalize(float (&inv_l)[2], float (&lse)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float sum = quad_sum(l[h]);
      const bool any = sum > 0.f;
      inv_l[h] = any ? 1.f / sum : 0.f;
      lse[h] = any ? (m[h] + log2f(sum)) * kLn2 : -INFINITY;
    }
  }

  // finalize() for rows whose softmax also counts a sink logit (log2 units) each.
  __device__ __forceinline__ void finalize(float (&inv_l)[2], float (&lse)[2], const float (&sink_log2)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) normalize_with_sink(m[h], quad_sum(l[h]), sink_log2[h], inv_l[h], lse[h]);
  }
};

}  // namespace pod
