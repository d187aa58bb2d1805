// Host-only tests of templates/pod/c_abi.inl through the exported C functions, with the kernel
// launchers stubbed (they record their arguments). No GPU needed: CUDA calls that reach the
// driver fail, which exercises the PODGEN_ERR_CUDA path.
// Built and run by test/planner.test.ts (g++ with ASan/UBSan, linked with libcudart).
#include <cuda_runtime.h>

#include "pod_attention.h"
#include "pod/planner.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <thread>
#include <vector>

namespace {
struct Traits {
  using DType = uint16_t;  // the size of bf16 is all the C ABI reads
  static constexpr int kDType = 1, kHeadDim = 128, kNumHeadsQ = 32, kNumHeadsKv = 8, kGroup = 4;
  static constexpr bool kPaged = true;
  static constexpr int kPageSize = 16, kThreads = 128, kCtasPerSm = 2, kSchedule = 1;
  static constexpr bool kRoles = false;
  static constexpr int kSmemBytes = 98304;
  static constexpr int kWindow = 0;
  static constexpr float kLogitsSoftCap = 0.f;
  static constexpr bool kSinks = false;
  using KvDType = DType;  // a 16-bit cache
  static constexpr bool kKvFp8 = false, kKvScalePerHead = false;
  using Params = pod::PodParams;
  struct Prefill {
    static constexpr int kEngine = POD_ENGINE_MMA;
    static constexpr int kTileQ = 128, kTileKv = 64, kWarps = 4, kStages = 2;
    static constexpr int kMaxSplits = 0, kMaxWaves = 2;
  };
  struct Decode {
    static constexpr int kTileQ = 16, kTileKv = 64, kWarpsPerVirtualCta = 4, kStages = 2;
    static constexpr int kVirtualCtas = 2, kMaxSplits = 16;
  };
};
}  // namespace

// Stub launchers with the kernels helper's signatures.
namespace pod {
struct Launch {
  std::string kind;
  int op, grid;
  PodParams p;
};
std::vector<Launch> launches;
cudaError_t next_error = cudaSuccess;
podgen_reference_args last_reference;
template <class T> cudaError_t launch_fused(const PodParams& p, int grid, cudaStream_t) {
  launches.push_back({"fused", -1, grid, p});
  return next_error;
}
template <class T> cudaError_t launch_prefill(const PodParams& p, int grid, cudaStream_t) {
  launches.push_back({"prefill", 0, grid, p});
  return next_error;
}
template <class T> cudaError_t launch_decode(const PodParams& p, int grid, cudaStream_t) {
  launches.push_back({"decode", 1, grid, p});
  return next_error;
}
template <class T> cudaError_t launch_combine(const PodParams& p, int op, int grid, cudaStream_t) {
  launches.push_back({"combine", op, grid, p});
  return next_error;
}
template <class T> cudaError_t launch_reference(const podgen_reference_args& a, cudaStream_t) {
  last_reference = a;
  launches.push_back({"reference", -1, 0, PodParams{}});
  return next_error;
}
struct Fill {
  void* dst;
  uint64_t count, seed;
  uint32_t tensor;
};
Fill last_fill;
template <class T> cudaError_t launch_fill_random(void* dst, uint64_t count, uint64_t seed, uint32_t tensor, cudaStream_t) {
  last_fill = {dst, count, seed, tensor};
  launches.push_back({"fill_random", -1, 0, PodParams{}});
  return next_error;
}
}  // namespace pod

#define POD_API(name) pod_test_##name
#include "pod/c_abi.inl"

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    ++checks;                                                                  \
    if (!(cond)) {                                                             \
      ++failures;                                                              \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
    }                                                                          \
  } while (0)
static bool has(const char* s, const char* needle) { return strstr(s, needle) != nullptr; }
#define CHECK_ERR(call, status, needle)                                                   \
  do {                                                                                    \
    const int st_ = (call);                                                               \
    CHECK(st_ == (status) && has(pod_test_last_error(), needle), "%s -> %s '%s'", #call, \
          pod_test_status_name(st_), pod_test_last_error());                              \
  } while (0)

// A batch: 1 prefill (q 300 of kv 5000), 3 decodes (kv 4000, 1, 70000 → splits), paged 16.
struct Batch {
  std::vector<int32_t> qo{0, 300}, kv{5000, 4000, 1, 70000}, pip, pidx;
  podgen_batch b;
  Batch() {
    pip.push_back(0);
    for (int x : kv) {
      for (int i = 0; i < (x + 15) / 16; ++i) pidx.push_back((int32_t)pidx.size());
      pip.push_back((int32_t)pidx.size());
    }
    b = podgen_batch{1, 3, qo.data(), kv.data(), pip.data(), pidx.data(), 0, (int32_t)pidx.size(), 32, 8, 128};
  }
};

