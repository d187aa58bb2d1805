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
//   fp8 KV cache: the stages hold fp8 tiles (Fp8Tile: kTileKv rows of 128 bytes each for K and V),
//   which the tile loop reads straight into mma fragments (kv_fp8.cuh, Fp8Frags).
// After the last tile the same bytes hold the merge scratch (see DecodeShape::kScratchBytes); the
// virtual CTA is at least that large.
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
  static constexpr int kKvStaging = P::kKvStaging;   // fp8 stages (resource model)
  static constexpr int kStagingKvBytes = kTileKv * kFp8TileRowBytes;  // one fp8 K (or V) tile
  static constexpr int kStagingBytes = 2 * kStagingKvBytes;
  static constexpr int kKvBuffers = P::kKvBuffers;   // 16-bit K/V stages (resource model)
  // What a stage holds: K at its start, V kBufferKvBytes in.
  static constexpr int kBufferBytes = Traits::kKvFp8 ? kStagingBytes : kStageBytes;
  static constexpr int kBufferKvBytes = Traits::kKvFp8 ? kStagingKvBytes : kKvBytes;
  static constexpr int kTileBytes = kQBytes + kKvBuffers * kStageBytes + kKvStaging * kStagingBytes;
  // Merge scratch: m and l per warp and row, then each warp's O rows (fp32, row stride padded by
  // 8 floats against bank conflicts when that still fits). The resource model sizes the virtual
  // CTA for the unpadded scratch too.
  static constexpr int kMlBytes = kWarps * kTileQ * 2 * 4;
  static constexpr int kMergeBytes = kMlBytes + kWarps * kTileQ * D * 4;
  static constexpr int kVctaBytes = kTileBytes > kMergeBytes ? kTileBytes : kMergeBytes;
  static constexpr int kSmemBytes = kVirtualCtas * kVctaBytes;
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
  static_assert(Traits::kKvFp8 ? kKvStaging == kStages && kKvBuffers == 0 : kKvStaging == 0 && kKvBuffers == kStages,
                "fp8 KV: every stage holds fp8 tiles (Decode::kKvStaging, kKvBuffers)");
  static_assert(kSmemBytes <= Traits::kSmemBytes, "decode tiles exceed Traits::kSmemBytes");
  static_assert(kScratchBytes <= kVctaBytes, "decode merge scratch must fit the virtual CTA's bytes");
};

