// podgen host planner: from the lengths of one hybrid batch to the work lists, split counts,
// fused-kernel tickets, grids and workspace layout that the kernels consume (pod/contract.h).
//
// This is the only planner: the C ABI (pod/c_abi.inl) wraps it, and the TypeScript runtime and
// exported consumers call it through that ABI. Pure host C++17: no CUDA calls, so it compiles with
// g++ and with nvcc's host pass and runs without a GPU. Same batch and options → same bytes.
//
// Steps of pod::plan (each a function below):
//   1. check_options / read_batch (planner_input.inl: either batch form, CSR or block-table pages,
//      into one Batch of prefill and decode requests and their page bases) / check_bucket —
//      reject before anything is indexed.
//   2. build_row_blocks — packed-row blocks per request (each a tile per KV head) with their live
//      keys: from the KV tile of the first key its first row sees (sliding window) to its causal
//      KV end.
//   3. count_work — the KV split of every tile (choose_chunk, one heuristic for both ops, see its
//      comment), the counts of items, merges and partial rows, and the heavy-first order of the
//      items by counting.
//   4. capacities — live counts, or in graph mode worst-case counts of the bucket.
//   5. make_layout — byte offsets in the workspace; grids, tickets and ratio.
//   6. with a staging buffer only: the header, then emit_work writes every item and merge once,
//      in its final place: one stored item for all KV heads of a row block and split (the kernels
//      expand it, pod_item_for_head in contract.h), so a plan's writes do not grow with Hkv.
// Planning reuses per-thread buffers (Scratch), so a serving loop that plans every step allocates
// nothing after its first plans.
#pragma once
#ifndef PODGEN_ABI_VERSION
#error "include pod_attention.h (the rendered C header) before pod/planner.h"
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "contract.h"

namespace pod {

// The constants of one generated kernel that planning depends on. plan<Traits> fills it from the
// Traits struct of the generated TU; everything below is ordinary (non-template) code.
struct KernelShape {
  int heads_q, heads_kv, head_dim;
  bool paged;
  int page_size;              // 1 for a contiguous cache
  int ctas_per_sm;
  int tile_q[2], tile_kv[2];  // [prefill, decode]
  int max_splits[2];          // spec limit per tile; 0: none (prefill bounded by waves only)
  int prefill_max_waves;      // 0: prefill bounded by splits only
  int virtual_ctas;           // decode tiles per physical decode CTA
  bool roles;                 // one persistent CTA per SM with a prefill and a decode role
  bool persistent_prefill;    // the prefill-only kernel's CTAs loop over tickets (warp-specialized)
  int window;                 // sliding window: keys a query sees, itself included (0: every earlier key)

