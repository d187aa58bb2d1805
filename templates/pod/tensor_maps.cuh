// Tensor maps of the prefill's Q and of the K and V caches for the bulk copy engine (TMA), used by
// the warp-specialized prefill's producer. A box holds rows of 64-column chunks (128 bytes,
// 128B-swizzled like wgmma.cuh:Sw128Tile):
//   K:    one KV head over kRows consecutive cache rows, so a page of a paged cache (or a run of
//         rows of a contiguous one) lands in a tile with one instruction per 64 columns;
//   V:    the same rows with all of their chunks in one box (a 4-D map; VTileLayout);
//   Q:    the kGroup query heads of one KV head over kTileQ / kGroup consecutive tokens, i.e. a
//         whole tile of packed rows (row = token * kGroup + head in the group) per 64 columns.
//
// The maps name the tensors' base addresses; the host encodes them at every launch (launch.cuh) and
// passes them by value (__grid_constant__). Their row (token) bound is INT32_MAX: the planner has
// checked every page index against the cache's size, no K/V box ever reaches past a request's
// pages, and Q boxes are loaded only for tiles whose rows all belong to the item's request.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums; the encode function is reached through cudart
#include <cuda_runtime.h>
#include <stdint.h>

#include "wgmma.cuh"  // Sw128Tile

