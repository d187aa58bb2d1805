// podgen C ABI (pod_attention.h) for the Traits of the including TU.
//
// Included once at the end of each generated kernel.cu, after `struct Traits`, after pod/pod.cuh
// (pod::plan, pod::launch_*) and after `#define POD_API(name) <prefix>_##name`. Every function
// validates its arguments, catches every exception (none crosses the C boundary) and on failure
// returns a PODGEN_ERR_* status with a message for <prefix>_last_error() on the calling thread.
// The run functions only launch: no allocation, no synchronization, so they can be captured in a
// CUDA graph.
#ifndef POD_API
#error "define POD_API(name) (the exported prefix) before including pod/c_abi.inl"
#endif
#include <cuda_runtime.h>
#include <cmath>
#include <stdint.h>
#include <string.h>

#include <exception>
#include <new>
#include <string>
#include <type_traits>

namespace {
namespace c_abi {

// The message of the last failing call on this thread (one per generated TU, like the prefix).
thread_local std::string last_error;

int fail(int status, std::string message) {
  last_error = std::move(message);
  return status;
}

int cuda_fail(cudaError_t e, const char* fn, const char* what) {
  return fail(PODGEN_ERR_CUDA, std::string(fn) + ": " + what + " failed: " + cudaGetErrorName(e) +
                                   " (" + cudaGetErrorString(e) + ")");
}

// Plans built by plan() carry the ABI version; a zeroed or foreign struct does not.
int check_plan(const podgen_plan* plan, const char* fn) {
  if (!plan) return fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": plan is NULL");
  if (plan->abi_version != PODGEN_ABI_VERSION)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                std::string(fn) + ": plan has abi_version=" + std::to_string(plan->abi_version) +
                    ", expected " + std::to_string(PODGEN_ABI_VERSION) +
                    " (not the result of a successful plan call?)");
  return PODGEN_OK;
}

// The device tensors of a run, from either buffers struct: a ragged run passes its one q / o /
// lse as both parts.
struct Tensors {
  const void* q[2];
  void* o[2];
  float* lse[2];
  const void* k;
  const void* v;
  const int32_t* page_indices;
  void* workspace;
  uint64_t workspace_bytes;
  float sm_scale;
  const float* sinks;
  const float* k_scale;
  const float* v_scale;
};

Tensors tensors_of(const podgen_buffers& b) {
  return {{b.q_prefill, b.q_decode}, {b.o_prefill, b.o_decode}, {b.lse_prefill, b.lse_decode},
          b.k, b.v, b.page_indices, b.workspace, b.workspace_bytes, b.sm_scale, b.sinks, b.k_scale, b.v_scale};
}

Tensors tensors_of(const podgen_ragged_buffers& b) {
  return {{b.q, b.q}, {b.o, b.o}, {b.lse, b.lse}, b.k, b.v, b.page_indices, b.workspace,
          b.workspace_bytes, b.sm_scale, b.sinks, b.k_scale, b.v_scale};
}

// The sink logits are given exactly when the kernel has sinks (spec: sinks): a kernel without them
// would silently ignore them, and one with them cannot run without.
int check_sinks(const float* sinks, const char* field, const char* fn) {
  if (Traits::kSinks && !sinks)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                std::string(fn) + ": " + field +
                    " is NULL but the kernel has attention sinks (spec: sinks); pass one fp32 logit per query head (" +
                    std::to_string(Traits::kNumHeadsQ) + ")");
  if (!Traits::kSinks && sinks)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                std::string(fn) + ": " + field +
                    " is set but the kernel has no attention sinks (spec: sinks absent); pass NULL");
  return PODGEN_OK;
}

// The fp8 dequantization scales are given exactly when the kernel's KV cache is fp8 (spec:
// kvDtype): a 16-bit cache has none to apply, and an fp8 one cannot be read without.
int check_kv_scales(const float* k_scale, const float* v_scale, const char* where, const char* fn) {
  const char* names[2] = {"k_scale", "v_scale"};
  const float* scales[2] = {k_scale, v_scale};
  for (int i = 0; i < 2; ++i) {
    if (Traits::kKvFp8 && !scales[i])
      return fail(PODGEN_ERR_INVALID_ARGUMENT,
                  std::string(fn) + ": " + where + "." + names[i] +
                      " is NULL but the kernel's KV cache is fp8 e4m3 (spec: kvDtype); pass " +
                      (Traits::kKvScalePerHead ? std::to_string(Traits::kNumHeadsKv) + " fp32 scales, one per KV head"
                                               : std::string("one fp32 scale")) +
                      " in device memory");
    if (!Traits::kKvFp8 && scales[i])
      return fail(PODGEN_ERR_INVALID_ARGUMENT,
                  std::string(fn) + ": " + where + "." + names[i] +
                      " is set but the kernel's KV cache is 16-bit (spec: kvDtype absent); pass NULL");
  }
  return PODGEN_OK;
}

