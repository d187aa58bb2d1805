// The planner's input stage: every batch form the C ABI accepts becomes one Batch, the form the
// rest of the planner (pod/planner.h) schedules. Included by planner.h inside namespace
// pod::planner, after its helpers (fail, ceil_div, kInt32Max).
//
//   podgen_batch         prefills then decodes, their queries in two tensors (the split API);
//   podgen_ragged_batch  one query tensor, requests in any order: q_len 1 is a decode, longer a
//                        prefill chunk, each reading and writing its own rows of q and o.
// Either may give its pages as CSR (spare pages past a request's keys allowed) or as a padded
// block table. What the kernels need of the page table is one number per request, its page
// base (the first page_indices entry of its pages, or its first cache row): the planner writes
// those into the workspace, so a run needs only the device copy of page_indices.
//
// Every length and index is checked in an order that never reads an array entry before the
// entries that locate it were checked. Array lengths cannot be checked here (bindings that know
// them do): qo_indptr, kv_lens and page_indptr as the batch structs say, page_indices up to
// Batch::page_entries.

// One request as the scheduler sees it. `id` numbers it in the page table (page bases) and in
// the work items; `q_token_base` is the row of its first query token in its part's q and o.
struct Request {
  int32_t id, q_token_base, q_len, kv_len;
};

struct Batch {
  std::vector<Request> parts[2];   // [POD_OP_PREFILL, POD_OP_DECODE], each in request order
  std::vector<int32_t> page_base;  // by request id
  int64_t q_rows[2] = {0, 0};      // rows of each part's q / o the batch uses (ragged: [q, 0])
  int64_t prefill_tokens = 0;      // query tokens of the prefill part
  uint64_t page_entries = 0;       // paged: page_indices entries the table spans
  int32_t num_pages = 0;
  bool ragged = false;

  // Empty, its vectors' storage kept for the next batch.
  void clear() {
    for (std::vector<Request>& part : parts) part.clear();
    page_base.clear();
    q_rows[0] = q_rows[1] = 0;
    prefill_tokens = 0;
    page_entries = 0;
    num_pages = 0;
    ragged = false;
  }
};

// The fields both batch structs share.
struct PageTable {
  const int32_t* indptr;
  const int32_t* indices;
  int32_t block_table_stride;
  int32_t num_pages;
};

inline int check_heads(const KernelShape& k, int32_t heads_q, int32_t heads_kv, int32_t head_dim,
                       std::string* error) {
  const int bad = PODGEN_ERR_BAD_BATCH;
  if (heads_q != k.heads_q)
    return fail(error, bad, "num_heads_q=%d but kernel was generated for %d", heads_q, k.heads_q);
  if (heads_kv != k.heads_kv)
    return fail(error, bad, "num_heads_kv=%d but kernel was generated for %d", heads_kv, k.heads_kv);
  if (head_dim != k.head_dim)
    return fail(error, bad, "head_dim=%d but kernel was generated for %d", head_dim, k.head_dim);
  return PODGEN_OK;
}

// Query ranges qo_indptr[0 .. n]: starts at 0, every request has at least one token, and the
// packed rows (q_len * group) and partial rows of the work items stay in int32.
inline int check_qo_indptr(const KernelShape& k, const int32_t* qo_indptr, int64_t n,
                           const char* what, std::string* error) {
  const int bad = PODGEN_ERR_BAD_BATCH;
  if (qo_indptr[0] != 0) return fail(error, bad, "qo_indptr[0]=%d but must be 0", qo_indptr[0]);
  for (int64_t r = 0; r < n; ++r) {
    const int32_t lo = qo_indptr[r], hi = qo_indptr[r + 1];
    if (hi < lo)
      return fail(error, bad, "qo_indptr not non-decreasing at %lld (qo_indptr[%lld]=%d > %d)",
                  (long long)r + 1, (long long)r, lo, hi);
    if (hi == lo)
      return fail(error, bad,
                  "%s %lld has q_len=0 (qo_indptr[%lld]=qo_indptr[%lld]=%d); it needs at least one "
                  "query token",
                  what, (long long)r, (long long)r, (long long)r + 1, lo);
    if ((int64_t)(hi - lo) * k.group() > kInt32Max / 2)
      return fail(error, PODGEN_ERR_UNSUPPORTED,
                  "%s %lld: q_len=%d x group=%d packed rows exceed the int32 work items", what,
                  (long long)r, hi - lo, k.group());
  }
  return PODGEN_OK;
}

