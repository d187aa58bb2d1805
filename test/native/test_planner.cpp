// Host-only tests of templates/pod/planner.h: invariants over thousands of random batches for
// several kernel shapes, graph-mode layout stability, and every bad-batch error path.
// Built and run by test/planner.test.ts (g++ with ASan/UBSan, against a rendered pod_attention.h).
#include "pod_attention.h"
#include "pod/planner.h"
#include "kernel_shapes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <map>
#include <random>
#include <set>
#include <tuple>
#include <string>
#include <vector>

using pod::KernelShape;
using pod::PodDeviceHeader;
using pod::PodWorkItem;

// ---------------------------------------------------------------------------------------------
static int g_failures = 0;
static long long g_checks = 0;
#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    ++g_checks;                                                                 \
    if (!(cond)) {                                                              \
      if (++g_failures <= 30) {                                                 \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
        fprintf(stderr, __VA_ARGS__);                                           \
        fprintf(stderr, "\n");                                                  \
      }                                                                         \
    }                                                                           \
  } while (0)

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A batch with owned arrays.
struct HostBatch {
  std::vector<int32_t> qo, kv, pip, pidx;
  int32_t P = 0, D = 0, num_pages = 0;
  podgen_batch view(const KernelShape& k) const {
    podgen_batch b;
    memset(&b, 0, sizeof b);
    b.num_prefills = P;
    b.num_decodes = D;
    b.qo_indptr = qo.empty() ? nullptr : qo.data();
    b.kv_lens = kv.empty() ? nullptr : kv.data();
    b.page_indptr = pip.empty() ? nullptr : pip.data();
    b.page_indices = pidx.empty() ? nullptr : pidx.data();
    b.num_pages = num_pages;
    b.num_heads_q = k.heads_q;
    b.num_heads_kv = k.heads_kv;
    b.head_dim = k.head_dim;
    return b;
  }
  int64_t tokens() const { return P > 0 ? qo[P] : 0; }
};

struct Limits {
  int64_t max_prefills, max_decodes, max_prefill_tokens, max_kv_len;
};