int main() {
  // info
  podgen_kernel_info info;
  pod_test_info(&info);
  CHECK(info.abi_version == PODGEN_ABI_VERSION && info.window == 0 && info.logits_soft_cap == 0.f && info.sinks == 0 &&
            info.kv_dtype == 1 && info.kv_scale_per_head == 0 &&
            info.num_heads_q == 32 && info.num_heads_kv == 8 && info.head_dim == 128 &&
            info.page_size == 16 && info.paged == 1 && info.dtype == 1 && info.prefill_tile_q == 128 &&
            info.prefill_tile_kv == 64 && info.decode_tile_q == 16 && info.decode_tile_kv == 64 &&
            info.threads_per_cta == 128 && info.ctas_per_sm == 2 && info.virtual_ctas == 2 &&
            info.schedule == 1 && info.prefill_max_splits == 0 && info.prefill_max_waves == 2 &&
            info.decode_max_splits == 16 && info.smem_bytes == 98304,
        "info");
  pod_test_info(nullptr);
  CHECK(has(pod_test_last_error(), "pod_test_info: out is NULL"), "%s", pod_test_last_error());

  // status names
  CHECK(!strcmp(pod_test_status_name(0), "PODGEN_OK") &&
            !strcmp(pod_test_status_name(4), "PODGEN_ERR_BUCKET_EXCEEDED") &&
            !strcmp(pod_test_status_name(99), "PODGEN_ERR_UNKNOWN"),
        "status names");

  // plan
  Batch B;
  podgen_plan plan;
  podgen_plan_options opt;
  memset(&opt, 0, sizeof opt);
  CHECK_ERR(pod_test_plan(&B.b, &opt, nullptr, 0, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "pod_test_plan: plan is NULL");
  CHECK_ERR(pod_test_plan(nullptr, &opt, nullptr, 0, &plan), PODGEN_ERR_INVALID_ARGUMENT, "batch is NULL");
  CHECK(pod_test_plan(&B.b, nullptr, nullptr, 0, &plan) == PODGEN_OK, "options NULL = defaults");
  CHECK(plan.num_sms == 132 && plan.host_bytes > 0 && plan.workspace_bytes >= plan.host_bytes, "sizes");
  CHECK(plan.num_merges[1] > 0, "the 70000-key decode is split");
  {
    Batch bad;
    bad.kv[0] = 299;
    CHECK_ERR(pod_test_plan(&bad.b, &opt, nullptr, 0, &plan), PODGEN_ERR_BAD_BATCH,
              "pod_test_plan: kv_lens[0]=299 < q_len=300 of request 0");
    CHECK(plan.abi_version == 0, "failed plan zeroed");
  }
  std::vector<unsigned char> staging;
  CHECK(pod_test_plan(&B.b, &opt, nullptr, 0, &plan) == PODGEN_OK, "sizing");
  staging.resize(plan.host_bytes);
  CHECK_ERR(pod_test_plan(&B.b, &opt, staging.data(), staging.size() - 1, &plan), PODGEN_ERR_WORKSPACE_TOO_SMALL,
            "host_staging_bytes=");
  CHECK(plan.host_bytes == staging.size(), "sizes on too-small");
  CHECK(pod_test_plan(&B.b, &opt, staging.data(), staging.size(), &plan) == PODGEN_OK, "plan");

  // last_error is per thread
  std::thread([&] {
    CHECK(!strcmp(pod_test_last_error(), ""), "fresh thread has no error");
    pod_test_plan(nullptr, nullptr, nullptr, 0, nullptr);
  }).join();
  CHECK(has(pod_test_last_error(), "host_staging_bytes="), "other thread's error leaked: %s", pod_test_last_error());

  // upload_plan
  std::vector<unsigned char> ws_mem(plan.workspace_bytes + 256);
  void* ws = (void*)(((uintptr_t)ws_mem.data() + 255) / 256 * 256);  // a host stand-in: only pointers are checked
  CHECK_ERR(pod_test_upload_plan(nullptr, staging.data(), ws, plan.workspace_bytes, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "pod_test_upload_plan: plan is NULL");
  podgen_plan zero;
  memset(&zero, 0, sizeof zero);
  CHECK_ERR(pod_test_upload_plan(&zero, staging.data(), ws, plan.workspace_bytes, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "abi_version=0");
  CHECK_ERR(pod_test_upload_plan(&plan, nullptr, ws, plan.workspace_bytes, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "host_staging is NULL");
  CHECK_ERR(pod_test_upload_plan(&plan, staging.data(), nullptr, plan.workspace_bytes, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "workspace is NULL");
  CHECK_ERR(pod_test_upload_plan(&plan, staging.data(), ws, plan.workspace_bytes - 1, nullptr), PODGEN_ERR_WORKSPACE_TOO_SMALL,
            "workspace_bytes=");
  {
    std::vector<unsigned char> other(staging);
    other[0] ^= 1;  // num_items[0] differs
    CHECK_ERR(pod_test_upload_plan(&plan, other.data(), ws, plan.workspace_bytes, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
              "host_staging does not hold this plan");
  }
  // No GPU here: the copy reaches CUDA and fails with a named error.
  {
    const int st = pod_test_upload_plan(&plan, staging.data(), ws, plan.workspace_bytes, nullptr);
    printf("upload without a GPU: %s: %s\n", pod_test_status_name(st), pod_test_last_error());
    CHECK(st == PODGEN_ERR_CUDA || st == PODGEN_OK, "upload status %d", st);
    if (st == PODGEN_ERR_CUDA)
      CHECK(has(pod_test_last_error(), "pod_test_upload_plan: cudaMemcpyAsync of the plan failed: cudaError"),
            "%s", pod_test_last_error());
  }

  // run
  int dummy[4];
  podgen_buffers buf;
  memset(&buf, 0, sizeof buf);
  buf.q_prefill = dummy; buf.q_decode = dummy; buf.k = dummy; buf.v = dummy;
  buf.page_indices = dummy; buf.o_prefill = dummy; buf.o_decode = dummy;
  buf.workspace = ws; buf.workspace_bytes = plan.workspace_bytes;
  buf.sinks = reinterpret_cast<const float*>(dummy);
  CHECK_ERR(pod_test_run(&plan, &buf, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "pod_test_run: buffers.sinks is set but the kernel has no attention sinks");
  buf.sinks = nullptr;
  buf.v_scale = reinterpret_cast<const float*>(dummy);
  CHECK_ERR(pod_test_run(&plan, &buf, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
            "pod_test_run: buffers.v_scale is set but the kernel's KV cache is 16-bit (spec: kvDtype absent); pass NULL");
  buf.v_scale = nullptr;
  pod::launches.clear();
  CHECK(pod_test_run(&plan, &buf, nullptr) == PODGEN_OK, "run: %s", pod_test_last_error());
  CHECK(plan.num_merges[0] > 0 && plan.num_merges[1] > 0, "both ops split");
  CHECK(pod::launches.size() == 3 && pod::launches[0].kind == "fused" && pod::launches[0].grid == plan.grid_fused &&
            pod::launches[1].kind == "combine" && pod::launches[1].op == 0 && pod::launches[1].grid == plan.grid_merge[0] &&
            pod::launches[2].kind == "combine" && pod::launches[2].op == 1 && pod::launches[2].grid == plan.grid_merge[1],
        "run launches %zu", pod::launches.size());
  if (!pod::launches.empty()) {
    const pod::PodParams& p = pod::launches[0].p;
    const char* base = (const char*)ws;
    CHECK(fabsf(p.sm_scale - 1.0f / sqrtf(128.0f)) < 1e-7f, "default sm_scale %g", p.sm_scale);
    CHECK((const char*)p.header == base && (const char*)p.items[0] == base + plan.items_offset[0] &&
              (const char*)p.items[1] == base + plan.items_offset[1] &&
              (const char*)p.merges[1] == base + plan.merges_offset[1] &&
              (const char*)p.partial_o[1] == base + plan.partial_o_offset[1] &&
              (const char*)p.partial_lse[1] == base + plan.partial_lse_offset[1] &&
              (const char*)p.page_indptr == base + plan.page_base_offset,
          "param offsets");
    CHECK(p.q[0] == dummy && p.o[1] == dummy && p.lse[0] == nullptr && p.k == dummy && p.page_indices == dummy, "param pointers");
  }
  buf.sm_scale = 0.5f;
  pod::launches.clear();
  pod_test_run(&plan, &buf, nullptr);
  CHECK(!pod::launches.empty() && pod::launches[0].p.sm_scale == 0.5f, "explicit sm_scale");
  {
    podgen_buffers b2 = buf;
    b2.q_prefill = nullptr;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "pod_test_run: buffers.q_prefill is NULL but the plan has prefill work");
    CHECK(pod_test_run_decode(&plan, &b2, nullptr) == PODGEN_OK, "run_decode needs no prefill buffers");
    b2 = buf; b2.o_decode = nullptr;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "buffers.o_decode is NULL");
    CHECK(pod_test_run_prefill(&plan, &b2, nullptr) == PODGEN_OK, "run_prefill needs no decode buffers");
    b2 = buf; b2.page_indices = nullptr;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "buffers.page_indices is NULL");
    b2 = buf; b2.workspace_bytes = plan.workspace_bytes - 1;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_WORKSPACE_TOO_SMALL, "buffers.workspace_bytes=");
    b2 = buf; b2.workspace = (char*)ws + 4;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "not 16-byte aligned");
    b2 = buf; b2.sm_scale = NAN;
    CHECK_ERR(pod_test_run(&plan, &b2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "sm_scale is not finite");
    CHECK_ERR(pod_test_run(&plan, nullptr, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "buffers is NULL");
    CHECK_ERR(pod_test_run(&zero, &buf, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "abi_version=0");
  }
  // run_prefill / run_decode launch the standalone kernels and their combine.
  pod::launches.clear();
  CHECK(pod_test_run_prefill(&plan, &buf, nullptr) == PODGEN_OK, "run_prefill");
  CHECK(pod::launches.size() == 1 + (plan.grid_merge[0] > 0) && pod::launches[0].kind == "prefill" &&
            pod::launches[0].grid == plan.grid_prefill,
        "run_prefill launches");
  pod::launches.clear();
  CHECK(pod_test_run_decode(&plan, &buf, nullptr) == PODGEN_OK, "run_decode");
  CHECK(pod::launches.size() == 2 && pod::launches[0].kind == "decode" && pod::launches[0].grid == plan.grid_decode &&
            pod::launches[1].kind == "combine" && pod::launches[1].op == 1,
        "run_decode launches");
  // A launch error is reported by name.
  pod::next_error = cudaErrorInvalidConfiguration;
  CHECK_ERR(pod_test_run(&plan, &buf, nullptr), PODGEN_ERR_CUDA,
            "pod_test_run: launch_fused failed: cudaErrorInvalidConfiguration (");
  pod::next_error = cudaSuccess;

  // Graph mode: a batch without merges still launches both combines with the capacity grid.
  {
    podgen_plan_options g = opt;
    g.graph_mode = 1; g.max_prefills = 2; g.max_decodes = 8; g.max_prefill_tokens = 1024; g.max_kv_len = 80000;
    g.max_num_pages = 1 << 20; g.max_page_entries = 1 << 20;
    podgen_plan gp, gp2;
    std::vector<unsigned char> st2(1 << 22);
    CHECK(pod_test_plan(&B.b, &g, st2.data(), st2.size(), &gp) == PODGEN_OK, "graph plan: %s", pod_test_last_error());
    Batch small;
    small.qo = {0, 10};
    small.kv = {10, 5, 1, 7};  // one KV tile each: nothing to split
    small.pidx.clear(); small.pip = {0};
    for (int x : small.kv) { for (int i = 0; i < (x + 15) / 16; ++i) small.pidx.push_back((int32_t)small.pidx.size()); small.pip.push_back((int32_t)small.pidx.size()); }
    small.b = podgen_batch{1, 3, small.qo.data(), small.kv.data(), small.pip.data(), small.pidx.data(), 0, (int32_t)small.pidx.size(), 32, 8, 128};
    CHECK(pod_test_plan(&small.b, &g, st2.data(), st2.size(), &gp2) == PODGEN_OK, "graph plan small");
    CHECK(gp2.num_merges[0] == 0 && gp2.num_merges[1] == 0 && gp2.grid_fused == gp.grid_fused, "small batch no merges");
    std::vector<unsigned char> gws(gp2.workspace_bytes + 256);
    podgen_buffers gb = buf;
    gb.workspace = (void*)(((uintptr_t)gws.data() + 255) / 256 * 256);
    gb.workspace_bytes = gp2.workspace_bytes;
    pod::launches.clear();
    CHECK(pod_test_run(&gp2, &gb, nullptr) == PODGEN_OK, "graph run");
    CHECK(pod::launches.size() == 3 && pod::launches[1].kind == "combine" && pod::launches[1].grid == gp.grid_merge[0] &&
              pod::launches[2].grid == gp.grid_merge[1] && gp.grid_merge[0] > 0,
          "graph run launches %zu", pod::launches.size());
    // A graph-mode batch with no decodes still needs decode buffers: the bucket allows them.
    Batch onlyp = small;
    onlyp.b.num_decodes = 0;
    CHECK(pod_test_plan(&onlyp.b, &g, st2.data(), st2.size(), &gp2) == PODGEN_OK, "graph plan prefill only");
    podgen_buffers gb2 = gb;
    gb2.q_decode = nullptr;
    CHECK_ERR(pod_test_run(&gp2, &gb2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "buffers.q_decode is NULL");
    g.max_decodes = 2;
    CHECK_ERR(pod_test_plan(&B.b, &g, nullptr, 0, &gp), PODGEN_ERR_BUCKET_EXCEEDED, "3 decodes exceed the bucket's max_decodes=2");
  }
  // The ragged form: plan_ragged / run_ragged pass one q, o and lse as both parts; a plan runs
  // only through the entry of its own form.
  {
    std::vector<int32_t> qo{0, 1, 301, 302, 303}, kv{4000, 5000, 1, 70000}, pip, pidx;
    for (int x : kv) {
      pip.push_back((int32_t)pidx.size());
      for (int i = 0; i < (x + 15) / 16; ++i) pidx.push_back((int32_t)pidx.size());
    }
    const int32_t stride = (70000 + 15) / 16 + 3;  // a padded block table: rows of `stride` pages
    std::vector<int32_t> table(4 * stride, -1);
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < (kv[r] + 15) / 16; ++i) table[r * stride + i] = pidx[pip[r] + i];
    podgen_ragged_batch rb{4, qo.data(), kv.data(), nullptr, table.data(), stride, (int32_t)pidx.size(), 32, 8, 128};
    podgen_plan rp;
    std::vector<unsigned char> rst(1 << 22);
    CHECK(pod_test_plan_ragged(&rb, &opt, rst.data(), rst.size(), &rp) == PODGEN_OK, "plan_ragged: %s", pod_test_last_error());
    CHECK(rp.ragged == 1 && rp.num_prefills == 1 && rp.num_decodes == 3 && rp.q_rows[0] == 303 && rp.q_rows[1] == 0 &&
              rp.page_entries == 4ull * stride && rp.cache_pages == (int32_t)pidx.size(),
          "ragged plan fields");
    std::vector<unsigned char> rws(rp.workspace_bytes + 256);
    int q[4], o[4];
    float lse[4];
    podgen_ragged_buffers rbuf;
    memset(&rbuf, 0, sizeof rbuf);
    rbuf.q = q; rbuf.o = o; rbuf.lse = lse; rbuf.k = dummy; rbuf.v = dummy; rbuf.page_indices = table.data();
    rbuf.workspace = (void*)(((uintptr_t)rws.data() + 255) / 256 * 256);
    rbuf.workspace_bytes = rp.workspace_bytes;
    pod::launches.clear();
    CHECK(pod_test_run_ragged(&rp, &rbuf, nullptr) == PODGEN_OK, "run_ragged: %s", pod_test_last_error());
    CHECK(!pod::launches.empty() && pod::launches[0].kind == "fused" && pod::launches[0].grid == rp.grid_fused, "run_ragged launches");
    if (!pod::launches.empty()) {
      const pod::PodParams& p = pod::launches[0].p;
      CHECK(p.q[0] == q && p.q[1] == q && p.o[0] == o && p.o[1] == o && p.lse[0] == lse && p.lse[1] == lse &&
                (const char*)p.page_indptr == (const char*)rbuf.workspace + rp.page_base_offset,
            "ragged params");
    }
    podgen_ragged_buffers rb2 = rbuf;
    rb2.q = nullptr;
    CHECK_ERR(pod_test_run_ragged(&rp, &rb2, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "pod_test_run_ragged: buffers.q is NULL but the plan has prefill work");
    CHECK_ERR(pod_test_run(&rp, &buf, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "plan was made by plan_ragged; launch it with run_ragged");
    CHECK_ERR(pod_test_run_decode(&rp, &buf, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "launch it with run_ragged");
    CHECK_ERR(pod_test_run_ragged(&plan, &rbuf, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "launch it with run, run_prefill or run_decode");
    CHECK_ERR(pod_test_plan_ragged(nullptr, &opt, nullptr, 0, &rp), PODGEN_ERR_INVALID_ARGUMENT, "pod_test_plan_ragged: batch is NULL");
    rb.block_table_stride = 2;
    CHECK_ERR(pod_test_plan_ragged(&rb, &opt, nullptr, 0, &rp), PODGEN_ERR_BAD_BATCH, "pod_test_plan_ragged: request 0 needs 250 pages");
  }
  // Empty batch: nothing to launch, nothing required but the workspace.
  {
    podgen_batch e;
    memset(&e, 0, sizeof e);
    e.num_heads_q = 32; e.num_heads_kv = 8; e.head_dim = 128;
    podgen_plan ep;
    CHECK(pod_test_plan(&e, &opt, nullptr, 0, &ep) == PODGEN_OK, "empty plan: %s", pod_test_last_error());
    podgen_buffers eb;
    memset(&eb, 0, sizeof eb);
    eb.workspace = ws; eb.workspace_bytes = ep.workspace_bytes;
    pod::launches.clear();
    CHECK(pod_test_run(&ep, &eb, nullptr) == PODGEN_OK && pod::launches.empty(), "empty run");
  }

  // run_reference
  {
    podgen_reference_args a;
    memset(&a, 0, sizeof a);
    CHECK_ERR(pod_test_run_reference(nullptr, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "args is NULL");
    a.num_prefills = -1;
    CHECK_ERR(pod_test_run_reference(&a, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "negative count");
    a.num_prefills = 1; a.num_decodes = 1; a.total_prefill_tokens = 5;
    a.qo_indptr = dummy; a.kv_lens = dummy; a.page_indptr = dummy; a.page_indices = dummy;
    a.q_prefill = dummy; a.q_decode = dummy; a.k = dummy; a.v = dummy;
    a.o_prefill = (float*)dummy;
    CHECK_ERR(pod_test_run_reference(&a, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "args.o_decode is NULL");
    a.o_decode = (float*)dummy;
    pod::launches.clear();
    a.sinks = (float*)dummy;
    CHECK_ERR(pod_test_run_reference(&a, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
              "args.sinks is set but the kernel has no attention sinks");
    a.sinks = nullptr;
    a.k_scale = (float*)dummy;
    CHECK_ERR(pod_test_run_reference(&a, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
              "args.k_scale is set but the kernel's KV cache is 16-bit");
    a.k_scale = nullptr;
    CHECK(pod_test_run_reference(&a, nullptr) == PODGEN_OK && pod::launches.size() == 1, "reference");
    CHECK(fabsf(pod::last_reference.sm_scale - 1.0f / sqrtf(128.0f)) < 1e-7f, "reference default scale");
  }

  // fill_random
  {
    char bytes[8];
    pod::launches.clear();
    CHECK(pod_test_fill_random(nullptr, 0, 1, 0, nullptr) == PODGEN_OK && pod::launches.empty(), "fill of 0 elements");
    CHECK_ERR(pod_test_fill_random(nullptr, 3, 1, 0, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "dst is NULL but count=3");
    CHECK_ERR(pod_test_fill_random(bytes + 1, 3, 1, 0, nullptr), PODGEN_ERR_INVALID_ARGUMENT, "not aligned to the kernel's 2-byte elements");
    CHECK(pod_test_fill_random(bytes, 3, ~0ull, 7, nullptr) == PODGEN_OK && pod::launches.size() == 1, "fill");
    CHECK(pod::last_fill.dst == bytes && pod::last_fill.count == 3 && pod::last_fill.seed == ~0ull && pod::last_fill.tensor == 7,
          "fill arguments reach the launcher");
    pod::next_error = cudaErrorInvalidValue;
    CHECK_ERR(pod_test_fill_random(bytes, 3, 1, 0, nullptr), PODGEN_ERR_CUDA, "launch_fill_random failed: cudaErrorInvalidValue");
    pod::next_error = cudaSuccess;
    // The KV cache's fill: the same checks and launcher, with the KV dtype's elements (here 16-bit).
    pod::launches.clear();
    CHECK_ERR(pod_test_fill_random_kv(bytes + 1, 3, 1, 0, nullptr), PODGEN_ERR_INVALID_ARGUMENT,
              "pod_test_fill_random_kv: dst is not aligned to the kernel's 2-byte elements");
    CHECK(pod_test_fill_random_kv(bytes, 5, 9, 3, nullptr) == PODGEN_OK && pod::launches.size() == 1, "fill kv");
    CHECK(pod::last_fill.count == 5 && pod::last_fill.seed == 9 && pod::last_fill.tensor == 3, "fill kv arguments reach the launcher");
  }

  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
