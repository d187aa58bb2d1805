// fp8 (e4m3) KV cache (Traits::kKvFp8): the tile loops copy fp8 K/V rows with cp.async into
// row-major staging tiles (D bytes a row), then dequantize the tile about to be computed into the
// 16-bit tile layout their tensor-core loads read. The conversion is exact (every e4m3 value is an
// fp16 and a bf16 value); the fp32 scales are applied outside the tile: K's to the logits
// (Variants::score_scale_log2), V's to the output rows (Variants::v_scale).
#pragma once
#include <cuda_fp8.h>
#include "primitives.cuh"

namespace pod {

// Staging tiles: row-major, rows of kChunks 16-byte chunks, unswizzled (each thread copies and
// later reads runs of consecutive bytes, so neither side has bank conflicts).
template <int kChunks>
struct RowMajorTile {
  static __device__ __forceinline__ uint32_t offset(int row, int chunk) { return (uint32_t)(row * kChunks + chunk) * 16; }
};

// Conversions of single elements (the reference kernel and the random fill): exact to fp32, and
// from fp32 rounded to nearest, saturating at +-448 (never NaN).
template <>
struct Cvt<__nv_fp8_e4m3> {
  static __device__ __forceinline__ __nv_fp8_e4m3 from_float(float x) { return __nv_fp8_e4m3(x); }
  static __device__ __forceinline__ float to_float(__nv_fp8_e4m3 x) { return static_cast<float>(x); }
};

// Two e4m3 (element 0 in the low byte) as a 16-bit pair of T (element 0 in the low half). Host too,
// for test/native/test_kv_fp8.cu.
template <class T>
__host__ __device__ __forceinline__ uint32_t e4m3x2_to(uint16_t two);

template <>
__host__ __device__ __forceinline__ uint32_t e4m3x2_to<half>(uint16_t two) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(two, __NV_E4M3);
  return (uint32_t)h.x | ((uint32_t)h.y << 16);
}

// Through fp16: every nonzero e4m3 value is a normal fp16 (exponent field 6 or more), whose bits
// shifted right by 3 are a bf16 of the same sign and mantissa with an exponent 112 too small;
// multiplying by 2^112 (0x7780) is exact. Zeros stay zeros. (e4m3 NaN would not stay NaN: the
// random fill never writes it, and saturating quantizers do not either.)
template <>
__host__ __device__ __forceinline__ uint32_t e4m3x2_to<__nv_bfloat16>(uint16_t two) {
  const uint32_t h = e4m3x2_to<half>(two);
  const uint32_t shifted = (h & 0x80008000u) | ((h >> 3) & 0x0FFF0FFFu);
  const __nv_bfloat162 b = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&shifted),
                                   __floats2bfloat162_rn(0x1p112f, 0x1p112f));
  return *reinterpret_cast<const uint32_t*>(&b);
}

// Dequantizes rows [row0, row0 + kRows) of an fp8 staging tile (RowMajorTile, D bytes a row) at
// s_src into the 16-bit tile at s_dst (Layout, D * 2 bytes a row): each thread turns 8 bytes into
// one 16-byte chunk; threads tid = 0 .. kThreads-1 share the work.
template <class T, int D, int kRows, int kThreads, class Layout>
__device__ __forceinline__ void dequantize_rows(uint32_t s_src, uint32_t s_dst, int row0, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte chunks of a 16-bit row
  static_assert((kRows * kChunks) % kThreads == 0 || kThreads % kChunks == 0, "threads cover whole rows");
  // Unrolled by 2 only: it runs while the accumulators hold most registers (fully unrolled, ptxas
  // spilled in the 2-CTA wgmma prefill).
#pragma unroll 2
  for (int i = 0; i < (kRows * kChunks + kThreads - 1) / kThreads; ++i) {
    const int idx = tid + i * kThreads;
    if ((kRows * kChunks) % kThreads == 0 || idx < kRows * kChunks) {
      const int r = row0 + idx / kChunks, c = idx % kChunks;
      uint32_t lo, hi;
      asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(lo), "=r"(hi) : "r"(s_src + r * D + c * 8));
      const uint32_t a = e4m3x2_to<T>((uint16_t)lo), b = e4m3x2_to<T>((uint16_t)(lo >> 16));
      const uint32_t d = e4m3x2_to<T>((uint16_t)hi), e = e4m3x2_to<T>((uint16_t)(hi >> 16));
      asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(s_dst + Layout::offset(r, c)), "r"(a), "r"(b),
                   "r"(d), "r"(e)
                   : "memory");
    }
  }
}

}  // namespace pod
