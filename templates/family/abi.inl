// podgen family C ABI (pod_family.h) over the members of the including TU.
//
// Included once at the end of the generated family.cu, after `kMembers` (one pod::family::Member
// per member, in the family's order) and `#define POD_FAMILY_API(name) pod_<family>_##name`.
// plan chooses a member and a mode (family/select.h) and plans with that member only; the other
// functions forward to the chosen member's own C ABI. As in pod/c_abi.inl, every function checks
// its arguments, lets no exception cross the C boundary, and on failure returns a PODGEN_ERR_*
// status with a message for <prefix>_last_error() on the calling thread.
#ifndef POD_FAMILY_API
#error "define POD_FAMILY_API(name) (the family's exported prefix) before including family/abi.inl"
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <chrono>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace {
namespace family_abi {

constexpr int kNumMembers = (int)(sizeof kMembers / sizeof kMembers[0]);
static_assert(kNumMembers >= 1 && kNumMembers <= PODGEN_FAMILY_MAX_MEMBERS,
              "a family has 1 to PODGEN_FAMILY_MAX_MEMBERS members");

thread_local std::string last_error;

int fail(int status, std::string message) {
  last_error = std::move(message);
  return status;
}

// A member's failure, reported by the family: its function and its own message.
int member_fail(int status, const pod::family::Member& m, const char* fn) {
  return fail(status, std::string(fn) + ": member \"" + m.name + "\": " + m.last_error());
}

int check_plan(const podgen_family_plan* plan, const char* fn) {
  if (!plan) return fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": plan is NULL");
  if (plan->abi_version != PODGEN_FAMILY_ABI_VERSION || plan->member < 0 ||
      plan->member >= kNumMembers || (plan->mode != PODGEN_MODE_FUSED && plan->mode != PODGEN_MODE_SERIAL))
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                std::string(fn) + ": plan has abi_version=" + std::to_string(plan->abi_version) +
                    ", member=" + std::to_string(plan->member) + ", mode=" + std::to_string(plan->mode) +
                    " (not the result of a successful plan call of this family?)");
  return PODGEN_OK;
}

template <class F>
int guarded(const char* fn, F body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    try { last_error = std::string(fn) + ": out of host memory"; } catch (...) {}
    return PODGEN_ERR_UNSUPPORTED;
  } catch (...) {
    try { last_error = std::string(fn) + ": unexpected C++ exception"; } catch (...) {}
    return PODGEN_ERR_UNSUPPORTED;
  }
}

// Checks the family's own options; the plan options inside are the member planner's to check.
int check_options(const podgen_family_options& o, const char* fn) {
  const std::string at = std::string(fn) + ": options.";
  if (o.force_member < 0 || o.force_member > kNumMembers)
    return fail(PODGEN_ERR_INVALID_ARGUMENT, at + "force_member=" + std::to_string(o.force_member) +
                                                 " is out of range [0, " + std::to_string(kNumMembers) +
                                                 "] (0: choose; m + 1: member m)");
  if (o.force_mode < PODGEN_MODE_CHOOSE || o.force_mode > PODGEN_MODE_SERIAL)
    return fail(PODGEN_ERR_INVALID_ARGUMENT, at + "force_mode=" + std::to_string(o.force_mode) +
                                                 " must be 0 (choose), 1 (fused) or 2 (serial)");
  const int64_t expected = (int64_t)kNumMembers * pod::family::kModes * PODGEN_COST_FEATURES;
  if (o.cost_model && o.cost_model_len != expected)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + "cost_model_len=" + std::to_string(o.cost_model_len) + " but this family needs " +
                    std::to_string(expected) + " coefficients (" + std::to_string(kNumMembers) +
                    " members x 2 modes x " + std::to_string(PODGEN_COST_FEATURES) + " features)");
  if (!o.cost_model && o.cost_model_len != 0)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + "cost_model is NULL but cost_model_len=" + std::to_string(o.cost_model_len));
  const int64_t bounds = (int64_t)kNumMembers * pod::family::kModes * 2;
  if (o.error_bounds && o.error_bounds_len != bounds)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + "error_bounds_len=" + std::to_string(o.error_bounds_len) + " but this family needs " +
                    std::to_string(bounds) + " bounds (" + std::to_string(kNumMembers) + " members x 2 modes x low, high)");
  if (!o.error_bounds && o.error_bounds_len != 0)
    return fail(PODGEN_ERR_INVALID_ARGUMENT,
                at + "error_bounds is NULL but error_bounds_len=" + std::to_string(o.error_bounds_len));
  for (int64_t i = 0; o.error_bounds && i < bounds; ++i)
    if (!isfinite(o.error_bounds[i]) || o.error_bounds[i] <= -1.0)
      return fail(PODGEN_ERR_INVALID_ARGUMENT,
                  at + "error_bounds[" + std::to_string(i) + "]=" + std::to_string(o.error_bounds[i]) +
                      " must be finite and above -1 (a prediction is scaled by 1 + bound)");
  return PODGEN_OK;
}

}  // namespace family_abi
}  // namespace

