// Decode tile loop: one work item = 16 packed query rows (the query heads of one KV group for
// decode tokens; rows past q_len * group are padding) of one request and KV head, against keys
// [kv_begin, kv_end). It runs inside a *virtual CTA*: Decode::kWarpsPerVirtualCta warps of the physical CTA
// with their own slice of shared memory and their own hardware barrier, so one CTA can host
// Decode::kVirtualCtas decode items next to each other.
//
// Each warp of the virtual CTA owns a column slice of every KV tile (kKeysPerWarp keys), loads
// that slice itself and runs its own online softmax over it, so the main loop needs no barrier
// wider than the warp. At the end the warps merge their (m, l, O) through shared memory.
//
// Shared memory per virtual CTA (bytes):
//   [ Q: 16 x Ds ][ stage 0: K kTileKv x Ds, V kTileKv x Ds ] ... = 16*Ds*2 + kStages*kTileKv*Ds*2*2
// (Ds = Traits::kSmemHeadDim: D in whole 64-column blocks; at D = 96 a row's last 32 are padding)
//   fp8 KV cache: one 16-bit stage (kKvBuffers), then [ staging 0: K8 kTileKv x D, V8 kTileKv x D ]
//   ... (kKvStaging of them, 1 byte an element): a warp copies its fp8 slices there, kStages - 1
//   tiles ahead, and dequantizes its slice of the tile it is about to compute into the 16-bit stage
//   (kv_fp8.cuh), which holds only that tile.
// After the last tile the same bytes hold the merge scratch (see DecodeShape::kScratchBytes).
#pragma once
#include "softmax.cuh"
#include "tile_io.cuh"
#include "variants.cuh"

namespace pod {

template <class Traits>
struct DecodeShape {
  using P = typename Traits::Decode;
  static constexpr int D = Traits::kHeadDim;
  static constexpr int kTileQ = P::kTileQ;
  static constexpr int kTileKv = P::kTileKv;
  static constexpr int kWarps = P::kWarpsPerVirtualCta;  // of one virtual CTA
  static constexpr int kStages = P::kStages;
  static constexpr int kVirtualCtas = P::kVirtualCtas;
  static constexpr int kThreads = kWarps * 32;  // per virtual CTA
  static constexpr int kKeysPerWarp = kTileKv / kWarps;
  static constexpr int kN = kKeysPerWarp / 8;
  static constexpr int kD8 = D / 8;
  static constexpr int kSmemChunks = Traits::kSmemHeadDim / 8;  // 16-byte chunks of a shared-memory row
  static constexpr int kQBytes = kTileQ * Traits::kSmemHeadDim * 2;
  static constexpr int kKvBytes = kTileKv * Traits::kSmemHeadDim * 2;
  static constexpr int kStageBytes = 2 * kKvBytes;
  static constexpr int kKvStaging = P::kKvStaging;   // fp8 staging stages (resource model)
  static constexpr int kStagingKvBytes = kTileKv * D;  // one fp8 K (or V) tile
  static constexpr int kStagingBytes = 2 * kStagingKvBytes;
  static constexpr int kKvBuffers = P::kKvBuffers;   // 16-bit K/V stages (resource model)
  static constexpr int kVctaBytes = kQBytes + kKvBuffers * kStageBytes + kKvStaging * kStagingBytes;
  static constexpr int kSmemBytes = kVirtualCtas * kVctaBytes;
  // Merge scratch: m and l per warp and row, then each warp's O rows (fp32, row stride padded by
  // 8 floats against bank conflicts when that still fits).
  static constexpr int kMlBytes = kWarps * kTileQ * 2 * 4;
  static constexpr int kOPad = (kMlBytes + kWarps * kTileQ * (D + 8) * 4 <= kVctaBytes) ? 8 : 0;
  static constexpr int kOStride = D + kOPad;
  static constexpr int kScratchBytes = kMlBytes + kWarps * kTileQ * kOStride * 4;
  // Keep the Q fragments (D/4 registers) for the whole item when the per-thread register budget
  // of kCtasPerSm CTAs allows it; otherwise re-read them from shared memory for every KV tile.
  // Above D = 128 never: O alone then takes D/2 registers.
  static constexpr int kRegBudget =
      Traits::kDecodeRoleRegs > 0 ? Traits::kDecodeRoleRegs : Traits::kLaunchRegs;
  static constexpr bool kQInRegs = kRegBudget >= 168 && D <= 128;