// The sink logits into a sinks kernel's parameters (a template, so that PodParams, which has none,
// need not name them).
template <class Params>
void set_sinks(Params* p, const float* sinks) {
  if constexpr (Traits::kSinks) p->sinks = sinks;
}

// The same for the scales of an fp8 KV kernel (PodKvScaleParams).
template <class Params>
void set_kv_scales(Params* p, const float* k_scale, const float* v_scale) {
  if constexpr (Traits::kKvFp8) {
    p->k_scale = k_scale;
    p->v_scale = v_scale;
  }
}

// The parts a run computes, hence the buffers it needs.
struct Parts {
  bool prefill, decode;
};

// Checks the plan's form, the buffers a run needs, and builds the kernel parameters. A part
// counts as present when the plan's grid for it is non-zero: the live work outside graph mode,
// the bucket's capacity in graph mode (a graph captured for the bucket must also be valid for
// batches that have that part). Names in messages are the buffers struct's fields.
template <class Buffers>
int make_params(const podgen_plan* plan, const Buffers* buffers, Parts parts, const char* fn,
                pod::KernelParams<Traits>* p) {
  constexpr bool ragged = std::is_same<Buffers, podgen_ragged_buffers>::value;
  int status = check_plan(plan, fn);
  if (status != PODGEN_OK) return status;
  const std::string at = std::string(fn) + ": ";
  if (plan->ragged != (ragged ? 1 : 0))
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + (plan->ragged ? "plan was made by plan_ragged; launch it with run_ragged"
                                   : "plan was made by plan (prefills and decodes apart); launch "
                                     "it with run, run_prefill or run_decode"));
  if (!buffers) return fail(PODGEN_ERR_INVALID_ARGUMENT, at + "buffers is NULL");
  const Tensors b = tensors_of(*buffers);
  const bool prefill = parts.prefill && plan->grid_prefill > 0;
  const bool decode = parts.decode && plan->grid_decode > 0;
  const bool any = prefill || decode;
  struct Required {
    bool needed;
    const void* ptr;
    const char* name;
    const char* because;
  } required[] = {
      {true, b.workspace, "buffers.workspace", "every run reads its plan there"},
      {prefill, b.q[0], ragged ? "buffers.q" : "buffers.q_prefill", "the plan has prefill work"},
      {prefill, b.o[0], ragged ? "buffers.o" : "buffers.o_prefill", "the plan has prefill work"},
      {decode, b.q[1], ragged ? "buffers.q" : "buffers.q_decode", "the plan has decode work"},
      {decode, b.o[1], ragged ? "buffers.o" : "buffers.o_decode", "the plan has decode work"},
      {any, b.k, "buffers.k", "the plan has work"},
      {any, b.v, "buffers.v", "the plan has work"},
      {any && Traits::kPaged, b.page_indices, "buffers.page_indices",
       "the plan has work and the cache is paged"},
  };
  for (const Required& r : required)
    if (r.needed && !r.ptr)
      return fail(PODGEN_ERR_INVALID_ARGUMENT, at + r.name + " is NULL but " + r.because);
  if (b.workspace_bytes < plan->workspace_bytes)
    return fail(PODGEN_ERR_WORKSPACE_TOO_SMALL,
                at + "buffers.workspace_bytes=" + std::to_string(b.workspace_bytes) +
                    " < workspace_bytes=" + std::to_string(plan->workspace_bytes) +
                    " the plan needs");
  if (reinterpret_cast<uintptr_t>(b.workspace) % 16 != 0)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + "buffers.workspace is not 16-byte aligned (use the start of a cudaMalloc)");
  if (!std::isfinite(b.sm_scale))
    return fail(PODGEN_ERR_INVALID_ARGUMENT, at + "buffers.sm_scale is not finite");
  status = check_sinks(b.sinks, "buffers.sinks", fn);
  if (status != PODGEN_OK) return status;
  status = check_kv_scales(b.k_scale, b.v_scale, "buffers", fn);
  if (status != PODGEN_OK) return status;

  char* ws = static_cast<char*>(b.workspace);
  *p = pod::KernelParams<Traits>{};
  for (int op = 0; op < 2; ++op) {
    p->q[op] = b.q[op];
    p->o[op] = b.o[op];
    p->lse[op] = b.lse[op];
  }
  p->k = b.k;
  p->v = b.v;
  p->page_indptr = reinterpret_cast<const int32_t*>(ws + plan->page_base_offset);
  p->page_indices = b.page_indices;
  p->header = reinterpret_cast<pod::PodDeviceHeader*>(ws);
  for (int op = 0; op < 2; ++op) {
    p->items[op] = reinterpret_cast<const pod::PodWorkItem*>(ws + plan->items_offset[op]);
    p->merges[op] = reinterpret_cast<const pod::PodMergeItem*>(ws + plan->merges_offset[op]);
    p->partial_o[op] = reinterpret_cast<float*>(ws + plan->partial_o_offset[op]);
    p->partial_lse[op] = reinterpret_cast<float*>(ws + plan->partial_lse_offset[op]);
  }
  p->sm_scale = b.sm_scale != 0.0f ? b.sm_scale : 1.0f / sqrtf((float)Traits::kHeadDim);
  set_sinks(p, b.sinks);
  set_kv_scales(p, b.k_scale, b.v_scale);
  return PODGEN_OK;
}

