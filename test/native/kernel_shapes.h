// Kernel shapes the native planner tests plan for: the Traits the code generator would emit
// (templates/kernel.cu.hbs), reduced to what the host planner and the C ABI's info read.
// Included by test_planner.cpp and plan_golden.cpp after pod_attention.h and pod/planner.h.
#pragma once
#include <vector>

template <int Hq, int Hkv, int D, bool Paged, int PageSize, int Ctas, int PTileQ, int PTileKv,
          int PMaxSplits, int PMaxWaves, int DTileKv, int V, int DMaxSplits, int Window = 0,
          int Engine = POD_ENGINE_MMA>
struct TestTraits {
  static constexpr int kDType = 1, kHeadDim = D, kNumHeadsQ = Hq, kNumHeadsKv = Hkv;
  static constexpr int kGroup = Hq / Hkv;
  static constexpr bool kPaged = Paged;
  static constexpr int kPageSize = PageSize, kThreads = 128, kCtasPerSm = Ctas, kSchedule = 1;
  static constexpr bool kRoles = Ctas == 1;
  static constexpr int kSmemBytes = 65536;
  static constexpr int kWindow = Window;
  struct Prefill {
    static constexpr int kEngine = Engine;
    static constexpr int kTileQ = PTileQ, kTileKv = PTileKv, kWarps = 4, kStages = 2;
    static constexpr int kMaxSplits = PMaxSplits, kMaxWaves = PMaxWaves;
  };
  struct Decode {
    static constexpr int kTileQ = 16, kTileKv = DTileKv, kWarpsPerVirtualCta = 4, kStages = 2;
    static constexpr int kVirtualCtas = V, kMaxSplits = DMaxSplits;
  };
};

template <class Input>
using PlanFn = int (*)(const Input&, const podgen_plan_options&, void*, uint64_t, podgen_plan*,
                       std::string*);
struct Config {
  const char* name;
  pod::KernelShape k;
  PlanFn<podgen_batch> plan;
  PlanFn<podgen_ragged_batch> plan_ragged;
};
template <class T>
Config config(const char* name) {
  return {name, pod::KernelShape::of<T>(), &pod::plan<T, podgen_batch>,
          &pod::plan<T, podgen_ragged_batch>};
}

inline std::vector<Config> configs() {
  return {
      // Llama-3-8B: GQA 4, D=128, paged 16, two waves.
      config<TestTraits<32, 8, 128, true, 16, 2, 128, 64, 0, 2, 64, 2, 16>>("llama3_8b g4 D128 p16"),
      // MHA, D=128, page size 1, prefill bounded by splits only, no virtual CTAs.
      config<TestTraits<32, 32, 128, true, 1, 2, 64, 64, 4, 0, 32, 1, 8>>("mha g1 D128 p1 splits4"),
      // GQA 8 with 5 KV heads (odd decode item counts), D=64, contiguous, 4 CTAs/SM, one wave, 4 virtual CTAs.
      config<TestTraits<40, 5, 64, false, 1, 4, 128, 128, 0, 1, 64, 4, 32>>("g8 D64 contiguous"),
      // GQA 8, D=64, paged 64.
      config<TestTraits<64, 8, 64, true, 64, 2, 64, 32, 0, 2, 64, 2, 16>>("g8 D64 p64"),
      // MQA with 32 query heads: two decode tiles per KV head.
      config<TestTraits<32, 1, 128, false, 1, 2, 128, 64, 0, 2, 64, 2, 16>>("mqa g32 D128 contiguous"),
      // GQA 4 with 3 KV heads, D=64, paged 16, prefill max 2 splits.
      config<TestTraits<12, 3, 64, true, 16, 4, 64, 64, 2, 0, 128, 2, 4>>("g4 D64 p16 splits2"),
      // Sliding windows: smaller than a prefill tile's tokens and the KV tiles, and larger.
      config<TestTraits<32, 8, 128, true, 16, 2, 128, 64, 0, 2, 64, 2, 16, 20>>("llama3_8b g4 D128 p16 window20"),
      config<TestTraits<64, 8, 64, true, 16, 2, 128, 64, 0, 2, 64, 2, 16, 128>>("gpt-oss g8 D64 p16 window128"),
      config<TestTraits<32, 32, 128, false, 1, 2, 64, 32, 4, 0, 32, 1, 8, 1000>>("mha g1 D128 contiguous splits4 window1000"),
  };
}

// The members of the llama3_8b_auto family (dsl/family-presets.ts), in its order: the
// warp-specialized preset, the paper's CTA shape, two warpgroups per CTA, and wgmma roles.
inline std::vector<Config> llama3_8b_auto_members() {
  return {
      config<TestTraits<32, 8, 128, true, 16, 1, 128, 64, 0, 2, 64, 1, 16, 0, POD_ENGINE_WARP_SPECIALIZED>>("auto preset"),
      config<TestTraits<32, 8, 128, true, 16, 2, 128, 64, 0, 2, 64, 1, 16, 0, POD_ENGINE_WGMMA>>("auto paper_shape"),
      config<TestTraits<32, 8, 128, true, 16, 2, 128, 64, 0, 2, 64, 2, 16, 0, POD_ENGINE_WGMMA>>("auto wide"),
      config<TestTraits<32, 8, 128, true, 16, 1, 128, 64, 0, 2, 32, 2, 16, 0, POD_ENGINE_WGMMA>>("auto roles"),
  };
}
