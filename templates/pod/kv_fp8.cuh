// fp8 (e4m3) KV cache (Traits::kKvFp8). The fp32 scales are applied outside the tiles: K's to the
// logits (Variants::score_scale_log2), V's to the output rows (Variants::v_scale). Every e4m3 value
// is an fp16 and a bf16 value, so each conversion below is exact. Two ways to reach the tensor cores:
//   - the prefill loops copy fp8 K/V rows with cp.async into row-major staging tiles (D bytes a row)
//     and dequantize the tile about to be computed into the 16-bit tile layout their tensor-core
//     loads read (dequantize_rows);
//   - the decode loop reads its fp8 tiles (Fp8Tile: rows of 128 bytes in the row swizzle) straight
//     into mma.sync fragments with ldmatrix and converts them in registers (Fp8Frags), so no 16-bit
//     copy of a tile is ever written: half the shared-memory traffic and instructions a key.
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

// ---------------------------------------------------------------- fp8 tiles read as fragments
// Decode fp8 tiles: rows of 128 bytes (8 chunks of 16 e4m3 elements; D = 64 rows are padded), chunk
// c of row r at chunk c ^ (r & 7) as in the 16-bit tiles, so the ldmatrix addressing of
// primitives.cuh (lane_off / frag_off with 8 chunks a row) reads them without bank conflicts.
constexpr int kFp8TileRowBytes = 128;
struct Fp8Tile {
  static constexpr int kChunks = kFp8TileRowBytes / 16;
  static __device__ __forceinline__ uint32_t offset(int row, int chunk) { return swz<kChunks>(row, chunk); }
};

// ldmatrix reads 16-bit elements, so an fp8 matrix of 8 rows x 16 bytes arrives as pairs of bytes:
// lane (g = lane / 4, t = lane % 4) gets row g, bytes 4t .. 4t+3 (plain), or bytes 2g, 2g+1 of rows
// 2t and 2t+1 (.trans). Each is made a valid mma.sync m16n8k16 operand as follows.
//   K (S = Q K^T, B operand, n = key, k = head dim): a plain read gives lane t the dims 4t .. 4t+3 of
//     key g. The dot product does not care in which order it visits the dims, so the dims of each
//     16 are permuted: lane t's bytes 4t, 4t+1 act as k = 2t, 2t+1 (b0) and 4t+2, 4t+3 as k = 2t+8,
//     2t+9 (b1). Q's A fragments are read with the same permutation (q_fragment_permuted).
//   V (O += P V, B operand, k = key, n = head dim): a .trans read gives lane (g, t) keys 2t, 2t+1 of
//     dims 2g and 2g+1. Split by dim, each pair is b0 of an 8-column block whose column g is dim 2g
//     (even block) or 2g + 1 (odd block); the matrix of keys 8 .. 15 gives b1. The output columns
//     of a 16-dim chunk c are then o[2c] = dims 16c + 4t, 16c + 4t + 2 and o[2c + 1] = dims
//     16c + 4t + 1, 16c + 4t + 3 (lane t holds dims 16c + 4t .. 16c + 4t + 3 in those four).
// P V runs in fp16 (P in [0, 1] has more precision as fp16 than as bf16, and V converts to fp16
// in one instruction a pair), whatever the model's 16-bit type.
template <class T>
struct Fp8Frags {
  // A plain read of K: the two B registers of its 16 permuted dims.
  static __device__ __forceinline__ void k_operand(uint32_t four, uint32_t& b0, uint32_t& b1) {
    b0 = e4m3x2_to<T>((uint16_t)four);
    b1 = e4m3x2_to<T>((uint16_t)(four >> 16));
  }
  // A .trans read of V (keys 2t, 2t+1 of dims 2g, 2g+1): the fp16 pairs of the even and odd dim.
  static __device__ __forceinline__ void v_operands(uint32_t four, uint32_t& even, uint32_t& odd) {
    const uint32_t by_dim = __byte_perm(four, 0, 0x3120);  // bytes (k0 d0, k1 d0, k0 d1, k1 d1)
    even = e4m3x2_to<half>((uint16_t)by_dim);
    odd = e4m3x2_to<half>((uint16_t)(by_dim >> 16));
  }
};

// Q's A fragment of the 16 dims of chunk kk in K's permuted order (Fp8Frags): rows g and g + 8 of
// a 16-bit Q tile (RowSwizzledTile of kChunks 16-byte chunks), dims 16kk + 4t .. 16kk + 4t + 3.
template <int kChunks>
__device__ __forceinline__ void q_fragment_permuted(uint32_t (&a)[4], uint32_t s_q, int kk, int lane) {
  const int g = lane / 4, t = lane % 4;
  const uint32_t in_chunk = (uint32_t)(t % 2) * 8;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(a[0]), "=r"(a[2]) : "r"(s_q + swz<kChunks>(g, 2 * kk + t / 2) + in_chunk));
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(a[1]), "=r"(a[3]) : "r"(s_q + swz<kChunks>(g + 8, 2 * kk + t / 2) + in_chunk));
}

}  // namespace pod
