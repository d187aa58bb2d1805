// Global-memory addressing shared by the prefill and decode tile loops: where a packed query row
// lives, where key j of a request lives (paged or contiguous cache), and the 16-byte cp.async
// loads that fill swizzled shared-memory tiles (zero-filled past the valid rows / keys). The
// tile layout is a parameter: row-swizzled tiles (primitives.cuh:swz) for ldmatrix readers,
// 128B-swizzled column blocks (wgmma.cuh:Sw128Tile) for wgmma. A shared-memory row has
// Traits::kSmemHeadDim columns, whole 64-column blocks (both swizzles need them): at D = 96 the
// last 32 are padding that no load writes and no tile loop reads.
#pragma once
#include <type_traits>
#include "contract.h"
#include "kv_fp8.cuh"
#include "primitives.cuh"

namespace pod {

template <int kChunks>
struct RowSwizzledTile {
  static __device__ __forceinline__ uint32_t offset(int row, int chunk) { return swz<kChunks>(row, chunk); }
};

template <class Traits>
struct TileIo {
  using T = typename Traits::DType;
  static constexpr int D = Traits::kHeadDim;
  static constexpr int G = Traits::kGroup;
  static constexpr int kChunks = D * 2 / 16;  // 16-byte chunks per row in global memory
  static constexpr int kSmemChunks = Traits::kSmemHeadDim * 2 / 16;  // ... and in a shared-memory row
  static_assert(D == 64 || D == 96 || D == 128 || D == 256, "head dim must be 64, 96, 128 or 256");
  static_assert(Traits::kSmemHeadDim % 64 == 0 && Traits::kSmemHeadDim >= D && Traits::kSmemHeadDim < D + 64,
                "Traits::kSmemHeadDim is headDim in whole 64-column blocks");
  static_assert(Traits::kNumHeadsQ == Traits::kNumHeadsKv * G, "Hq must equal Hkv * group");
  static_assert(sizeof(T) == 2, "q/o must be 16-bit (fp16 or bf16)");
  using KvT = typename Traits::KvDType;
  static_assert(Traits::kKvFp8 ? sizeof(KvT) == 1 : std::is_same<KvT, T>::value,
                "K/V are the dtype, or fp8 (Traits::kKvFp8)");
  static constexpr int kKvChunks = D * (int)sizeof(KvT) / 16;  // 16-byte chunks per K/V row in global memory
  // The tiles load_kv copies K/V rows into: the 16-bit tiles' layout, or fp8 staging (kv_fp8.cuh).
  template <class Layout16>
  using KvCopyLayout = typename std::conditional<Traits::kKvFp8, RowMajorTile<kKvChunks>, Layout16>::type;
  // 16-byte chunks of a row load_kv copies into: fp8 staging rows are D bytes (no padding: the
  // resource model allows fp8 at D = 64 and 128 only), 16-bit rows whole 64-column blocks.
  static constexpr int kCopyChunks = Traits::kKvFp8 ? kKvChunks : kSmemChunks;
  static_assert(!Traits::kKvFp8 || kSmemChunks == kChunks, "fp8 KV at D = 64 or 128 (no padded rows)");
  static_assert(Traits::kPaged || Traits::kPageSize == 1, "a contiguous cache has page size 1");

  // Element offset of query/output row `token` (within the part's tensor), head `head`.
  static __device__ __forceinline__ int64_t qo_offset(int token, int head) {
    return ((int64_t)token * Traits::kNumHeadsQ + head) * D;
  }

  // Row of key j of a request in the cache (page_base = page_indptr[request]), as the bulk copy
  // engine's coordinate; 32 bits hold the row index of any cache that fits a GPU (rows are
  // Hkv * D * 2 bytes). kv_offset below computes in 64 bits (in 32, the prefill kernels spill).
  static __device__ __forceinline__ int kv_row(const PodParams& p, int page_base, int j) {
    if constexpr (Traits::kPaged)
      return __ldg(p.page_indices + page_base + j / Traits::kPageSize) * Traits::kPageSize + j % Traits::kPageSize;
    else
      return page_base + j;
  }

  // Element offset of key/value row j of a request (page_base = page_indptr[request]).
  static __device__ __forceinline__ int64_t kv_offset(const PodParams& p, int page_base, int kv_head,
                                                      int j) {
    int64_t row;
    if constexpr (Traits::kPaged) {
      const int page = __ldg(p.page_indices + page_base + j / Traits::kPageSize);
      row = (int64_t)page * Traits::kPageSize + j % Traits::kPageSize;
    } else {
      row = (int64_t)page_base + j;
    }
    return (row * Traits::kNumHeadsKv + kv_head) * D;
  }

