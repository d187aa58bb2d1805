// Host plan time of a built family library, no GPU needed (bench/plan-time.ts compiles and runs
// this). It dlopens the library and times, one call at a time with the steady clock:
//   family-auto  <family>_plan: the choice (cost model, or the static rule) and the chosen member's
//                plan of the batch in the split form (prefills, then decodes);
//   ragged       <member>_plan_ragged: the same requests in one ragged batch, the prefill chunks
//                spread among the decodes.
// Each call plans into a staging buffer kept between calls, as a serving engine that re-plans
// every step does. Prints one JSON object: per entry the median, p99, mean and minimum in µs.
//
// stdin (whitespace-separated): family_prefix member_prefix num_sms warmup iters
//   num_heads_q num_heads_kv head_dim num_pages num_prefills num_decodes
//   qo_indptr[num_prefills + 1] kv_lens[n] page_indptr[n + 1] num_page_indices page_indices[..]
//   cost_model_len cost_model[cost_model_len]   (0: the static rule)
//   error_bounds_len error_bounds[error_bounds_len]   (0: no serial margin)
// with n = num_prefills + num_decodes; pages as CSR.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "pod_family.h"

namespace {

using PlanFamily = int (*)(const podgen_batch*, const podgen_family_options*, void*, uint64_t, podgen_family_plan*);
using PlanRagged = int (*)(const podgen_ragged_batch*, const podgen_plan_options*, void*, uint64_t, podgen_plan*);
using LastError = const char* (*)(void);

[[noreturn]] void die(const std::string& message) {
  fprintf(stderr, "plan_time: %s\n", message.c_str());
  exit(1);
}

template <class T>
std::vector<T> read_array(size_t count, const char* what) {
  std::vector<T> v(count);
  for (T& x : v)
    if (!(std::cin >> x)) die(std::string("stdin ends inside ") + what);
  return v;
}

template <class T>
T read_one(const char* what) {
  return read_array<T>(1, what)[0];
}

// Doubles as strtod reads them ("nan" included, which operator>> refuses).
std::vector<double> read_doubles(size_t count, const char* what) {
  std::vector<double> v;
  for (const std::string& s : read_array<std::string>(count, what)) v.push_back(strtod(s.c_str(), nullptr));
  return v;
}

void* symbol(void* lib, const std::string& name) {
  void* s = dlsym(lib, name.c_str());
  if (!s) die("the library has no " + name);
  return s;
}

// Median, p99, mean and minimum of the samples, in µs, as a JSON object.
std::string summary(std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double q) { return ns[std::min(ns.size() - 1, (size_t)(q * (double)ns.size()))] / 1e3; };
  double sum = 0;
  for (double x : ns) sum += x;
  char buf[256];
  snprintf(buf, sizeof buf, "{\"medianUs\": %.3f, \"p99Us\": %.3f, \"meanUs\": %.3f, \"minUs\": %.3f, \"iters\": %zu}",
           at(0.5), at(0.99), sum / (double)ns.size() / 1e3, ns.front() / 1e3, ns.size());
  return buf;
}

