// Hopper warpgroup MMA (wgmma.mma_async, sm_90a only): the four warps of a warpgroup multiply a
// 64-row A (shared memory or registers) by an N-column B (shared memory) into fp32 accumulators
// spread over the 128 threads, asynchronously. One instruction does 64 x N x 16 multiply-adds, so
// the prefill tile loop issues a few dozen instructions per KV tile instead of hundreds of
// mma.sync, and the tensor cores are fed straight from shared memory.
//
// Accumulator layout of m64nNk16 (what the wgmma prefill mainloops and softmax.cuh rely on): warp w
// of the warpgroup owns rows 16w .. 16w+15, and within them a thread holds d[n][0..3] exactly as the C
// fragment of mma.sync m16n8k16 for columns 8n .. 8n+7 (rows g and g+8, g = lane / 4). The A
// register fragment is the mma.sync A fragment of the warp's 16 rows, so P packs into it the
// same way as on sm_80.
//
// Shared-memory operands use the 128-byte swizzle: a tile of R rows x D 16-bit columns is stored
// as D/64 column blocks of R rows x 128 bytes, and 16-byte chunk c of row r of a block sits at
// chunk c ^ (r & 7). Tiles start on 1024-byte boundaries (eight rows of 128 bytes, one swizzle
// period). For D = 64 this is the same byte layout as primitives.cuh:swz.
#pragma once
#include "primitives.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define POD_HAS_WGMMA 1
#else
#define POD_HAS_WGMMA 0
#endif

namespace pod {

// Byte offset of chunk `chunk` of row `row` in a 128B-swizzled tile of kRows rows.
template <int kRows>
struct Sw128Tile {
  static_assert(kRows % 8 == 0, "128B-swizzled tiles have a multiple of 8 rows");
  static __device__ __forceinline__ uint32_t offset(int row, int chunk) {
    return (uint32_t)((chunk >> 3) * kRows * 128 + row * 128 + (((chunk & 7) ^ (row & 7)) << 4));
  }
};

// Matrix descriptor of a 128B-swizzled operand starting at shared address `addr`. For a K-major
// operand (rows = M or N, the 16 K values of one instruction inside a 128-byte row) only
// `stride` matters: bytes between 8-row groups (1024). For an MN-major operand (rows = K)
// `leading` is the byte distance between 64-column blocks and `stride` between 8-row groups.
__device__ __forceinline__ uint64_t sw128_desc(uint32_t addr, uint32_t leading, uint32_t stride) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(leading >> 4) << 16) |
         ((uint64_t)(stride >> 4) << 32) | (1ull << 62);
}

// The wrappers below compile for any target; only sm_90a code may call them (POD_HAS_WGMMA).

