// podgen family selection (family/select.h): which member of a config family runs a batch, fused or serial.
//
// A family library (podgen build <family>) holds several members, each a complete kernel with its
// own C ABI (prefix pod_<family>__<member>). pod_<family>_plan (family/abi.inl) calls choose()
// below, then only the chosen member's planner. Pure host C++17 (no CUDA), so it compiles with g++
// and is tested without a GPU (test/native/test_family.cpp).
//
// Candidates: every member fused (its fused kernel) and serial (its prefill-only kernel, then its
// decode-only kernel; for a batch with one op that is that op's standalone kernel alone).
//
// Cost model: per candidate, the predicted time in µs is the dot product of its coefficients
// (fitted on the GPU by least squares, bench/tune/cost-model.ts) with these features of the batch
// as the member's tiles cut it (kFeatureNames):
//   0 one                 1 (launch and fixed costs)
//   1 prefill_gflop       tile work of the prefill tiles, padding included (rows × keys × 4 D)
//   2 decode_gb           K and V bytes the decode tiles read, padded to whole KV tiles
//   3 prefill_waves       ceil(prefill tiles / (SMs × CTAs per SM)): the wave quantization
//   4 tiles_per_sm        (prefill + decode tiles) / SMs: per-tile costs
//   5 prefill_crowding    prefill_gflop × tiles_per_sm: prefill work slowed by the tiles sharing its
//                         SMs. Without it the fit put prefill-heavy fused launches 7-13% low and
//                         ran them where serial was faster; replayed on stop 27's H100 records it
//                         lifted the held-out worst pick from 0.93, 0.96 and 0.83 of the best to
//                         0.94, 1.00 and 0.97 (llama3_8b, llama2_7b, llama3_70b_tp8) and no batch
//                         got worse (bench/NOTES.md, optimisation log, stop 31)
// A candidate with any non-finite coefficient has no prediction and is not chosen by the model.
//
// Static rule (no model, or no candidate with a prediction): the lowest-numbered allowed member
// (member 0 unless forced), fused for a batch with both ops, serial (the standalone kernel) for a
// batch with one op. The choice records which of the two decided (PODGEN_CHOICE_*).
//
// Serial margin (with the model's error bounds): a fused pick runs only if its predicted time,
// raised by its high bound, still beats the best serial candidate's, lowered by that one's low
// bound; else that serial candidate runs (PODGEN_CHOICE_SERIAL_MARGIN). The bounds are quantiles of
// each candidate's (measured - predicted) / predicted on its fit set (bench/tune/cost-model.ts): a
// fused launch the model cannot tell from serial is not worth its risk of being the slower one.
//
// Graph mode: the choice must not change between replays of one captured launch sequence, so it
// is made for the bucket (every prefill of max_prefill_tokens / max_prefills tokens, every request
// at max_kv_len), never for the live batch.
#pragma once
#ifndef PODGEN_FAMILY_ABI_VERSION
#error "include pod_family.h (the rendered family header) before family/select.h"
#endif
#include <math.h>
#include <stdint.h>

#include <algorithm>
#include <vector>

#include "pod/planner.h"