// The largest page entry of a request read as unsigned, so that a negative entry counts as one
// beyond any cache: the request's entries are all valid exactly when it is below num_pages. It reads
// every page entry of the batch (~530 KB for 256 requests, the largest part of the plan) with one
// unsigned max a vector of entries (a third faster than testing both bounds). On x86-64, GCC and
// Clang also build an AVX2 copy (SSE2 lacks the unsigned max, so the default copy emulates it),
// which the loader picks where the CPU has AVX2, so the library still runs on any x86-64.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDA_ARCH__)
__attribute__((target_clones("avx2", "default")))
#endif
inline uint32_t largest_page_entry(const uint32_t* pages, int64_t count) {
  uint32_t largest = 0;
  for (int64_t i = 0; i < count; ++i) largest = std::max(largest, pages[i]);
  return largest;
}

// The page bases of n requests with the given kv_lens (already checked >= 1), after checking
// every page entry the kernels will read: the first ceil(kv_len / page_size) of each request.
inline int read_page_table(const KernelShape& k, int64_t n, const int32_t* kv_lens,
                           const PageTable& t, Batch* out, std::string* error) {
  const int bad = PODGEN_ERR_BAD_BATCH, inval = PODGEN_ERR_INVALID_ARGUMENT;
  if (t.num_pages < 0) return fail(error, bad, "num_pages=%d is negative", t.num_pages);
  if (t.block_table_stride < 0)
    return fail(error, inval, "block_table_stride=%d is negative (0 means CSR page_indptr)",
                t.block_table_stride);
  out->num_pages = t.num_pages;
  out->page_base.resize((size_t)n);
  if (n == 0) return PODGEN_OK;  // nothing is read, pointers may be NULL
  const bool block_table = t.block_table_stride > 0;

  if (!k.paged) {
    if (block_table)
      return fail(error, inval,
                  "block_table_stride=%d but the cache is contiguous (page_indptr gives each "
                  "request's first row)",
                  t.block_table_stride);
    if (!t.indptr)
      return fail(error, inval, "page_indptr is NULL but the batch has %lld requests", (long long)n);
    // Request r reads rows [page_indptr[r], page_indptr[r] + kv_len) of k and v.
    for (int64_t r = 0; r < n; ++r) {
      const int64_t first = t.indptr[r], end = first + kv_lens[r];
      if (first < 0)
        return fail(error, bad, "page_indptr[%lld]=%lld is negative (first KV row of request %lld)",
                    (long long)r, (long long)first, (long long)r);
      if (end > t.num_pages)
        return fail(error, bad,
                    "request %lld uses KV rows [%lld, %lld) but num_pages=%d (rows in the "
                    "contiguous cache)",
                    (long long)r, (long long)first, (long long)end, t.num_pages);
      out->page_base[(size_t)r] = (int32_t)first;
    }
    return PODGEN_OK;
  }

  if (!t.indices) return fail(error, inval, "page_indices is NULL but the cache is paged");
  if (block_table) {
    if (t.indptr)
      return fail(error, inval,
                  "page_indptr is set but block_table_stride=%d says page_indices is a block "
                  "table (pass NULL)",
                  t.block_table_stride);
    // Page bases are int32 in the kernels.
    if (n * t.block_table_stride > kInt32Max)
      return fail(error, PODGEN_ERR_UNSUPPORTED,
                  "block table of %lld requests x %d columns exceeds int32 entries", (long long)n,
                  t.block_table_stride);
    out->page_entries = (uint64_t)(n * t.block_table_stride);
  } else {
    if (!t.indptr)
      return fail(error, inval,
                  "page_indptr is NULL but the batch has %lld requests (CSR; or set "
                  "block_table_stride for a block table)",
                  (long long)n);
    out->page_entries = (uint64_t)std::max(0, t.indptr[n]);
  }
  // Page counts first: that bounds the entries read below to the table.
  for (int64_t r = 0; r < n; ++r) {
    const int64_t need = ceil_div(kv_lens[r], k.page_size);
    if (block_table) {
      if (need > t.block_table_stride)
        return fail(error, bad,
                    "request %lld needs %lld pages for kv_len=%d at page_size=%d but the block "
                    "table has %d columns",
                    (long long)r, (long long)need, kv_lens[r], k.page_size, t.block_table_stride);
      out->page_base[(size_t)r] = (int32_t)(r * t.block_table_stride);
      continue;
    }
    const int64_t lo = t.indptr[r], hi = t.indptr[r + 1];
    if (lo < 0)
      return fail(error, bad, "page_indptr[%lld]=%lld is negative", (long long)r, (long long)lo);
    if (hi - lo < need)
      return fail(error, bad,
                  "request %lld needs %lld pages for kv_len=%d at page_size=%d but page_indptr "
                  "gives %lld (page_indptr[%lld]=%lld, page_indptr[%lld]=%lld)",
                  (long long)r, (long long)need, kv_lens[r], k.page_size, (long long)(hi - lo),
                  (long long)r, (long long)lo, (long long)r + 1, (long long)hi);
    out->page_base[(size_t)r] = (int32_t)lo;
  }
  for (int64_t r = 0; r < n; ++r) {
    const int64_t first = out->page_base[(size_t)r], need = ceil_div(kv_lens[r], k.page_size);
    // Every page entry is read (a serving batch has ~10^5): first a branch-free pass
    // (largest_page_entry), then, only if it found a bad entry, the loop that names the first one.
    if (need == 0 ||
        largest_page_entry(reinterpret_cast<const uint32_t*>(t.indices + first), need) < (uint32_t)t.num_pages)
      continue;
    for (int64_t i = first; i < first + need; ++i) {
      const int32_t page = t.indices[i];
      if (page < 0)
        return fail(error, bad, "page_indices[%lld]=%d is negative (page %lld of request %lld)",
                    (long long)i, page, (long long)(i - first), (long long)r);
      if (page >= t.num_pages)
        return fail(error, bad, "page_indices[%lld]=%d >= num_pages=%d (page %lld of request %lld)",
                    (long long)i, page, t.num_pages, (long long)(i - first), (long long)r);
    }
  }
  return PODGEN_OK;
}