// Orders this thread's register writes (accumulators, A fragments) before the next wgmma.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// wgmma_wait<N> that stays below the computation of `after` (never negative; NaN passes). ptxas
// moves WARPGROUP.DEPBAR up to the top of its basic block, above the independent work (the next
// sub-block's softmax) that was meant to run while the products are on the tensor cores; a
// warp-uniform branch on `after`, never taken, ends the block just before the wait. Every lane of
// the warp calls it.
template <int N>
__device__ __forceinline__ void wgmma_wait_after(float after) {
  if (__any_sync(0xffffffffu, after < 0.f)) {
    wgmma_wait<0>();  // (ptxas would insert one on this path)
    __trap();
  }
  wgmma_wait<N>();
}
// Roles kernel: a warpgroup raises (inc) or lowers (dec) the registers each of its threads holds;
// every thread of the warpgroup executes it. ptxas allocates the code after it to that count.
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
// Moves this warpgroup from the kAtLaunch registers a thread that the kernel started with to kNew
// (inc when more, dec when fewer; both take only whole multiples of 8).
template <int kNew, int kAtLaunch>
__device__ __forceinline__ void setmaxnreg() {
  static_assert(kNew % 8 == 0 && kNew >= 24 && kNew <= 256, "setmaxnreg takes 24 .. 256 in steps of 8");
  if constexpr (kNew > kAtLaunch) setmaxnreg_inc<kNew>();
  else if constexpr (kNew < kAtLaunch) setmaxnreg_dec<kNew>();
}
// cp.async writes shared memory through the generic proxy and wgmma reads it through the async
// proxy: after a thread's copies land it fences, then the CTA barrier publishes them.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Pins accumulator registers at this point of the program: the compiler may not move their reads
// above a wgmma_wait or their writes below a wgmma issue (it does not know the MMA is async).
template <int kN>
__device__ __forceinline__ void pin_registers(float (&d)[kN][4]) {
#pragma unroll
  for (int n = 0; n < kN; ++n)
    asm volatile("" : "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])::"memory");
}

// D (64 x N, fp32) = A * B (+ D when accumulate): ss reads A (K-major) and B (K-major) from shared
// memory; rs takes A from registers and B MN-major (transposed) from shared memory.
template <class T, int N>
struct Wgmma;

#define POD_ACC4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define POD_ACC16(j) POD_ACC4(j), POD_ACC4(j + 1), POD_ACC4(j + 2), POD_ACC4(j + 3)
#define POD_ACC_N16 POD_ACC4(0), POD_ACC4(1)
#define POD_ACC_N32 POD_ACC16(0)
#define POD_ACC_N64 POD_ACC16(0), POD_ACC16(4)
#define POD_ACC_N128 POD_ACC16(0), POD_ACC16(4), POD_ACC16(8), POD_ACC16(12)
#define POD_ACC_N256 POD_ACC_N128, POD_ACC16(16), POD_ACC16(20), POD_ACC16(24), POD_ACC16(28)
#define POD_REGS_N16 "{%0, %1, %2, %3, %4, %5, %6, %7}"
#define POD_REGS_N32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define POD_REGS_N64                                                                            \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define POD_REGS_N128                                                                           \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"
#define POD_REGS_N256                                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, " \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, " \
  "%56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, " \
  "%74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, " \
  "%92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, " \
  "%108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, " \
  "%123, %124, %125, %126, %127}"

// I0.. are the operand numbers that follow the N/2 accumulators.
#define POD_WGMMA(TYPE, PTX_TYPE, N, I0, I1, I2, I3, I4, I5)                                      \
  template <>                                                                                     \
  struct Wgmma<TYPE, N> {                                                                         \
    static __device__ __forceinline__ void ss(float (&d)[N / 8][4], uint64_t a, uint64_t b,       \
                                              int accumulate) {                                   \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #I2 ", 0;\n"                              \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " "    \
                   POD_REGS_N##N ", %" #I0 ", %" #I1 ", p, 1, 1, 0, 0;\n}\n"                      \
                   : POD_ACC_N##N                                                                 \
                   : "l"(a), "l"(b), "r"(accumulate)                                              \
                   : "memory");                                                                   \
    }                                                                                             \
    static __device__ __forceinline__ void rs(float (&d)[N / 8][4], const uint32_t (&a)[4],      \
                                              uint64_t b, int accumulate) {                       \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #I5 ", 0;\n"                              \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " "    \
                   POD_REGS_N##N ", {%" #I0 ", %" #I1 ", %" #I2 ", %" #I3 "}, %" #I4              \
                   ", p, 1, 1, 1;\n}\n"                                                           \
                   : POD_ACC_N##N                                                                 \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate)          \
                   : "memory");                                                                   \
    }                                                                                             \
  };

POD_WGMMA(__nv_bfloat16, "bf16", 16, 8, 9, 10, 11, 12, 13)
POD_WGMMA(__nv_bfloat16, "bf16", 32, 16, 17, 18, 19, 20, 21)
POD_WGMMA(__nv_bfloat16, "bf16", 64, 32, 33, 34, 35, 36, 37)
POD_WGMMA(__nv_bfloat16, "bf16", 128, 64, 65, 66, 67, 68, 69)
POD_WGMMA(half, "f16", 16, 8, 9, 10, 11, 12, 13)
POD_WGMMA(half, "f16", 32, 16, 17, 18, 19, 20, 21)
POD_WGMMA(half, "f16", 64, 32, 33, 34, 35, 36, 37)
POD_WGMMA(half, "f16", 128, 64, 65, 66, 67, 68, 69)
// N = 256: O += P V at D = 256 (128 accumulator registers a thread).
POD_WGMMA(__nv_bfloat16, "bf16", 256, 128, 129, 130, 131, 132, 133)
POD_WGMMA(half, "f16", 256, 128, 129, 130, 131, 132, 133)

#undef POD_WGMMA
#undef POD_ACC4
#undef POD_ACC16
#undef POD_ACC_N16
#undef POD_ACC_N32
#undef POD_ACC_N64
#undef POD_ACC_N128
#undef POD_ACC_N256
#undef POD_REGS_N16
#undef POD_REGS_N32
#undef POD_REGS_N64
#undef POD_REGS_N128
#undef POD_REGS_N256

}  // namespace pod
