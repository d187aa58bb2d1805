// The kernels: the fused SM-aware POD kernel, and the prefill-only and decode-only baselines.
//
// Fused kernel. Each CTA's leader thread reads %smid and takes a slot from that SM's counter;
// the policy turns the slot into a preferred op (50:50: even slots prefer prefill; proportional:
// ratio[0] of every ratio[0] + ratio[1] slots prefer prefill, spread evenly over the cycle so that
// neighbouring slots alternate where they can). It claims the next ticket
// of that op and falls back to the other op when the preferred one has run out, so the CTAs that
// share an SM run prefill and decode tiles side by side. A prefill ticket is one prefill item for
// all warps; a decode ticket is Decode::kVirtualCtas consecutive decode items, one per virtual CTA.
// Every ticket is claimed exactly once: each CTA claims at most one, and there are at least as
// many CTAs as tickets. The last CTA to finish resets the counters (tickets, ctas_done, SM slots),
// so the next launch -- a CUDA graph replay too -- starts from zero without a memset.
// Counts are read from the device header only, never from launch arguments.
//
// Roles kernel (ctasPerSm 1, pod_roles_kernel below): instead, one persistent CTA per SM holds a
// prefill role and a decode role, and each role loops over its own op's tickets.
#pragma once
#include "decode.cuh"
#include "prefill.cuh"
#include "prefill_ws.cuh"

namespace pod {

template <class Traits>
struct KernelChecks {
  static constexpr int kPrefillThreads = PrefillShape<Traits>::kThreads;
  static constexpr int kDecodeThreads = DecodeShape<Traits>::kThreads * DecodeShape<Traits>::kVirtualCtas;
  static_assert(Traits::kRoles == (Traits::kCtasPerSm == 1), "roles are one CTA per SM");
  static_assert(Traits::kRoles ? kPrefillThreads + kDecodeThreads == Traits::kThreads
                                        : kPrefillThreads == Traits::kThreads && kDecodeThreads == Traits::kThreads,
                "CTA size: both ops' (roles: the sum of the two roles)");
  static_assert(Traits::kSmemBytes >= 16, "room for the scheduler's broadcast");
  using Base = typename std::conditional<Traits::kSinks, PodSinkParams, PodParams>::type;
  static_assert(std::is_same<typename Traits::Params,
                             typename std::conditional<Traits::kKvFp8, PodKvScaleParams<Base>, Base>::type>::value,
                "Traits::Params: PodSinkParams exactly when the kernel has sinks, within PodKvScaleParams exactly when its KV cache is fp8");
  static_assert(Traits::kCtasPerSm >= 1, "kCtasPerSm");
  static_assert((Traits::kPrefillRoleRegs == 0) == (Traits::kDecodeRoleRegs == 0) &&
                    (Traits::kPrefillRoleRegs == 0 || Traits::kRoles),
                "setmaxnreg counts come in pairs, and only for roles");
};

// Runs decode items items[1][first + v] for the virtual CTAs v whose item exists. thread: the
// thread's index among the decode threads (threadIdx.x, or with roles its index in the role).
template <class Traits>
__device__ __forceinline__ void run_decode_group(const PodParams& p, int first, int num_items,
                                                 uint8_t* smem, unsigned thread) {
  using S = DecodeShape<Traits>;
  const int v = thread / S::kThreads;
  const int idx = first + v;
  if (idx < num_items) {
    const int tid = thread % S::kThreads;
    decode_tile<Traits>(p, item_ref<Traits>(p.items[POD_OP_DECODE], idx), smem + v * S::kVctaBytes, tid, 1 + v);
    if (tid == 0) count_tile<Traits>(p, POD_OP_DECODE);
  }
}

// Called by one thread of every CTA of a fused launch after the CTA's work: the last CTA resets the
// counters (tickets, SM slots, ctas_done) for the next launch.
__device__ __forceinline__ void finish_cta(PodDeviceHeader* h) {
  __threadfence();
  const uint32_t done = atomicAdd(&h->ctas_done, 1u);
  if (done == gridDim.x - 1) {  // every other CTA has claimed its tickets and finished
    __threadfence();
    h->ticket[0] = 0;
    h->ticket[1] = 0;
    for (int i = 0; i < POD_MAX_SMS; ++i) h->sm_slot[i] = 0;
    h->ctas_done = 0;
    __threadfence();
  }
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kCtasPerSm)
    pod_fused_kernel(const __grid_constant__ KernelParams<Traits> p) {
  (void)sizeof(KernelChecks<Traits>);
  extern __shared__ __align__(1024) uint8_t smem[];  // wgmma tiles: 1024-byte aligned
  int* s_claim = reinterpret_cast<int*>(smem);  // [op, ticket]; overwritten by the tile later

  if (threadIdx.x == 0) {
    PodDeviceHeader* h = p.header;
    const uint32_t slot = atomicAdd(&h->sm_slot[smid() % POD_MAX_SMS], 1u);
    const int n0 = h->num_tickets[0], n1 = h->num_tickets[1];
    int prefer;
    if (Traits::kSchedule == 0) {
      prefer = (slot % 2 == 0) ? POD_OP_PREFILL : POD_OP_DECODE;
    } else {
      const int r0 = h->ratio[0], r1 = h->ratio[1];
      if (r0 <= 0) prefer = POD_OP_DECODE;
      else if (r1 <= 0) prefer = POD_OP_PREFILL;
      else {
        // The r0 prefill slots of each cycle of r0 + r1 are spread evenly over it (slot k of the
        // cycle prefers prefill when floor((k+1) r0 / (r0+r1)) steps), so CTAs that start next to
        // each other on an SM -- and so run side by side -- mostly get different ops.
        const uint32_t c = (uint32_t)(r0 + r1), k = slot % c;
        prefer = ((k + 1) * r0) / c > (k * r0) / c ? POD_OP_PREFILL : POD_OP_DECODE;
      }
    }
    int op = -1, ticket = 0;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int o = k == 0 ? prefer : 1 - prefer;  // the preferred op, then the other
      const int n = o == POD_OP_PREFILL ? n0 : n1;
      if (op >= 0 || n <= 0) continue;
      const uint32_t t = atomicAdd(&h->ticket[o], 1u);
      if (t < (uint32_t)n) {
        op = o;
        ticket = (int)t;
      }
    }
    s_claim[0] = op;
    s_claim[1] = ticket;
  }
  __syncthreads();
  const int op = s_claim[0], ticket = s_claim[1];
  __syncthreads();  // everyone has read the claim before the tile reuses the bytes