  static_assert(kTileQ == 16, "Decode::kTileQ must be 16");
  // ctasPerSm 1 (roles): the decode role is the CTA's threads after the prefill role's.
  static constexpr bool kRole = Traits::kRoles;
  static_assert(kWarps * kVirtualCtas * 32 ==
                    (kRole ? Traits::kThreads - Traits::Prefill::kThreads : Traits::kThreads),
                "Decode::kWarpsPerVirtualCta * Decode::kVirtualCtas * 32 == kThreads (roles: the decode role's share)");
  static_assert(!kRole || kVirtualCtas <= 13, "roles: barrier ids 1 .. kVirtualCtas, 14 and 15 are taken");
  static_assert(kVirtualCtas >= 1 && kVirtualCtas <= 15, "Decode::kVirtualCtas in 1..15 (barrier ids)");
  static_assert(kTileKv % (16 * kWarps) == 0, "Decode::kTileKv must be a multiple of 16 * Decode::kWarpsPerVirtualCta");
  static_assert(kStages >= 1, "Decode::kStages >= 1");
  static_assert(Traits::kKvFp8 ? kKvStaging >= (kStages > 1 ? kStages - 1 : 1) && kKvBuffers == 1
                               : kKvStaging == 0 && kKvBuffers == kStages,
                "fp8 KV: a staging stage for each tile in flight and one 16-bit stage (Decode::kKvStaging, kKvBuffers)");
  static_assert(kSmemBytes <= Traits::kSmemBytes, "decode tiles exceed Traits::kSmemBytes");
  static_assert(kScratchBytes <= kVctaBytes, "decode merge scratch must fit the virtual CTA's bytes");
};

// tid: thread index inside the virtual CTA (0 .. kWarps*32-1); barrier_id: 1 .. 15, unique per
// virtual CTA of the physical CTA; smem: this virtual CTA's kVctaBytes.
template <class Traits>
__device__ __forceinline__ void decode_tile(const PodParams& p, const PodWorkItem* item,
                                            uint8_t* smem, int tid, int barrier_id) {
  using S = DecodeShape<Traits>;
  using T = typename Traits::DType;
  using Io = TileIo<Traits>;
  using Out = RowOut<Traits, POD_OP_DECODE, S::kTileQ>;
  constexpr int D = S::D, G = Traits::kGroup, kN = S::kN, kD8 = S::kD8, kChunks = S::kSmemChunks;
  constexpr int KW = S::kKeysPerWarp;

  const int warp = tid / 32, lane = tid % 32;
  const PodWorkItem it = load_item(item);
  const int rows_valid = min(S::kTileQ, it.q_len * G - it.row_begin);
  const int num_tiles = it.kv_end > it.kv_begin ? (it.kv_end - it.kv_begin + S::kTileKv - 1) / S::kTileKv : 0;
  const int page_base = __ldg(p.page_indptr + it.request);
  const int causal_base = it.kv_len - it.q_len + 1;
  auto row_limit = [&](int r) { return min(causal_base + (it.row_begin + r) / G, it.kv_end); };
  const int limit_lo = row_limit(0), limit_hi = row_limit(S::kTileQ - 1);
  using V = Variants<Traits>;
  auto row_first = [&](int r) { return V::first_key(causal_base, (it.row_begin + r) / G); };
  const float scale_log2 = V::score_scale_log2(p, it.kv_head);
  const int key0 = warp * KW;  // this warp's first key inside each tile

  const uint32_t s_q = smem_u32(smem);
  const uint32_t s_kv = s_q + S::kQBytes;
  const uint32_t s_staging = s_kv + S::kKvBuffers * S::kStageBytes;  // fp8 KV only
  // Per-lane ldmatrix offsets, as in prefill_mma.cuh; K and V rows start at this warp's key0.
  const uint32_t lk = lane_off<kChunks>((lane / 16) * 8 + lane % 8, (lane / 8) % 2) + key0 * kChunks * 16;
  const uint32_t lv = lane_off<kChunks>(((lane / 8) % 2) * 8 + lane % 8, lane / 16) + key0 * kChunks * 16;

  float o[kD8][4];
#pragma unroll
  for (int d = 0; d < kD8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  SoftmaxRows rows;
  rows.init();

  if (num_tiles > 0) {
    using Layout = RowSwizzledTile<kChunks>;
    auto load_tile = [&](int i) {  // this warp's slice of tile i (fp8: into its staging stage)
      if constexpr (Traits::kKvFp8) {
        const uint32_t k = s_staging + (i % S::kKvStaging) * S::kStagingBytes;
        Io::template load_kv<KW, 32, typename Io::template KvCopyLayout<Layout>>(
            p, page_base, it.kv_head, it.kv_begin + i * S::kTileKv, it.kv_end, key0, k, k + S::kStagingKvBytes, lane);
      } else {
        const uint32_t k = s_kv + (i % S::kKvBuffers) * S::kStageBytes;
        Io::template load_kv<KW, 32, Layout>(p, page_base, it.kv_head, it.kv_begin + i * S::kTileKv, it.kv_end,
                                             key0, k, k + S::kKvBytes, lane);
      }
    };
    // fp8: this warp's slice of tile i, landed in staging, into the tile's 16-bit stage.
    auto dequantize_tile = [&](int i) {
      if constexpr (Traits::kKvFp8) {
        const uint32_t src = s_staging + (i % S::kKvStaging) * S::kStagingBytes;
        const uint32_t dst = s_kv + (i % S::kKvBuffers) * S::kStageBytes;
        dequantize_rows<T, D, KW, 32, Layout>(src, dst, key0, lane);
        dequantize_rows<T, D, KW, 32, Layout>(src + S::kStagingKvBytes, dst + S::kKvBytes, key0, lane);
        __syncwarp();
      }
    };
    Io::template load_q<S::kTileQ, S::kThreads>(static_cast<const T*>(p.q[POD_OP_DECODE]), it,
                                                rows_valid, s_q, tid);
    cp_async_commit();
#pragma unroll
    for (int i = 0; i < S::kStages - 1; ++i) {
      if (i < num_tiles) load_tile(i);
      cp_async_commit();
    }
    cp_async_wait<S::kStages - 1>();  // Q landed (own copies)
    named_barrier(barrier_id, S::kThreads);
    const uint32_t lq = lane_off<kChunks>(lane % 16, lane / 16);
    uint32_t qa[S::kQInRegs ? D / 16 : 1][4];  // the warp's A fragments of all 16 rows
    if constexpr (S::kQInRegs) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qa[kk], s_q + frag_off<kChunks>(lq, 0, kk * 2));
    }

    for (int i = 0; i < num_tiles; ++i) {
      if constexpr (S::kStages == 1) {
        load_tile(i);
        cp_async_commit();
        cp_async_wait<0>();
        __syncwarp();
        if constexpr (Traits::kKvFp8) dequantize_tile(i);
      } else {
        cp_async_wait<S::kStages - 2>();
        __syncwarp();  // the warp's slice of tile i is visible; its stage (i-1) slice is free
        // fp8: ... and dequantized; its staging stage is free (the load below may reuse it)
        if constexpr (Traits::kKvFp8) dequantize_tile(i);
        if (i + S::kStages - 1 < num_tiles) load_tile(i + S::kStages - 1);
        cp_async_commit();
      }
      const int slice_start = it.kv_begin + i * S::kTileKv + key0;
      bool live = slice_start < limit_hi;
      if constexpr (V::kWindow) live = live && slice_start + KW > row_first(0);  // not all before the window
      if (live) {
        const uint32_t s_k = s_kv + (i % S::kKvBuffers) * S::kStageBytes;
        const uint32_t s_v = s_k + S::kKvBytes;
        float s[kN][4];
#pragma unroll
        for (int n = 0; n < kN; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          const int qk = S::kQInRegs ? kk : 0;
          if constexpr (!S::kQInRegs) ldmatrix_x4(qa[0], s_q + frag_off<kChunks>(lq, 0, kk * 2));
#pragma unroll
          for (int n2 = 0; n2 < kN / 2; ++n2) {
            uint32_t kb[4];
            ldmatrix_x4(kb, s_k + frag_off<kChunks>(lk, n2 * 16, kk * 2));
            Mma<T>::run(s[2 * n2], qa[qk], kb[0], kb[1]);
            Mma<T>::run(s[2 * n2 + 1], qa[qk], kb[2], kb[3]);
          }
        }
        if constexpr (V::kSoftCap) V::soft_cap(s, V::tanh_scale_log2(p, it.kv_head));  // before the masks
        if constexpr (V::kWindow) {
          if (slice_start < row_first(S::kTileQ - 1)) mask_before_window(s, 0, lane, slice_start, row_first);
        }
        if (slice_start + KW > limit_lo) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int lim = row_limit(h * 8 + lane / 4) - slice_start;
#pragma unroll
            for (int n = 0; n < kN; ++n)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                if (n * 8 + (lane % 4) * 2 + e >= lim) s[n][2 * h + e] = -INFINITY;
          }
        }
        rows.update(s, o, scale_log2);
#pragma unroll
        for (int kk = 0; kk < kN / 2; ++kk) {
          uint32_t pa[4];
          pa[0] = Cvt<T>::pack(s[2 * kk][0], s[2 * kk][1]);
          pa[1] = Cvt<T>::pack(s[2 * kk][2], s[2 * kk][3]);
          pa[2] = Cvt<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
          pa[3] = Cvt<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
          for (int d2 = 0; d2 < D / 16; ++d2) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, s_v + frag_off<kChunks>(lv, kk * 16, d2 * 2));
            Mma<T>::run(o[2 * d2], pa, vb[0], vb[1]);
            Mma<T>::run(o[2 * d2 + 1], pa, vb[2], vb[3]);
          }
        }
      }
      if constexpr (S::kStages == 1) __syncwarp();
    }
    cp_async_wait<0>();
  }

  // ---- merge the warps' states through shared memory (reusing Q and the stages)
  named_barrier(barrier_id, S::kThreads);  // every warp is done reading its tiles
  float* s_m = reinterpret_cast<float*>(smem);          // [kWarps][16]
  float* s_l = s_m + S::kWarps * S::kTileQ;             // [kWarps][16]
  float* s_o = s_l + S::kWarps * S::kTileQ;             // [kWarps][16][kOStride]
  float l_row[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) l_row[h] = quad_sum(rows.l[h]);
  if (lane % 4 == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      s_m[warp * S::kTileQ + h * 8 + lane / 4] = rows.m[h];
      s_l[warp * S::kTileQ + h * 8 + lane / 4] = l_row[h];
    }
  }
  named_barrier(barrier_id, S::kThreads);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = h * 8 + lane / 4;
    float m_all = -INFINITY;
