// Host launchers (called by c_abi.inl). Each sets the kernel's dynamic shared-memory limit (cheap,
// allowed during stream capture), launches its CTAs and returns cudaGetLastError(). CTAs have
// kThreads threads; with roles (ctasPerSm 1) the prefill-only and decode-only kernels launch just
// their role's threads and bytes. A grid of 0 launches nothing. sm_scale 0 means 1/sqrt(D).
#pragma once
#include <cuda_runtime.h>
#include <math.h>
#include "combine.cuh"
#include "reference.cuh"
#include "scheduler.cuh"

namespace pod {

template <class Traits>
inline KernelParams<Traits> resolved(const KernelParams<Traits>& p) {
  KernelParams<Traits> q = p;
  if (q.sm_scale == 0.f) q.sm_scale = 1.f / sqrtf((float)Traits::kHeadDim);
  return q;
}

template <class Traits, class Kernel, class... Extra>
inline cudaError_t launch_tiles(Kernel kernel, const KernelParams<Traits>& p, int grid, int threads, int smem_bytes,
                                cudaStream_t s, const Extra&... extra) {
  if (grid <= 0) return cudaSuccess;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (e != cudaSuccess) return e;
  kernel<<<grid, threads, smem_bytes, s>>>(resolved<Traits>(p), extra...);
  return cudaGetLastError();
}

// A launch whose kernel also takes the Q, K and V tensor maps (kernels that run the warp-specialized
// prefill; zeroed maps for the roles kernel of other specs).
template <class Traits, class Kernel>
inline cudaError_t launch_with_tensor_maps(Kernel kernel, const KernelParams<Traits>& p, int grid, int threads,
                                           int smem_bytes, cudaStream_t s) {
  if (grid <= 0) return cudaSuccess;
  PodTensorMaps maps{};
  if constexpr (PrefillShape<Traits>::kWarpSpecialized) {
    const cudaError_t e = encode_tensor_maps<Traits>(p.q[POD_OP_PREFILL], p.k, p.v, &maps);
    if (e != cudaSuccess) return e;
  }
  return launch_tiles<Traits>(kernel, p, grid, threads, smem_bytes, s, maps);
}

template <class Traits>
cudaError_t launch_fused(const KernelParams<Traits>& p, int grid, cudaStream_t s) {
  if constexpr (Traits::kRoles)
    return launch_with_tensor_maps<Traits>(pod_roles_kernel<Traits>, p, grid, Traits::kThreads, Traits::kSmemBytes, s);
  else
    return launch_tiles<Traits>(pod_fused_kernel<Traits>, p, grid, Traits::kThreads, Traits::kSmemBytes, s);
}

template <class Traits>
cudaError_t launch_prefill(const KernelParams<Traits>& p, int grid, cudaStream_t s) {
  using S = PrefillShape<Traits>;
  if constexpr (S::kWarpSpecialized) {
    using Alone = PrefillAloneTraits<Traits>;
    return launch_with_tensor_maps<Alone>(pod_prefill_ws_kernel<Alone>, p, grid, S::kThreads,
                                      PrefillShape<Alone>::kSmemBytes, s);
  } else
    return launch_tiles<Traits>(pod_prefill_kernel<Traits>, p, grid, S::kThreads,
                                S::kRole ? S::kSmemBytes : Traits::kSmemBytes, s);
}

// grid = physical CTAs; each hosts Decode::kVirtualCtas decode items.
template <class Traits>
cudaError_t launch_decode(const KernelParams<Traits>& p, int grid, cudaStream_t s) {
  using S = DecodeShape<Traits>;
  return launch_tiles<Traits>(pod_decode_kernel<Traits>, p, grid, S::kThreads * S::kVirtualCtas,
                              S::kRole ? S::kSmemBytes : Traits::kSmemBytes, s);
}

// op 0 prefill, 1 decode; grid-stride over header->num_merges[op] x pod_combine_chunks row chunks.
template <class Traits>
cudaError_t launch_combine(const KernelParams<Traits>& p, int op, int grid, cudaStream_t s) {
  if (grid <= 0) return cudaSuccess;
  if (op != POD_OP_PREFILL && op != POD_OP_DECODE) return cudaErrorInvalidValue;
  pod_combine_kernel<Traits><<<grid, Traits::kThreads, 0, s>>>(resolved<Traits>(p), op);
  return cudaGetLastError();
}

template <class Traits>
cudaError_t launch_reference(const podgen_reference_args& a, cudaStream_t s) {
  const int rows = a.total_prefill_tokens + a.num_decodes;
  if (rows <= 0) return cudaSuccess;
  const float scale = a.sm_scale != 0.f ? a.sm_scale : 1.f / sqrtf((float)Traits::kHeadDim);
  pod_reference_kernel<Traits><<<dim3(rows, Traits::kNumHeadsQ), kReferenceThreads, 0, s>>>(a, scale);
  return cudaGetLastError();
}

// Random inputs of element type T (the kernel's dtype or KV dtype; pod_fill_random_kernel). The
// grid is capped: each thread loops over groups, so any count fits; the cap only bounds the launch.
template <class T>
cudaError_t launch_fill_random(void* dst, uint64_t count, uint64_t seed, uint32_t tensor, cudaStream_t s) {
  if (count == 0) return cudaSuccess;
  const uint64_t blocks = ((count + 3) / 4 + kFillThreads - 1) / kFillThreads;
  const unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
  pod_fill_random_kernel<T><<<grid, kFillThreads, 0, s>>>(static_cast<T*>(dst), count, seed, tensor);
  return cudaGetLastError();
}

}  // namespace pod