using Rng = std::mt19937_64;
static int64_t uni(Rng& rng, int64_t lo, int64_t hi) {  // inclusive; lo if hi < lo
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
// Mostly small, sometimes anywhere up to hi (lengths in serving are skewed).
static int64_t skewed(Rng& rng, int64_t lo, int64_t hi) {
  switch (uni(rng, 0, 3)) {
    case 0: return uni(rng, lo, std::min(hi, lo + 16));
    case 1: return uni(rng, lo, std::min(hi, lo + 300));
    default: return uni(rng, lo, hi);
  }
}

// A valid random batch within the limits.
static HostBatch random_batch(Rng& rng, const KernelShape& k, const Limits& L) {
  HostBatch b;
  b.P = (int32_t)std::min(uni(rng, 0, L.max_prefills), L.max_prefill_tokens);
  b.D = (int32_t)uni(rng, 0, L.max_decodes);
  b.qo.assign(1, 0);
  int64_t left = uni(rng, b.P, L.max_prefill_tokens);
  for (int r = 0; r < b.P; ++r) {
    const int64_t reserve = b.P - r - 1;  // one token for each later prefill
    const int64_t q = skewed(rng, 1, std::min(L.max_kv_len, left - reserve));
    left -= q;
    b.qo.push_back(b.qo.back() + (int32_t)q);
    b.kv.push_back((int32_t)(uni(rng, 0, 3) == 0 ? q : skewed(rng, q, L.max_kv_len)));
  }
  if (b.P == 0 && uni(rng, 0, 1)) b.qo.clear();  // qo_indptr may be NULL without prefills
  for (int d = 0; d < b.D; ++d) b.kv.push_back((int32_t)(uni(rng, 0, 5) == 0 ? 1 : skewed(rng, 1, L.max_kv_len)));
  const int n = b.P + b.D;
  if (k.paged) {
    int64_t need = 0;
    for (int r = 0; r < n; ++r) need += cdiv(b.kv[r], k.page_size);
    b.num_pages = (int32_t)(need + uni(rng, 0, 50));
    std::vector<int32_t> perm(b.num_pages);
    for (int i = 0; i < b.num_pages; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    const int32_t base = (int32_t)uni(rng, 0, 3);  // page_indptr[0] need not be 0
    b.pidx.assign(base, -7);                      // garbage before the first page: never read
    b.pip.push_back(base);
    for (int r = 0; r < n; ++r) {
      const int64_t pages = cdiv(b.kv[r], k.page_size);
      for (int64_t i = 0; i < pages; ++i) b.pidx.push_back(perm[b.pidx.size() - base]);
      b.pip.push_back((int32_t)(b.pip.back() + pages));
    }
  } else {
    int64_t row = 0;
    for (int r = 0; r < n; ++r) {
      row += uni(rng, 0, 3) == 0 ? uni(rng, 0, 100) : 0;
      b.pip.push_back((int32_t)row);
      row += b.kv[r];
    }
    b.pip.push_back((int32_t)row);
    b.num_pages = (int32_t)(row + uni(rng, 0, 10));
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Invariant checks on a successful plan and its staging image.
struct Region {
  uint64_t begin, end;  // [begin, end) bytes reserved
};

// The kernel's items 0 .. count-1 of an op (or its merges) as the kernels read them: item i is
// stored item i / heads_kv for KV head i % heads_kv (pod_item_for_head); stored items have head 0.
static std::vector<PodWorkItem> kernel_items(const std::vector<unsigned char>& staging, uint64_t offset,
                                             int32_t count, int32_t heads_kv, const char* tag) {
  std::vector<PodWorkItem> items;
  for (int32_t i = 0; i < count; ++i) {
    PodWorkItem stored;
    memcpy(&stored, staging.data() + offset + (uint64_t)(i / heads_kv) * sizeof stored, sizeof stored);
    CHECK(stored.kv_head == 0, "%s stored item %d has KV head %d", tag, i / heads_kv, stored.kv_head);
    items.push_back(pod::pod_item_for_head(stored, i % heads_kv));
  }
  return items;
}

// One request as a plan must schedule it: its part (op), lengths and first query row.
struct ExpectedRequest {
  int op;
  int64_t q_len, kv_len;
  int32_t q_token_base;
};

// The checks every plan passes, split or ragged: the layout, the header, tickets and grids, and
// that the items and merges cover each request's tiles in its part exactly once.
static void check_work(const Config& c, const std::vector<ExpectedRequest>& requests,
                       const podgen_plan_options& opt, const podgen_plan& p,
                       const std::vector<unsigned char>& staging, const char* tag) {
  const KernelShape& k = c.k;
  const int64_t group = k.group(), V = k.virtual_ctas;
  const int num_sms = opt.num_sms ? opt.num_sms : 132;
  const int64_t slots = (int64_t)num_sms * k.ctas_per_sm;
  const int64_t n = (int64_t)requests.size();

  CHECK(p.abi_version == PODGEN_ABI_VERSION, "%s", tag);
  CHECK(p.graph_mode == opt.graph_mode, "%s", tag);
  int64_t part_requests[2] = {0, 0}, prefill_tokens = 0;
  for (const ExpectedRequest& r : requests) {
    ++part_requests[r.op];
    if (r.op == 0) prefill_tokens += r.q_len;
  }
  CHECK(p.num_prefills == part_requests[0] && p.num_decodes == part_requests[1], "%s parts", tag);
  CHECK(p.total_prefill_tokens == prefill_tokens, "%s", tag);
  CHECK(p.num_requests == n, "%s", tag);
  CHECK(p.num_sms == num_sms, "%s", tag);
  CHECK(p.debug_count_tiles == opt.debug_count_tiles, "%s", tag);

  // Layout: header at 0, regions in order, 256-aligned, non-overlapping.
  const uint64_t offs[] = {p.items_offset[0],      p.items_offset[1],        p.merges_offset[0],
                           p.merges_offset[1],     p.page_base_offset,       p.partial_o_offset[0],
                           p.partial_o_offset[1],  p.partial_lse_offset[0],  p.partial_lse_offset[1],
                           p.workspace_bytes};
  CHECK(offs[0] >= sizeof(PodDeviceHeader), "%s", tag);
  for (int i = 0; i < 10; ++i) CHECK(offs[i] % 256 == 0, "%s offset %d=%" PRIu64, tag, i, offs[i]);
  for (int i = 0; i + 1 < 10; ++i) CHECK(offs[i] <= offs[i + 1], "%s offsets %d", tag, i);
  CHECK(p.host_bytes > p.page_base_offset - 256 && p.host_bytes <= p.partial_o_offset[0], "%s host_bytes", tag);
  CHECK(p.host_bytes >= p.page_base_offset + (uint64_t)n * sizeof(int32_t), "%s", tag);
  const Region items_r[2] = {{offs[0], offs[1]}, {offs[1], offs[2]}};
  const Region merges_r[2] = {{offs[2], offs[3]}, {offs[3], offs[4]}};
  const Region po_r[2] = {{offs[5], offs[6]}, {offs[6], offs[7]}};
  const Region pl_r[2] = {{offs[7], offs[8]}, {offs[8], offs[9]}};
  CHECK(staging.size() >= p.host_bytes, "%s", tag);

  PodDeviceHeader h;
  memcpy(&h, staging.data(), sizeof h);
  for (int op = 0; op < 2; ++op) {
    CHECK(h.num_items[op] == p.num_items[op] && h.num_merges[op] == p.num_merges[op] &&
              h.num_tickets[op] == p.num_tickets[op] && h.ratio[op] == p.ratio[op],
          "%s header op %d", tag, op);
    CHECK(h.ticket[op] == 0 && h.tiles_done[op] == 0, "%s counters", tag);
  }
  CHECK(h.ctas_done == 0 && h.count_tiles == opt.debug_count_tiles, "%s", tag);
  bool slots_zero = true;
  for (int i = 0; i < POD_MAX_SMS; ++i) slots_zero &= h.sm_slot[i] == 0;
  CHECK(slots_zero, "%s sm_slot", tag);

  // Tickets, ratio and grids.
  CHECK(p.num_tickets[0] == p.num_items[0], "%s", tag);
  CHECK(p.num_tickets[1] == cdiv(p.num_items[1], V), "%s", tag);
  for (int op = 0; op < 2; ++op) {
    if (p.num_tickets[op] == 0) CHECK(p.ratio[op] == 0, "%s ratio %d", tag, op);
    else CHECK(p.ratio[op] >= 1, "%s ratio %d", tag, op);
  }
  CHECK(p.ratio[0] + p.ratio[1] <= 16, "%s", tag);
  if (!opt.graph_mode) {
    CHECK(p.grid_prefill == p.num_items[0], "%s", tag);
    CHECK(p.grid_decode == cdiv(p.num_items[1], V), "%s", tag);
    CHECK(p.grid_fused == p.num_tickets[0] + p.num_tickets[1], "%s", tag);
    // One CTA a merge item (at most 4 a SM) for each of the item's row chunks.
    for (int op = 0; op < 2; ++op)
      CHECK(p.grid_merge[op] == std::min<int64_t>(p.num_merges[op], 4LL * num_sms) * pod::pod_combine_chunks(k.tile_q[op]),
            "%s grid_merge %d", tag, op);
  } else {
    CHECK(p.grid_prefill >= p.num_items[0], "%s", tag);
    CHECK((int64_t)p.grid_decode * V >= p.num_items[1], "%s", tag);
    CHECK(p.grid_fused == p.grid_prefill + p.grid_decode, "%s", tag);
    for (int op = 0; op < 2; ++op) {
      CHECK(p.grid_merge[op] <= 4LL * num_sms * pod::pod_combine_chunks(k.tile_q[op]), "%s", tag);
      if (p.num_merges[op] > 0) CHECK(p.grid_merge[op] >= 1, "%s", tag);
    }
  }
  // Capacities implied by the layout.
  for (int op = 0; op < 2; ++op) {
    // Items and merges are stored one for all KV heads: the counts are whole multiples of them.
    CHECK(p.num_items[op] % k.heads_kv == 0 && p.num_merges[op] % k.heads_kv == 0, "%s op %d counts", tag, op);
    CHECK(items_r[op].begin + (uint64_t)(p.num_items[op] / k.heads_kv) * sizeof(PodWorkItem) <= items_r[op].end ||
              p.num_items[op] == 0,
          "%s items region op %d", tag, op);
    CHECK(merges_r[op].begin + (uint64_t)(p.num_merges[op] / k.heads_kv) * sizeof(PodWorkItem) <= merges_r[op].end ||
              p.num_merges[op] == 0,
          "%s merges region op %d", tag, op);
    if (opt.graph_mode) {
      // Grids cover the capacity of the regions.
      const uint64_t cap_items = (items_r[op].end - items_r[op].begin) / sizeof(PodWorkItem) * k.heads_kv;
      if (op == 0) CHECK((uint64_t)p.grid_prefill <= cap_items, "%s", tag);
      else CHECK((uint64_t)(p.grid_decode - 1) * V < cap_items || p.grid_decode == 0, "%s", tag);
    }
  }

  // Expected tiles: (op, request, kv_head, row_begin) -> live keys [begin, causal end).
  struct TileKey {
    int op, request, head, row;
    bool operator<(const TileKey& o) const {
      return std::tie(op, request, head, row) < std::tie(o.op, o.request, o.head, o.row);
    }
  };
  std::map<TileKey, std::pair<int32_t, int32_t>> expected;
  int64_t tiles_per_op[2] = {0, 0};
  for (int r = 0; r < (int)n; ++r) {
    const int op = requests[r].op;
    const int64_t q_len = requests[r].q_len, kv = requests[r].kv_len;
    const int64_t rows = q_len * group, tq = k.tile_q[op];
    for (int hh = 0; hh < k.heads_kv; ++hh)
      for (int64_t rb = 0; rb < rows; rb += tq) {
        // Brute force: the largest key any row of the tile may see, plus one, and the first key any
        // row sees (sliding window), down to its KV tile (counted from key 0).
        int64_t end = 0, first = INT64_MAX;
        for (int64_t row = rb; row < std::min(rows, rb + tq); ++row) {
          end = std::max(end, kv - q_len + row / group + 1);
          first = std::min(first, k.window > 0 ? std::max<int64_t>(0, kv - q_len + row / group + 1 - k.window) : 0);
        }
        const int64_t tkv = k.tile_kv[op];
        expected[{op, r, hh, (int)rb}] = {(int32_t)(first / tkv * tkv), (int32_t)end};
        ++tiles_per_op[op];
      }
  }

  // Read the items back and group them by tile.
  std::map<TileKey, std::vector<PodWorkItem>> got;
  for (int op = 0; op < 2; ++op) {
    const int64_t tq = k.tile_q[op], tkv = k.tile_kv[op];
    const std::vector<PodWorkItem> items = kernel_items(staging, p.items_offset[op], p.num_items[op], k.heads_kv, tag);
    int64_t prev_len = INT64_MAX;
    int32_t max_splits = 0;
    for (const PodWorkItem& it : items) {
      const int64_t len = it.kv_end - it.kv_begin;
      CHECK(len <= prev_len, "%s op %d not heavy-first", tag, op);
      prev_len = len;
      CHECK(it.request >= 0 && it.request < n, "%s request %d", tag, it.request);
      if (it.request < 0 || it.request >= n) continue;
      const ExpectedRequest& r = requests[it.request];
      CHECK(r.op == op, "%s request %d in op %d", tag, it.request, op);
      CHECK(it.kv_head >= 0 && it.kv_head < k.heads_kv, "%s", tag);
      CHECK(it.kv_len == r.kv_len && it.q_len == r.q_len && it.q_token_base == r.q_token_base,
            "%s request %d lengths", tag, it.request);
      CHECK(it.kv_begin % tkv == 0, "%s kv_begin %d not a multiple of %" PRId64, tag, it.kv_begin, tkv);
      CHECK(it.kv_end > it.kv_begin, "%s empty split [%d, %d)", tag, it.kv_begin, it.kv_end);
      CHECK(it.num_splits >= 1 && it.split >= 0 && it.split < it.num_splits, "%s", tag);
      CHECK(it.head_partial_rows == (it.num_splits > 1 ? it.num_splits * tq : 0), "%s head_partial_rows", tag);
      const int64_t cap_spec = k.max_splits[op] > 0 ? k.max_splits[op] : INT64_MAX;
      const int64_t cap_opt = (op == 0 ? opt.prefill_max_splits : opt.decode_max_splits) > 0
                                  ? (op == 0 ? opt.prefill_max_splits : opt.decode_max_splits)
                                  : INT64_MAX;
      CHECK(it.num_splits <= cap_spec && it.num_splits <= cap_opt, "%s op %d splits %d over cap",
            tag, op, it.num_splits);
      if (it.num_splits == 1) CHECK(it.partial_row == -1, "%s", tag);
      else CHECK(it.partial_row >= 0 && it.partial_row % 1 == 0, "%s", tag);
      max_splits = std::max(max_splits, it.num_splits);
      got[{op, it.request, it.kv_head, it.row_begin}].push_back(it);
    }
    CHECK(p.max_splits[op] == max_splits, "%s max_splits op %d", tag, op);
  }
  CHECK(got.size() == expected.size(), "%s tiles got %zu expected %zu", tag, got.size(), expected.size());

  // Every tile exactly once; its splits partition its live keys [begin, causal end).
  std::map<TileKey, PodWorkItem> split_tiles;
  std::vector<std::pair<int64_t, int64_t>> partial_ranges[2];
  for (const auto& e : expected) {
    auto it = got.find(e.first);
    CHECK(it != got.end(), "%s missing tile op %d req %d head %d row %d", tag, e.first.op,
          e.first.request, e.first.head, e.first.row);
    if (it == got.end()) continue;
    std::vector<PodWorkItem> v = it->second;
    std::sort(v.begin(), v.end(), [](const PodWorkItem& a, const PodWorkItem& b) { return a.split < b.split; });
    const int32_t s = v[0].num_splits;
    CHECK((int32_t)v.size() == s, "%s tile has %zu items for %d splits", tag, v.size(), s);
    int32_t at = e.second.first;
    for (size_t i = 0; i < v.size(); ++i) {
      CHECK(v[i].split == (int32_t)i && v[i].num_splits == s && v[i].partial_row == v[0].partial_row,
            "%s split fields", tag);
      CHECK(v[i].kv_begin == at, "%s gap/overlap at split %zu: begin %d expected %d", tag, i, v[i].kv_begin, at);
      at = v[i].kv_end;
    }
    CHECK(at == e.second.second, "%s tile end %d expected causal end %d", tag, at, e.second.second);
    if (s > 1) {
      split_tiles[e.first] = v[0];
      partial_ranges[e.first.op].push_back({v[0].partial_row, v[0].partial_row + (int64_t)s * k.tile_q[e.first.op]});
    }
  }

  // Merges: one per split tile, none for the others.
  for (int op = 0; op < 2; ++op) {
    const std::vector<PodWorkItem> merges = kernel_items(staging, p.merges_offset[op], p.num_merges[op], k.heads_kv, tag);
    std::set<TileKey> seen;
    for (const PodWorkItem& m : merges) {
      const TileKey key{op, m.request, m.kv_head, m.row_begin};
      auto st = split_tiles.find(key);
      CHECK(st != split_tiles.end(), "%s merge for an unsplit tile", tag);
      CHECK(seen.insert(key).second, "%s duplicate merge", tag);
      if (st == split_tiles.end()) continue;
      CHECK(m.split == 0 && m.num_splits == st->second.num_splits &&
                m.partial_row == st->second.partial_row && m.q_len == st->second.q_len &&
                m.kv_len == st->second.kv_len && m.q_token_base == st->second.q_token_base,
            "%s merge fields", tag);
      CHECK(m.kv_begin == expected[key].first && m.kv_end == expected[key].second, "%s merge range", tag);
    }
    int64_t split_count = 0;
    for (const auto& st : split_tiles) split_count += st.first.op == op;
    CHECK((int64_t)seen.size() == split_count, "%s merges %zu split tiles %" PRId64, tag, seen.size(), split_count);

    // Partial rows: disjoint and inside both partial regions.
    auto& pr = partial_ranges[op];
    std::sort(pr.begin(), pr.end());
    for (size_t i = 0; i + 1 < pr.size(); ++i) CHECK(pr[i].second <= pr[i + 1].first, "%s partial overlap", tag);
    const int64_t rows_o = (int64_t)((po_r[op].end - po_r[op].begin) / ((uint64_t)k.head_dim * 4));
    const int64_t rows_l = (int64_t)((pl_r[op].end - pl_r[op].begin) / 4);
    if (!pr.empty()) {
      CHECK(pr.back().second <= rows_o && pr.back().second <= rows_l,
            "%s partial rows %" PRId64 " > capacity %" PRId64 "/%" PRId64, tag, pr.back().second, rows_o, rows_l);
    }
  }

  // Split limits: prefill items within the wave cap (unless the tiles alone exceed it); decode
  // items near the occupancy target.
  if (k.prefill_max_waves > 0) {
    const int64_t cap = k.prefill_max_waves * slots;
    CHECK(p.num_items[0] <= std::max(tiles_per_op[0], cap), "%s prefill items %d > %" PRId64 " waves cap",
          tag, p.num_items[0], cap);
  }
  CHECK(p.num_items[1] <= std::max(tiles_per_op[1], slots * V), "%s decode items %d", tag, p.num_items[1]);
  if (p.num_items[0] > tiles_per_op[0] && k.prefill_max_waves > 0)
    CHECK(p.num_items[0] <= k.prefill_max_waves * slots, "%s", tag);
}

// A split batch's plan: check_work over prefills then decodes, and what a run's tensors must hold
// and the page bases (CSR: page_indptr[r]).
static void check_plan(const Config& c, const HostBatch& hb, const podgen_plan_options& opt,
                       const podgen_plan& p, const std::vector<unsigned char>& staging,
                       const char* tag) {
  const KernelShape& k = c.k;
  const int64_t n = hb.P + hb.D;
  std::vector<ExpectedRequest> requests;
  for (int r = 0; r < hb.P; ++r) requests.push_back({0, hb.qo[r + 1] - hb.qo[r], hb.kv[r], hb.qo[r]});
  for (int d = 0; d < hb.D; ++d) requests.push_back({1, 1, hb.kv[hb.P + d], d});
  check_work(c, requests, opt, p, staging, tag);
  CHECK(p.ragged == 0, "%s", tag);
  if (opt.graph_mode) {
    CHECK(p.q_rows[0] == opt.max_prefill_tokens && p.q_rows[1] == opt.max_decodes, "%s q_rows", tag);
    CHECK(p.cache_pages == opt.max_num_pages, "%s", tag);
    CHECK(p.page_entries == (k.paged ? (uint64_t)opt.max_page_entries : 0), "%s", tag);
  } else {
    CHECK(p.q_rows[0] == hb.tokens() && p.q_rows[1] == hb.D, "%s q_rows", tag);
    CHECK(p.cache_pages == hb.num_pages, "%s", tag);
    CHECK(p.page_entries == (k.paged && n > 0 ? (uint64_t)hb.pip[n] : 0), "%s", tag);
  }
  for (int64_t r = 0; r < n; ++r) {
    int32_t base;
    memcpy(&base, staging.data() + p.page_base_offset + r * sizeof(int32_t), sizeof base);
    CHECK(base == hb.pip[r], "%s page base %" PRId64 ": %d expected %d", tag, r, base, hb.pip[r]);
  }
}

// Plans twice (sizes, then staging) and checks determinism and the two-phase protocol.
static int plan_batch(const Config& c, const HostBatch& hb, const podgen_plan_options& opt,
                      podgen_plan* p, std::vector<unsigned char>* staging, std::string* err) {
  const podgen_batch b = hb.view(c.k);
  podgen_plan sizes;
  int st = c.plan(b, opt, nullptr, 0, &sizes, err);
  if (st != PODGEN_OK) return st;
  staging->assign(sizes.host_bytes + 64, 0xAB);
  if (sizes.host_bytes > 0) {
    podgen_plan small;
    std::string e2;
    const int st2 = c.plan(b, opt, staging->data(), sizes.host_bytes - 1, &small, &e2);
    CHECK(st2 == PODGEN_ERR_WORKSPACE_TOO_SMALL && e2.find("host_staging_bytes") != std::string::npos,
          "too-small staging: %d %s", st2, e2.c_str());
    CHECK(small.host_bytes == sizes.host_bytes && small.workspace_bytes == sizes.workspace_bytes &&
              small.abi_version == 0,
          "too-small staging plan");
  }
  st = c.plan(b, opt, staging->data(), staging->size(), p, err);
  CHECK(st == PODGEN_OK, "second plan failed: %s", err->c_str());
  CHECK(memcmp(&sizes, p, sizeof sizes) == 0, "plan with and without staging differ");
  for (size_t i = p->host_bytes; i < staging->size(); ++i)
    CHECK((*staging)[i] == 0xAB, "staging written past host_bytes");
  // Determinism: the same batch gives the same bytes.
  std::vector<unsigned char> again(staging->size(), 0xAB);
  podgen_plan p2;
  std::string e3;
  c.plan(b, opt, again.data(), again.size(), &p2, &e3);
  CHECK(memcmp(&p2, p, sizeof p2) == 0 && again == *staging, "plan not deterministic");
  return st;
}

static podgen_plan_options random_options(Rng& rng) {
  podgen_plan_options o;
  memset(&o, 0, sizeof o);
  const int sms[] = {0, 1, 3, 8, 108, 132, 132, 132, 256};
  o.num_sms = sms[uni(rng, 0, 8)];
  o.prefill_max_splits = uni(rng, 0, 3) == 0 ? (int)uni(rng, 1, 5) : 0;
  o.decode_max_splits = uni(rng, 0, 3) == 0 ? (int)uni(rng, 1, 5) : 0;
  o.debug_count_tiles = (int)uni(rng, 0, 1);
  return o;
}

static Limits random_limits(Rng& rng) {
  const int64_t P[] = {0, 1, 2, 4, 8, 16}, D[] = {0, 1, 7, 32, 128, 300};
  const int64_t T[] = {0, 1, 100, 2048, 8192}, KV[] = {1, 17, 1000, 8192, 32768};
  return {P[uni(rng, 0, 5)], D[uni(rng, 0, 5)], T[uni(rng, 0, 4)], KV[uni(rng, 0, 4)]};
}

// ---------------------------------------------------------------------------------------------
static void random_tests(const Config& c, Rng& rng, int batches, long long* planned) {
  for (int i = 0; i < batches; ++i) {
    const Limits L = random_limits(rng);
    const HostBatch hb = random_batch(rng, c.k, L);
    podgen_plan_options opt = random_options(rng);
    podgen_plan p;
    std::vector<unsigned char> staging;
    std::string err;
    char tag[160];
    snprintf(tag, sizeof tag, "[%s #%d P=%d D=%d T=%" PRId64 "]", c.name, i, hb.P, hb.D, hb.tokens());
    const int st = plan_batch(c, hb, opt, &p, &staging, &err);
    CHECK(st == PODGEN_OK, "%s plan failed %d: %s", tag, st, err.c_str());
    if (st == PODGEN_OK) check_plan(c, hb, opt, p, staging, tag), ++*planned;
  }
}

// Graph mode: one bucket, many batches: the layout and grids must not move, and every batch's
// work must fit the capacities (check_plan's region checks).
static void graph_tests(const Config& c, Rng& rng, int buckets, int per_bucket, long long* planned) {
  for (int i = 0; i < buckets; ++i) {
    const Limits L = random_limits(rng);
    podgen_plan_options opt = random_options(rng);
    opt.graph_mode = 1;
    opt.max_prefills = (int32_t)L.max_prefills;
    opt.max_decodes = (int32_t)L.max_decodes;
    opt.max_prefill_tokens = (int32_t)L.max_prefill_tokens;
    opt.max_kv_len = (int32_t)L.max_kv_len;
    opt.max_num_pages = INT32_MAX;
    opt.max_page_entries = INT32_MAX;
    podgen_plan first;
    bool have_first = false;
    for (int j = 0; j < per_bucket; ++j) {
      HostBatch hb = random_batch(rng, c.k, L);
      if (j == 0) hb = random_batch(rng, c.k, {0, 0, 0, 1});  // an empty batch fits every bucket
      if (j == 1) {  // the fullest batch of the bucket: max counts, tokens and kv lengths
        Limits full = L;
        hb = random_batch(rng, c.k, full);
      }
      podgen_plan p;
      std::vector<unsigned char> staging;
      std::string err;
      char tag[200];
      snprintf(tag, sizeof tag, "[graph %s bucket %d (%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ") #%d]",
               c.name, i, L.max_prefills, L.max_decodes, L.max_prefill_tokens, L.max_kv_len, j);
      const int st = plan_batch(c, hb, opt, &p, &staging, &err);
      CHECK(st == PODGEN_OK, "%s plan failed %d: %s", tag, st, err.c_str());
      if (st != PODGEN_OK) continue;
      check_plan(c, hb, opt, p, staging, tag);
      ++*planned;
      if (!have_first) {
        first = p;
        have_first = true;
        continue;
      }
      CHECK(p.grid_fused == first.grid_fused && p.grid_prefill == first.grid_prefill &&
                p.grid_decode == first.grid_decode && p.grid_merge[0] == first.grid_merge[0] &&
                p.grid_merge[1] == first.grid_merge[1],
            "%s grids moved", tag);
      CHECK(memcmp(p.items_offset, first.items_offset, sizeof p.items_offset) == 0 &&
                memcmp(p.merges_offset, first.merges_offset, sizeof p.merges_offset) == 0 &&
                memcmp(p.partial_o_offset, first.partial_o_offset, sizeof p.partial_o_offset) == 0 &&
                memcmp(p.partial_lse_offset, first.partial_lse_offset, sizeof p.partial_lse_offset) == 0 &&
                p.page_base_offset == first.page_base_offset && p.host_bytes == first.host_bytes && p.workspace_bytes == first.workspace_bytes,
            "%s layout moved", tag);
    }
  }
}

// A batch that stresses the bucket: every limit reached (as far as the generator allows).
static void graph_full_bucket_tests(const Config& c, long long* planned) {
  const int64_t sms_list[] = {1, 8, 132};
  for (int64_t sms : sms_list)
    for (int64_t P : {1, 3, 8})
      for (int64_t T : {8, 1000, 4096})
        for (int64_t KV : {64, 4096, 32768}) {
          if (T < P) continue;
          HostBatch hb;
          hb.P = (int32_t)P;
          hb.D = 64;
          hb.qo.push_back(0);
          for (int r = 0; r < P; ++r) {
            const int64_t q = std::min<int64_t>(KV, r + 1 < P ? 1 : T - (P - 1));
            hb.qo.push_back(hb.qo.back() + (int32_t)q);
            hb.kv.push_back((int32_t)KV);
          }
          for (int d = 0; d < hb.D; ++d) hb.kv.push_back((int32_t)(d % 2 ? KV : 1));
          int64_t row = 0;
          const int n = hb.P + hb.D;
          if (c.k.paged) {
            hb.pip.push_back(0);
            for (int r = 0; r < n; ++r) {
              const int64_t pages = cdiv(hb.kv[r], c.k.page_size);
              for (int64_t i = 0; i < pages; ++i) hb.pidx.push_back((int32_t)(hb.pidx.size()));
              hb.pip.push_back((int32_t)(hb.pip.back() + pages));
            }
            hb.num_pages = (int32_t)hb.pidx.size();
          } else {
            for (int r = 0; r < n; ++r) hb.pip.push_back((int32_t)row), row += hb.kv[r];
            hb.pip.push_back((int32_t)row);
            hb.num_pages = (int32_t)row;
          }
          podgen_plan_options opt;
          memset(&opt, 0, sizeof opt);
          opt.num_sms = (int32_t)sms;
          opt.graph_mode = 1;
          opt.max_prefills = (int32_t)P;
          opt.max_decodes = hb.D;
          opt.max_prefill_tokens = (int32_t)hb.tokens();
          opt.max_kv_len = (int32_t)KV;
          opt.max_num_pages = hb.num_pages;
          opt.max_page_entries = (int32_t)hb.pidx.size();
          podgen_plan p;
          std::vector<unsigned char> staging;
          std::string err;
          char tag[160];
          snprintf(tag, sizeof tag, "[full bucket %s sms=%" PRId64 " P=%" PRId64 " T=%" PRId64 " KV=%" PRId64 "]",
                   c.name, sms, P, T, KV);
          const int st = plan_batch(c, hb, opt, &p, &staging, &err);
          CHECK(st == PODGEN_OK, "%s %s", tag, err.c_str());
          if (st == PODGEN_OK) check_plan(c, hb, opt, p, staging, tag), ++*planned;
        }
}

// ---------------------------------------------------------------------------------------------
// Error paths: each mutation of a valid batch must fail with the status and a message naming
// the field.
struct ErrorCase {
  const char* name;
  int status;
  const char* needle;  // substring the message must contain
};

static long long g_error_cases = 0;

static void expect_error(const Config& c, const podgen_batch& b, const podgen_plan_options& o,
                         int status, const char* needle, const char* what) {
  podgen_plan p;
  memset(&p, 0x5A, sizeof p);
  std::string err;
  std::vector<unsigned char> staging(1 << 20);
  const int st = c.plan(b, o, staging.data(), staging.size(), &p, &err);
  ++g_error_cases;
  CHECK(st == status, "[%s] %s: status %d expected %d (%s)", c.name, what, st, status, err.c_str());
  CHECK(err.find(needle) != std::string::npos, "[%s] %s: message '%s' lacks '%s'", c.name, what,
        err.c_str(), needle);
  CHECK(p.abi_version == 0 && p.grid_fused == 0, "[%s] %s: plan not zeroed", c.name, what);
  // The same status with no staging buffer (the sizing call validates too).
  std::string err2;
  CHECK(c.plan(b, o, nullptr, 0, &p, &err2) == status, "[%s] %s: sizing call", c.name, what);
}

static HostBatch base_batch(const KernelShape& k) {
  // Two prefills (q 7 of kv 20, q 5 of kv 5), two decodes (kv 70, kv 1).
  HostBatch hb;
  hb.P = 2;
  hb.D = 2;
  hb.qo = {0, 7, 12};
  hb.kv = {20, 5, 70, 1};
  if (k.paged) {
    hb.pip.push_back(0);
    for (int r = 0; r < 4; ++r) {
      const int64_t pages = cdiv(hb.kv[r], k.page_size);
      for (int64_t i = 0; i < pages; ++i) hb.pidx.push_back((int32_t)hb.pidx.size());
      hb.pip.push_back((int32_t)(hb.pip.back() + pages));
    }
    hb.num_pages = (int32_t)hb.pidx.size();
  } else {
    hb.pip = {0, 20, 25, 95, 96};
    hb.num_pages = 96;
  }
  return hb;
}

static void error_tests(const Config& c) {
  const KernelShape& k = c.k;
  podgen_plan_options o;
  memset(&o, 0, sizeof o);
  const HostBatch base = base_batch(k);
  {
    podgen_plan p;
    std::vector<unsigned char> st;
    std::string e;
    CHECK(plan_batch(c, base, o, &p, &st, &e) == PODGEN_OK, "[%s] base batch: %s", c.name, e.c_str());
  }
  const int BAD = PODGEN_ERR_BAD_BATCH, INV = PODGEN_ERR_INVALID_ARGUMENT;
  auto mutate = [&](const char* what, int status, const char* needle, auto fn) {
    HostBatch hb = base;
    podgen_batch b = hb.view(k);
    podgen_plan_options oo = o;
    fn(hb, b, oo);
    expect_error(c, b, oo, status, needle, what);
  };
  using HB = HostBatch;
  using B = podgen_batch;
  using O = podgen_plan_options;
  mutate("negative prefills", BAD, "num_prefills=-1", [](HB&, B& b, O&) { b.num_prefills = -1; });
  mutate("negative decodes", BAD, "num_decodes=-2", [](HB&, B& b, O&) { b.num_decodes = -2; });
  mutate("heads q", BAD, "num_heads_q=", [&](HB&, B& b, O&) { b.num_heads_q = k.heads_q * 2; });
  mutate("heads q text", BAD, "but kernel was generated for", [&](HB&, B& b, O&) { b.num_heads_q = 3; });
  mutate("heads kv", BAD, "num_heads_kv=", [&](HB&, B& b, O&) { b.num_heads_kv = k.heads_kv + 1; });
  mutate("head dim", BAD, "head_dim=", [&](HB&, B& b, O&) { b.head_dim = 96; });
  mutate("negative pages", BAD, "num_pages=-1", [](HB&, B& b, O&) { b.num_pages = -1; });
  mutate("null qo", INV, "qo_indptr is NULL", [](HB&, B& b, O&) { b.qo_indptr = nullptr; });
  mutate("null kv", INV, "kv_lens is NULL", [](HB&, B& b, O&) { b.kv_lens = nullptr; });
  mutate("null page_indptr", INV, "page_indptr is NULL", [](HB&, B& b, O&) { b.page_indptr = nullptr; });
  if (k.paged)
    mutate("null page_indices", INV, "page_indices is NULL", [](HB&, B& b, O&) { b.page_indices = nullptr; });
  mutate("qo[0]", BAD, "qo_indptr[0]=1", [](HB& h, B&, O&) { h.qo[0] = 1; });
  mutate("qo decreasing", BAD, "qo_indptr not non-decreasing at 2", [](HB& h, B&, O&) { h.qo[2] = 6; });
  mutate("q_len 0", BAD, "prefill 1 has q_len=0", [](HB& h, B&, O&) { h.qo[2] = 7; });
  mutate("kv < q", BAD, "kv_lens[0]=5 < q_len=7 of request 0", [](HB& h, B&, O&) { h.kv[0] = 5; });
  mutate("decode kv 0", BAD, "kv_lens[3]=0 < q_len=1 of request 3", [](HB& h, B&, O&) { h.kv[3] = 0; });
  mutate("decode kv negative", BAD, "kv_lens[2]=-5", [](HB& h, B&, O&) { h.kv[2] = -5; });
  if (k.paged) {
    char needle[160];
    const int64_t need = cdiv(70, k.page_size);
    snprintf(needle, sizeof needle, "request 2 needs %" PRId64 " pages for kv_len=70 at page_size=%d but page_indptr gives %" PRId64,
             need, k.page_size, need - 1);
    mutate("pages short", BAD, needle, [](HB& h, B&, O&) { h.pip[3] -= 1; });
    mutate("kv longer than pages", BAD, "request 2 needs", [&](HB& h, B&, O&) { h.kv[2] = 70 + k.page_size; });
    mutate("page_indptr negative", BAD, "page_indptr[0]=-1 is negative", [](HB& h, B&, O&) { h.pip[0] = -1; });
    const int last = (int)base.pidx.size() - 1;
    char n2[96];
    snprintf(n2, sizeof n2, "page_indices[%d]=%d >= num_pages=%d", last, base.num_pages, base.num_pages);
    mutate("page out of range", BAD, n2, [&](HB& h, B&, O&) { h.pidx[last] = h.num_pages; });
    mutate("page negative", BAD, "page_indices[0]=-3 is negative (page 0 of request 0)", [](HB& h, B&, O&) { h.pidx[0] = -3; });
    mutate("pages past num_pages", BAD, ">= num_pages=", [](HB&, B& b, O&) { b.num_pages -= 1; });
    mutate("stride negative", INV, "block_table_stride=-1 is negative", [](HB&, B& b, O&) { b.block_table_stride = -1; });
    mutate("block table with indptr", INV, "page_indptr is set but block_table_stride=8", [](HB&, B& b, O&) { b.block_table_stride = 8; });
    char n3[160];
    const int64_t need0 = cdiv(20, k.page_size);
    snprintf(n3, sizeof n3, "request 0 needs %" PRId64 " pages for kv_len=20 at page_size=%d but the block table has 1 columns",
             need0, k.page_size);
    if (need0 > 1)
      mutate("block table narrow", BAD, n3, [](HB&, B& b, O&) { b.block_table_stride = 1; b.page_indptr = nullptr; });
    mutate("block table huge", PODGEN_ERR_UNSUPPORTED, "exceeds int32 entries",
           [](HB&, B& b, O&) { b.block_table_stride = 1 << 30; b.page_indptr = nullptr; });
  } else {
    mutate("rows past num_pages", BAD, "request 3 uses KV rows [95, 96) but num_pages=95",
           [](HB&, B& b, O&) { b.num_pages = 95; });
    mutate("rows past num_pages 2", BAD, "request 2 uses KV rows [90, 160)",
           [](HB& h, B&, O&) { h.pip[2] = 90; });
    mutate("contiguous negative", BAD, "page_indptr[1]=-4 is negative", [](HB& h, B&, O&) { h.pip[1] = -4; });
    mutate("contiguous block table", INV, "block_table_stride=4 but the cache is contiguous",
           [](HB&, B& b, O&) { b.block_table_stride = 4; });
  }
  mutate("overflowing rows", PODGEN_ERR_UNSUPPORTED, "packed rows exceed", [](HB& h, B&, O&) {
    h.qo[1] = 1 << 30;
    h.qo[2] = (1 << 30) + 5;
    h.kv[0] = 1 << 30;
  });
  // Options.
  mutate("num_sms negative", INV, "options.num_sms=-1", [](HB&, B&, O& o) { o.num_sms = -1; });
  mutate("num_sms big", INV, "options.num_sms=1000", [](HB&, B&, O& o) { o.num_sms = 1000; });
  mutate("graph_mode 2", INV, "options.graph_mode=2", [](HB&, B&, O& o) { o.graph_mode = 2; });
  mutate("prefill cap", INV, "options.prefill_max_splits=-1", [](HB&, B&, O& o) { o.prefill_max_splits = -1; });
  mutate("decode cap", INV, "options.decode_max_splits=-3", [](HB&, B&, O& o) { o.decode_max_splits = -3; });
  mutate("count tiles", INV, "options.debug_count_tiles=2", [](HB&, B&, O& o) { o.debug_count_tiles = 2; });
  auto bucket = [](O& o) {
    o.graph_mode = 1;
    o.max_prefills = 2;
    o.max_decodes = 2;
    o.max_prefill_tokens = 12;
    o.max_kv_len = 70;
    o.max_num_pages = 1 << 20;
    o.max_page_entries = 1 << 20;
  };
  {  // the base batch exactly fills this bucket
    HostBatch hb = base;
    podgen_plan_options oo = o;
    bucket(oo);
    podgen_plan p;
    std::vector<unsigned char> st;
    std::string e;
    CHECK(plan_batch(c, hb, oo, &p, &st, &e) == PODGEN_OK, "[%s] exact bucket: %s", c.name, e.c_str());
  }
  const int OVER = PODGEN_ERR_BUCKET_EXCEEDED;
  mutate("bucket negative", INV, "options.max_decodes=-1", [&](HB&, B&, O& o) { bucket(o); o.max_decodes = -1; });
  mutate("bucket prefills", OVER, "max_prefills=1", [&](HB&, B&, O& o) { bucket(o); o.max_prefills = 1; });
  mutate("bucket decodes", OVER, "max_decodes=1", [&](HB&, B&, O& o) { bucket(o); o.max_decodes = 1; });
  mutate("bucket tokens", OVER, "max_prefill_tokens=11", [&](HB&, B&, O& o) { bucket(o); o.max_prefill_tokens = 11; });
  mutate("bucket kv", OVER, "kv_lens[2]=70 exceeds the bucket's max_kv_len=69",
         [&](HB&, B&, O& o) { bucket(o); o.max_kv_len = 69; });
  mutate("bucket pages", OVER, "exceeds the bucket's max_num_pages=3",
         [&](HB&, B&, O& o) { bucket(o); o.max_num_pages = 3; });
  if (k.paged)
    mutate("bucket page entries", OVER, "over the bucket's max_page_entries=2",
           [&](HB&, B&, O& o) { bucket(o); o.max_page_entries = 2; });
  mutate("bucket negative pages", INV, "options.max_num_pages=-1", [&](HB&, B&, O& o) { bucket(o); o.max_num_pages = -1; });
  mutate("bucket too large", PODGEN_ERR_UNSUPPORTED, "graph-mode bucket too large", [&](HB&, B&, O& o) {
    bucket(o);
    o.max_prefills = 1 << 30;
    o.max_prefill_tokens = 1 << 30;
    o.max_decodes = 1 << 30;
  });
  // Bad batch takes precedence over the bucket.
  mutate("bad before bucket", BAD, "kv_lens[0]=5", [&](HB& h, B&, O& o) { bucket(o); o.max_prefills = 0; h.kv[0] = 5; });
}

// A few targeted expectations about the heuristic itself.
static void heuristic_tests(const Config& c) {
  const KernelShape& k = c.k;
  podgen_plan_options o;
  memset(&o, 0, sizeof o);
  auto decode_batch = [&](int D, int kv) {
    HostBatch hb;
    hb.D = D;
    for (int d = 0; d < D; ++d) hb.kv.push_back(kv);
    int64_t row = 0;
    hb.pip.push_back(0);
    for (int r = 0; r < D; ++r) {
      const int64_t pages = k.paged ? cdiv(kv, k.page_size) : kv;
      if (k.paged)
        for (int64_t i = 0; i < pages; ++i) hb.pidx.push_back((int32_t)hb.pidx.size());
      row += pages;
      hb.pip.push_back((int32_t)row);
    }
    hb.num_pages = (int32_t)row;
    return hb;
  };
  podgen_plan p;
  std::vector<unsigned char> st;
  std::string e;
  // One long decode: split up to the decode cap (many slots, one tile per KV head... few tiles),
  // and at most one split per live KV tile (a sliding window leaves few).
  {
    const int64_t kv = 32768, tkv = k.tile_kv[1];
    HostBatch hb = decode_batch(1, (int)kv);
    plan_batch(c, hb, o, &p, &st, &e);
    const int64_t tiles = k.heads_kv * cdiv(k.group(), 16);
    const int64_t live = k.window > 0 ? cdiv(kv - std::max<int64_t>(0, kv - k.window) / tkv * tkv, tkv) : cdiv(kv, tkv);
    const int64_t expect = std::min<int64_t>({k.max_splits[1], 132LL * k.ctas_per_sm * k.virtual_ctas / tiles, live});
    CHECK(p.max_splits[1] == std::max<int64_t>(1, expect) || p.max_splits[1] >= expect / 2,
          "[%s] long decode splits %d expected about %" PRId64, c.name, p.max_splits[1], expect);
    CHECK(p.num_items[1] <= std::max<int64_t>(tiles, 132LL * k.ctas_per_sm * k.virtual_ctas), "[%s]", c.name);
  }
  // Many decodes: enough tiles to fill the target, so no split.
  {
    HostBatch hb = decode_batch(1024, 4096);
    plan_batch(c, hb, o, &p, &st, &e);
    CHECK(p.max_splits[1] == 1 && p.num_merges[1] == 0, "[%s] many decodes split %d", c.name, p.max_splits[1]);
  }
  // Short decodes: at most one split per KV tile.
  {
    HostBatch hb = decode_batch(1, 1);
    plan_batch(c, hb, o, &p, &st, &e);
    CHECK(p.max_splits[1] == 1, "[%s] kv=1 split", c.name);
  }
  // decode_max_splits=1 disables decode splitting.
  {
    HostBatch hb = decode_batch(1, 32768);
    podgen_plan_options o1 = o;
    o1.decode_max_splits = 1;
    plan_batch(c, hb, o1, &p, &st, &e);
    CHECK(p.max_splits[1] == 1 && p.num_merges[1] == 0 && p.grid_merge[1] == 0, "[%s]", c.name);
  }
  // Empty batch: nothing to launch, a header-only upload.
  {
    HostBatch hb;
    plan_batch(c, hb, o, &p, &st, &e);
    CHECK(p.grid_fused == 0 && p.grid_merge[0] == 0 && p.grid_merge[1] == 0 && p.ratio[0] == 0 &&
              p.ratio[1] == 0 && p.host_bytes == 1280 && p.workspace_bytes == 1280,
          "[%s] empty batch host_bytes %" PRIu64 " workspace %" PRIu64, c.name, p.host_bytes,
          p.workspace_bytes);
  }
}

// Random mutations of valid batches: must never crash (run under ASan/UBSan) and must return a
// known status; successes must satisfy every invariant.
static void fuzz_tests(const Config& c, Rng& rng, int n, long long* ok, long long* rejected) {
  for (int i = 0; i < n; ++i) {
    const Limits L = random_limits(rng);
    HostBatch hb = random_batch(rng, c.k, L);
    // Pad page_indices so that a read the planner validated never lands outside the buffer, while
    // ASan still catches reads past the padding.
    const int muts = (int)uni(rng, 1, 3);
    podgen_plan_options opt = random_options(rng);
    for (int m = 0; m < muts; ++m) {
      const int64_t vals[] = {-1, 0, 1, 2, -100, 1000, INT32_MAX, INT32_MIN, 7};
      const int32_t v = (int32_t)vals[uni(rng, 0, 8)];
      switch (uni(rng, 0, 6)) {
        case 0: if (!hb.qo.empty()) hb.qo[uni(rng, 0, hb.qo.size() - 1)] = v; break;
        case 1: if (!hb.kv.empty()) hb.kv[uni(rng, 0, hb.kv.size() - 1)] = v; break;
        case 2: if (!hb.pip.empty()) hb.pip[uni(rng, 0, hb.pip.size() - 1)] = v; break;
        case 3: if (!hb.pidx.empty()) hb.pidx[uni(rng, 0, hb.pidx.size() - 1)] = v; break;
        case 4: hb.num_pages = v; break;
        case 5: opt.graph_mode = 1, opt.max_kv_len = (int32_t)uni(rng, -1, 40000),
                opt.max_decodes = (int32_t)uni(rng, -1, 300), opt.max_prefills = (int32_t)uni(rng, 0, 16),
                opt.max_prefill_tokens = (int32_t)uni(rng, 0, 9000); break;
        default: break;
      }
    }
    podgen_plan p;
    std::vector<unsigned char> staging;
    std::string err;
    const podgen_batch b = hb.view(c.k);
    podgen_plan sizes;
    const int st = c.plan(b, opt, nullptr, 0, &sizes, &err);
    CHECK(st >= PODGEN_OK && st <= PODGEN_ERR_UNSUPPORTED && st != PODGEN_ERR_CUDA, "status %d", st);
    if (st != PODGEN_OK) {
      CHECK(!err.empty(), "empty message for status %d", st);
      ++*rejected;
      continue;
    }
    // Accepted: a real plan; its invariants must hold too.
    staging.assign(sizes.host_bytes, 0);
    const int st2 = c.plan(b, opt, staging.data(), staging.size(), &p, &err);
    CHECK(st2 == PODGEN_OK, "fuzz second plan: %s", err.c_str());
    char tag[96];
    snprintf(tag, sizeof tag, "[fuzz %s #%d]", c.name, i);
    if (st2 == PODGEN_OK) check_plan(c, hb, opt, p, staging, tag);
    ++*ok;
  }
}

// Plans a ragged batch twice (sizes, then staging); the staging image in *staging.
static int plan_ragged_batch(const Config& c, const podgen_ragged_batch& b, const podgen_plan_options& opt,
                             podgen_plan* p, std::vector<unsigned char>* staging, std::string* err) {
  podgen_plan sizes;
  int st = c.plan_ragged(b, opt, nullptr, 0, &sizes, err);
  if (st != PODGEN_OK) return st;
  staging->assign(sizes.host_bytes, 0xAB);
  st = c.plan_ragged(b, opt, staging->data(), staging->size(), p, err);
  CHECK(st != PODGEN_OK || memcmp(&sizes, p, sizeof sizes) == 0, "ragged plan with and without staging differ");
  return st;
}

// A ragged plan with short requests on the decode path (options.decode_max_q_len): every request
// in the part its length picks, its tiles covered exactly once (check_work), its rows in one q.
static void check_ragged_plan(const Config& c, const std::vector<int32_t>& qo, const std::vector<int32_t>& kv,
                              const podgen_plan_options& opt, const podgen_plan& p,
                              const std::vector<unsigned char>& staging, const char* tag) {
  const int64_t n = (int64_t)kv.size();
  // 0: the requests whose packed rows fit one decode tile.
  const int64_t short_max = opt.decode_max_q_len ? opt.decode_max_q_len : std::max<int64_t>(1, c.k.tile_q[1] / c.k.group());
  std::vector<ExpectedRequest> requests;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t q_len = qo[j + 1] - qo[j];
    requests.push_back({q_len <= short_max ? 1 : 0, q_len, kv[j], qo[j]});
  }
  check_work(c, requests, opt, p, staging, tag);
  CHECK(p.ragged == 1 && p.q_rows[1] == 0, "%s", tag);
  CHECK(p.q_rows[0] == (opt.graph_mode ? opt.max_prefill_tokens + opt.max_decodes : qo[n]), "%s q_rows %d", tag, p.q_rows[0]);
}

// The ragged form and block tables. A random split batch's requests are interleaved in random
// order (each part keeping its order) and its pages given as CSR with spare entries or as a
// padded block table, the spares holding garbage. With decode_max_q_len 1 the ragged plan must
// equal the plan of the split batch it classifies into (q_len 1 decodes, longer prefills), with
// request ids and query rows mapped, and its page bases must reach the same pages. With short
// requests on the decode path (decode_max_q_len 0, the default, or 2 .. 16), eagerly and in a bucket
// that the batch fits, check_ragged_plan holds and the page bases are the same.
static void ragged_tests(const Config& c, Rng& rng, int batches, long long* planned) {
  const KernelShape& k = c.k;
  for (int i = 0; i < batches; ++i) {
    const Limits L = random_limits(rng);
    const HostBatch hb = random_batch(rng, k, L);
    const int n = hb.P + hb.D;
    auto q_len = [&](int r) { return r < hb.P ? hb.qo[r + 1] - hb.qo[r] : 1; };
    auto pages_of = [&](int r) { return k.paged ? cdiv(hb.kv[r], k.page_size) : 0; };
    std::vector<int> order;  // order[j]: the split request at ragged position j
    for (int a = 0, b = hb.P; a < hb.P || b < n;)
      order.push_back(b == n || (a < hb.P && uni(rng, 0, 1)) ? a++ : b++);
    const bool block_table = k.paged && uni(rng, 0, 1);
    int64_t stride = 0;
    if (block_table) {
      for (int r = 0; r < n; ++r) stride = std::max(stride, pages_of(r));
      stride = std::max<int64_t>(1, stride + uni(rng, 0, 3));
    }
    std::vector<int32_t> qo{0}, kv, pip, pidx;
    if (!block_table) pip.push_back((int32_t)(k.paged ? uni(rng, 0, 2) : 0));
    if (k.paged) pidx.assign(block_table ? 0 : pip[0], -9);
    for (int j = 0; j < n; ++j) {
      const int r = order[j];
      qo.push_back(qo.back() + q_len(r));
      kv.push_back(hb.kv[r]);
      if (!k.paged) {
        pip[j] = hb.pip[r];  // contiguous: first row (the last entry is not read)
        pip.push_back(0);
        continue;
      }
      for (int64_t g = 0; g < pages_of(r); ++g) pidx.push_back(hb.pidx[hb.pip[r] + g]);
      const int64_t spare = block_table ? stride - pages_of(r) : uni(rng, 0, 2);
      for (int64_t g = 0; g < spare; ++g) pidx.push_back(uni(rng, 0, 1) ? -1 : INT32_MAX);
      if (!block_table) pip.push_back((int32_t)pidx.size());
    }
    podgen_ragged_batch rb;
    memset(&rb, 0, sizeof rb);
    rb.num_requests = n;
    rb.qo_indptr = qo.data();
    rb.kv_lens = kv.data();
    rb.page_indptr = block_table ? nullptr : pip.data();
    rb.page_indices = k.paged ? pidx.data() : nullptr;
    rb.block_table_stride = (int32_t)stride;
    rb.num_pages = hb.num_pages;
    rb.num_heads_q = k.heads_q;
    rb.num_heads_kv = k.heads_kv;
    rb.head_dim = k.head_dim;

    // The split batch it classifies into, its pages compacted into CSR.
    HostBatch es;
    es.num_pages = hb.num_pages;
    es.qo.push_back(0);
    es.pip.push_back(0);
    std::vector<int> split_of(n), position_of(n);  // ragged position <-> split request
    for (int decode = 0; decode < 2; ++decode)
      for (int j = 0; j < n; ++j) {
        if ((qo[j + 1] - qo[j] == 1) != (decode == 1)) continue;
        split_of[j] = es.P + es.D;
        position_of[es.P + es.D] = j;
        if (decode) ++es.D;
        else ++es.P, es.qo.push_back(es.qo.back() + qo[j + 1] - qo[j]);
        es.kv.push_back(kv[j]);
        const int r = order[j];
        if (k.paged) {
          for (int64_t g = 0; g < pages_of(r); ++g) es.pidx.push_back(hb.pidx[hb.pip[r] + g]);
          es.pip.push_back((int32_t)es.pidx.size());
        } else {
          es.pip.back() = hb.pip[r];
          es.pip.push_back(0);
        }
      }

    podgen_plan_options opt = random_options(rng);
    opt.decode_max_q_len = 1;
    char tag[160];
    snprintf(tag, sizeof tag, "[ragged %s #%d %s]", c.name, i, block_table ? "block table" : "csr");
    podgen_plan ps, pr, sizes;
    std::vector<unsigned char> ss, sr;
    std::string err;
    int st = plan_batch(c, es, opt, &ps, &ss, &err);
    CHECK(st == PODGEN_OK, "%s split plan: %s", tag, err.c_str());
    if (st != PODGEN_OK) continue;
    check_plan(c, es, opt, ps, ss, tag);
    st = c.plan_ragged(rb, opt, nullptr, 0, &sizes, &err);
    CHECK(st == PODGEN_OK, "%s ragged sizing: %s", tag, err.c_str());
    if (st != PODGEN_OK) continue;
    sr.assign(sizes.host_bytes, 0xAB);
    st = c.plan_ragged(rb, opt, sr.data(), sr.size(), &pr, &err);
    CHECK(st == PODGEN_OK, "%s ragged plan: %s", tag, err.c_str());
    if (st != PODGEN_OK) continue;
    ++*planned;

    CHECK(pr.ragged == 1 && pr.num_requests == n && pr.q_rows[0] == qo[n] && pr.q_rows[1] == 0, "%s", tag);
    CHECK(pr.cache_pages == hb.num_pages, "%s", tag);
    CHECK(pr.page_entries == (uint64_t)(k.paged ? (block_table ? n * stride : (n ? pip[n] : 0)) : 0),
          "%s page_entries %" PRIu64, tag, pr.page_entries);
    CHECK(pr.num_prefills == es.P && pr.num_decodes == es.D && pr.total_prefill_tokens == es.tokens(), "%s", tag);
    for (int op = 0; op < 2; ++op)
      CHECK(pr.num_items[op] == ps.num_items[op] && pr.num_merges[op] == ps.num_merges[op] &&
                pr.max_splits[op] == ps.max_splits[op] && pr.ratio[op] == ps.ratio[op] &&
                pr.grid_merge[op] == ps.grid_merge[op],
            "%s op %d counts", tag, op);
    CHECK(pr.grid_fused == ps.grid_fused && pr.grid_prefill == ps.grid_prefill && pr.grid_decode == ps.grid_decode,
          "%s grids", tag);
    // Items and merges, field by field, with the request and its query rows mapped.
    for (int op = 0; op < 2; ++op)
      for (int merges = 0; merges < 2; ++merges) {
        const int count = (merges ? ps.num_merges[op] : ps.num_items[op]) / k.heads_kv;  // stored
        const uint64_t at_s = merges ? ps.merges_offset[op] : ps.items_offset[op];
        const uint64_t at_r = merges ? pr.merges_offset[op] : pr.items_offset[op];
        for (int x = 0; x < count; ++x) {
          PodWorkItem a, b;
          memcpy(&a, ss.data() + at_s + x * sizeof a, sizeof a);
          memcpy(&b, sr.data() + at_r + x * sizeof b, sizeof b);
          CHECK(b.request >= 0 && b.request < n, "%s request %d", tag, b.request);
          if (b.request < 0 || b.request >= n) continue;
          CHECK(b.request == position_of[a.request] && b.q_token_base == qo[b.request], "%s op %d item %d", tag, op, x);
          a.request = b.request;
          a.q_token_base = b.q_token_base;
          CHECK(memcmp(&a, &b, sizeof a) == 0, "%s op %d %s %d differs", tag, op, merges ? "merge" : "item", x);
        }
      }
    for (int j = 0; j < n; ++j) {
      int32_t base;
      memcpy(&base, sr.data() + pr.page_base_offset + j * sizeof base, sizeof base);
      if (!k.paged) {
        CHECK(base == pip[j], "%s contiguous base %d", tag, j);
        continue;
      }
      CHECK(base == (block_table ? j * stride : pip[j]), "%s page base %d = %d", tag, j, base);
      const int s_req = split_of[j];
      for (int64_t g = 0; g < pages_of(order[j]); ++g)
        CHECK(pidx[base + g] == es.pidx[es.pip[s_req] + g], "%s request %d page %" PRId64, tag, j, g);
    }

    podgen_plan_options so = random_options(rng);
    so.decode_max_q_len = (int32_t)(uni(rng, 0, 1) ? 0 : uni(rng, 2, PODGEN_MAX_DECODE_Q_LEN));
    for (int graph = 0; graph < 2; ++graph) {
      if (graph) {  // a bucket of the batch's limits; one-token prefills of the split batch decode here
        so.graph_mode = 1;
        so.max_prefills = (int32_t)L.max_prefills;
        so.max_decodes = (int32_t)(L.max_decodes + L.max_prefills);
        so.max_prefill_tokens = (int32_t)L.max_prefill_tokens;
        so.max_kv_len = (int32_t)L.max_kv_len;
        so.max_num_pages = so.max_page_entries = INT32_MAX;
      }
      char stag[200];
      snprintf(stag, sizeof stag, "%s short<=%d%s", tag, so.decode_max_q_len, graph ? " graph" : "");
      podgen_plan ph;
      std::vector<unsigned char> sh;
      st = plan_ragged_batch(c, rb, so, &ph, &sh, &err);
      CHECK(st == PODGEN_OK, "%s plan: %s", stag, err.c_str());
      if (st != PODGEN_OK) continue;
      ++*planned;
      check_ragged_plan(c, qo, kv, so, ph, sh, stag);
      CHECK(ph.cache_pages == (graph ? INT32_MAX : hb.num_pages), "%s", stag);
      CHECK(memcmp(sh.data() + ph.page_base_offset, sr.data() + pr.page_base_offset, n * sizeof(int32_t)) == 0,
            "%s page bases", stag);
    }
  }
}

// Graph-mode buckets filled with short requests (each as long as decode_max_q_len and the bucket's
// tokens allow, over the longest keys, so they split), next to the most decodes: the decode work
// must fit the capacity bucket_capacity reserved for a ragged plan (check_work's region checks).
static void short_bucket_tests(const Config& c, long long* planned) {
  const KernelShape& k = c.k;
  for (int64_t sms : {1, 132})
    for (int64_t P : {1, 3, 16})
      for (int64_t T : {2, 33, 256, 4096})
        for (int64_t short_max : {2, 5, 16})
          for (int64_t D : {0, 7}) {
            const int64_t max_kv = 5000;
            podgen_plan_options o;
            memset(&o, 0, sizeof o);
            o.num_sms = (int32_t)sms;
            o.graph_mode = 1;
            o.decode_max_q_len = (int32_t)short_max;
            o.max_prefills = (int32_t)P;
            o.max_decodes = (int32_t)D;
            o.max_prefill_tokens = (int32_t)T;
            o.max_kv_len = (int32_t)max_kv;
            o.max_num_pages = o.max_page_entries = INT32_MAX;
            std::vector<int32_t> qo{0}, kv, pip{0}, pidx;
            int64_t tokens = T;
            for (int64_t r = 0; r < P && tokens >= 2; ++r) {
              const int64_t q = std::min(short_max, tokens);
              tokens -= q;
              qo.push_back(qo.back() + (int32_t)q);
              kv.push_back((int32_t)max_kv);
            }
            for (int64_t d = 0; d < D; ++d) qo.push_back(qo.back() + 1), kv.push_back((int32_t)max_kv);
            const int64_t n = (int64_t)kv.size();
            for (int64_t r = 0; r < n; ++r) {
              const int64_t pages = k.paged ? cdiv(kv[r], k.page_size) : kv[r];
              for (int64_t g = 0; k.paged && g < pages; ++g) pidx.push_back((int32_t)pidx.size());
              pip.push_back((int32_t)(pip.back() + pages));
            }
            podgen_ragged_batch b;
            memset(&b, 0, sizeof b);
            b = {(int32_t)n, qo.data(), kv.data(), pip.data(), k.paged ? pidx.data() : nullptr, 0, pip[n],
                 k.heads_q, k.heads_kv, k.head_dim};
            char tag[200];
            snprintf(tag, sizeof tag, "[short bucket %s sms=%" PRId64 " P=%" PRId64 " T=%" PRId64 " short<=%" PRId64 " D=%" PRId64 "]",
                     c.name, sms, P, T, short_max, D);
            podgen_plan p;
            std::vector<unsigned char> staging;
            std::string err;
            const int st = plan_ragged_batch(c, b, o, &p, &staging, &err);
            CHECK(st == PODGEN_OK, "%s plan: %s", tag, err.c_str());
            if (st != PODGEN_OK) continue;
            ++*planned;
            check_ragged_plan(c, qo, kv, o, p, staging, tag);
          }
}

// The ragged form's own errors (shared page-table errors are in error_tests).
static void ragged_error_tests(const Config& c) {
  const KernelShape& k = c.k;
  // A prefill of 3 tokens, a decode, a prefill of 2 tokens; kv 40, 9, 2; one page (or row) each
  // more than they need.
  std::vector<int32_t> qo{0, 3, 4, 6}, kv{40, 9, 2}, pip{0}, pidx;
  for (int r = 0; r < 3; ++r) {
    const int64_t pages = k.paged ? cdiv(kv[r], k.page_size) + 1 : kv[r];
    if (k.paged)
      for (int64_t g = 0; g < pages; ++g) pidx.push_back((int32_t)pidx.size());
    pip.push_back((int32_t)(pip.back() + pages));
  }
  podgen_ragged_batch base;
  memset(&base, 0, sizeof base);
  base = {3, qo.data(), kv.data(), pip.data(), k.paged ? pidx.data() : nullptr, 0, pip[3], k.heads_q, k.heads_kv, k.head_dim};
  podgen_plan_options o;
  memset(&o, 0, sizeof o);
  auto expect = [&](const char* what, int status, const char* needle, auto fn) {
    std::vector<int32_t> q2 = qo, kv2 = kv;
    podgen_ragged_batch b = base;
    b.qo_indptr = q2.data();
    b.kv_lens = kv2.data();
    fn(b, q2, kv2);
    podgen_plan p;
    std::string err;
    const int st = c.plan_ragged(b, o, nullptr, 0, &p, &err);
    ++g_error_cases;
    CHECK(st == status, "[%s] ragged %s: status %d expected %d (%s)", c.name, what, st, status, err.c_str());
    CHECK(err.find(needle) != std::string::npos, "[%s] ragged %s: '%s' lacks '%s'", c.name, what, err.c_str(), needle);
  };
  using B = podgen_ragged_batch;
  using V = std::vector<int32_t>;
  {
    podgen_plan p;
    std::string err;
    // With decode_max_q_len 3 all three decode; with 2 the 3-token one is a prefill chunk; with 1
    // both multi-token ones are; by default (0) what fits one decode tile of 16 packed rows does.
    const int32_t fits = (int32_t)std::max<int64_t>(1, 16 / k.group());
    const struct { int32_t short_max, prefills, prefill_tokens; } classes[] = {
        {3, 0, 0}, {2, 1, 3}, {1, 2, 5}, {0, (fits < 3) + (fits < 2), 3 * (fits < 3) + 2 * (fits < 2)}};
    for (const auto& cl : classes) {
      podgen_plan_options oc = o;
      oc.decode_max_q_len = cl.short_max;
      CHECK(c.plan_ragged(base, oc, nullptr, 0, &p, &err) == PODGEN_OK, "[%s] ragged base: %s", c.name, err.c_str());
      CHECK(p.num_prefills == cl.prefills && p.num_decodes == 3 - cl.prefills &&
                p.total_prefill_tokens == cl.prefill_tokens && p.q_rows[0] == 6,
            "[%s] ragged base classified with decode_max_q_len=%d", c.name, cl.short_max);
    }
    // Out of range.
    for (int32_t bad : {-1, PODGEN_MAX_DECODE_Q_LEN + 1}) {
      podgen_plan_options oc = o;
      oc.decode_max_q_len = bad;
      ++g_error_cases;
      const int st = c.plan_ragged(base, oc, nullptr, 0, &p, &err);
      CHECK(st == PODGEN_ERR_INVALID_ARGUMENT && err.find("options.decode_max_q_len=") != std::string::npos &&
                err.find("[0, 16] (0 means what fits one decode tile)") != std::string::npos,
            "[%s] decode_max_q_len=%d: %d %s", c.name, bad, st, err.c_str());
    }
    // A bucket counts short requests as prefills (requests and tokens), whatever their path.
    podgen_plan_options g = o;
    g.graph_mode = 1;
    g.max_prefills = 1;
    g.max_decodes = 8;
    g.max_prefill_tokens = 8;
    g.max_kv_len = 64;
    g.max_num_pages = g.max_page_entries = INT32_MAX;
    ++g_error_cases;
    int st = c.plan_ragged(base, g, nullptr, 0, &p, &err);
    CHECK(st == PODGEN_ERR_BUCKET_EXCEEDED && err.find("2 prefills exceed the bucket's max_prefills=1") != std::string::npos,
          "[%s] short requests in a bucket: %d %s", c.name, st, err.c_str());
    g.max_prefills = 2;
    g.max_prefill_tokens = 4;
    ++g_error_cases;
    st = c.plan_ragged(base, g, nullptr, 0, &p, &err);
    CHECK(st == PODGEN_ERR_BUCKET_EXCEEDED && err.find("5 prefill tokens exceed") != std::string::npos,
          "[%s] short tokens in a bucket: %d %s", c.name, st, err.c_str());
  }
  const int BAD = PODGEN_ERR_BAD_BATCH, INV = PODGEN_ERR_INVALID_ARGUMENT;
  expect("negative", BAD, "num_requests=-1", [](B& b, V&, V&) { b.num_requests = -1; });
  expect("null qo", INV, "qo_indptr is NULL but num_requests=3", [](B& b, V&, V&) { b.qo_indptr = nullptr; });
  expect("null kv", INV, "kv_lens is NULL but num_requests=3", [](B& b, V&, V&) { b.kv_lens = nullptr; });
  expect("heads", BAD, "num_heads_kv=", [&](B& b, V&, V&) { b.num_heads_kv = k.heads_kv + 1; });
  expect("q_len 0", BAD, "request 1 has q_len=0", [](B&, V& q, V&) { q[2] = 3; });
  expect("qo[0]", BAD, "qo_indptr[0]=2", [](B&, V& q, V&) { q[0] = 2; });
  expect("kv < q", BAD, "kv_lens[2]=1 < q_len=2 of request 2", [](B&, V&, V& kv2) { kv2[2] = 1; });
}

// splits_for in isolation: for any chunk and cap, 1 <= splits <= min(cap, kv tiles), and evening
// the chunks out leaves no empty split.
static void splits_for_tests(long long* cases) {
  for (int64_t kvt = 1; kvt <= 70; ++kvt)
    for (int64_t chunk = 1; chunk <= 72; ++chunk)
      for (int64_t cap = 1; cap <= 20; ++cap) {
        const int64_t s = pod::planner::splits_for(kvt, chunk, cap);
        const int64_t per = cdiv(kvt, s);
        ++*cases;
        CHECK(s >= 1 && s <= cap && s <= kvt, "splits_for(%" PRId64 ", %" PRId64 ", %" PRId64 ")=%" PRId64, kvt, chunk, cap, s);
        CHECK((s - 1) * per < kvt, "splits_for(%" PRId64 ", %" PRId64 ", %" PRId64 ") leaves an empty split", kvt, chunk, cap);
      }
}

int main(int argc, char** argv) {
  const int scale = argc > 1 ? atoi(argv[1]) : 1;
  Rng rng(20250101);
  long long planned = 0, fuzz_ok = 0, fuzz_rejected = 0, split_cases = 0;
  splits_for_tests(&split_cases);
  printf("splits_for: %lld cases\n", split_cases);
  for (const Config& c : configs()) {
    const long long before = planned;
    random_tests(c, rng, 600 * scale, &planned);
    graph_tests(c, rng, 40 * scale, 12, &planned);
    graph_full_bucket_tests(c, &planned);
    error_tests(c);
    ragged_tests(c, rng, 300 * scale, &planned);
    short_bucket_tests(c, &planned);
    ragged_error_tests(c);
    heuristic_tests(c);
    fuzz_tests(c, rng, 400 * scale, &fuzz_ok, &fuzz_rejected);
    printf("%-28s %lld valid plans checked\n", c.name, planned - before);
  }
  printf("valid plans: %lld, error cases: %lld, fuzzed: %lld accepted + %lld rejected, checks: %lld\n",
         planned, g_error_cases, fuzz_ok, fuzz_rejected, g_checks);
  if (g_failures) {
    printf("FAILED: %d checks\n", g_failures);
    return 1;
  }
  printf("OK\n");
  return 0;
}