#define POD_FAMILY_STR2(x) #x
#define POD_FAMILY_STR(x) POD_FAMILY_STR2(x)
#define POD_FAMILY_NAME(name) POD_FAMILY_STR(POD_FAMILY_API(name))

extern "C" int32_t POD_FAMILY_API(num_members)(void) { return family_abi::kNumMembers; }

extern "C" const char* POD_FAMILY_API(member_name)(int32_t member) {
  return member >= 0 && member < family_abi::kNumMembers ? kMembers[member].name : nullptr;
}

extern "C" const char* POD_FAMILY_API(feature_name)(int32_t feature) {
  return feature >= 0 && feature < PODGEN_COST_FEATURES ? pod::family::kFeatureNames[feature] : nullptr;
}

extern "C" int POD_FAMILY_API(member_info)(int32_t member, podgen_kernel_info* out) {
  static const char* fn = POD_FAMILY_NAME(member_info);
  if (!out) return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": out is NULL");
  if (member < 0 || member >= family_abi::kNumMembers)
    return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT,
                            std::string(fn) + ": member=" + std::to_string(member) + " is out of range [0, " +
                                std::to_string(family_abi::kNumMembers - 1) + "]");
  kMembers[member].info(out);
  return PODGEN_OK;
}

// The shape every member shares (heads, head_dim, dtype, cache): member 0's info.
extern "C" void POD_FAMILY_API(info)(podgen_kernel_info* out) {
  if (out) kMembers[0].info(out);
}

extern "C" int POD_FAMILY_API(plan)(const podgen_batch* batch, const podgen_family_options* options,
                                    void* host_staging, uint64_t host_staging_bytes,
                                    podgen_family_plan* plan) {
  static const char* fn = POD_FAMILY_NAME(plan);
  return family_abi::guarded(fn, [&]() -> int {
    if (!plan) return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": plan is NULL");
    memset(plan, 0, sizeof *plan);
    if (!batch) return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": batch is NULL");
    podgen_family_options o;
    memset(&o, 0, sizeof o);  // no options: choose, static rule
    if (options) o = *options;
    int status = family_abi::check_options(o, fn);
    if (status != PODGEN_OK) return status;

    podgen_kernel_info infos[PODGEN_FAMILY_MAX_MEMBERS];
    for (int m = 0; m < family_abi::kNumMembers; ++m) kMembers[m].info(&infos[m]);
    const bool graph = o.plan.graph_mode == 1;
    const pod::family::Load load = graph ? pod::family::bucket_load(o.plan) : pod::family::live_load(*batch);
    const int num_sms = o.plan.num_sms > 0 ? o.plan.num_sms : pod::planner::kDefaultNumSms;
    pod::family::choose(infos, family_abi::kNumMembers, load, num_sms,
                        {o.force_member - 1, o.force_mode, o.cost_model}, plan);
    pod::family::apply_serial_margin(o.error_bounds, plan);

    const pod::family::Member& m = kMembers[plan->member];
    status = m.plan(batch, &o.plan, host_staging, host_staging_bytes, &plan->plan);
    if (status != PODGEN_OK) {
      const podgen_plan sizes = plan->plan;  // a too-small staging buffer still reports the sizes
      memset(plan, 0, sizeof *plan);
      plan->plan.host_bytes = sizes.host_bytes;
      plan->plan.workspace_bytes = sizes.workspace_bytes;
      return family_abi::member_fail(status, m, fn);
    }
    plan->abi_version = PODGEN_FAMILY_ABI_VERSION;
    return PODGEN_OK;
  });
}