// The split-KV combine of one op, after the kernel that wrote its partials (same stream). Its grid
// is non-zero whenever the plan (or, in graph mode, the bucket) can have merges, so a captured
// graph keeps the launch even when the batch it was captured with had none; the kernel reads the
// live merge count from the device header.
int combine(const podgen_plan* plan, const pod::KernelParams<Traits>& p, int op, cudaStream_t s,
            const char* fn) {
  if (plan->grid_merge[op] <= 0) return PODGEN_OK;
  const cudaError_t e = pod::launch_combine<Traits>(p, op, plan->grid_merge[op], s);
  if (e != cudaSuccess)
    return cuda_fail(e, fn, op == POD_OP_PREFILL ? "launch_combine(prefill)" : "launch_combine(decode)");
  return PODGEN_OK;
}

// Records "<fn>: <what>" without throwing (used where an exception is already being handled).
void record(const char* fn, const char* what) noexcept {
  try {
    last_error = std::string(fn) + ": " + what;
  } catch (...) {  // no memory for the message: the status still says what happened
  }
}

// Runs body() and turns any escaping exception into a status (nothing may unwind into C).
template <class F>
int guarded(const char* fn, F body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    record(fn, "out of host memory");
    return PODGEN_ERR_UNSUPPORTED;
  } catch (const std::exception& e) {
    record(fn, e.what());
    return PODGEN_ERR_UNSUPPORTED;
  } catch (...) {
    record(fn, "unknown C++ exception");
    return PODGEN_ERR_UNSUPPORTED;
  }
}

// Both plan entries: one batch form each, one planner (pod/planner.h).
template <class Input>
int plan_entry(const char* fn, const Input* batch, const podgen_plan_options* options,
               void* host_staging, uint64_t host_staging_bytes, podgen_plan* plan) {
  return guarded(fn, [&]() -> int {
    if (!plan) return fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": plan is NULL");
    memset(plan, 0, sizeof *plan);
    if (!batch) return fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": batch is NULL");
    podgen_plan_options defaults;
    memset(&defaults, 0, sizeof defaults);
    std::string error;
    const int status = pod::plan<Traits>(*batch, options ? *options : defaults, host_staging,
                                         host_staging_bytes, plan, &error);
    if (status != PODGEN_OK) return fail(status, std::string(fn) + ": " + error);
    return PODGEN_OK;
  });
}

// The fused launch and the combines, for either buffers struct.
template <class Buffers>
int run_fused(const char* fn, const podgen_plan* plan, const Buffers* buffers, void* stream) {
  return guarded(fn, [&]() -> int {
    pod::KernelParams<Traits> p;
    int status = make_params(plan, buffers, {true, true}, fn, &p);
    if (status != PODGEN_OK) return status;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (plan->grid_fused > 0) {
      const cudaError_t e = pod::launch_fused<Traits>(p, plan->grid_fused, s);
      if (e != cudaSuccess) return cuda_fail(e, fn, "launch_fused");
    }
    for (int op = 0; op < 2 && status == PODGEN_OK; ++op) status = combine(plan, p, op, s, fn);
    return status;
  });
}

}  // namespace c_abi
}  // namespace