  template <class Traits>
  static KernelShape of() {
    static_assert(Traits::kNumHeadsKv > 0 && Traits::kNumHeadsQ % Traits::kNumHeadsKv == 0,
                  "query heads must be a multiple of KV heads");
    static_assert(Traits::Prefill::kTileQ > 0 && Traits::Prefill::kTileKv > 0 &&
                      Traits::Decode::kTileQ > 0 && Traits::Decode::kTileKv > 0,
                  "tile sizes must be positive");
    static_assert(Traits::kCtasPerSm > 0 && Traits::Decode::kVirtualCtas > 0 &&
                      (!Traits::kPaged || Traits::kPageSize > 0),
                  "CTAs per SM, virtual CTAs and the page size must be positive");
    KernelShape k;
    k.heads_q = Traits::kNumHeadsQ;
    k.heads_kv = Traits::kNumHeadsKv;
    k.head_dim = Traits::kHeadDim;
    k.paged = Traits::kPaged;
    k.page_size = Traits::kPaged ? Traits::kPageSize : 1;
    k.ctas_per_sm = Traits::kCtasPerSm;
    k.tile_q[0] = Traits::Prefill::kTileQ;
    k.tile_kv[0] = Traits::Prefill::kTileKv;
    k.tile_q[1] = Traits::Decode::kTileQ;
    k.tile_kv[1] = Traits::Decode::kTileKv;
    k.max_splits[0] = Traits::Prefill::kMaxSplits;
    k.max_splits[1] = Traits::Decode::kMaxSplits;
    k.prefill_max_waves = Traits::Prefill::kMaxWaves;
    k.virtual_ctas = Traits::Decode::kVirtualCtas;
    k.roles = Traits::kRoles;
    k.persistent_prefill = Traits::Prefill::kEngine == POD_ENGINE_WARP_SPECIALIZED;
    k.window = Traits::kWindow;
    return k;
  }
  int group() const { return heads_q / heads_kv; }
};

namespace planner {

constexpr int kDefaultNumSms = 132;  // an H100 SXM, when options.num_sms is 0
constexpr int kMergeCtasPerSm = 4;   // combine grid cap: 4 CTAs per SM a row chunk, grid-striding over merges
constexpr uint64_t kAlign = 256;     // every workspace region starts on a 256-byte boundary
constexpr int64_t kInt32Max = 2147483647;
constexpr int64_t kUnbounded = INT64_MAX / 4;  // a budget or cap that does not bind

// floor(a / b) for a >= 0, b > 0. Lengths and tile counts fit in 31 bits, and a 32-bit division
// takes a fraction of a 64-bit one's time on x86-64 (the divisions of count_work were a sixth of
// the plan); tile sizes and most GQA groups are powers of two, which a shift divides.
inline int64_t div_floor(int64_t a, int64_t b) {
  if ((uint64_t)(a | b) < (1ull << 31)) {
#if defined(__GNUC__)
    if ((b & (b - 1)) == 0) return a >> __builtin_ctzll((uint64_t)b);
#endif
    return (int64_t)((uint32_t)a / (uint32_t)b);
  }
  return a / b;
}

// ceil(a / b) for a >= 0, b > 0 (div_floor's fast paths).
inline int64_t ceil_div(int64_t a, int64_t b) { return div_floor(a + b - 1, b); }
inline uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

#if defined(__GNUC__)
#define POD_PRINTF_FORMAT(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define POD_PRINTF_FORMAT(fmt_index, first_arg)
#endif

// Records a failure: sets *error (if given) to the formatted message and returns status.
POD_PRINTF_FORMAT(3, 4)
inline int fail(std::string* error, int status, const char* fmt, ...) {
  if (error) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *error = buf;
  }
  return status;
}
#undef POD_PRINTF_FORMAT

// Options with defaults resolved.
struct Options {
  int num_sms;
  bool graph_mode;
  int64_t max_prefills, max_decodes, max_prefill_tokens, max_kv_len, max_num_pages,
      max_page_entries;
  int64_t split_cap[2];  // per-tile split cap from the spec and the options; kUnbounded if none
  bool count_tiles;
  int32_t decode_max_q_len;  // ragged: the longest request on the decode path
};

inline int check_options(const KernelShape& k, const podgen_plan_options& o, Options* out,
                         std::string* error) {
  const int inval = PODGEN_ERR_INVALID_ARGUMENT;
  if (o.num_sms < 0 || o.num_sms > POD_MAX_SMS)
    return fail(error, inval, "options.num_sms=%d is out of range [0, %d] (0 means %d)", o.num_sms,
                POD_MAX_SMS, kDefaultNumSms);
  if (o.graph_mode != 0 && o.graph_mode != 1)
    return fail(error, inval, "options.graph_mode=%d must be 0 or 1", o.graph_mode);
  if (o.debug_count_tiles != 0 && o.debug_count_tiles != 1)
    return fail(error, inval, "options.debug_count_tiles=%d must be 0 or 1", o.debug_count_tiles);
  if (o.prefill_max_splits < 0)
    return fail(error, inval, "options.prefill_max_splits=%d is negative (0 means the spec's limit)",
                o.prefill_max_splits);
  if (o.decode_max_splits < 0)
    return fail(error, inval, "options.decode_max_splits=%d is negative (0 means the spec's limit)",
                o.decode_max_splits);
  if (o.decode_max_q_len < 0 || o.decode_max_q_len > PODGEN_MAX_DECODE_Q_LEN)
    return fail(error, inval,
                "options.decode_max_q_len=%d is out of range [0, %d] (0 means what fits one decode tile)",
                o.decode_max_q_len, PODGEN_MAX_DECODE_Q_LEN);
  if (o.graph_mode) {
    const struct { const char* name; int32_t value; } bucket[] = {
        {"max_prefills", o.max_prefills},
        {"max_decodes", o.max_decodes},
        {"max_prefill_tokens", o.max_prefill_tokens},
        {"max_kv_len", o.max_kv_len},
        {"max_num_pages", o.max_num_pages},
        {"max_page_entries", o.max_page_entries}};
    for (const auto& b : bucket)
      if (b.value < 0)
        return fail(error, inval, "options.%s=%d is negative (graph-mode bucket)", b.name, b.value);
  }
  out->num_sms = o.num_sms ? o.num_sms : kDefaultNumSms;
  out->graph_mode = o.graph_mode == 1;
  out->max_prefills = o.max_prefills;
  out->max_decodes = o.max_decodes;
  out->max_prefill_tokens = o.max_prefill_tokens;
  out->max_kv_len = o.max_kv_len;
  out->max_num_pages = o.max_num_pages;
  out->max_page_entries = o.max_page_entries;
  const int option_cap[2] = {o.prefill_max_splits, o.decode_max_splits};
  for (int op = 0; op < 2; ++op) {
    int64_t cap = kUnbounded;
    if (k.max_splits[op] > 0) cap = k.max_splits[op];
    if (option_cap[op] > 0) cap = std::min<int64_t>(cap, option_cap[op]);
    out->split_cap[op] = cap;
  }
  out->count_tiles = o.debug_count_tiles == 1;
  // Default: the requests whose packed rows fit one decode tile (pod_attention.h says why).
  out->decode_max_q_len = o.decode_max_q_len ? o.decode_max_q_len
                                             : (int32_t)std::max<int64_t>(1, k.tile_q[1] / k.group());
  return PODGEN_OK;
}

#include "planner_input.inl"

// Graph mode: the batch must fit the bucket the layout was sized for.
inline int check_bucket(const KernelShape& k, const Options& o, const Batch& b, std::string* error) {
  const int over = PODGEN_ERR_BUCKET_EXCEEDED;
  // Short requests (ragged, 2 .. decode_max_q_len tokens) run as decodes but count as prefills
  // (pod_attention.h, podgen_ragged_batch).
  int64_t shorts = 0, short_tokens = 0;
  for (const Request& q : b.parts[POD_OP_DECODE])
    if (q.q_len > 1) ++shorts, short_tokens += q.q_len;
  const int64_t prefills = (int64_t)b.parts[0].size() + shorts;
  const int64_t decodes = (int64_t)b.parts[1].size() - shorts;
  const int64_t prefill_tokens = b.prefill_tokens + short_tokens;
  if (prefills > o.max_prefills)
    return fail(error, over, "%lld prefills exceed the bucket's max_prefills=%lld",
                (long long)prefills, (long long)o.max_prefills);
  if (decodes > o.max_decodes)
    return fail(error, over, "%lld decodes exceed the bucket's max_decodes=%lld",
                (long long)decodes, (long long)o.max_decodes);
  if (prefill_tokens > o.max_prefill_tokens)
    return fail(error, over, "%lld prefill tokens exceed the bucket's max_prefill_tokens=%lld",
                (long long)prefill_tokens, (long long)o.max_prefill_tokens);
  for (const std::vector<Request>& part : b.parts)
    for (const Request& q : part)
      if (q.kv_len > o.max_kv_len)
        return fail(error, over, "kv_lens[%d]=%d exceeds the bucket's max_kv_len=%lld", q.id,
                    q.kv_len, (long long)o.max_kv_len);
  if (b.num_pages > o.max_num_pages)
    return fail(error, over,
                "num_pages=%d exceeds the bucket's max_num_pages=%lld (the cache a captured run "
                "was given)",
                b.num_pages, (long long)o.max_num_pages);
  if (k.paged && b.page_entries > (uint64_t)o.max_page_entries)
    return fail(error, over,
                "the page table spans %llu page_indices entries, over the bucket's "
                "max_page_entries=%lld",
                (unsigned long long)b.page_entries, (long long)o.max_page_entries);
  return PODGEN_OK;
}

// The tiles of one row block before splitting: packed rows [row_begin, row_begin + tile_q) of one
// request over keys [kv_begin, kv_end), kv_begin a multiple of the op's tile_kv. The block has a
// tile per KV head, alike but for the head, so everything the split chooser needs is computed once
// a block. Field meanings as in PodWorkItem.
struct RowBlock {
  int32_t request, q_token_base, q_len, kv_len, row_begin, kv_begin, kv_end;
};

// The first key of the KV tile (of tile_kv keys, counted from key 0) that holds the first key query
// token `first_token` sees: with a sliding window of W keys, token t sees keys from
// kv_len - q_len + t + 1 - W; the tiles before that one hold no key any row of the tile sees, so they
// are never loaded, split or counted. 0 without a window.
inline int32_t first_live_key(int window, int64_t tile_kv, int64_t first_token, int64_t q_len,
                              int64_t kv_len) {
  if (window <= 0) return 0;
  const int64_t first = std::max<int64_t>(0, kv_len - q_len + first_token + 1 - window);
  return (int32_t)(first / tile_kv * tile_kv);
}

// The causal KV end of a tile: its last valid packed row belongs to query token t, which sees keys
// j <= kv_len - q_len + t (bottom-right alignment), so the tile needs keys [0, kv_len - q_len + t + 1).
inline int32_t causal_kv_end(int64_t row_begin, int64_t tile_q, int64_t rows, int64_t group,
                             int64_t q_len, int64_t kv_len) {
  const int64_t last_token = div_floor(std::min(row_begin + tile_q, rows) - 1, group);
  return (int32_t)std::min(kv_len, kv_len - q_len + last_token + 1);
}

// The row blocks of one part, in request order. A decode is a one-token chunk: its `group` packed
// rows all see every key, which causal_kv_end gives for q_len 1.
inline void build_row_blocks(const KernelShape& k, const std::vector<Request>& requests, int op,
                             std::vector<RowBlock>* out) {
  const int64_t group = k.group(), tq = k.tile_q[op];
  for (const Request& q : requests) {
    const int64_t rows = (int64_t)q.q_len * group;
    for (int64_t row = 0; row < rows; row += tq) {
      // Field by field into the vector: a block built on the stack and pushed whole would be
      // read back with wide loads that wait for its narrow stores (see store_item).
      RowBlock& b = out->emplace_back();
      b.request = q.id;
      b.q_token_base = q.q_token_base;
      b.q_len = q.q_len;
      b.kv_len = q.kv_len;
      b.row_begin = (int32_t)row;
      b.kv_begin = first_live_key(k.window, k.tile_kv[op], div_floor(row, group), q.q_len, q.kv_len);
      b.kv_end = causal_kv_end(row, tq, rows, group, q.q_len, q.kv_len);
    }
  }
}

// Splits of a tile of `kv_tiles` KV tiles when chunks hold at most `chunk` KV tiles and a tile
// takes at most `cap` splits. Chunks are then evened out (ceil(kv_tiles / splits) each), which can
// leave fewer non-empty chunks than asked for; the count returned is of non-empty ones.
inline int64_t splits_for(int64_t kv_tiles, int64_t chunk, int64_t cap) {
  if (kv_tiles <= chunk) return 1;  // what the divisions below give then, without them
  const int64_t asked = std::min(ceil_div(kv_tiles, chunk), cap);
  return ceil_div(kv_tiles, ceil_div(kv_tiles, asked));
}

// The KV split heuristic, shared by both ops. Every tile is cut into splits of at most `chunk` KV
// tiles (so the tiles with the most KV are split first, and all splits come out about equally
// long). Candidate chunks are ceil(longest / s) for s = 1, 2, ... (the longest tile in s splits);
// each is scored by a wave model of the makespan, ceil(items / slots) waves × the longest split,
// and the best score wins, ties going to the fewest items (splitting costs a merge and partial
// traffic, so a split must fill the waves strictly better). Items never exceed `budget`, unless
// the unsplit tiles alone already do (then nothing is split).
//   prefill: slots = num_sms × ctas_per_sm, budget = max_waves × slots (the spec's wave limit).
//   decode:  slots = budget = num_sms × ctas_per_sm × virtual_ctas, so decode splits until about
//            one virtual CTA per slot (one wave), i.e. the largest split count that fits it.
// `kv_tiles` holds (KV tiles, number of tiles with that many) pairs sorted by KV tiles.
inline int64_t choose_chunk(const std::vector<std::pair<int64_t, int64_t>>& kv_tiles, int64_t slots,
                            int64_t budget, int64_t cap) {
  if (kv_tiles.empty()) return 1;
  const int64_t longest = kv_tiles.back().first;
  int64_t best_chunk = longest, best_score = -1, last_chunk = 0;
  for (int64_t s = 1; s <= std::min(cap, longest); ++s) {
    const int64_t chunk = ceil_div(longest, s);
    if (chunk == last_chunk) continue;
    last_chunk = chunk;
    int64_t items = 0, longest_split = 0;
    for (const auto& kc : kv_tiles) {
      const int64_t splits = splits_for(kc.first, chunk, cap);
      items += splits * kc.second;
      longest_split = std::max(longest_split, ceil_div(kc.first, splits));
    }
    if (items > budget && s > 1) break;  // items only grow as chunks shrink
    const int64_t score = ceil_div(items, slots) * longest_split;
    if (best_score < 0 || score < best_score) best_score = score, best_chunk = chunk;
    if (items > budget) break;  // unsplit tiles already over the budget: no split can fit it
  }
  return best_chunk;
}

// The split budget and slots of one op (see choose_chunk).
struct SplitPolicy {
  int64_t slots, budget, cap;
};

inline SplitPolicy split_policy(const KernelShape& k, const Options& o, int op) {
  const int64_t slots = (int64_t)o.num_sms * k.ctas_per_sm;
  SplitPolicy p;
  p.cap = o.split_cap[op];
  if (op == POD_OP_DECODE) {
    p.slots = p.budget = slots * k.virtual_ctas;
  } else {
    p.slots = slots;
    // Bounded by splits only (kMaxWaves = 0): no wave limit, unless no split cap binds either;
    // then fall back to the two full waves of the design.
    const int64_t waves =
        k.prefill_max_waves > 0 ? k.prefill_max_waves : (p.cap < kUnbounded ? 0 : 2);
    p.budget = waves > 0 ? waves * slots : kUnbounded;
  }
  return p;
}

// Sorts values by their high 32 bits, stably: an LSD radix sort, linear in the count where a
// comparison sort is n log n. It takes as few passes as digits of 8 bits cover the largest key,
// with the key's bits shared evenly among them: a pass costs its buckets as well as its keys, and
// a batch sorts a few hundred keys of 9–15 bits (KV tiles, key ranges). `tmp` is scratch.
inline void sort_by_high_word(std::vector<uint64_t>* values, std::vector<uint64_t>* tmp) {
  uint64_t largest = 0;
  for (uint64_t v : *values) largest = std::max(largest, v >> 32);
  int bits = 0;
  while (bits < 32 && largest >> bits) ++bits;
  const int passes = (bits + 7) / 8, digit = passes ? (bits + passes - 1) / passes : 0;
  const uint64_t mask = (1u << digit) - 1;
  tmp->resize(values->size());
  for (int shift = 32; shift < 32 + bits; shift += digit) {
    size_t next[257];
    std::fill(next, next + mask + 2, 0);
    for (uint64_t v : *values) ++next[((v >> shift) & mask) + 1];
    for (uint64_t d = 0; d < mask; ++d) next[d + 1] += next[d];
    for (uint64_t v : *values) (*tmp)[next[(v >> shift) & mask]++] = v;
    values->swap(*tmp);
  }
}

// How one row block's tiles split: `splits` splits of `split_keys` keys (a tile_kv multiple), the
// last one holding the rest. Items of equal KV range share a bucket; buckets run longest first.
struct BlockSplit {
  int32_t kv_tiles, splits;
  int64_t split_keys;
  int32_t bucket[2];  // of the full splits, and of the last split
};

// The work of one op: counted from its row blocks before an item is written, so a sizing call
// writes none and a staging call writes each item once, in its final place.
struct OpWork {
  std::vector<RowBlock> blocks;     // request order
  std::vector<BlockSplit> splits;   // per block
  std::vector<int64_t> bucket_end;  // stored items in buckets 0 .. b (heavy first)
  int64_t items = 0, merges = 0;    // as the kernels count them (stored: items / heads_kv)
  int64_t partial_rows = 0;         // fp32 partial rows (num_splits × tile_q per split tile)
  int32_t max_splits = 0;           // largest split count of any tile (0: no tiles)