  if (op == POD_OP_PREFILL) {
    prefill_tile<Traits>(p, item_ref<Traits>(p.items[POD_OP_PREFILL], ticket), smem, threadIdx.x);
    if (threadIdx.x == 0) count_tile<Traits>(p, POD_OP_PREFILL);
  } else if (op == POD_OP_DECODE) {
    run_decode_group<Traits>(p, ticket * Traits::Decode::kVirtualCtas, p.header->num_items[POD_OP_DECODE], smem,
                             threadIdx.x);
  }

  __syncthreads();
  if (threadIdx.x == 0) finish_cta(p.header);
}

// Roles kernel (ctasPerSm 1): one persistent CTA per SM. Its first PrefillShape::kThreads threads
// are the prefill role, the rest the decode role (Decode::kVirtualCtas virtual CTAs). Each role
// loops: its leader claims the next ticket of the role's op, hands it over through a claim slot
// (two per role, alternating, so a slot is never rewritten while a slow thread may still read it)
// and the role runs it, until the tickets run out. So every SM streams decode K/V beside one
// prefill CTA for as long as both have work, and the prefill role has the registers of a whole
// CTA (a lone prefill CTA of two CTAs per SM gets only half of an SM's prefill rate).
template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    pod_roles_kernel(const __grid_constant__ KernelParams<Traits> p, const __grid_constant__ PodTensorMaps maps) {
  (void)sizeof(KernelChecks<Traits>);
  using PS = PrefillShape<Traits>;
  using DS = DecodeShape<Traits>;
  static_assert(PS::kRole && DS::kRole, "the roles kernel is for ctasPerSm 1");
  constexpr int kDecodeOffset = PS::kSmemBytes;  // a multiple of 1024 (wgmma tiles)
  static_assert(kDecodeOffset % 1024 == 0 && kDecodeOffset + DS::kSmemBytes + 16 <= Traits::kSmemBytes,
                "roles: prefill bytes, decode bytes, claim slots");
  constexpr int kDecodeRoleBarrier = kPrefillRoleBarrier - 1;
  extern __shared__ __align__(1024) uint8_t smem[];
  int* claims = reinterpret_cast<int*>(smem + kDecodeOffset + DS::kSmemBytes);  // [op][round % 2]

  PodDeviceHeader* h = p.header;
  // The role loops are separate branches: ptxas allocates each to its role's setmaxnreg count.
  if (threadIdx.x < PS::kThreads) {
    if constexpr (PS::kWarpSpecialized) {
      // Its producer and consumer warpgroups set their own registers (prefill_ws.cuh).
      prefill_ws<Traits, Traits::kLaunchRegs, Traits::Prefill::kProducerRegs, Traits::kPrefillRoleRegs,
                 Traits::Prefill::kSubKv>(p, maps, smem, threadIdx.x);
    } else {
      if constexpr (Traits::kPrefillRoleRegs > 0) setmaxnreg<Traits::kPrefillRoleRegs, Traits::kLaunchRegs>();
      const int thread = threadIdx.x;
      for (int round = 0;; ++round) {
        int* slot = claims + (round & 1);
        if (thread == 0) *slot = (int)atomicAdd(&h->ticket[POD_OP_PREFILL], 1u);
        named_barrier(kPrefillRoleBarrier, PS::kThreads);  // also: done with the previous tile's bytes
        const int ticket = *slot;
        if (ticket >= h->num_tickets[POD_OP_PREFILL]) break;
        prefill_tile<Traits>(p, item_ref<Traits>(p.items[POD_OP_PREFILL], ticket), smem, thread);
        if (thread == 0) count_tile<Traits>(p, POD_OP_PREFILL);
      }
    }
  } else {
    if constexpr (Traits::kDecodeRoleRegs > 0) setmaxnreg<Traits::kDecodeRoleRegs, Traits::kLaunchRegs>();
    const unsigned thread = threadIdx.x - PS::kThreads;
    constexpr int kRoleThreads = DS::kThreads * DS::kVirtualCtas;
    for (int round = 0;; ++round) {
      int* slot = claims + 2 + (round & 1);
      if (thread == 0) *slot = (int)atomicAdd(&h->ticket[POD_OP_DECODE], 1u);
      named_barrier(kDecodeRoleBarrier, kRoleThreads);  // also: done with the previous tiles' bytes
      const int ticket = *slot;
      if (ticket >= h->num_tickets[POD_OP_DECODE]) break;
      run_decode_group<Traits>(p, ticket * DS::kVirtualCtas, h->num_items[POD_OP_DECODE], smem + kDecodeOffset,
                               thread);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) finish_cta(h);
}

// Prefill-only: CTA b runs items[0][b], b < num_items[0] (grid-stride).
template <class Traits>
__global__ void __launch_bounds__(PrefillShape<Traits>::kThreads, Traits::kCtasPerSm)
    pod_prefill_kernel(const __grid_constant__ KernelParams<Traits> p) {
  (void)sizeof(KernelChecks<Traits>);
  extern __shared__ __align__(1024) uint8_t smem[];  // wgmma tiles: 1024-byte aligned
  const int n = p.header->num_items[POD_OP_PREFILL];
  for (int b = blockIdx.x; b < n; b += gridDim.x) {
    prefill_tile<Traits>(p, item_ref<Traits>(p.items[POD_OP_PREFILL], b), smem, threadIdx.x);
    if (threadIdx.x == 0) count_tile<Traits>(p, POD_OP_PREFILL);
    __syncthreads();  // shared memory is reused by the next item
  }
}

// Prefill-only, warp-specialized: persistent CTAs whose producers claim prefill tickets
// (prefill_ws.cuh); the last CTA resets the counters. The prefill-only launch has the SM to itself,
// so its consumers take the registers the roles kernel gives the decode role, and it runs the
// tiles of Traits::PrefillAlone (launch_prefill instantiates it with PrefillAloneTraits).
template <class Traits>
__global__ void __launch_bounds__(PrefillShape<Traits>::kThreads, 1)
    pod_prefill_ws_kernel(const __grid_constant__ KernelParams<Traits> p, const __grid_constant__ PodTensorMaps maps) {
  (void)sizeof(KernelChecks<Traits>);
  extern __shared__ __align__(1024) uint8_t smem[];
  prefill_ws<Traits, Traits::Prefill::kLaunchRegsAlone, Traits::Prefill::kProducerRegs, Traits::Prefill::kConsumerRegs,
             Traits::Prefill::kSubKv>(p, maps, smem, threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) finish_cta(p.header);
}

// Decode-only: CTA b hosts items[1][b * kVirtualCtas + v] (grid-stride over b).
template <class Traits>
__global__ void __launch_bounds__(DecodeShape<Traits>::kThreads * DecodeShape<Traits>::kVirtualCtas,
                                  Traits::kCtasPerSm)
    pod_decode_kernel(const __grid_constant__ KernelParams<Traits> p) {
  (void)sizeof(KernelChecks<Traits>);
  extern __shared__ __align__(1024) uint8_t smem[];  // as the other kernels (decode needs 128)
  constexpr int V = Traits::Decode::kVirtualCtas;
  const int n = p.header->num_items[POD_OP_DECODE];
  for (int b = blockIdx.x; b * V < n; b += gridDim.x) {
    run_decode_group<Traits>(p, b * V, n, smem, threadIdx.x);
    __syncthreads();
  }
}

}  // namespace pod