#define POD_ABI_STR2(x) #x
#define POD_ABI_STR(x) POD_ABI_STR2(x)
// The exported name of a function, e.g. "pod_llama3_8b_run", for messages.
#define POD_ABI_NAME(name) POD_ABI_STR(POD_API(name))

extern "C" void POD_API(info)(podgen_kernel_info* out) {
  if (!out) {
    c_abi::record(POD_ABI_NAME(info), "out is NULL");  // info returns no status
    return;
  }
  podgen_kernel_info i;
  memset(&i, 0, sizeof i);
  i.abi_version = PODGEN_ABI_VERSION;
  i.num_heads_q = Traits::kNumHeadsQ;
  i.num_heads_kv = Traits::kNumHeadsKv;
  i.head_dim = Traits::kHeadDim;
  i.page_size = Traits::kPageSize;
  i.paged = Traits::kPaged ? 1 : 0;
  i.dtype = Traits::kDType;
  i.prefill_tile_q = Traits::Prefill::kTileQ;
  i.prefill_tile_kv = Traits::Prefill::kTileKv;
  i.decode_tile_q = Traits::Decode::kTileQ;
  i.decode_tile_kv = Traits::Decode::kTileKv;
  i.threads_per_cta = Traits::kThreads;
  i.ctas_per_sm = Traits::kCtasPerSm;
  i.virtual_ctas = Traits::Decode::kVirtualCtas;
  i.schedule = Traits::kSchedule;
  i.prefill_max_splits = Traits::Prefill::kMaxSplits;
  i.prefill_max_waves = Traits::Prefill::kMaxWaves;
  i.decode_max_splits = Traits::Decode::kMaxSplits;
  i.smem_bytes = (uint32_t)Traits::kSmemBytes;
  i.window = Traits::kWindow;
  i.logits_soft_cap = Traits::kLogitsSoftCap;
  i.sinks = Traits::kSinks ? 1 : 0;
  i.kv_dtype = Traits::kKvFp8 ? 2 : Traits::kDType;
  i.kv_scale_per_head = Traits::kKvScalePerHead ? 1 : 0;
  *out = i;
}

extern "C" int POD_API(plan)(const podgen_batch* batch, const podgen_plan_options* options,
                             void* host_staging, uint64_t host_staging_bytes, podgen_plan* plan) {
  return c_abi::plan_entry(POD_ABI_NAME(plan), batch, options, host_staging, host_staging_bytes,
                           plan);
}

extern "C" int POD_API(plan_ragged)(const podgen_ragged_batch* batch,
                                    const podgen_plan_options* options, void* host_staging,
                                    uint64_t host_staging_bytes, podgen_plan* plan) {
  return c_abi::plan_entry(POD_ABI_NAME(plan_ragged), batch, options, host_staging,
                           host_staging_bytes, plan);
}

// Copies the staging image (header with zeroed counters, items, merges) to the start of the
// workspace, ordered on `stream` before the runs that follow. From pageable memory the copy has
// consumed host_staging when this returns; from pinned memory keep host_staging unchanged until
// the stream reaches the copy (e.g. double-buffer the staging when re-planning every step).
extern "C" int POD_API(upload_plan)(const podgen_plan* plan, const void* host_staging,
                                    void* workspace, uint64_t workspace_bytes, void* stream) {
  static const char* fn = POD_ABI_NAME(upload_plan);
  return c_abi::guarded(fn, [&]() -> int {
    int status = c_abi::check_plan(plan, fn);
    if (status != PODGEN_OK) return status;
    const std::string at = std::string(fn) + ": ";
    if (!host_staging) return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, at + "host_staging is NULL");
    if (!workspace) return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, at + "workspace is NULL");
    if (workspace_bytes < plan->workspace_bytes)
      return c_abi::fail(PODGEN_ERR_WORKSPACE_TOO_SMALL,
                         at + "workspace_bytes=" + std::to_string(workspace_bytes) +
                             " < workspace_bytes=" + std::to_string(plan->workspace_bytes) +
                             " the plan needs");
    // Cheap guard against pairing a plan with another plan's staging buffer.
    pod::PodDeviceHeader header;
    memcpy(&header, host_staging, sizeof header);
    for (int op = 0; op < 2; ++op)
      if (header.num_items[op] != plan->num_items[op] ||
          header.num_merges[op] != plan->num_merges[op] ||
          header.num_tickets[op] != plan->num_tickets[op])
        return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT,
                           at + "host_staging does not hold this plan (its header counts differ; "
                                "plan again with this staging buffer)");
    const cudaError_t e = cudaMemcpyAsync(workspace, host_staging, (size_t)plan->host_bytes,
                                          cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess) return c_abi::cuda_fail(e, fn, "cudaMemcpyAsync of the plan");
    return PODGEN_OK;
  });
}

