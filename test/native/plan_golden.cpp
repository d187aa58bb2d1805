// Golden plans: plans seeded random batches (and broken ones) with the host planner (templates/pod/planner.h) and the
// family choice (templates/family/select.h) and prints, per kernel shape and kind of batch, a
// hash of every plan struct and staging image. A change that is meant to make the planner
// faster must leave these hashes as they are (test/plan-golden.test.ts compares them with
// test/fixtures/plan-golden.txt, written by `node --import tsx test/plan-golden.ts --write`).
//
// Output, one line per (shape, kind): "<shape>\t<kind>\t<plans>\t<hash>". With an argument
// "--each", one line per plan instead ("<shape>\t<kind>\t<index>\t<hash>"), to find the first
// plan that differs. The random numbers are this file's own (splitmix64), so the batches do not
// depend on the standard library's distributions.
#include "pod_family.h"
#include "pod_attention.h"
#include "pod/planner.h"
#include "family/select.h"
#include "kernel_shapes.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t uni(int64_t lo, int64_t hi) {  // inclusive; lo if hi <= lo
    return hi <= lo ? lo : lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
  }
  // Mostly small, sometimes anywhere up to hi (serving lengths are skewed).
  int64_t skewed(int64_t lo, int64_t hi) {
    switch (uni(0, 3)) {
      case 0: return uni(lo, std::min(hi, lo + 16));
      case 1: return uni(lo, std::min(hi, lo + 300));
      default: return uni(lo, hi);
    }
  }
};

// FNV-1a, 64-bit.
struct Hash {
  uint64_t h = 0xCBF29CE484222325ull;
  void add(const void* data, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  }
  void add(uint64_t v) { add(&v, sizeof v); }
};

// One batch's lengths in request order. The split form takes the first `prefills` as prefill
// chunks (a chunk may have one token); the ragged form classifies by q_len.
struct Lengths {
  std::vector<int32_t> q, kv;
  int64_t prefills = 0;
};

struct Owned {
  std::vector<int32_t> qo, kv, pip, pidx;
  int32_t num_pages = 0, stride = 0;
};

// Pages for the requests in order: shuffled page ids, CSR with spare entries or a padded block
// table (paged), or first rows with gaps (contiguous).
Owned with_pages(Rng& rng, const pod::KernelShape& k, const std::vector<int32_t>& kv, bool block_table) {
  Owned o;
  o.kv = kv;
  const int64_t n = (int64_t)kv.size();
  if (!k.paged) {
    int64_t row = 0;
    for (int64_t r = 0; r < n; ++r) {
      row += rng.uni(0, 3) == 0 ? rng.uni(0, 100) : 0;
      o.pip.push_back((int32_t)row);
      row += kv[r];
    }
    o.pip.push_back((int32_t)row);
    o.num_pages = (int32_t)(row + rng.uni(0, 10));
    return o;
  }
  std::vector<int64_t> pages(n);
  int64_t total = 0, most = 0;
  for (int64_t r = 0; r < n; ++r) {
    pages[r] = pod::planner::ceil_div(kv[r], k.page_size);
    total += pages[r];
    most = std::max(most, pages[r]);
  }
  o.num_pages = (int32_t)(total + rng.uni(0, 50));
  std::vector<int32_t> perm(o.num_pages);
  for (int32_t i = 0; i < o.num_pages; ++i) perm[i] = i;
  for (int32_t i = o.num_pages - 1; i > 0; --i) std::swap(perm[i], perm[rng.uni(0, i)]);
  o.stride = block_table ? (int32_t)std::max<int64_t>(1, most + rng.uni(0, 3)) : 0;
  if (!block_table) o.pip.push_back((int32_t)rng.uni(0, 2));
  o.pidx.assign(block_table ? 0 : o.pip[0], -7);
  size_t next = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t g = 0; g < pages[r]; ++g) o.pidx.push_back(perm[next++]);
    const int64_t spare = block_table ? o.stride - pages[r] : rng.uni(0, 2);
    for (int64_t g = 0; g < spare; ++g) o.pidx.push_back(-1);
    if (!block_table) o.pip.push_back((int32_t)o.pidx.size());
  }
  return o;
}

struct Limits {
  int64_t prefills, decodes, tokens, kv;
};

Limits random_limits(Rng& rng) {
  const int64_t P[] = {0, 1, 2, 4, 8, 16}, D[] = {0, 1, 7, 32, 128, 300};
  const int64_t T[] = {0, 1, 100, 2048, 8192}, KV[] = {1, 17, 1000, 8192, 32768};
  return {P[rng.uni(0, 5)], D[rng.uni(0, 5)], T[rng.uni(0, 4)], KV[rng.uni(0, 4)]};
}