// Keys per request: at least the request's own query tokens.
inline int check_kv_lens(const int32_t* kv_lens, int64_t r, int32_t q_len, std::string* error) {
  if (kv_lens[r] < q_len)
    return fail(error, PODGEN_ERR_BAD_BATCH,
                "kv_lens[%lld]=%d < q_len=%d of request %lld (a request attends to at least its "
                "own tokens)",
                (long long)r, kv_lens[r], q_len, (long long)r);
  return PODGEN_OK;
}

// Writes the request field by field into its part: a Request built on the stack and pushed whole
// is read back with a wide load that waits for its narrow stores (a store-forwarding stall: a few
// percent of a 256-request plan).
inline void add_request(Batch* b, int op, int32_t id, int32_t q_token_base, int32_t q_len,
                        int32_t kv_len) {
  Request& q = b->parts[op].emplace_back();
  q.id = id;
  q.q_token_base = q_token_base;
  q.q_len = q_len;
  q.kv_len = kv_len;
  if (op == POD_OP_PREFILL) b->prefill_tokens += q_len;
}

// The split form: requests 0 .. num_prefills-1 are prefill chunks of q_prefill, the rest decodes
// of q_decode (row d for decode d).
inline int read_batch(const KernelShape& k, const podgen_batch& b, const Options&, Batch* out,
                      std::string* error) {
  const int bad = PODGEN_ERR_BAD_BATCH, inval = PODGEN_ERR_INVALID_ARGUMENT;
  if (b.num_prefills < 0) return fail(error, bad, "num_prefills=%d is negative", b.num_prefills);
  if (b.num_decodes < 0) return fail(error, bad, "num_decodes=%d is negative", b.num_decodes);
  int status = check_heads(k, b.num_heads_q, b.num_heads_kv, b.head_dim, error);
  if (status != PODGEN_OK) return status;
  const int64_t P = b.num_prefills, n = P + b.num_decodes;
  if (n >= kInt32Max)  // page_indptr has n + 1 entries and request ids are int32
    return fail(error, bad, "num_prefills + num_decodes = %lld requests; at most %lld supported",
                (long long)n, (long long)kInt32Max - 1);
  if (n > 0 && !b.kv_lens)
    return fail(error, inval, "kv_lens is NULL but the batch has %lld requests", (long long)n);
  if (P > 0) {
    if (!b.qo_indptr)
      return fail(error, inval, "qo_indptr is NULL but num_prefills=%d", b.num_prefills);
    status = check_qo_indptr(k, b.qo_indptr, P, "prefill", error);
  }
  for (int64_t r = 0; r < n && status == PODGEN_OK; ++r)
    status = check_kv_lens(b.kv_lens, r, r < P ? b.qo_indptr[r + 1] - b.qo_indptr[r] : 1, error);
  if (status == PODGEN_OK)
    status = read_page_table(
        k, n, b.kv_lens, {b.page_indptr, b.page_indices, b.block_table_stride, b.num_pages}, out,
        error);
  if (status != PODGEN_OK) return status;
  for (int32_t r = 0; r < P; ++r)
    add_request(out, POD_OP_PREFILL, r, b.qo_indptr[r], b.qo_indptr[r + 1] - b.qo_indptr[r],
                b.kv_lens[r]);
  for (int32_t d = 0; d < b.num_decodes; ++d)
    add_request(out, POD_OP_DECODE, (int32_t)P + d, d, 1, b.kv_lens[P + d]);
  out->q_rows[POD_OP_PREFILL] = out->prefill_tokens;
  out->q_rows[POD_OP_DECODE] = b.num_decodes;
  return PODGEN_OK;
}