// The fused kernel (grid: prefill tickets + decode tickets), then the combine of each op.
extern "C" int POD_API(run)(const podgen_plan* plan, const podgen_buffers* buffers, void* stream) {
  return c_abi::run_fused(POD_ABI_NAME(run), plan, buffers, stream);
}

// The same for a plan_ragged plan: one q and one o for every request.
extern "C" int POD_API(run_ragged)(const podgen_plan* plan, const podgen_ragged_buffers* buffers,
                                   void* stream) {
  return c_abi::run_fused(POD_ABI_NAME(run_ragged), plan, buffers, stream);
}

// Baseline: the prefill part alone with the prefill-only kernel (decodes in the plan are ignored).
extern "C" int POD_API(run_prefill)(const podgen_plan* plan, const podgen_buffers* buffers,
                                    void* stream) {
  static const char* fn = POD_ABI_NAME(run_prefill);
  return c_abi::guarded(fn, [&]() -> int {
    pod::KernelParams<Traits> p;
    int status = c_abi::make_params(plan, buffers, {true, false}, fn, &p);
    if (status != PODGEN_OK) return status;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (plan->grid_prefill > 0) {
      const cudaError_t e = pod::launch_prefill<Traits>(p, plan->grid_prefill, s);
      if (e != cudaSuccess) return c_abi::cuda_fail(e, fn, "launch_prefill");
    }
    return c_abi::combine(plan, p, POD_OP_PREFILL, s, fn);
  });
}

// Baseline: the decode part alone with the decode-only kernel (prefills in the plan are ignored).
extern "C" int POD_API(run_decode)(const podgen_plan* plan, const podgen_buffers* buffers,
                                   void* stream) {
  static const char* fn = POD_ABI_NAME(run_decode);
  return c_abi::guarded(fn, [&]() -> int {
    pod::KernelParams<Traits> p;
    int status = c_abi::make_params(plan, buffers, {false, true}, fn, &p);
    if (status != PODGEN_OK) return status;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (plan->grid_decode > 0) {
      const cudaError_t e = pod::launch_decode<Traits>(p, plan->grid_decode, s);
      if (e != cudaSuccess) return c_abi::cuda_fail(e, fn, "launch_decode");
    }
    return c_abi::combine(plan, p, POD_OP_DECODE, s, fn);
  });
}

// The fp32 oracle. Only host-visible values are checked (counts and NULL pointers); the device
// arrays are trusted, so feed it batches that plan() accepted.
extern "C" int POD_API(run_reference)(const podgen_reference_args* args, void* stream) {
  static const char* fn = POD_ABI_NAME(run_reference);
  return c_abi::guarded(fn, [&]() -> int {
    const std::string at = std::string(fn) + ": ";
    if (!args) return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, at + "args is NULL");
    podgen_reference_args a = *args;
    if (a.num_prefills < 0 || a.num_decodes < 0 || a.total_prefill_tokens < 0)
      return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT,
                         at + "negative count (num_prefills=" + std::to_string(a.num_prefills) +
                             ", num_decodes=" + std::to_string(a.num_decodes) +
                             ", total_prefill_tokens=" + std::to_string(a.total_prefill_tokens) + ")");
    const bool prefill = a.num_prefills > 0, any = prefill || a.num_decodes > 0;
    struct Required {
      bool needed;
      const void* ptr;
      const char* name;
    } required[] = {
        {prefill, a.qo_indptr, "args.qo_indptr"},   {prefill, a.q_prefill, "args.q_prefill"},
        {prefill, a.o_prefill, "args.o_prefill"},   {a.num_decodes > 0, a.q_decode, "args.q_decode"},
        {a.num_decodes > 0, a.o_decode, "args.o_decode"},
        {any, a.kv_lens, "args.kv_lens"},           {any, a.page_indptr, "args.page_indptr"},
        {any && Traits::kPaged, a.page_indices, "args.page_indices"},
        {any, a.k, "args.k"},                       {any, a.v, "args.v"},
    };
    for (const Required& r : required)
      if (r.needed && !r.ptr)
        return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, at + r.name + " is NULL");
    if (!any) return PODGEN_OK;
    const int sinks = c_abi::check_sinks(a.sinks, "args.sinks", fn);
    if (sinks != PODGEN_OK) return sinks;
    const int scales = c_abi::check_kv_scales(a.k_scale, a.v_scale, "args", fn);
    if (scales != PODGEN_OK) return scales;
    if (!std::isfinite(a.sm_scale))
      return c_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, at + "args.sm_scale is not finite");
    if (a.sm_scale == 0.0f) a.sm_scale = 1.0f / sqrtf((float)Traits::kHeadDim);
    const cudaError_t e = pod::launch_reference<Traits>(a, static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess) return c_abi::cuda_fail(e, fn, "launch_reference");
    return PODGEN_OK;
  });
}