#pragma unroll
    for (int w = 0; w < S::kWarps; ++w) m_all = fmaxf(m_all, s_m[w * S::kTileQ + r]);
    const float f = fast_exp2(rows.m[h] - (m_all == -INFINITY ? 0.f : m_all));
    float* dst = s_o + (warp * S::kTileQ + r) * S::kOStride + (lane % 4) * 2;
#pragma unroll
    for (int d = 0; d < kD8; ++d) *reinterpret_cast<float2*>(dst + d * 8) = make_float2(o[d][2 * h] * f, o[d][2 * h + 1] * f);
  }
  named_barrier(barrier_id, S::kThreads);

  // One thread per (row, 4 columns): sum the warps, normalize, store coalesced.
  float v_scale = 1.f;  // fp8 KV: the rows' V scale
  if constexpr (V::kKvFp8) v_scale = V::v_scale(p, it.kv_head);
  for (int idx = tid; idx < rows_valid * (D / 4); idx += S::kThreads) {
    const int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
    float m_all = -INFINITY;
#pragma unroll
    for (int w = 0; w < S::kWarps; ++w) m_all = fmaxf(m_all, s_m[w * S::kTileQ + r]);
    const float m_use = m_all == -INFINITY ? 0.f : m_all;
    float l = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int w = 0; w < S::kWarps; ++w) {
      l += s_l[w * S::kTileQ + r] * fast_exp2(s_m[w * S::kTileQ + r] - m_use);
      const float4 x = *reinterpret_cast<const float4*>(s_o + (w * S::kTileQ + r) * S::kOStride + c);
      acc.x += x.x; acc.y += x.y; acc.z += x.z; acc.w += x.w;
    }
    float inv_l = l > 0.f ? 1.f / l : 0.f;
    float lse = l > 0.f ? (m_all + log2f(l)) * kLn2 : -INFINITY;
    if constexpr (V::kSinks) {  // an unsplit row counts its head's sink here; split rows in the combine
      if (it.num_splits == 1)
        normalize_with_sink(m_all, l, V::sink_log2(p, it.kv_head * G + (it.row_begin + r) % G), inv_l, lse);
    }
    if constexpr (V::kKvFp8) inv_l *= v_scale;
    int64_t o_off, lse_idx;
    Out::locate(it, r, o_off, lse_idx);
    if (it.num_splits == 1) {
      T* out = static_cast<T*>(p.o[POD_OP_DECODE]) + o_off + c;
      uint2 packed;
      packed.x = Cvt<T>::pack(acc.x * inv_l, acc.y * inv_l);
      packed.y = Cvt<T>::pack(acc.z * inv_l, acc.w * inv_l);
      *reinterpret_cast<uint2*>(out) = packed;
      if (c == 0 && p.lse[POD_OP_DECODE] != nullptr) p.lse[POD_OP_DECODE][lse_idx] = lse;
    } else {
      *reinterpret_cast<float4*>(p.partial_o[POD_OP_DECODE] + o_off + c) =
          make_float4(acc.x * inv_l, acc.y * inv_l, acc.z * inv_l, acc.w * inv_l);
      if (c == 0) p.partial_lse[POD_OP_DECODE][lse_idx] = lse;
    }
  }
}

}  // namespace pod
