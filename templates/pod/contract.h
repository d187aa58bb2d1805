// podgen kernel contract: the data that travels between the host planner and the device kernels.
//
// Everything here is plain C-layout data so the planner (host C++), the kernels (CUDA) and the
// C ABI (pod_attention.h) share one definition. Tensor shapes (row-major, no padding):
//   q_prefill  [total_prefill_tokens, Hq, D]      q_decode  [num_decodes, Hq, D]
//   k, v       paged:      [num_pages, page_size, Hkv, D]
//              contiguous: [total_kv_rows, Hkv, D]
//   o_*        like the matching q;  lse_* (optional, fp32, natural log) [tokens, Hq]
// A ragged plan reads both parts' queries from one q [tokens, Hq, D] and writes one o (q[0] ==
// q[1], o[0] == o[1]); each work item carries its rows (q_token_base). Requests are numbered as
// the batch gave them (a split batch: prefills first, then decodes). The kernels locate pages by
// each request's page base, which the planner writes into the workspace (PodParams.page_indptr):
//   paged:      key j of request r is in page page_indices[page_base[r] + j / page_size]
//               (CSR: page_base = page_indptr[r]; a block table: r * its row length)
//   contiguous: rows of request r start at k[page_base[r]] (page_indices unused)
// Causality is bottom-right aligned: query token t of a chunk of q_len tokens sees keys
//   j <= kv_len - q_len + t.
//
// Query rows are *packed*: inside one request and one KV head, packed row p is query token
// p / group and query head kv_head * group + p % group (group = Hq / Hkv). A tile is a run of
// consecutive packed rows, so all query heads that share a KV head load each K/V tile once.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
namespace pod {
#endif

// Slots in the per-SM counter array; %smid is taken modulo this (H100 has 132 SMs).
#define POD_MAX_SMS 256
// Number of tile kinds. Index 0 is prefill, 1 is decode everywhere below.
#define POD_OP_PREFILL 0
#define POD_OP_DECODE 1
// Prefill mainloops (Traits::Prefill::kEngine, chosen by the resource model).
#define POD_ENGINE_MMA 0                // mma.sync, every warp loads and computes (sm_80+)
#define POD_ENGINE_WGMMA 1              // wgmma, every warp loads and computes (sm_90a)
#define POD_ENGINE_WARP_SPECIALIZED 2   // a producer warpgroup loads, consumer warpgroups run wgmma

// One tile of attention work: packed rows [row_begin, row_begin + tile rows) of one request and
// one KV head, over keys [kv_begin, kv_end) of that request (one KV split).
// The workspace stores one item for all Hkv KV heads of a row block and split: the op's item i,
// the index the scheduler hands out (num_items counts these), is stored item i / Hkv for KV head
// i % Hkv (pod_item_for_head), so the host writes Hkv times fewer items (8,064 a plan fewer
// per 256 MHA decodes: the bulk of a plan's time).
typedef struct PodWorkItem {
  int32_t request;      // request index (prefills first, then decodes) into the page table
  int32_t kv_head;      // KV head; query heads kv_head*group .. +group-1 (stored: 0)
  int32_t q_token_base; // row of the request's first query token in q/o (prefill: qo_indptr[r])
  int32_t q_len;        // query tokens of the request (1 for a decode)
  int32_t kv_len;       // keys of the request (including the chunk itself)
  int32_t row_begin;    // first packed row of the tile
  int32_t kv_begin;     // first key of this split
  int32_t kv_end;       // one past the last key of this split (already clipped by causality)
  int32_t split;        // split index, 0 .. num_splits-1
  int32_t num_splits;   // 1: write o/lse directly; >1: write fp32 partials for the combine
  int32_t partial_row;  // first row of this tile's partials (split s at partial_row + s*tile rows;
                        // -1: none); stored: KV head 0's
  int32_t head_partial_rows;  // partial rows from one KV head's tile to the next's (0: none)
} PodWorkItem;

// One tile whose splits the combine step merges (same fields, split = 0; stored the same way).
typedef PodWorkItem PodMergeItem;

#ifdef __cplusplus
#ifdef __CUDACC__
#define POD_HOST_DEVICE __host__ __device__
#else
#define POD_HOST_DEVICE
#endif
// The item of KV head kv_head from a stored item (see PodWorkItem).
POD_HOST_DEVICE inline PodWorkItem pod_item_for_head(PodWorkItem it, int32_t kv_head) {
  it.kv_head = kv_head;
  if (it.partial_row >= 0) it.partial_row += kv_head * it.head_partial_rows;
  return it;
}
// The combine merges one merge item's tile rows in this many CTAs, chunks of at least 32 rows: a
// thread's loads of one row (the splits' lse, then their partial O) depend on each other, so the
// combine is bound by latency, and one CTA a 128-row tile left most SMs idle on a small chunk's few
// merges. The planner sizes the combine grid by it; the combine kernel maps a CTA to a chunk by it.
POD_HOST_DEVICE constexpr int32_t pod_combine_chunks(int32_t tile_q) { return tile_q >= 64 ? tile_q / 32 : 1; }
#undef POD_HOST_DEVICE
#endif

// Device-side plan header: lives at the start of the workspace. Counters are zero before the
// first launch (the upload writes them) and the fused kernel's last CTA resets them, so CUDA
// graph replays need no memset. Counts are read here (not from kernel parameters) so a graph
// captured for a bucket runs any batch planned into the same workspace.
typedef struct PodDeviceHeader {
  // --- written by the planner on every plan ---
  int32_t num_items[2];     // work items per op (prefill, decode)
  int32_t num_merges[2];    // merge items per op
  int32_t num_tickets[2];   // tickets per op in the fused kernel (decode: ceil(items / virtual))
  int32_t ratio[2];         // proportional policy: of every ratio[0]+ratio[1] CTAs on an SM, the
                            // first ratio[0] prefer prefill
  int32_t count_tiles;      // 1: kernels add executed tiles to tiles_done (exactly-once checks)
  int32_t reserved_[7];
  // --- counters: zero between launches ---
  uint32_t ticket[2];       // next ticket per op
  uint32_t ctas_done;       // CTAs finished (the last one resets every counter)
  uint32_t tiles_done[2];   // debug builds: tiles executed per op (not reset; planner zeroes)
  uint32_t counters_pad_[3];
  uint32_t sm_slot[POD_MAX_SMS];  // CTAs that have started on each SM during this launch
} PodDeviceHeader;

// Kernel parameters: pointers only, so a graph captured once stays valid while the plan changes.
typedef struct PodParams {
  const void* q[2];          // q_prefill, q_decode
  void* o[2];                // o_prefill, o_decode
  float* lse[2];             // optional (NULL)
  const void* k;
  const void* v;
  const int32_t* page_indptr;   // page base per request (the plan's, in the workspace)
  const int32_t* page_indices;
  PodDeviceHeader* header;
  const PodWorkItem* items[2];
  const PodMergeItem* merges[2];
  float* partial_o[2];       // [rows, D] fp32
  float* partial_lse[2];     // [rows] fp32 (natural log)
  float sm_scale;            // softmax scale (default 1/sqrt(D))
  int32_t pad_;
} PodParams;

#ifdef __cplusplus
// Kernel parameters of a spec with attention sinks (Traits::kSinks): PodParams and the sink logits.
// A struct of its own, so that the kernels of every other spec keep their parameters and code; the
// tile loops take `const PodParams&` either way and read the sinks through Variants::sink_log2.
struct PodSinkParams : PodParams {
  const float* sinks;  // [Hq] fp32: the sink logit of each query head, in units of the scaled logits
};

// Kernel parameters of a spec with an fp8 KV cache (Traits::kKvFp8): its base (PodParams or
// PodSinkParams) and the dequantization scales, read through Variants::score_scale_log2 / v_scale.
template <class Base>
struct PodKvScaleParams : Base {
  const float* k_scale;  // fp32 [1] or [Hkv] (Traits::kKvScalePerHead): k = k_scale * k8
  const float* v_scale;  // the same for v
};

// The parameter struct of Traits' kernels (the generated Traits::Params: PodParams or PodSinkParams,
// within PodKvScaleParams for an fp8 KV cache).
template <class Traits>
using KernelParams = typename Traits::Params;
#endif

#ifdef __cplusplus
}  // namespace pod
#endif