// The ragged form: one q, every request in input order; a request of at most
// o.decode_max_q_len query tokens decodes (the decode tile masks its tokens causally). Both parts
// read q and write o at qo_indptr[r], so q_rows[0] covers all of them.
inline int read_batch(const KernelShape& k, const podgen_ragged_batch& b, const Options& o,
                      Batch* out, std::string* error) {
  const int bad = PODGEN_ERR_BAD_BATCH, inval = PODGEN_ERR_INVALID_ARGUMENT;
  out->ragged = true;
  if (b.num_requests < 0) return fail(error, bad, "num_requests=%d is negative", b.num_requests);
  int status = check_heads(k, b.num_heads_q, b.num_heads_kv, b.head_dim, error);
  if (status != PODGEN_OK) return status;
  const int64_t n = b.num_requests;
  if (n >= kInt32Max)
    return fail(error, bad, "num_requests=%lld; at most %lld supported", (long long)n,
                (long long)kInt32Max - 1);
  if (n > 0 && !b.qo_indptr)
    return fail(error, inval, "qo_indptr is NULL but num_requests=%d", b.num_requests);
  if (n > 0 && !b.kv_lens)
    return fail(error, inval, "kv_lens is NULL but num_requests=%d", b.num_requests);
  if (n > 0) status = check_qo_indptr(k, b.qo_indptr, n, "request", error);
  for (int64_t r = 0; r < n && status == PODGEN_OK; ++r)
    status = check_kv_lens(b.kv_lens, r, b.qo_indptr[r + 1] - b.qo_indptr[r], error);
  if (status == PODGEN_OK)
    status = read_page_table(
        k, n, b.kv_lens, {b.page_indptr, b.page_indices, b.block_table_stride, b.num_pages}, out,
        error);
  if (status != PODGEN_OK) return status;
  for (int32_t r = 0; r < (int32_t)n; ++r) {
    const int32_t q_len = b.qo_indptr[r + 1] - b.qo_indptr[r];
    add_request(out, q_len <= o.decode_max_q_len ? POD_OP_DECODE : POD_OP_PREFILL, r,
                b.qo_indptr[r], q_len, b.kv_lens[r]);
  }
  out->q_rows[POD_OP_PREFILL] = n > 0 ? b.qo_indptr[n] : 0;
  return PODGEN_OK;
}