  void clear() {
    blocks.clear();
    splits.clear();
    bucket_end.clear();
    items = merges = partial_rows = 0;
    max_splits = 0;
  }
};

// Sort buffers of count_work, kept with the rest of the planner's scratch (plan_for).
struct SortScratch {
  std::vector<uint64_t> keys, tmp;
  std::vector<std::pair<int64_t, int64_t>> histogram;
};

// Chooses the split of every tile (choose_chunk) and counts the op's items, merges and partial
// rows; buckets the items by KV range. emit_work then writes them in this order: heavy first (the
// longest KV ranges start in the first wave, so the last wave holds short items and the tail is
// short), tile order among equals — a stable sort of the items by range, done by counting.
inline int count_work(int64_t heads_kv, int64_t tile_q, int64_t tile_kv, const SplitPolicy& policy,
                      OpWork* w, SortScratch* scratch, std::string* error) {
  const std::vector<RowBlock>& blocks = w->blocks;
  std::vector<uint64_t>& keys = scratch->keys;
  // (KV tiles, tiles with that many), ascending: what choose_chunk reads.
  w->splits.resize(blocks.size());
  keys.clear();
  for (size_t i = 0; i < blocks.size(); ++i) {
    w->splits[i].kv_tiles = (int32_t)ceil_div(blocks[i].kv_end - blocks[i].kv_begin, tile_kv);
    keys.push_back((uint64_t)w->splits[i].kv_tiles << 32);
  }
  sort_by_high_word(&keys, &scratch->tmp);
  std::vector<std::pair<int64_t, int64_t>>& histogram = scratch->histogram;
  histogram.clear();
  for (uint64_t key : keys) {
    const int64_t kv_tiles = (int64_t)(key >> 32);
    // A new entry is set in place, not pushed whole from the stack (see build_row_blocks).
    if (histogram.empty() || histogram.back().first != kv_tiles)
      histogram.emplace_back().first = kv_tiles;
    histogram.back().second += heads_kv;
  }
  const int64_t chunk = choose_chunk(histogram, policy.slots, policy.budget, policy.cap);

  int32_t longest = 0;  // KV range of the longest item
  for (size_t i = 0; i < blocks.size(); ++i) {
    const RowBlock& b = blocks[i];
    BlockSplit& sp = w->splits[i];
    const int64_t splits = splits_for(sp.kv_tiles, chunk, policy.cap);
    sp.splits = (int32_t)splits;
    sp.split_keys = (splits > 1 ? ceil_div(sp.kv_tiles, splits) : sp.kv_tiles) * tile_kv;
    w->items += splits * heads_kv;
    if (splits > 1) w->merges += heads_kv, w->partial_rows += splits * tile_q * heads_kv;
    w->max_splits = std::max(w->max_splits, (int32_t)splits);
    longest = std::max(longest, splits > 1 ? (int32_t)sp.split_keys : b.kv_end - b.kv_begin);
  }
  if (w->items > kInt32Max / 2)
    return fail(error, PODGEN_ERR_UNSUPPORTED, "batch needs %lld work items; at most %lld supported",
                (long long)w->items, (long long)kInt32Max / 2);
  if (w->partial_rows > kInt32Max)
    return fail(error, PODGEN_ERR_UNSUPPORTED, "batch needs more than %lld fp32 partial rows",
                (long long)kInt32Max);

  // Buckets: each block's full and last splits by (longest - range) << 32 | slot, sorted; equal
  // ranges are one bucket, numbered from the longest range down.
  keys.clear();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const RowBlock& b = blocks[i];
    const BlockSplit& sp = w->splits[i];
    const int32_t last = (int32_t)(b.kv_end - (b.kv_begin + (sp.splits - 1) * sp.split_keys));
    if (sp.splits > 1) keys.push_back((uint64_t)(longest - (int32_t)sp.split_keys) << 32 | (2 * i));
    keys.push_back((uint64_t)(longest - last) << 32 | (2 * i + 1));
  }
  sort_by_high_word(&keys, &scratch->tmp);
  w->bucket_end.clear();
  uint64_t bucket_key = 0;
  for (uint64_t key : keys) {
    if (w->bucket_end.empty() || key >> 32 != bucket_key) {
      bucket_key = key >> 32;
      w->bucket_end.push_back(w->bucket_end.empty() ? 0 : w->bucket_end.back());
    }
    const uint32_t slot = (uint32_t)key;
    BlockSplit& sp = w->splits[slot / 2];
    sp.bucket[slot % 2] = (int32_t)(w->bucket_end.size() - 1);
    w->bucket_end.back() += slot % 2 ? 1 : sp.splits - 1;  // stored items: one for all KV heads
  }
  return PODGEN_OK;
}