namespace {
namespace c_abi {
// Random inputs for tests and benchmarks (pod/reference.cuh): count elements of type T at dst.
template <class T>
int fill_random(const char* fn, void* dst, uint64_t count, uint64_t seed, uint32_t tensor, void* stream) {
  return guarded(fn, [&]() -> int {
    const std::string at = std::string(fn) + ": ";
    constexpr size_t kElementBytes = sizeof(T);
    if (count == 0) return PODGEN_OK;
    if (!dst) return fail(PODGEN_ERR_INVALID_ARGUMENT, at + "dst is NULL but count=" + std::to_string(count));
    if (reinterpret_cast<uintptr_t>(dst) % kElementBytes != 0)
      return fail(PODGEN_ERR_INVALID_ARGUMENT,
                  at + "dst is not aligned to the kernel's " + std::to_string(kElementBytes) + "-byte elements");
    const cudaError_t e = pod::launch_fill_random<T>(dst, count, seed, tensor, static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess) return cuda_fail(e, fn, "launch_fill_random");
    return PODGEN_OK;
  });
}
}  // namespace c_abi
}  // namespace

// count elements of the kernel's dtype (q, o).
extern "C" int POD_API(fill_random)(void* dst, uint64_t count, uint64_t seed, uint32_t tensor,
                                    void* stream) {
  return c_abi::fill_random<typename Traits::DType>(POD_ABI_NAME(fill_random), dst, count, seed, tensor, stream);
}

// count elements of the kernel's KV dtype (k, v; fp8 e4m3 when the spec's kvDtype says so).
extern "C" int POD_API(fill_random_kv)(void* dst, uint64_t count, uint64_t seed, uint32_t tensor,
                                       void* stream) {
  return c_abi::fill_random<typename Traits::KvDType>(POD_ABI_NAME(fill_random_kv), dst, count, seed, tensor, stream);
}

extern "C" const char* POD_API(status_name)(int status) {
  switch (status) {
    case PODGEN_OK: return "PODGEN_OK";
    case PODGEN_ERR_INVALID_ARGUMENT: return "PODGEN_ERR_INVALID_ARGUMENT";
    case PODGEN_ERR_BAD_BATCH: return "PODGEN_ERR_BAD_BATCH";
    case PODGEN_ERR_WORKSPACE_TOO_SMALL: return "PODGEN_ERR_WORKSPACE_TOO_SMALL";
    case PODGEN_ERR_BUCKET_EXCEEDED: return "PODGEN_ERR_BUCKET_EXCEEDED";
    case PODGEN_ERR_CUDA: return "PODGEN_ERR_CUDA";
    case PODGEN_ERR_UNSUPPORTED: return "PODGEN_ERR_UNSUPPORTED";
    default: return "PODGEN_ERR_UNKNOWN";
  }
}

// The message of the last failing call on this thread ("" if none); valid until the thread's
// next failing call into this kernel.
extern "C" const char* POD_API(last_error)(void) { return c_abi::last_error.c_str(); }

#undef POD_ABI_NAME
#undef POD_ABI_STR
#undef POD_ABI_STR2
