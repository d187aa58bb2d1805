// Tile primitives for sm_80+ (Ampere, Ada, Hopper): cp.async 16-byte copies into swizzled shared
// memory, ldmatrix fragment loads, mma.sync m16n8k16 with fp32 accumulators, packing fp32 pairs
// into 16-bit pairs, warp shuffles and named barriers.
//
// Shared-memory tiles are row-major [rows][D] of 16-bit elements, each row cut into 16-byte chunks
// (8 elements). Chunk c of row r is stored at chunk c ^ (r & 7) of that row, so the eight row
// addresses of one ldmatrix 8x8 matrix (same chunk, eight consecutive rows) land in eight
// different bank groups. This needs at least 8 chunks per row (D >= 64).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace pod {

// ---------------------------------------------------------------- shared-memory addressing
// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile of kChunks chunks per row.
template <int kChunks>
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  static_assert(kChunks >= 8 && kChunks % 8 == 0, "swizzle needs a multiple of 8 chunks per row");
  return (uint32_t)((row * kChunks + (chunk ^ (row & 7))) * 16);
}

// ldmatrix addressing without per-load swizzle arithmetic. A lane reads row (R + row_lane) and
// chunk (C + c_lane) of the tile, where R is a multiple of 8 and C is even (compile-time tile
// offsets) and row_lane < 16, c_lane in {0, 1} are the lane's own parts. Because a row is a
// multiple of 128 bytes, the swizzled offset splits into a per-lane part and an XOR/add with
// constants: lane_off(row_lane, c_lane) once per item, then frag_off(lane_off, R, C) (R and C
// become constants once the loops are unrolled).
template <int kChunks>
__device__ __forceinline__ uint32_t lane_off(int row_lane, int c_lane) {
  return (uint32_t)(row_lane * kChunks * 16 + ((c_lane ^ (row_lane & 7)) << 4));
}
template <int kChunks>
__device__ __forceinline__ uint32_t frag_off(uint32_t lane, int R, int C) {  // R % 8 == 0, C even
  return (lane ^ (uint32_t)((C & 7) << 4)) + (uint32_t)((C & ~7) * 16 + R * kChunks * 16);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// ---------------------------------------------------------------- cp.async
// 16-byte global->shared copy; when `valid` is false nothing is read and the 16 bytes are zeroed
// (src-size 0), so `src` only has to be some mapped address.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// ---------------------------------------------------------------- ldmatrix
// Four 8x8 matrices of 16-bit elements; lane l gives the row address for matrix l / 8, row l % 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// ---------------------------------------------------------------- mma.sync m16n8k16
// D(16x8, fp32) += A(16x16, row) * B(16x8, col). Fragment ownership (g = lane / 4, t = lane % 4):
//   A: a[0] (g, 2t..2t+1)  a[1] (g+8, 2t..)  a[2] (g, 2t+8..)  a[3] (g+8, 2t+8..)
//   B: b[0] (k 2t..2t+1, n g)  b[1] (k 2t+8.., n g)
//   C: c[0..1] (g, 2t..2t+1)  c[2..3] (g+8, 2t..2t+1)
template <class T>
struct Mma;

// PTX_TYPE is the element type's name in PTX (as in wgmma.cuh).
#define POD_MMA(TYPE, PTX_TYPE)                                                                    \
  template <>                                                                                      \
  struct Mma<TYPE> {                                                                               \
    static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, \
                                               uint32_t b1) {                                      \
      asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX_TYPE "." PTX_TYPE                \
                   ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"         \
                   : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                \
    }                                                                                              \
  };
POD_MMA(half, "f16")
POD_MMA(__nv_bfloat16, "bf16")
#undef POD_MMA

// ---------------------------------------------------------------- conversions
template <class T>
struct Cvt;

template <>
struct Cvt<half> {
  // Two floats -> one 32-bit register holding (lo, hi) as half2.
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ half from_float(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ float to_float(half x) { return __half2float(x); }
};

template <>
struct Cvt<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};

// ---------------------------------------------------------------- math and warp helpers
__device__ __forceinline__ float fast_exp2(float x) {  // 2^x; exp2(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float fast_tanh(float x) {  // one MUFU op; relative error below 2^-10.9
  float y;
  asm("tanh.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Reduce across the four lanes of a quad (the lanes that share an accumulator row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Barrier over `threads` threads (a multiple of 32) on hardware barrier `id` (1..15; 0 is
// __syncthreads). Orders shared-memory accesses among the participating threads.
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Counts this thread's warp towards barrier `id` without waiting (the waiters use named_barrier).
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ uint32_t smid() {
  uint32_t id;
  asm volatile("mov.u32 %0, %%smid;\n" : "=r"(id));
  return id;
}

}  // namespace pod