// Copies an item into the staging bytes. Copied whole, the item built just before on the stack
// would be read back with wide loads that wait for its narrow stores (a store-forwarding stall):
// that took most of the time of writing the items. GCC and Clang build each 16 bytes in registers
// and store them at once: three stores an item where one a field took a tenth of the plan (the
// stores, not their order, bound the loop of emit_work).
inline void store_item(unsigned char* dst, const PodWorkItem& item) {
  const int32_t fields[] = {item.request,  item.kv_head,  item.q_token_base, item.q_len,
                            item.kv_len,   item.row_begin, item.kv_begin,    item.kv_end,
                            item.split,    item.num_splits, item.partial_row, item.head_partial_rows};
  static_assert(sizeof fields == sizeof(PodWorkItem), "store_item copies every field");
#if defined(__GNUC__)
  typedef int32_t Quad __attribute__((vector_size(16)));
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i += 4) {
    const Quad quad = {fields[i], fields[i + 1], fields[i + 2], fields[i + 3]};
    memcpy(dst + i * sizeof(int32_t), &quad, sizeof quad);
  }
#else
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i)
    memcpy(dst + i * sizeof(int32_t), &fields[i], sizeof(int32_t));
#endif
}

// Writes the items (heavy first, see count_work) and merges (tile order) of counted work, one
// stored item for all KV heads (PodWorkItem); split tiles get a merge item and num_splits × tile_q
// partial rows a KV head (split s of head h writes rows partial_row + h × head_partial_rows +
// s × tile_q ..). Unaligned destinations are fine (memcpy).
inline void emit_work(const OpWork& w, int32_t heads_kv, int64_t tile_q, unsigned char* items,
                      unsigned char* merges, std::vector<int64_t>* scratch) {
  scratch->resize(w.bucket_end.size());
  int64_t* const next = scratch->data();  // next free stored item of each bucket
  for (size_t b = 0; b < w.bucket_end.size(); ++b) next[b] = b ? w.bucket_end[b - 1] : 0;
  int64_t partial_rows = 0, num_merges = 0;
  for (size_t i = 0; i < w.blocks.size(); ++i) {  // tile order: request, row block (KV head: kernel)
    const RowBlock& t = w.blocks[i];
    const BlockSplit& sp = w.splits[i];
    PodWorkItem item;
    item.request = t.request;
    item.kv_head = 0;
    item.q_token_base = t.q_token_base;
    item.q_len = t.q_len;
    item.kv_len = t.kv_len;
    item.row_begin = t.row_begin;
    item.num_splits = sp.splits;
    item.partial_row = -1;  // no partials: the tile writes o / lse directly
    item.head_partial_rows = 0;
    if (sp.splits > 1) {
      item.partial_row = (int32_t)partial_rows;
      item.head_partial_rows = (int32_t)(sp.splits * tile_q);
      partial_rows += heads_kv * sp.splits * tile_q;
      PodMergeItem merge = item;
      merge.split = 0;
      merge.kv_begin = t.kv_begin;
      merge.kv_end = t.kv_end;
      store_item(merges + num_merges++ * sizeof merge, merge);
    }
    for (int32_t s = 0; s < sp.splits; ++s) {
      item.split = s;
      item.kv_begin = (int32_t)(t.kv_begin + s * sp.split_keys);
      item.kv_end = (int32_t)std::min<int64_t>(t.kv_end, (int64_t)item.kv_begin + sp.split_keys);
      const int64_t at = next[sp.bucket[s + 1 == sp.splits]]++;
      store_item(items + at * sizeof item, item);
    }
  }
}