// Times `iters` calls of plan() after `warmup` untimed ones; plan() returns a PODGEN status.
template <class F>
std::vector<double> time_calls(int warmup, int iters, F plan) {
  std::vector<double> ns;
  ns.reserve((size_t)iters);
  for (int i = 0; i < warmup + iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const int status = plan();
    const auto end = std::chrono::steady_clock::now();
    if (status != PODGEN_OK) return {};
    if (i >= warmup) ns.push_back((double)std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
  }
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) die("usage: plan_time <library.so> < input");
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) die(std::string("dlopen: ") + dlerror());
  const std::string family = read_one<std::string>("family_prefix"), member = read_one<std::string>("member_prefix");
  const int num_sms = read_one<int>("num_sms"), warmup = read_one<int>("warmup"), iters = read_one<int>("iters");
  if (iters < 1 || warmup < 0) die("iters must be at least 1 and warmup at least 0");
  podgen_batch b;
  memset(&b, 0, sizeof b);
  b.num_heads_q = read_one<int32_t>("num_heads_q");
  b.num_heads_kv = read_one<int32_t>("num_heads_kv");
  b.head_dim = read_one<int32_t>("head_dim");
  b.num_pages = read_one<int32_t>("num_pages");
  b.num_prefills = read_one<int32_t>("num_prefills");
  b.num_decodes = read_one<int32_t>("num_decodes");
  const int32_t P = b.num_prefills, n = P + b.num_decodes;
  const auto qo = read_array<int32_t>((size_t)P + 1, "qo_indptr");
  const auto kv = read_array<int32_t>((size_t)n, "kv_lens");
  const auto pip = read_array<int32_t>((size_t)n + 1, "page_indptr");
  const auto pidx = read_array<int32_t>(read_one<size_t>("num_page_indices"), "page_indices");
  const auto model = read_doubles(read_one<size_t>("cost_model_len"), "cost_model");
  const auto bounds = read_doubles(read_one<size_t>("error_bounds_len"), "error_bounds");
  b.qo_indptr = qo.data();
  b.kv_lens = kv.data();
  b.page_indptr = pip.data();
  b.page_indices = pidx.data();

  // The ragged batch: prefill p at position p * n / P, the decodes in order around them.
  std::vector<int32_t> rqo{0}, rkv, rpip{0}, rpidx;
  for (int32_t j = 0, next_prefill = 0, next_decode = P; j < n; ++j) {
    const bool prefill = next_prefill < P && (next_decode == n || j == (int64_t)next_prefill * n / P);
    const int32_t r = prefill ? next_prefill++ : next_decode++;
    rqo.push_back(rqo.back() + (r < P ? qo[r + 1] - qo[r] : 1));
    rkv.push_back(kv[r]);
    rpidx.insert(rpidx.end(), pidx.begin() + pip[r], pidx.begin() + pip[r + 1]);
    rpip.push_back((int32_t)rpidx.size());
  }
  podgen_ragged_batch rb;
  memset(&rb, 0, sizeof rb);
  rb.num_requests = n;
  rb.qo_indptr = rqo.data();
  rb.kv_lens = rkv.data();
  rb.page_indptr = rpip.data();
  rb.page_indices = rpidx.data();
  rb.num_pages = b.num_pages;
  rb.num_heads_q = b.num_heads_q;
  rb.num_heads_kv = b.num_heads_kv;
  rb.head_dim = b.head_dim;

  const auto plan_family = (PlanFamily)symbol(lib, family + "_plan");
  const auto family_error = (LastError)symbol(lib, family + "_last_error");
  const auto plan_ragged = (PlanRagged)symbol(lib, member + "_plan_ragged");
  const auto member_error = (LastError)symbol(lib, member + "_last_error");

  podgen_family_options fo;
  memset(&fo, 0, sizeof fo);
  fo.plan.num_sms = num_sms;
  fo.cost_model = model.empty() ? nullptr : model.data();
  fo.cost_model_len = (int32_t)model.size();
  fo.error_bounds = bounds.empty() ? nullptr : bounds.data();
  fo.error_bounds_len = (int32_t)bounds.size();
  podgen_family_plan fp;
  if (plan_family(&b, &fo, nullptr, 0, &fp) != PODGEN_OK) die(family + "_plan: " + family_error());
  std::vector<unsigned char> staging((size_t)fp.plan.host_bytes);
  const auto auto_ns = time_calls(warmup, iters, [&] { return plan_family(&b, &fo, staging.data(), staging.size(), &fp); });
  if (auto_ns.empty()) die(family + "_plan: " + family_error());

  podgen_plan rp;
  if (plan_ragged(&rb, &fo.plan, nullptr, 0, &rp) != PODGEN_OK) die(member + "_plan_ragged: " + member_error());
  std::vector<unsigned char> ragged_staging((size_t)rp.host_bytes);
  const auto ragged_ns = time_calls(warmup, iters, [&] {
    return plan_ragged(&rb, &fo.plan, ragged_staging.data(), ragged_staging.size(), &rp);
  });
  if (ragged_ns.empty()) die(member + "_plan_ragged: " + member_error());

  printf("{\"familyAuto\": %s, \"choice\": {\"member\": %d, \"mode\": %d, \"reason\": %d}, \"ragged\": %s, "
         "\"workItems\": [%d, %d]}\n",
         summary(auto_ns).c_str(), fp.member, fp.mode, fp.reason, summary(ragged_ns).c_str(),
         rp.num_items[0], rp.num_items[1]);
  return 0;
}