// tid: thread index inside the virtual CTA (0 .. kWarps*32-1); barrier_id: 1 .. 15, unique per
// virtual CTA of the physical CTA; smem: this virtual CTA's kVctaBytes.
template <class Traits>
__device__ __forceinline__ void decode_tile(const PodParams& p, ItemRef item,
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

  constexpr bool kFp8 = Traits::kKvFp8;
  const uint32_t s_q = smem_u32(smem);
  const uint32_t s_kv = s_q + S::kQBytes;  // stage i: s_kv + i * kBufferBytes
  // Per-lane ldmatrix offsets, as in prefill_mma.cuh; K and V rows start at this warp's key0. fp8
  // tiles: one offset for both (matrices: keys 0-7 and 8-15 of two 16-byte chunks, kv_fp8.cuh).
  const uint32_t lk = lane_off<kChunks>((lane / 16) * 8 + lane % 8, (lane / 8) % 2) + key0 * kChunks * 16;
  const uint32_t lv = lane_off<kChunks>(((lane / 8) % 2) * 8 + lane % 8, lane / 16) + key0 * kChunks * 16;
  const uint32_t l8 = lane_off<Fp8Tile::kChunks>(lane % 16, lane / 16) + key0 * kFp8TileRowBytes;

  float o[kD8][4];
#pragma unroll
  for (int d = 0; d < kD8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  SoftmaxRows rows;
  rows.init();

  if (num_tiles > 0) {
    using Layout = typename std::conditional<kFp8, Fp8Tile, RowSwizzledTile<kChunks>>::type;
    auto stage_of = [&](int i) { return s_kv + (uint32_t)(i % S::kStages) * S::kBufferBytes; };
    auto load_tile = [&](int i) {  // this warp's slice of tile i
      const uint32_t k = stage_of(i);
      Io::template load_kv<KW, 32, Layout>(p, page_base, it.kv_head, it.kv_begin + i * S::kTileKv, it.kv_end, key0,
                                           k, k + S::kBufferKvBytes, lane);
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
    // The warp's A fragments of all 16 rows for the 16 dims of chunk kk (fp8: in K's permuted order).
    auto q_fragment = [&](uint32_t (&a)[4], int kk) {
      if constexpr (kFp8) q_fragment_permuted<kChunks>(a, s_q, kk, lane);
      else ldmatrix_x4(a, s_q + frag_off<kChunks>(lq, 0, kk * 2));
    };
    uint32_t qa[S::kQInRegs ? D / 16 : 2][4];  // else the chunks of one step (fp8: two)
    if constexpr (S::kQInRegs) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) q_fragment(qa[kk], kk);
    }

    for (int i = 0; i < num_tiles; ++i) {
      if constexpr (S::kStages == 1) {
        load_tile(i);
        cp_async_commit();
        cp_async_wait<0>();
        __syncwarp();
      } else {
        cp_async_wait<S::kStages - 2>();
        __syncwarp();  // the warp's slice of tile i is visible; its stage (i-1) slice is free
        if (i + S::kStages - 1 < num_tiles) load_tile(i + S::kStages - 1);
        cp_async_commit();
      }
      const int slice_start = it.kv_begin + i * S::kTileKv + key0;
      bool live = slice_start < limit_hi;
      if constexpr (V::kWindow) live = live && slice_start + KW > row_first(0);  // not all before the window
      if (live) {
        const uint32_t s_k = stage_of(i);
        const uint32_t s_v = s_k + S::kBufferKvBytes;
        float s[kN][4];
#pragma unroll
        for (int n = 0; n < kN; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
        if constexpr (kFp8) {
          // Two chunks of 16 permuted dims a step: matrices (keys 0-7, 8-15) x (chunk kk, kk + 1).
#pragma unroll
          for (int kk = 0; kk < D / 16; kk += 2) {
            const int q0 = S::kQInRegs ? kk : 0, q1 = S::kQInRegs ? kk + 1 : 1;
            if constexpr (!S::kQInRegs) q_fragment(qa[0], kk), q_fragment(qa[1], kk + 1);
#pragma unroll
            for (int n2 = 0; n2 < kN / 2; ++n2) {
              uint32_t kb[4], b[4][2];
              ldmatrix_x4(kb, s_k + frag_off<Fp8Tile::kChunks>(l8, n2 * 16, kk));
#pragma unroll
              for (int m = 0; m < 4; ++m) Fp8Frags<T>::k_operand(kb[m], b[m][0], b[m][1]);
              Mma<T>::run(s[2 * n2], qa[q0], b[0][0], b[0][1]);
              Mma<T>::run(s[2 * n2 + 1], qa[q0], b[1][0], b[1][1]);
              Mma<T>::run(s[2 * n2], qa[q1], b[2][0], b[2][1]);
              Mma<T>::run(s[2 * n2 + 1], qa[q1], b[3][0], b[3][1]);
            }
          }
        } else {
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            const int qk = S::kQInRegs ? kk : 0;
            if constexpr (!S::kQInRegs) q_fragment(qa[0], kk);
#pragma unroll
            for (int n2 = 0; n2 < kN / 2; ++n2) {
              uint32_t kb[4];
              ldmatrix_x4(kb, s_k + frag_off<kChunks>(lk, n2 * 16, kk * 2));
              Mma<T>::run(s[2 * n2], qa[qk], kb[0], kb[1]);
              Mma<T>::run(s[2 * n2 + 1], qa[qk], kb[2], kb[3]);
            }
          }
        }
        if constexpr (V::kSoftCap) V::soft_cap(s, V::tanh_scale(p, it.kv_head));  // before the masks
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
        using PT = typename std::conditional<kFp8, half, T>::type;  // P V's type (fp8: fp16, kv_fp8.cuh)
#pragma unroll
        for (int kk = 0; kk < kN / 2; ++kk) {
          uint32_t pa[4];
          pa[0] = Cvt<PT>::pack(s[2 * kk][0], s[2 * kk][1]);
          pa[1] = Cvt<PT>::pack(s[2 * kk][2], s[2 * kk][3]);
          pa[2] = Cvt<PT>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
          pa[3] = Cvt<PT>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
          if constexpr (kFp8) {
            // Matrices (keys 0-7, 8-15) x (chunk c, c + 1); each chunk feeds its even and odd block.
#pragma unroll
            for (int c = 0; c < D / 16; c += 2) {
              uint32_t vb[4];
              ldmatrix_x4_trans(vb, s_v + frag_off<Fp8Tile::kChunks>(l8, kk * 16, c));
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                uint32_t even0, odd0, even1, odd1;
                Fp8Frags<T>::v_operands(vb[2 * h], even0, odd0);
                Fp8Frags<T>::v_operands(vb[2 * h + 1], even1, odd1);
                Mma<half>::run(o[2 * (c + h)], pa, even0, even1);
                Mma<half>::run(o[2 * (c + h) + 1], pa, odd0, odd1);
              }
            }
          } else {
#pragma unroll
            for (int d2 = 0; d2 < D / 16; ++d2) {
              uint32_t vb[4];
              ldmatrix_x4_trans(vb, s_v + frag_off<kChunks>(lv, kk * 16, d2 * 2));
              Mma<T>::run(o[2 * d2], pa, vb[0], vb[1]);
              Mma<T>::run(o[2 * d2 + 1], pa, vb[2], vb[3]);
            }
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
    float* row = s_o + (warp * S::kTileQ + r) * S::kOStride;
    if constexpr (kFp8) {  // lane t holds dims 16c + 4t .. 16c + 4t + 3 in o[2c], o[2c + 1] (kv_fp8.cuh)
#pragma unroll
      for (int c = 0; c < D / 16; ++c)
        *reinterpret_cast<float4*>(row + c * 16 + (lane % 4) * 4) =
            make_float4(o[2 * c][2 * h] * f, o[2 * c + 1][2 * h] * f, o[2 * c][2 * h + 1] * f, o[2 * c + 1][2 * h + 1] * f);
    } else {
#pragma unroll
      for (int d = 0; d < kD8; ++d)
        *reinterpret_cast<float2*>(row + d * 8 + (lane % 4) * 2) = make_float2(o[d][2 * h] * f, o[d][2 * h + 1] * f);
    }
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