namespace pod {
namespace family {

static_assert(PODGEN_COST_FEATURES == 6, "kFeatureNames and features() below list six features");
constexpr const char* kFeatureNames[PODGEN_COST_FEATURES] = {
    "one", "prefill_gflop", "decode_gb", "prefill_waves", "tiles_per_sm", "prefill_crowding"};
constexpr int kModes = 2;  // PODGEN_MODE_FUSED, PODGEN_MODE_SERIAL: coefficient rows mode - 1

// One member's C ABI (pod_attention.h under its prefix): the table the generated family.cu fills.
struct Member {
  const char* name;
  void (*info)(podgen_kernel_info*);
  int (*plan)(const podgen_batch*, const podgen_plan_options*, void*, uint64_t, podgen_plan*);
  int (*upload_plan)(const podgen_plan*, const void*, void*, uint64_t, void*);
  int (*run)(const podgen_plan*, const podgen_buffers*, void*);
  int (*run_prefill)(const podgen_plan*, const podgen_buffers*, void*);
  int (*run_decode)(const podgen_plan*, const podgen_buffers*, void*);
  int (*run_reference)(const podgen_reference_args*, void*);
  const char* (*status_name)(int);
  const char* (*last_error)(void);
};

// The lengths the features read: the live batch, or graph mode's bucket (`count` equal requests).
struct Load {
  struct Prefill {
    int64_t q_len, kv_len, count;
  };
  struct Decode {
    int64_t kv_len, count;
  };
  std::vector<Prefill> prefills;
  std::vector<Decode> decodes;
  bool has_prefill() const { return !prefills.empty(); }
  bool has_decode() const { return !decodes.empty(); }
};

// The live batch's lengths. Reads only what validate_batch reads first (qo_indptr[0..P],
// kv_lens[0..P+D)) and nothing when a pointer is NULL or a count negative: the chosen member's
// planner then rejects the batch with its own message. Lengths that it would reject give finite
// features (clamped at 0) and are never used for anything else.
inline Load live_load(const podgen_batch& b) {
  Load load;
  if (b.num_prefills < 0 || b.num_decodes < 0 || !b.kv_lens || (b.num_prefills > 0 && !b.qo_indptr))
    return load;
  load.prefills.reserve((size_t)b.num_prefills);
  load.decodes.reserve((size_t)b.num_decodes);
  for (int32_t r = 0; r < b.num_prefills; ++r) {
    const int64_t q = std::max<int64_t>(0, (int64_t)b.qo_indptr[r + 1] - b.qo_indptr[r]);
    load.prefills.push_back({q, std::max<int64_t>(q, b.kv_lens[r]), 1});
  }
  for (int32_t d = 0; d < b.num_decodes; ++d)
    load.decodes.push_back({std::max<int64_t>(0, b.kv_lens[b.num_prefills + d]), 1});
  return load;
}

// Graph mode: the bucket's largest batch, as the layout is sized for it (planner::bucket_capacity).
inline Load bucket_load(const podgen_plan_options& o) {
  Load load;
  const int64_t prefills = std::min<int64_t>(o.max_prefills, o.max_prefill_tokens);
  const int64_t kv = std::max<int64_t>(1, o.max_kv_len);
  if (prefills > 0) {
    const int64_t q = planner::ceil_div(o.max_prefill_tokens, prefills);
    load.prefills.push_back({q, std::max(q, kv), prefills});
  }
  if (o.max_decodes > 0) load.decodes.push_back({kv, o.max_decodes});
  return load;
}

// x rounded up to a multiple of m (> 0): a mask, not a division, where m is a power of two (as
// tile sizes are); the features are computed for every member on every plan.
inline int64_t round_up(int64_t x, int64_t m) {
  return (m & (m - 1)) == 0 ? (x + m - 1) & ~(m - 1) : planner::ceil_div(x, m) * m;
}

// The features of one member's tiles over a load (see the top of the file).
inline void features(const podgen_kernel_info& m, const Load& load, int num_sms,
                     double out[PODGEN_COST_FEATURES]) {
  using planner::ceil_div;
  const int64_t group = m.num_heads_q / m.num_heads_kv, d = m.head_dim;
  const int64_t pq = m.prefill_tile_q, pkv = m.prefill_tile_kv, dq = m.decode_tile_q, dkv = m.decode_tile_kv;
  double prefill_flops = 0, prefill_tiles = 0;
  for (const Load::Prefill& p : load.prefills) {
    const int64_t rows = p.q_len * group;
    double keys = 0;  // Σ over the row blocks of one KV head of their padded causal key range
    for (int64_t row = 0; row < rows; row += pq)
      keys += (double)round_up(planner::causal_kv_end(row, pq, rows, group, p.q_len, p.kv_len), pkv);
    const double count = (double)(p.count * m.num_heads_kv);
    prefill_flops += count * keys * (double)pq * 4.0 * (double)d;
    prefill_tiles += count * (double)ceil_div(rows, pq);
  }
  // Summed in integers (exact, and a few adds a decode where doubles took a multiply chain each).
  int64_t decodes = 0, decode_keys = 0;  // Σ count, Σ count × padded KV length
  for (const Load::Decode& q : load.decodes) {
    decodes += q.count;
    decode_keys += q.count * round_up(q.kv_len, dkv);
  }
  const double tiles_per_decode = (double)(m.num_heads_kv * ceil_div(group, dq));
  const double decode_bytes = tiles_per_decode * (double)decode_keys * 2.0 * (double)d * 2.0;  // K and V, 16-bit
  const double decode_tiles = tiles_per_decode * (double)decodes;
  const double slots = (double)num_sms * std::max(1, m.ctas_per_sm);
  out[0] = 1.0;
  out[1] = prefill_flops / 1e9;
  out[2] = decode_bytes / 1e9;
  out[3] = ceil(prefill_tiles / slots);
  out[4] = (prefill_tiles + decode_tiles) / (double)num_sms;
  out[5] = out[1] * out[4];
}

// What the caller allows and knows: a forced member (-1: free) and mode (PODGEN_MODE_CHOOSE:
// free), and the model's coefficients ([member][mode - 1][feature], µs; NULL: none).
struct Request {
  int force_member, force_mode;
  const double* coefficients;
};

// Fills the candidates (member-major, fused before serial), the choice and why.
inline void choose(const podgen_kernel_info* members, int num_members, const Load& load,
                   int num_sms, const Request& req, podgen_family_plan* out) {
  out->num_candidates = 0;
  int best = -1;
  for (int m = 0; m < num_members; ++m) {
    if (req.force_member >= 0 && m != req.force_member) continue;
    double f[PODGEN_COST_FEATURES];
    features(members[m], load, num_sms, f);
    for (int mode = PODGEN_MODE_FUSED; mode <= PODGEN_MODE_SERIAL; ++mode) {
      if (req.force_mode != PODGEN_MODE_CHOOSE && mode != req.force_mode) continue;
      podgen_candidate& c = out->candidates[out->num_candidates];
      c.member = m;
      c.mode = mode;
      std::copy(f, f + PODGEN_COST_FEATURES, c.features);
      c.predicted_us = NAN;
      if (req.coefficients) {
        const double* w = req.coefficients + ((size_t)m * kModes + (mode - 1)) * PODGEN_COST_FEATURES;
        double t = 0;
        for (int i = 0; i < PODGEN_COST_FEATURES; ++i) t += w[i] * f[i];
        c.predicted_us = t;  // NaN when any coefficient is
      }
      // Strictly less: ties keep the lower member, and fused before serial (deterministic).
      if (isfinite(c.predicted_us) && (best < 0 || c.predicted_us < out->candidates[best].predicted_us))
        best = out->num_candidates;
      ++out->num_candidates;
    }
  }
  if (req.force_member >= 0 && req.force_mode != PODGEN_MODE_CHOOSE) {
    out->member = req.force_member;
    out->mode = req.force_mode;
    out->reason = PODGEN_CHOICE_FORCED;
  } else if (best >= 0) {
    out->member = out->candidates[best].member;
    out->mode = out->candidates[best].mode;
    out->reason = PODGEN_CHOICE_COST_MODEL;
  } else {
    out->member = req.force_member >= 0 ? req.force_member : 0;
    const bool hybrid = load.has_prefill() && load.has_decode();
    out->mode = req.force_mode != PODGEN_MODE_CHOOSE ? req.force_mode
                : hybrid                            ? PODGEN_MODE_FUSED
                                                    : PODGEN_MODE_SERIAL;
    out->reason = PODGEN_CHOICE_STATIC_RULE;
  }
}

// The serial margin (see the top of the file) over choose()'s cost-model pick; `bounds` is
// [member][mode - 1][low, high], NULL for none.
inline void apply_serial_margin(const double* bounds, podgen_family_plan* out) {
  if (!bounds || out->reason != PODGEN_CHOICE_COST_MODEL || out->mode != PODGEN_MODE_FUSED) return;
  const auto bound = [&](const podgen_candidate& c, int side) {
    return bounds[((size_t)c.member * kModes + (c.mode - 1)) * 2 + side];
  };
  const podgen_candidate* fused = nullptr;
  const podgen_candidate* serial = nullptr;  // the best predicted serial candidate
  for (int i = 0; i < out->num_candidates; ++i) {
    const podgen_candidate& c = out->candidates[i];
    if (c.member == out->member && c.mode == PODGEN_MODE_FUSED) fused = &c;
    if (c.mode == PODGEN_MODE_SERIAL && isfinite(c.predicted_us) &&
        (!serial || c.predicted_us < serial->predicted_us))
      serial = &c;
  }
  if (!fused || !serial) return;
  const double fused_high = fused->predicted_us * (1.0 + bound(*fused, 1));
  const double serial_low = serial->predicted_us * (1.0 + bound(*serial, 0));
  if (fused_high < serial_low) return;
  out->member = serial->member;
  out->mode = PODGEN_MODE_SERIAL;
  out->reason = PODGEN_CHOICE_SERIAL_MARGIN;
}

}  // namespace family
}  // namespace pod