// How many items, merges and partial rows the layout holds per op, and page bases (requests).
struct Capacity {
  int64_t items[2], merges[2], partial_rows[2];
  int64_t requests;
};

// Graph mode: worst-case counts over every batch of the bucket, derived from the same rules the
// split chooser obeys, so a batch of the bucket always fits:
//   tiles   prefill: sum over chunks of ceil(q_len × group / tile_q) per KV head, at most
//           (group × tokens + prefills × (tile_q - 1)) / tile_q (each ceil adds < 1); prefills
//           ≤ tokens since a chunk has at least one token. decode: decodes × ceil(group / tile_q),
//           and for a ragged plan its short requests' tiles: at most min(prefills, tokens / 2) of
//           them (two tokens or more each) holding at most min(tokens, that × decode_max_q_len)
//           tokens, so (group × those tokens + shorts × (tile_q - 1)) / tile_q by the same rule.
//   items   ≤ tiles × per-tile splits (≤ the cap and ≤ the KV tiles of max_kv_len), and
//           ≤ max(tiles, budget) (choose_chunk never exceeds the budget unless it does not split).
//   merges  ≤ tiles and ≤ items / 2 (a merged tile has ≥ 2 items);
//   partial rows ≤ items × tile_q (only split tiles have any).
//   requests = max_prefills + max_decodes (one page base each).
inline int bucket_capacity(const KernelShape& k, const Options& o, bool ragged, Capacity* cap,
                           std::string* error) {
  const int64_t group = k.group();
  const int64_t prefills = std::min(o.max_prefills, o.max_prefill_tokens);
  const int64_t shorts =
      ragged && o.decode_max_q_len > 1 ? std::min(o.max_prefills, o.max_prefill_tokens / 2) : 0;
  const int64_t short_tokens = std::min(o.max_prefill_tokens, shorts * o.decode_max_q_len);
  const int64_t tiles[2] = {
      prefills > 0 ? k.heads_kv * ((group * o.max_prefill_tokens + prefills * (k.tile_q[0] - 1)) /
                                   k.tile_q[0])
                   : 0,
      o.max_decodes * k.heads_kv * ceil_div(group, k.tile_q[1]) +
          k.heads_kv * ((group * short_tokens + shorts * (k.tile_q[1] - 1)) / k.tile_q[1])};
  for (int op = 0; op < 2; ++op) {
    const SplitPolicy policy = split_policy(k, o, op);
    const int64_t splits =
        std::max<int64_t>(1, std::min(policy.cap, ceil_div(o.max_kv_len, k.tile_kv[op])));
    int64_t items = std::min(tiles[op] * splits, std::max(tiles[op], policy.budget));
    cap->items[op] = items;
    cap->merges[op] = splits > 1 ? std::min(tiles[op], items / 2) : 0;
    cap->partial_rows[op] = cap->merges[op] > 0 ? items * k.tile_q[op] : 0;
    if (items > kInt32Max / 2 || cap->partial_rows[op] > kInt32Max)
      return fail(error, PODGEN_ERR_UNSUPPORTED,
                  "graph-mode bucket too large: up to %lld %s work items (%lld partial rows); "
                  "lower max_prefill_tokens / max_decodes",
                  (long long)items, op == 0 ? "prefill" : "decode",
                  (long long)cap->partial_rows[op]);
  }
  cap->requests = o.max_prefills + o.max_decodes;
  return PODGEN_OK;
}