// Prefills first, then decodes (the split form's order).
Lengths random_lengths(Rng& rng, const Limits& L) {
  Lengths b;
  const int64_t P = std::min(rng.uni(0, L.prefills), L.tokens), D = rng.uni(0, L.decodes);
  b.prefills = P;
  int64_t left = rng.uni(P, L.tokens);
  for (int64_t r = 0; r < P; ++r) {
    const int64_t q = rng.skewed(1, std::min(L.kv, left - (P - r - 1)));
    left -= q;
    b.q.push_back((int32_t)q);
    b.kv.push_back((int32_t)(rng.uni(0, 3) == 0 ? q : rng.skewed(q, L.kv)));
  }
  for (int64_t d = 0; d < D; ++d) {
    b.q.push_back(1);
    b.kv.push_back((int32_t)(rng.uni(0, 5) == 0 ? 1 : rng.skewed(1, L.kv)));
  }
  return b;
}

// A serving step of 256 requests: 4 prefill chunks of 512 tokens over 2K-16K keys, 252 decodes
// of 1-16K keys (the shape `bench/plan-time.ts` times).
Lengths serving_lengths(Rng& rng) {
  Lengths b;
  b.prefills = 4;
  for (int r = 0; r < 4; ++r) {
    b.q.push_back(512);
    b.kv.push_back((int32_t)rng.uni(2048, 16384));
  }
  for (int d = 0; d < 252; ++d) {
    b.q.push_back(1);
    b.kv.push_back((int32_t)rng.skewed(1, 16384));
  }
  return b;
}

podgen_plan_options random_options(Rng& rng) {
  podgen_plan_options o;
  memset(&o, 0, sizeof o);
  const int sms[] = {0, 1, 3, 8, 108, 132, 132, 132, 256};
  o.num_sms = sms[rng.uni(0, 8)];
  o.prefill_max_splits = rng.uni(0, 3) == 0 ? (int)rng.uni(1, 5) : 0;
  o.decode_max_splits = rng.uni(0, 3) == 0 ? (int)rng.uni(1, 5) : 0;
  o.debug_count_tiles = (int)rng.uni(0, 1);
  return o;
}

podgen_plan_options bucket_options(Rng& rng, const Limits& L) {
  podgen_plan_options o = random_options(rng);
  o.graph_mode = 1;
  o.max_prefills = (int32_t)L.prefills;
  o.max_decodes = (int32_t)L.decodes;
  o.max_prefill_tokens = (int32_t)L.tokens;
  o.max_kv_len = (int32_t)L.kv;
  o.max_num_pages = INT32_MAX;
  o.max_page_entries = INT32_MAX;
  return o;
}

// The split form of a prefills-first batch.
podgen_batch split_view(const pod::KernelShape& k, const Lengths& b, Owned& o) {
  const int64_t P = b.prefills;
  o.qo.assign(1, 0);
  for (int64_t r = 0; r < P; ++r) o.qo.push_back(o.qo.back() + b.q[r]);
  podgen_batch v;
  memset(&v, 0, sizeof v);
  v.num_prefills = (int32_t)P;
  v.num_decodes = (int32_t)(b.q.size() - P);
  v.qo_indptr = o.qo.data();
  v.kv_lens = o.kv.data();
  v.page_indptr = o.pip.empty() ? nullptr : o.pip.data();
  v.page_indices = o.pidx.empty() ? nullptr : o.pidx.data();
  v.block_table_stride = o.stride;
  v.num_pages = o.num_pages;
  v.num_heads_q = k.heads_q;
  v.num_heads_kv = k.heads_kv;
  v.head_dim = k.head_dim;
  return v;
}

// The ragged form of a batch in any order.
podgen_ragged_batch ragged_view(const pod::KernelShape& k, const Lengths& b, Owned& o) {
  o.qo.assign(1, 0);
  for (int32_t q : b.q) o.qo.push_back(o.qo.back() + q);
  podgen_ragged_batch v;
  memset(&v, 0, sizeof v);
  v.num_requests = (int32_t)b.q.size();
  v.qo_indptr = o.qo.data();
  v.kv_lens = o.kv.data();
  v.page_indptr = o.pip.empty() ? nullptr : o.pip.data();
  v.page_indices = o.pidx.empty() ? nullptr : o.pidx.data();
  v.block_table_stride = o.stride;
  v.num_pages = o.num_pages;
  v.num_heads_q = k.heads_q;
  v.num_heads_kv = k.heads_kv;
  v.head_dim = k.head_dim;
  return v;
}