// The planner's own host time: `iters` plans of one batch into one staging buffer (sized by a first
// call, as a caller that keeps its buffer does), timed by the steady clock; *ns_per_plan gets the
// mean. What a serving engine pays per step on the host for plan, without the marshalling of a
// binding (FamilyLibrary.plan, `podgen bench --family` reports both).
extern "C" int POD_FAMILY_API(plan_benchmark)(const podgen_batch* batch, const podgen_family_options* options,
                                              int32_t iters, double* ns_per_plan) {
  static const char* fn = POD_FAMILY_NAME(plan_benchmark);
  return family_abi::guarded(fn, [&]() -> int {
    if (!ns_per_plan) return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT, std::string(fn) + ": ns_per_plan is NULL");
    *ns_per_plan = 0;
    if (iters < 1)
      return family_abi::fail(PODGEN_ERR_INVALID_ARGUMENT,
                              std::string(fn) + ": iters=" + std::to_string(iters) + " must be at least 1");
    podgen_family_plan plan;
    int status = POD_FAMILY_API(plan)(batch, options, nullptr, 0, &plan);
    if (status != PODGEN_OK) return status;  // plan's own message stays in last_error
    std::vector<unsigned char> staging((size_t)plan.plan.host_bytes);
    const auto start = std::chrono::steady_clock::now();
    for (int32_t i = 0; i < iters && status == PODGEN_OK; ++i)
      status = POD_FAMILY_API(plan)(batch, options, staging.data(), staging.size(), &plan);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (status != PODGEN_OK) return status;
    *ns_per_plan = (double)std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count() / iters;
    return PODGEN_OK;
  });
}

extern "C" int POD_FAMILY_API(upload_plan)(const podgen_family_plan* plan, const void* host_staging,
                                           void* workspace, uint64_t workspace_bytes, void* stream) {
  static const char* fn = POD_FAMILY_NAME(upload_plan);
  return family_abi::guarded(fn, [&]() -> int {
    int status = family_abi::check_plan(plan, fn);
    if (status != PODGEN_OK) return status;
    const pod::family::Member& m = kMembers[plan->member];
    status = m.upload_plan(&plan->plan, host_staging, workspace, workspace_bytes, stream);
    return status == PODGEN_OK ? PODGEN_OK : family_abi::member_fail(status, m, fn);
  });
}

// The chosen launch: the member's fused kernel, or its prefill-only then decode-only kernels on
// the same stream (each a no-op when its op has no work). Only launches, like the member's run.
extern "C" int POD_FAMILY_API(run)(const podgen_family_plan* plan, const podgen_buffers* buffers,
                                   void* stream) {
  static const char* fn = POD_FAMILY_NAME(run);
  return family_abi::guarded(fn, [&]() -> int {
    int status = family_abi::check_plan(plan, fn);
    if (status != PODGEN_OK) return status;
    const pod::family::Member& m = kMembers[plan->member];
    if (plan->mode == PODGEN_MODE_FUSED) {
      status = m.run(&plan->plan, buffers, stream);
    } else {
      status = m.run_prefill(&plan->plan, buffers, stream);
      if (status == PODGEN_OK) status = m.run_decode(&plan->plan, buffers, stream);
    }
    return status == PODGEN_OK ? PODGEN_OK : family_abi::member_fail(status, m, fn);
  });
}

// The fp32 oracle (member 0's: every member shares the shape it depends on).
extern "C" int POD_FAMILY_API(run_reference)(const podgen_reference_args* args, void* stream) {
  static const char* fn = POD_FAMILY_NAME(run_reference);
  const int status = kMembers[0].run_reference(args, stream);
  return status == PODGEN_OK ? PODGEN_OK : family_abi::member_fail(status, kMembers[0], fn);
}

extern "C" const char* POD_FAMILY_API(status_name)(int status) { return kMembers[0].status_name(status); }

extern "C" const char* POD_FAMILY_API(last_error)(void) { return family_abi::last_error.c_str(); }

#undef POD_FAMILY_NAME
#undef POD_FAMILY_STR
#undef POD_FAMILY_STR2