// Workspace byte layout (header at 0; each region 256-byte aligned, in this order).
struct Layout {
  uint64_t items[2], merges[2], page_base, partial_o[2], partial_lse[2];
  uint64_t host_bytes, workspace_bytes;
};

// Items and merges are stored one for all heads_kv KV heads (PodWorkItem).
inline Layout make_layout(const Capacity& c, int64_t heads_kv, int head_dim) {
  Layout l;
  uint64_t at = sizeof(PodDeviceHeader);
  auto region = [&at](uint64_t bytes) {
    const uint64_t start = align_up(at);
    at = start + bytes;
    return start;
  };
  for (int op = 0; op < 2; ++op)
    l.items[op] = region((uint64_t)ceil_div(c.items[op], heads_kv) * sizeof(PodWorkItem));
  for (int op = 0; op < 2; ++op)
    l.merges[op] = region((uint64_t)ceil_div(c.merges[op], heads_kv) * sizeof(PodMergeItem));
  l.page_base = region((uint64_t)c.requests * sizeof(int32_t));
  l.host_bytes = at;  // upload copies the header, the items, the merges and the page bases
  for (int op = 0; op < 2; ++op)
    l.partial_o[op] = region((uint64_t)c.partial_rows[op] * head_dim * sizeof(float));
  for (int op = 0; op < 2; ++op)
    l.partial_lse[op] = region((uint64_t)c.partial_rows[op] * sizeof(float));
  l.workspace_bytes = align_up(at);
  return l;
}