// Requests interleaved in a random order, each op keeping its own order.
Lengths interleaved(Rng& rng, const Lengths& b) {
  const int64_t P = b.prefills, n = (int64_t)b.q.size();
  Lengths out;
  for (int64_t a = 0, d = P; a < P || d < n;) {
    const int64_t r = d == n || (a < P && rng.uni(0, 1)) ? a++ : d++;
    out.q.push_back(b.q[r]);
    out.kv.push_back(b.kv[r]);
  }
  return out;
}

// Plans once for the sizes, then into a staging buffer; hashes status, message, plan and bytes.
template <class Input>
uint64_t plan_hash(PlanFn<Input> plan, const Input& batch, const podgen_plan_options& opt) {
  Hash h;
  podgen_plan sizes, p;
  std::string error;
  int status = plan(batch, opt, nullptr, 0, &sizes, &error);
  std::vector<unsigned char> staging(status == PODGEN_OK ? sizes.host_bytes : 0);
  if (status == PODGEN_OK) status = plan(batch, opt, staging.data(), staging.size(), &p, &error);
  h.add((uint64_t)status);
  if (status != PODGEN_OK) {
    h.add(error.data(), error.size());
    return h.h;
  }
  h.add(&p, sizeof p);
  h.add(staging.data(), staging.size());
  return h.h;
}

struct Output {
  bool each;
  void group(const char* shape, const char* kind, const std::vector<uint64_t>& hashes) const {
    if (each) {
      for (size_t i = 0; i < hashes.size(); ++i)
        printf("%s\t%s\t%zu\t%016" PRIx64 "\n", shape, kind, i, hashes[i]);
      return;
    }
    Hash h;
    for (uint64_t v : hashes) h.add(v);
    printf("%s\t%s\t%zu\t%016" PRIx64 "\n", shape, kind, hashes.size(), h.h);
  }
};

void shape_groups(const Config& c, Rng& rng, int batches, const Output& out) {
  std::vector<uint64_t> split, ragged, graph, serving;
  for (int i = 0; i < batches; ++i) {
    const Lengths b = random_lengths(rng, random_limits(rng));
    Owned o = with_pages(rng, c.k, b.kv, c.k.paged && rng.uni(0, 1));
    split.push_back(plan_hash(c.plan, split_view(c.k, b, o), random_options(rng)));

    const Lengths mixed = interleaved(rng, random_lengths(rng, random_limits(rng)));
    Owned om = with_pages(rng, c.k, mixed.kv, c.k.paged && rng.uni(0, 1));
    ragged.push_back(plan_hash(c.plan_ragged, ragged_view(c.k, mixed, om), random_options(rng)));

    const Limits L = random_limits(rng);
    const podgen_plan_options bucket = bucket_options(rng, L);
    for (int j = 0; j < 3; ++j) {
      const Lengths g = random_lengths(rng, L);
      Owned og = with_pages(rng, c.k, g.kv, false);
      graph.push_back(plan_hash(c.plan, split_view(c.k, g, og), bucket));
    }
  }
  for (int i = 0; i < std::max(1, batches / 20); ++i) {
    const Lengths s = serving_lengths(rng);
    podgen_plan_options opt = random_options(rng);
    opt.num_sms = 132;
    Owned o = with_pages(rng, c.k, s.kv, false);
    serving.push_back(plan_hash(c.plan, split_view(c.k, s, o), opt));
    const Lengths mixed = interleaved(rng, s);
    Owned om = with_pages(rng, c.k, mixed.kv, c.k.paged && rng.uni(0, 1));
    serving.push_back(plan_hash(c.plan_ragged, ragged_view(c.k, mixed, om), opt));
  }
  // Invalid input: a valid batch with one to three values broken; the status and message must
  // stay. Not page_indptr: a broken one can send the planner past the arrays' ends, which it
  // cannot know (the bindings check those lengths).
  std::vector<uint64_t> broken;
  for (int i = 0; i < batches; ++i) {
    const Lengths b = random_lengths(rng, random_limits(rng));
    Owned o = with_pages(rng, c.k, b.kv, c.k.paged && rng.uni(0, 1));
    podgen_batch v = split_view(c.k, b, o);
    const int32_t values[] = {-1, 0, 1, 2, -100, 1000, INT32_MAX, INT32_MIN, 7};
    for (int64_t m = rng.uni(1, 3); m > 0; --m) {
      const int32_t value = values[rng.uni(0, 8)];
      std::vector<int32_t>* arrays[] = {&o.qo, &o.kv, &o.pidx};
      const int64_t field = rng.uni(0, 3);
      if (field == 3) v.num_pages = value;
      else if (!arrays[field]->empty()) (*arrays[field])[rng.uni(0, (int64_t)arrays[field]->size() - 1)] = value;
    }
    broken.push_back(plan_hash(c.plan, v, random_options(rng)));
  }
  out.group(c.name, "split", split);
  out.group(c.name, "broken", broken);
  out.group(c.name, "ragged", ragged);
  out.group(c.name, "graph", graph);
  out.group(c.name, "serving256", serving);
}