namespace pod {

struct PodTensorMaps {
  CUtensorMap q;
  CUtensorMap k;
  CUtensorMap v;
};

template <class Traits>
struct KvBoxes {
  static constexpr int kTileKv = Traits::Prefill::kTileKv;
  // Items start at multiples of the plan's KV tile, which the prefill-only kernel's tile (a
  // multiple of it) may exceed: a box never covers more than one plan tile, so it stays in a page.
  static constexpr int kPlanTileKv = Traits::Prefill::kPlanTileKv;
  static constexpr int kPageSize = Traits::kPaged ? Traits::kPageSize : 1;
  // Rows per box: a page (at most a plan tile); a contiguous cache's rows in runs of 64.
  static constexpr int kRows = Traits::kPaged ? (kPageSize < kPlanTileKv ? kPageSize : kPlanTileKv)
                                              : (kTileKv < 64 ? kTileKv : 64);
  // Boxes start on 1024-byte swizzle periods (8 rows) and never straddle a page; otherwise the
  // producer copies every row with cp.async.
  static constexpr bool kEnabled =
      kRows % 8 == 0 && kRows <= 256 && kTileKv % kRows == 0 &&
      (!Traits::kPaged || kPlanTileKv % kPageSize == 0 || kPageSize % kPlanTileKv == 0);
  static constexpr uint32_t kBytes = (uint32_t)kRows * Traits::kHeadDim * 2;  // one box, all columns
};

// The V tile in shared memory: blocks of kBlockRows rows (what one box copies: a page, or a run of
// rows of a contiguous cache), each holding all of its 64-column chunks, so that one 4-D box copies
// a block with every column. P V reads V 16 keys at a time, which lie in one block (or in two of 8
// rows), so its descriptors serve any such blocks. K cannot be blocked so: Q K^T reads a whole
// sub-block of keys, whose 8-row groups must lie at one stride; K keeps Sw128Tile's layout and one
// box per 64 columns. With one block (no boxes) this is Sw128Tile<kTileKv>. At page 16 a 128-key
// V tile is 8 boxes instead of 16, which made the prefill-only kernel 3-10% faster there (stop 27).
template <class Traits>
struct VTileLayout {
  using B = KvBoxes<Traits>;
  static constexpr int kBlockRows = B::kEnabled ? B::kRows : B::kTileKv;
  static constexpr int kBlockBytes = kBlockRows * Traits::kHeadDim * 2;
  static_assert(kBlockRows == 8 || kBlockRows % 16 == 0, "P V's 16 keys lie in one block, or span two blocks of 8 rows");
  // Its block, then Sw128Tile's swizzle inside it (a block's rows start on 8-row swizzle periods).
  static __device__ __forceinline__ uint32_t offset(int row, int chunk) {
    const uint32_t r = (uint32_t)row;  // rows are never negative; unsigned, r % kBlockRows keeps r's low 3 bits
    return (r / kBlockRows) * kBlockBytes + Sw128Tile<kBlockRows>::offset((int)(r % kBlockRows), chunk);
  }
  // P V's B operand (MN-major) for the 16 keys from `key`, a multiple of 16: 64-column chunks
  // kLeading bytes apart, 8-row groups kStride apart (the next block when a block is 8 rows).
  static constexpr uint32_t kLeading = kBlockRows * 128;
  static constexpr uint32_t kStride = kBlockRows == 8 ? kBlockBytes : 1024;
  static __device__ __forceinline__ uint32_t key_offset(int key) {
    return (uint32_t)((key / kBlockRows) * kBlockBytes + (key % kBlockRows) * 128);
  }
};

// A Q tile as one box per 64 columns: whole tokens per tile (kTileQ a multiple of the group), each
// box dimension at most 256. Otherwise the producer copies Q with cp.async.
template <class Traits>
struct QBoxes {
  static constexpr int kTileQ = Traits::Prefill::kTileQ;
  static constexpr int kTokens = kTileQ / Traits::kGroup;
  static constexpr bool kEnabled = kTileQ % Traits::kGroup == 0 && kTokens <= 256 && Traits::kGroup <= 256;
  static constexpr uint32_t kBytes = (uint32_t)kTileQ * Traits::kHeadDim * 2;  // the tile, all columns
};

typedef CUresult (*EncodeTiledFn)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                  const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                  CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// One 3-D map over [rows, middle, D] (16-bit elements, rows unbounded) with boxes of 64 columns x
// `box_middle` x `box_rows`, 128B-swizzled. NULL data gives a zeroed map (nothing of it is loaded).
inline cudaError_t encode_map_3d(EncodeTiledFn encode, CUtensorMapDataType type, const void* data, int d,
                                 int middle, int box_middle, int box_rows, CUtensorMap* out) {
  *out = CUtensorMap{};
  if (data == nullptr) return cudaSuccess;
  const cuuint64_t dims[3] = {(cuuint64_t)d, (cuuint64_t)middle, (cuuint64_t)INT32_MAX};
  const cuuint64_t strides[2] = {(cuuint64_t)d * 2, (cuuint64_t)middle * d * 2};  // bytes
  const cuuint32_t box[3] = {64, (cuuint32_t)box_middle, (cuuint32_t)box_rows};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUresult r = encode(out, type, 3, const_cast<void*>(data), dims, strides, box, element_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;  // an unaligned tensor pointer
}

// A 4-D map of the V cache ([rows, heads, d] seen as 64-column chunks) whose box is box_rows rows of
// one head with all of their chunks, landing as VTileLayout's block: [chunk][row][64].
inline cudaError_t encode_map_blocked(EncodeTiledFn encode, CUtensorMapDataType type, const void* data, int d,
                                      int heads, int box_rows, CUtensorMap* out) {
  *out = CUtensorMap{};
  if (data == nullptr) return cudaSuccess;
  const cuuint64_t dims[4] = {64, (cuuint64_t)INT32_MAX, (cuuint64_t)d / 64, (cuuint64_t)heads};
  const cuuint64_t strides[3] = {(cuuint64_t)heads * d * 2, 128, (cuuint64_t)d * 2};  // bytes: row, chunk, head
  const cuuint32_t box[4] = {64, (cuuint32_t)box_rows, (cuuint32_t)d / 64, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  const CUresult r = encode(out, type, 4, const_cast<void*>(data), dims, strides, box, element_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// Encodes the maps of a launch (host): Q of the prefill ([tokens, Hq, D]) and the K and V caches
// ([rows, Hkv, D]). A map whose box the spec cannot use, or whose tensor is NULL, is zeroed.
template <class Traits>
inline cudaError_t encode_tensor_maps(const void* q, const void* k, const void* v, PodTensorMaps* out) {
  *out = PodTensorMaps{};
  static EncodeTiledFn encode = nullptr;
  if (encode == nullptr) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess) return e;
    if (found != cudaDriverEntryPointSuccess || fn == nullptr) return cudaErrorSymbolNotFound;
    encode = reinterpret_cast<EncodeTiledFn>(fn);
  }
  constexpr int D = Traits::kHeadDim;
  const CUtensorMapDataType type = Traits::kDType == 1 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  cudaError_t e = cudaSuccess;
  if (QBoxes<Traits>::kEnabled)
    e = encode_map_3d(encode, type, q, D, Traits::kNumHeadsQ, Traits::kGroup, QBoxes<Traits>::kTokens, &out->q);
  if (e == cudaSuccess && KvBoxes<Traits>::kEnabled && k != nullptr && v != nullptr) {
    e = encode_map_3d(encode, type, k, D, Traits::kNumHeadsKv, 1, KvBoxes<Traits>::kRows, &out->k);
    if (e == cudaSuccess) e = encode_map_blocked(encode, type, v, D, Traits::kNumHeadsKv, KvBoxes<Traits>::kRows, &out->v);
  }
  return e;
}

}  // namespace pod