// The proportional policy's ratio prefill:decode: the pair (x, y), x + y <= 16, whose prefill
// share x / (x + y) is closest to the tickets' share; ties go to the smallest x + y. An op with
// no tickets gets 0 (the other 1), so the kernel never prefers an op with no work.
inline void reduce_ratio(int64_t prefill, int64_t decode, int32_t ratio[2]) {
  if (prefill == 0 || decode == 0) {
    ratio[0] = prefill > 0;
    ratio[1] = decode > 0;
    return;
  }
  const double share = (double)prefill / (double)(prefill + decode);
  double best = 2.0;
  for (int sum = 2; sum <= 16; ++sum)
    for (int x = 1; x < sum; ++x) {
      const double err = share > (double)x / sum ? share - (double)x / sum : (double)x / sum - share;
      if (err < best - 1e-12) best = err, ratio[0] = x, ratio[1] = sum - x;
    }
}

// Everything plan_for allocates, kept per thread between plans (see plan_for).
struct Scratch {
  Batch batch;
  OpWork work[2];
  SortScratch sort;
  std::vector<int64_t> next;  // emit_work's next item of each bucket

  void clear() {
    batch.clear();
    for (OpWork& w : work) w.clear();
  }
};

}  // namespace planner

// Plans one batch for the kernel described by Traits. host_staging == NULL: only fills *out
// (sizes, counts, grids) and returns PODGEN_OK. Otherwise writes the header, items and merges
// (out->host_bytes bytes, padding zeroed) for upload_plan. On failure returns a PODGEN_ERR_*
// status and a message in *error; *out is zeroed, except that with a too-small staging buffer it
// still carries host_bytes and workspace_bytes. May throw std::bad_alloc (the C ABI catches it).
// Input is podgen_batch or podgen_ragged_batch (planner_input.inl reads either).
template <class Input>
int plan_for(const KernelShape& k, const Input& input, const podgen_plan_options& options,
             void* host_staging, uint64_t host_bytes, podgen_plan* out, std::string* error) {
  using namespace planner;
  *out = podgen_plan{};
  // Per-thread buffers kept between plans (cleared, capacity kept): once a thread has planned a
  // batch as large, planning allocates nothing. plan_for never re-enters itself on one thread.
  thread_local Scratch scratch;
  scratch.clear();
  Batch& batch = scratch.batch;
  OpWork* work = scratch.work;
  Options o;
  int status = check_options(k, options, &o, error);
  if (status == PODGEN_OK) status = read_batch(k, input, o, &batch, error);
  if (status == PODGEN_OK && o.graph_mode) status = check_bucket(k, o, batch, error);
  if (status != PODGEN_OK) return status;

  for (int op = 0; op < 2; ++op) build_row_blocks(k, batch.parts[op], op, &work[op].blocks);
  for (int op = 0; op < 2; ++op) {
    status = count_work(k.heads_kv, k.tile_q[op], k.tile_kv[op], split_policy(k, o, op), &work[op],
                        &scratch.sort, error);
    if (status != PODGEN_OK) return status;
  }
  const int64_t V = k.virtual_ctas;
  const int64_t live_items[2] = {work[0].items, work[1].items};
  const int64_t live_merges[2] = {work[0].merges, work[1].merges};
  const int64_t live_tickets[2] = {live_items[0], ceil_div(live_items[1], V)};

  Capacity cap;
  if (o.graph_mode) {
    status = bucket_capacity(k, o, batch.ragged, &cap, error);
    if (status != PODGEN_OK) return status;
    for (int op = 0; op < 2; ++op)
      if (live_items[op] > cap.items[op] || live_merges[op] > cap.merges[op] ||
          work[op].partial_rows > cap.partial_rows[op])
        return fail(error, PODGEN_ERR_UNSUPPORTED,
                    "internal planner error: %s work (%lld items, %lld merges, %lld partial rows) "
                    "exceeds the bucket capacity (%lld, %lld, %lld)",
                    op == 0 ? "prefill" : "decode", (long long)live_items[op],
                    (long long)live_merges[op], (long long)work[op].partial_rows,
                    (long long)cap.items[op], (long long)cap.merges[op],
                    (long long)cap.partial_rows[op]);
  } else {
    for (int op = 0; op < 2; ++op) {
      cap.items[op] = live_items[op];
      cap.merges[op] = live_merges[op];
      cap.partial_rows[op] = work[op].partial_rows;
    }
    cap.requests = (int64_t)batch.page_base.size();
  }
  const Layout layout = make_layout(cap, k.heads_kv, k.head_dim);

  // The plan. Counts, ratio and max_splits are this batch's; grids and offsets come from the
  // capacities (equal to the counts outside graph mode), so in graph mode they depend only on
  // the bucket and a captured launch stays valid. Extra CTAs find no ticket / item and exit.
  podgen_plan& p = *out;
  p.abi_version = PODGEN_ABI_VERSION;
  p.graph_mode = o.graph_mode;
  p.num_prefills = (int32_t)batch.parts[POD_OP_PREFILL].size();
  p.num_decodes = (int32_t)batch.parts[POD_OP_DECODE].size();
  p.total_prefill_tokens = (int32_t)batch.prefill_tokens;
  p.num_sms = o.num_sms;
  for (int op = 0; op < 2; ++op) {
    p.num_items[op] = (int32_t)live_items[op];
    p.num_merges[op] = (int32_t)live_merges[op];
    p.num_tickets[op] = (int32_t)live_tickets[op];
    p.max_splits[op] = work[op].max_splits;
    p.grid_merge[op] = (int32_t)(std::min<int64_t>(cap.merges[op], (int64_t)kMergeCtasPerSm * o.num_sms) *
                                 pod_combine_chunks(k.tile_q[op]));
    p.items_offset[op] = layout.items[op];
    p.merges_offset[op] = layout.merges[op];
    p.partial_o_offset[op] = layout.partial_o[op];
    p.partial_lse_offset[op] = layout.partial_lse[op];
  }
  reduce_ratio(live_tickets[0], live_tickets[1], p.ratio);
  // A persistent prefill-only kernel needs no more CTAs than SMs (one fills an SM).
  p.grid_prefill = (int32_t)(k.persistent_prefill ? std::min<int64_t>(cap.items[0], o.num_sms) : cap.items[0]);
  p.grid_decode = (int32_t)ceil_div(cap.items[1], V);
  // Ticket capacity: prefill items + decode CTAs; roles (ctasPerSm 1): one persistent CTA per SM.
  const int32_t ticket_capacity = (int32_t)cap.items[0] + p.grid_decode;
  p.grid_fused = k.roles && ticket_capacity > 0 ? o.num_sms : ticket_capacity;
  p.debug_count_tiles = o.count_tiles;
  p.page_base_offset = layout.page_base;
  p.host_bytes = layout.host_bytes;
  p.workspace_bytes = layout.workspace_bytes;
  // What a run's tensors must hold: this batch's needs, or in graph mode the bucket's.
  p.ragged = batch.ragged;
  p.num_requests = (int32_t)batch.page_base.size();
  if (o.graph_mode) {
    p.q_rows[0] = (int32_t)std::min<int64_t>(
        kInt32Max, o.max_prefill_tokens + (batch.ragged ? o.max_decodes : 0));
    p.q_rows[1] = batch.ragged ? 0 : (int32_t)o.max_decodes;
    p.cache_pages = (int32_t)o.max_num_pages;
    p.page_entries = k.paged ? (uint64_t)o.max_page_entries : 0;
  } else {
    p.q_rows[0] = (int32_t)batch.q_rows[0];
    p.q_rows[1] = (int32_t)batch.q_rows[1];
    p.cache_pages = batch.num_pages;
    p.page_entries = batch.page_entries;
  }

  if (!host_staging) return PODGEN_OK;
  if (host_bytes < layout.host_bytes) {
    const podgen_plan sizes = p;
    *out = podgen_plan{};
    out->host_bytes = sizes.host_bytes;
    out->workspace_bytes = sizes.workspace_bytes;
    return fail(error, PODGEN_ERR_WORKSPACE_TOO_SMALL,
                "host_staging_bytes=%llu < host_bytes=%llu this plan needs",
                (unsigned long long)host_bytes, (unsigned long long)layout.host_bytes);
  }

  // Staging image of workspace bytes [0, host_bytes): header (counters zero), items, merges,
  // page bases.
  unsigned char* bytes = static_cast<unsigned char*>(host_staging);
  // Zeroes what no live data covers (alignment padding, graph mode's spare capacity); the rest is
  // written once below.
  const struct { uint64_t begin, bytes; } live[] = {
      {0, sizeof(PodDeviceHeader)},
      {layout.items[0], (uint64_t)(live_items[0] / k.heads_kv) * sizeof(PodWorkItem)},
      {layout.items[1], (uint64_t)(live_items[1] / k.heads_kv) * sizeof(PodWorkItem)},
      {layout.merges[0], (uint64_t)(live_merges[0] / k.heads_kv) * sizeof(PodMergeItem)},
      {layout.merges[1], (uint64_t)(live_merges[1] / k.heads_kv) * sizeof(PodMergeItem)},
      {layout.page_base, (uint64_t)batch.page_base.size() * sizeof(int32_t)}};
  uint64_t zero_from = 0;
  for (const auto& region : live) {
    memset(bytes + zero_from, 0, (size_t)(region.begin - zero_from));
    zero_from = region.begin + region.bytes;
  }
  memset(bytes + zero_from, 0, (size_t)(layout.host_bytes - zero_from));
  PodDeviceHeader header;
  memset(&header, 0, sizeof header);
  for (int op = 0; op < 2; ++op) {
    header.num_items[op] = p.num_items[op];
    header.num_merges[op] = p.num_merges[op];
    header.num_tickets[op] = p.num_tickets[op];
    header.ratio[op] = p.ratio[op];
  }
  header.count_tiles = o.count_tiles;
  memcpy(bytes, &header, sizeof header);
  for (int op = 0; op < 2; ++op)
    emit_work(work[op], k.heads_kv, k.tile_q[op], bytes + layout.items[op], bytes + layout.merges[op],
              &scratch.next);
  if (!batch.page_base.empty())
    memcpy(bytes + layout.page_base, batch.page_base.data(),
           batch.page_base.size() * sizeof(int32_t));
  return PODGEN_OK;
}

template <class Traits, class Input>
int plan(const Input& batch, const podgen_plan_options& options, void* host_staging,
         uint64_t host_bytes, podgen_plan* out, std::string* error) {
  return plan_for(KernelShape::of<Traits>(), batch, options, host_staging, host_bytes, out, error);
}

}  // namespace pod