podgen_kernel_info info_of(const pod::KernelShape& k) {
  podgen_kernel_info i;
  memset(&i, 0, sizeof i);
  i.num_heads_q = k.heads_q;
  i.num_heads_kv = k.heads_kv;
  i.head_dim = k.head_dim;
  i.prefill_tile_q = k.tile_q[0];
  i.prefill_tile_kv = k.tile_kv[0];
  i.decode_tile_q = k.tile_q[1];
  i.decode_tile_kv = k.tile_kv[1];
  i.ctas_per_sm = k.ctas_per_sm;
  return i;
}

// The family plan of pod_<family>_plan (family/abi.inl) without its C glue: the choice over the
// llama3_8b_auto members (a random model, or none; sometimes forced; live or bucket load; with
// or without error bounds for the serial margin), then the chosen member's plan.
void family_group(Rng& rng, int batches, const Output& out) {
  const std::vector<Config> members = llama3_8b_auto_members();
  const int n = (int)members.size();
  podgen_kernel_info infos[PODGEN_FAMILY_MAX_MEMBERS];
  for (int m = 0; m < n; ++m) infos[m] = info_of(members[m].k);
  std::vector<uint64_t> hashes;
  for (int i = 0; i < batches; ++i) {
    const bool serving = i % 4 == 0;
    const Limits L = random_limits(rng);
    const Lengths b = serving ? serving_lengths(rng) : random_lengths(rng, L);
    Owned o = with_pages(rng, members[0].k, b.kv, rng.uni(0, 1));
    const podgen_batch batch = split_view(members[0].k, b, o);
    podgen_plan_options opt = serving ? random_options(rng) : bucket_options(rng, L);
    if (serving || rng.uni(0, 1)) opt.graph_mode = 0;
    std::vector<double> model((size_t)n * pod::family::kModes * PODGEN_COST_FEATURES);
    for (double& w : model) w = (double)rng.uni(-1000000, 1000000) / 1000.0;
    if (rng.uni(0, 5) == 0) model[(size_t)rng.uni(0, (int64_t)model.size() - 1)] = NAN;
    std::vector<double> bounds((size_t)n * pod::family::kModes * 2);
    for (double& b : bounds) b = (double)rng.uni(-500, 500) / 1000.0;
    const bool with_model = rng.uni(0, 4) != 0, with_bounds = rng.uni(0, 1);
    const int force_member = rng.uni(0, 3) == 0 ? (int)rng.uni(0, n - 1) : -1;
    const int force_mode = rng.uni(0, 3) == 0 ? (int)rng.uni(PODGEN_MODE_FUSED, PODGEN_MODE_SERIAL) : PODGEN_MODE_CHOOSE;

    podgen_family_plan plan;
    memset(&plan, 0, sizeof plan);
    const pod::family::Load load =
        opt.graph_mode ? pod::family::bucket_load(opt) : pod::family::live_load(batch);
    pod::family::choose(infos, n, load, opt.num_sms > 0 ? opt.num_sms : pod::planner::kDefaultNumSms,
                        {force_member, force_mode, with_model ? model.data() : nullptr}, &plan);
    pod::family::apply_serial_margin(with_bounds ? bounds.data() : nullptr, &plan);
    Hash h;
    h.add(&plan, sizeof plan);
    h.add(plan_hash(members[plan.member].plan, batch, opt));
    hashes.push_back(h.h);
  }
  out.group("llama3_8b_auto", "family", hashes);
}

}  // namespace

int main(int argc, char** argv) {
  const Output out{argc > 1 && strcmp(argv[1], "--each") == 0};
  Rng rng{20261206};
  for (const Config& c : configs()) shape_groups(c, rng, 200, out);
  for (const Config& c : llama3_8b_auto_members()) shape_groups(c, rng, 200, out);
  family_group(rng, 400, out);
  return 0;
}