  // Copy packed query rows [row_begin, row_begin + kRows) of one item into a swizzled tile;
  // rows >= rows_valid are zero-filled. Threads tid = 0 .. kThreads-1 share the work.
  // Threads are laid out over the kSmemChunks chunks of a shared-memory row; those on padding
  // chunks (ch >= kChunks, D = 96) copy nothing.
  template <int kRows, int kThreads, class Layout = RowSwizzledTile<kSmemChunks>>
  static __device__ __forceinline__ void load_q(const T* q, const PodWorkItem& it, int rows_valid,
                                                uint32_t s_q, int tid) {
    static_assert(kThreads % kSmemChunks == 0, "a CTA row of threads covers whole rows");
    constexpr int kRowsPerPass = kThreads / kSmemChunks;
    const int ch = tid % kSmemChunks;
    if (kSmemChunks != kChunks && ch >= kChunks) return;
#pragma unroll
    for (int i = 0; i < (kRows + kRowsPerPass - 1) / kRowsPerPass; ++i) {
      const int r = tid / kSmemChunks + i * kRowsPerPass;
      if (kRows % kRowsPerPass == 0 || r < kRows) {
        const int pr = it.row_begin + r;
        const bool valid = r < rows_valid;
        const T* src = q;
        if (valid) src = q + qo_offset(it.q_token_base + pr / G, it.kv_head * G + pr % G) + ch * 8;
        cp_async_16(s_q + Layout::offset(r, ch), src, valid);
      }
    }
  }

  // Copy key/value rows [row0, row0 + kRows) of the tile that starts at key tile_start into the
  // K and V tiles of Layout (KvCopyLayout: swizzled 16-bit tiles, or fp8 staging), rows indexed by
  // their position in the tile; keys >= kv_end are zero-filled and never read from global memory.
  // Threads are laid out over the chunks of a copied row (kCopyChunks); those on the padding chunks
  // of a 16-bit row (ch >= kChunks, D = 96) copy nothing.
  template <int kRows, int kThreads, class Layout>
  static __device__ __forceinline__ void load_kv(const PodParams& p, int page_base, int kv_head,
                                                 int tile_start, int kv_end, int row0, uint32_t s_k,
                                                 uint32_t s_v, int tid) {
    const KvT* k = static_cast<const KvT*>(p.k);
    const KvT* v = static_cast<const KvT*>(p.v);
    static_assert(kThreads % kCopyChunks == 0, "a row of threads covers whole rows");
    constexpr int kRowsPerPass = kThreads / kCopyChunks;
    constexpr int kChunkElements = 16 / (int)sizeof(KvT);
    const int ch = tid % kCopyChunks;
    if (kCopyChunks != kKvChunks && ch >= kKvChunks) return;
#pragma unroll
    for (int i = 0; i < (kRows + kRowsPerPass - 1) / kRowsPerPass; ++i) {
      const int r = row0 + tid / kCopyChunks + i * kRowsPerPass;
      if (kRows % kRowsPerPass == 0 || r < row0 + kRows) {
        const int j = tile_start + r;
        const bool valid = j < kv_end;
        const int64_t off = valid ? kv_offset(p, page_base, kv_head, j) + ch * kChunkElements : 0;
        const uint32_t dst = Layout::offset(r, ch);
        cp_async_16(s_k + dst, k + off, valid);
        cp_async_16(s_v + dst, v + off, valid);
      }
    }
  }
};

// Work item `index` of an op: its stored item and KV head (see PodWorkItem in contract.h).
struct ItemRef {
  const PodWorkItem* stored;
  int kv_head;
};
template <class Traits>
__device__ __forceinline__ ItemRef item_ref(const PodWorkItem* items, int index) {
  return {items + index / Traits::kNumHeadsKv, index % Traits::kNumHeadsKv};
}

// A work item read through the read-only path. Tile loops read it again for their epilogue, so
// the fields only the epilogue needs hold no register during the KV loop.
__device__ __forceinline__ PodWorkItem load_item(ItemRef item) {
  PodWorkItem it;
  const int4* src = reinterpret_cast<const int4*>(item.stored);
  static_assert(sizeof(PodWorkItem) == 48, "PodWorkItem is 12 int32");
  int4 a = __ldg(src), b = __ldg(src + 1), c = __ldg(src + 2);
  it.request = a.x; it.kv_head = a.y; it.q_token_base = a.z; it.q_len = a.w;
  it.kv_len = b.x; it.row_begin = b.y; it.kv_begin = b.z; it.kv_end = b.w;
  it.split = c.x; it.num_splits = c.y; it.partial_row = c.z; it.head_partial_rows = c.w;
  return pod_item_for_head(it, item.kv_head);
}

// Debug plans (count_tiles): one more tile of op executed, for the exactly-once checks.
template <class Traits>
__device__ __forceinline__ void count_tile(const PodParams& p, int op) {
  if (p.header->count_tiles) atomicAdd(&p.header->tiles_done[op], 1u);
}

// Output of one packed row: either the final o/lse of the part (num_splits == 1) or the fp32
// partial of this split. Helpers for the epilogues below.
template <class Traits, int kOp, int kTileQ>
struct RowOut {
  using T = typename Traits::DType;
  static constexpr int D = Traits::kHeadDim;
  static constexpr int G = Traits::kGroup;

  // Element offset (in o or partial_o) of column 0 of tile row r, and the lse index.
  static __device__ __forceinline__ void locate(const PodWorkItem& it, int r, int64_t& o_off,
                                                int64_t& lse_idx) {
    if (it.num_splits == 1) {
      const int pr = it.row_begin + r;
      lse_idx = (int64_t)(it.q_token_base + pr / G) * Traits::kNumHeadsQ + it.kv_head * G + pr % G;
    } else {
      lse_idx = (int64_t)it.partial_row + (int64_t)it.split * kTileQ + r;
    }
    o_off = lse_idx * D;
  }
};

}  // namespace pod
