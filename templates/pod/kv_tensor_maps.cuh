// Tensor maps of the K and V caches for the bulk copy engine (TMA), used by the warp-specialized
// prefill's producer: a box is 64 columns (128 bytes, 128B-swizzled like wgmma.cuh:Sw128Tile) of
// one KV head over kBoxRows consecutive cache rows, so a page of a paged cache (or a run of rows
// of a contiguous one) lands in a tile with one instruction per 64 columns.
//
// The maps name the cache's base address; the host encodes them at every launch (launch.cuh) and
// passes them by value (__grid_constant__). Their row bound is INT32_MAX: the planner has checked
// every page index against the cache's size, and no box ever reaches past a request's pages.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums; the encode function is reached through cudart
#include <cuda_runtime.h>
#include <stdint.h>

namespace pod {

struct PodKvMaps {
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

typedef CUresult (*EncodeTiledFn)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                  const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                  CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// Encodes the K and V maps of a launch (host). NULL caches (a batch with no prefill) get zeroed maps.
template <class Traits>
inline cudaError_t encode_kv_maps(const void* k, const void* v, PodKvMaps* out) {
  *out = PodKvMaps{};
  if (k == nullptr || v == nullptr || !KvBoxes<Traits>::kEnabled) return cudaSuccess;
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
  const cuuint64_t dims[3] = {(cuuint64_t)D, (cuuint64_t)Traits::kNumHeadsKv, (cuuint64_t)INT32_MAX};
  const cuuint64_t strides[2] = {(cuuint64_t)D * 2, (cuuint64_t)Traits::kNumHeadsKv * D * 2};  // bytes
  const cuuint32_t box[3] = {64, 1, (cuuint32_t)KvBoxes<Traits>::kRows};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUtensorMapDataType type = Traits::kDType == 1 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  for (int t = 0; t < 2; ++t) {
    const CUresult r = encode(t == 0 ? &out->k : &out->v, type, 3, const_cast<void*>(t == 0 ? k : v), dims, strides, box,
                              element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) return cudaErrorInvalidValue;  // an unaligned cache pointer
  }
  return cudaSuccess;
}

}  // namespace pod
