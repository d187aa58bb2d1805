// The C ABI of a built podgen kernel library (templates/pod_attention.h.hbs), through koffi.
//
// Struct mirrors: the koffi struct names are the C names and their fields are the C fields in
// the same order and with the same types (test/runtime.test.ts compiles the rendered header
// and compares every size and offset). Pointer fields:
// - host arrays (podgen_batch) are `const int32_t *`: pass an Int32Array; koffi hands C a
//   pointer to its elements for the duration of the call (plan copies what it keeps).
// - device pointers (podgen_buffers, podgen_reference_args) are declared as `podgen_devptr`,
//   an alias of `uintptr_t` (same size and alignment as a C pointer on LP64): pass the device
//   address as a bigint (or a DeviceBuffer / null in the TypeScript wrappers). Declaring them as
//   integers means a host TypedArray can never be passed where the kernel expects device memory.
// - streams are `void *`: a Stream, a raw CUstream bigint, or null for the default stream.
//
// KernelLibrary only dlopens the built library: plan() and info() work on a machine without a
// GPU or libcuda (the artifact links the static CUDA runtime, which loads libcuda lazily).
import type { TypeObject } from "koffi";
import { loadKoffi, type DevicePtr, type Koffi } from "./cuda.ts";
import { DeviceBuffer, streamHandle, type StreamLike } from "./device.ts";
import type { KvDType } from "../dsl/schema.ts";

/** The pod_attention.h ABI version these struct mirrors follow (codegen/paths.ts ABI_VERSION). */
export const PODGEN_ABI_VERSION_SUPPORTED = 3;

/** The values of pod_attention.h's podgen_status (test/runtime.test.ts reads them off the header). */
export type PodgenStatus = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/** PODGEN_ERR_* names by value, for when the library cannot be asked: one per status. */
export const PODGEN_STATUS = {
  0: "PODGEN_OK",
  1: "PODGEN_ERR_INVALID_ARGUMENT",
  2: "PODGEN_ERR_BAD_BATCH",
  3: "PODGEN_ERR_WORKSPACE_TOO_SMALL",
  4: "PODGEN_ERR_BUCKET_EXCEEDED",
  5: "PODGEN_ERR_CUDA",
  6: "PODGEN_ERR_UNSUPPORTED",
} as const satisfies Record<PodgenStatus, `PODGEN_${string}`>;

/** A non-zero status from a kernel library function. */
export class PodgenError extends Error {
  constructor(
    /** The C function, e.g. "pod_llama3_8b_plan". */
    readonly fn: string,
    readonly status: number,
    /** From <prefix>_status_name, e.g. "PODGEN_ERR_BAD_BATCH". */
    readonly statusName: string,
    /** From <prefix>_last_error. */
    readonly detail: string,
  ) {
    super(`${fn} failed: ${statusName}${detail ? `: ${detail}` : ""}`);
    this.name = "PodgenError";
  }
}

// ---------------------------------------------------------------------------------------------
// koffi struct declarations (created once, on first use)

export interface AbiTypes {
  podgen_devptr: TypeObject;
  podgen_batch: TypeObject;
  podgen_ragged_batch: TypeObject;
  podgen_plan_options: TypeObject;
  podgen_plan: TypeObject;
  podgen_buffers: TypeObject;
  podgen_ragged_buffers: TypeObject;
  podgen_reference_args: TypeObject;
  podgen_kernel_info: TypeObject;
}

let typesCache: AbiTypes | undefined;

/** The koffi types of the C ABI structs (loads koffi; never libcuda). */
export function abiTypes(): AbiTypes {
  if (typesCache) return typesCache;
  const k: Koffi = loadKoffi();
  const i32x2 = () => k.array("int32_t", 2);
  const u64x2 = () => k.array("uint64_t", 2);
  const devptr = k.alias("podgen_devptr", "uintptr_t");
  // The fields podgen_buffers and podgen_ragged_buffers end alike with, in pod_attention.h's order.
  const runBuffersTail = {
    workspace: devptr,
    workspace_bytes: "uint64_t",
    sm_scale: "float",
    reserved: "int32_t",
    sinks: devptr,
    k_scale: devptr,
    v_scale: devptr,
  };
  typesCache = {
    podgen_devptr: devptr,
    podgen_batch: k.struct("podgen_batch", {
      num_prefills: "int32_t",
      num_decodes: "int32_t",
      qo_indptr: "const int32_t *",
      kv_lens: "const int32_t *",
      page_indptr: "const int32_t *",
      page_indices: "const int32_t *",
      block_table_stride: "int32_t",
      num_pages: "int32_t",
      num_heads_q: "int32_t",
      num_heads_kv: "int32_t",
      head_dim: "int32_t",
    }),
    podgen_ragged_batch: k.struct("podgen_ragged_batch", {
      num_requests: "int32_t",
      qo_indptr: "const int32_t *",
      kv_lens: "const int32_t *",
      page_indptr: "const int32_t *",
      page_indices: "const int32_t *",
      block_table_stride: "int32_t",
      num_pages: "int32_t",
      num_heads_q: "int32_t",
      num_heads_kv: "int32_t",
      head_dim: "int32_t",
    }),
    podgen_plan_options: k.struct("podgen_plan_options", {
      num_sms: "int32_t",
      graph_mode: "int32_t",
      max_prefills: "int32_t",
      max_decodes: "int32_t",
      max_prefill_tokens: "int32_t",
      max_kv_len: "int32_t",
      prefill_max_splits: "int32_t",
      decode_max_splits: "int32_t",
      max_num_pages: "int32_t",
      max_page_entries: "int32_t",
      debug_count_tiles: "int32_t",
      decode_max_q_len: "int32_t",
      reserved: k.array("int32_t", 4),
    }),
    podgen_plan: k.struct("podgen_plan", {
      abi_version: "uint32_t",
      graph_mode: "int32_t",
      num_prefills: "int32_t",
      num_decodes: "int32_t",
      total_prefill_tokens: "int32_t",
      num_sms: "int32_t",
      num_items: i32x2(),
      num_merges: i32x2(),
      num_tickets: i32x2(),
      ratio: i32x2(),
      max_splits: i32x2(),
      grid_fused: "int32_t",
      grid_prefill: "int32_t",
      grid_decode: "int32_t",
      grid_merge: i32x2(),
      debug_count_tiles: "int32_t",
      items_offset: u64x2(),
      merges_offset: u64x2(),
      partial_o_offset: u64x2(),
      partial_lse_offset: u64x2(),
      page_base_offset: "uint64_t",
      host_bytes: "uint64_t",
      workspace_bytes: "uint64_t",
      page_entries: "uint64_t",
      ragged: "int32_t",
      num_requests: "int32_t",
      q_rows: i32x2(),
      cache_pages: "int32_t",
      reserved: "int32_t",
    }),
    podgen_buffers: k.struct("podgen_buffers", {
      q_prefill: devptr,
      q_decode: devptr,
      k: devptr,
      v: devptr,
      page_indices: devptr,
      o_prefill: devptr,
      o_decode: devptr,
      lse_prefill: devptr,
      lse_decode: devptr,
      ...runBuffersTail,
    }),
    podgen_ragged_buffers: k.struct("podgen_ragged_buffers", {
      q: devptr,
      k: devptr,
      v: devptr,
      page_indices: devptr,
      o: devptr,
      lse: devptr,
      ...runBuffersTail,
    }),
    podgen_reference_args: k.struct("podgen_reference_args", {
      num_prefills: "int32_t",
      num_decodes: "int32_t",
      qo_indptr: devptr,
      kv_lens: devptr,
      page_indptr: devptr,
      page_indices: devptr,
      q_prefill: devptr,
      q_decode: devptr,
      k: devptr,
      v: devptr,
      o_prefill: devptr,
      o_decode: devptr,
      lse_prefill: devptr,
      lse_decode: devptr,
      total_prefill_tokens: "int32_t",
      sm_scale: "float",
      sinks: devptr,
      k_scale: devptr,
      v_scale: devptr,
    }),
    podgen_kernel_info: k.struct("podgen_kernel_info", {
      abi_version: "uint32_t",
      num_heads_q: "int32_t",
      num_heads_kv: "int32_t",
      head_dim: "int32_t",
      page_size: "int32_t",
      paged: "int32_t",
      dtype: "int32_t",
      prefill_tile_q: "int32_t",
      prefill_tile_kv: "int32_t",
      decode_tile_q: "int32_t",
      decode_tile_kv: "int32_t",
      threads_per_cta: "int32_t",
      ctas_per_sm: "int32_t",
      virtual_ctas: "int32_t",
      schedule: "int32_t",
      prefill_max_splits: "int32_t",
      prefill_max_waves: "int32_t",
      decode_max_splits: "int32_t",
      smem_bytes: "uint32_t",
      window: "int32_t",
      logits_soft_cap: "float",
      sinks: "int32_t",
      kv_dtype: "int32_t",
      kv_scale_per_head: "int32_t",
    }),
  };
  return typesCache;
}

// ---------------------------------------------------------------------------------------------
// TypeScript shapes (camelCase) and their conversions to the C-named objects koffi marshals

/** A device address: a bigint, anything with a `.ptr` (DeviceBuffer), or null / undefined for NULL. */
export type DevPtrLike = DevicePtr | { readonly ptr: DevicePtr } | null | undefined;

function devptr(p: DevPtrLike): bigint {
  if (p === null || p === undefined) return 0n;
  return typeof p === "bigint" ? p : p.ptr;
}

/**
 * The page table of a batch (pod_attention.h): CSR (spare pages past a request's keys allowed), a
 * padded block table, or a contiguous cache's first rows.
 */
export interface PageTable {
  /** CSR: [requests + 1] offsets into pageIndices; contiguous: first KV row; block table: null. */
  pageIndptr: Int32Array | null;
  /** Paged: CSR page ids, or the block table [requests, blockTableStride] row-major; contiguous: null. */
  pageIndices: Int32Array | null;
  /** 0 / omitted: CSR; > 0: pageIndices is a block table with rows this long. */
  blockTableStride?: number;
  /** Paged: pages in the cache; contiguous: rows in the cache. */
  numPages: number;
  numHeadsQ: number;
  numHeadsKv: number;
  headDim: number;
}

/** Host copies of one hybrid batch in two parts (requests numbered prefills first, then decodes). */
export interface PodBatch extends PageTable {
  numPrefills: number;
  numDecodes: number;
  /** [numPrefills + 1] prefill query token offsets. */
  qoIndptr: Int32Array;
  /** [numPrefills + numDecodes] keys per request. */
  kvLens: Int32Array;
}

/** Host copies of one ragged batch: one q for every request, in any order; qLen 1 decodes. */
export interface PodRaggedBatch extends PageTable {
  numRequests: number;
  /** [numRequests + 1] rows of each request's query tokens in q. */
  qoIndptr: Int32Array;
  /** [numRequests] keys per request. */
  kvLens: Int32Array;
}

export interface PlanOptions {
  /** Multiprocessors of the device (0 / omitted: 132). */
  numSms?: number;
  /** Fixed grid and workspace layout for the bucket below (CUDA-graph capture). */
  graphMode?: boolean;
  maxPrefills?: number;
  maxDecodes?: number;
  maxPrefillTokens?: number;
  maxKvLen?: number;
  /** Pages (contiguous: rows) of the k and v caches a captured run is given. */
  maxNumPages?: number;
  /** Entries of the pageIndices a captured run is given (paged). */
  maxPageEntries?: number;
  /** 0 / omitted: the spec's limit. */
  prefillMaxSplits?: number;
  decodeMaxSplits?: number;
  /** Kernels count executed tiles in the device header. */
  debugCountTiles?: boolean;
  /**
   * Ragged batches: requests of up to this many query tokens run on the decode path, at most
   * PODGEN_MAX_DECODE_Q_LEN = 16 (0 / omitted: those that fit one decode tile of 16 packed rows,
   * 16 / (Hq / Hkv) tokens; 1: single-token requests only).
   */
  decodeMaxQLen?: number;
}

export type Pair = readonly [number, number];
export type BigPair = readonly [bigint, bigint];

/** What plan decided. Immutable; pass it to uploadPlan and the run functions. */
export class PodPlan {
  readonly abiVersion: number;
  readonly graphMode: boolean;
  readonly numPrefills: number;
  readonly numDecodes: number;
  readonly totalPrefillTokens: number;
  readonly numSms: number;
  readonly numItems: Pair;
  readonly numMerges: Pair;
  readonly numTickets: Pair;
  readonly ratio: Pair;
  readonly maxSplits: Pair;
  readonly gridFused: number;
  readonly gridPrefill: number;
  readonly gridDecode: number;
  readonly gridMerge: Pair;
  readonly debugCountTiles: boolean;
  readonly itemsOffset: BigPair;
  readonly mergesOffset: BigPair;
  readonly partialOOffset: BigPair;
  readonly partialLseOffset: BigPair;
  readonly pageBaseOffset: bigint;
  readonly hostBytes: bigint;
  readonly workspaceBytes: bigint;
  /** What a run's tensors must hold (graph mode: the bucket's). */
  readonly pageEntries: bigint;
  /** Made by planRagged (run it with runRagged). */
  readonly ragged: boolean;
  readonly numRequests: number;
  /** Rows of q / o: [prefill, decode]; ragged: [q, 0]. */
  readonly qRows: Pair;
  readonly cachePages: number;

  /** @param c the C-named object koffi decoded (kept as is and passed back to C). */
  constructor(readonly c: Readonly<Record<string, unknown>>) {
    const n = (f: string) => Number(c[f]);
    const pair = (f: string): Pair => {
      const a = c[f] as ArrayLike<number>;
      return Object.freeze([Number(a[0]), Number(a[1])] as const);
    };
    const bpair = (f: string): BigPair => {
      const a = c[f] as ArrayLike<number | bigint>;
      return Object.freeze([BigInt(a[0]), BigInt(a[1])] as const);
    };
    this.abiVersion = n("abi_version");
    this.graphMode = n("graph_mode") !== 0;
    this.numPrefills = n("num_prefills");
    this.numDecodes = n("num_decodes");
    this.totalPrefillTokens = n("total_prefill_tokens");
    this.numSms = n("num_sms");
    this.numItems = pair("num_items");
    this.numMerges = pair("num_merges");
    this.numTickets = pair("num_tickets");
    this.ratio = pair("ratio");
    this.maxSplits = pair("max_splits");
    this.gridFused = n("grid_fused");
    this.gridPrefill = n("grid_prefill");
    this.gridDecode = n("grid_decode");
    this.gridMerge = pair("grid_merge");
    this.debugCountTiles = n("debug_count_tiles") !== 0;
    this.itemsOffset = bpair("items_offset");
    this.mergesOffset = bpair("merges_offset");
    this.partialOOffset = bpair("partial_o_offset");
    this.partialLseOffset = bpair("partial_lse_offset");
    this.pageBaseOffset = BigInt(c.page_base_offset as number | bigint);
    this.hostBytes = BigInt(c.host_bytes as number | bigint);
    this.workspaceBytes = BigInt(c.workspace_bytes as number | bigint);
    this.pageEntries = BigInt(c.page_entries as number | bigint);
    this.ragged = n("ragged") !== 0;
    this.numRequests = n("num_requests");
    this.qRows = pair("q_rows");
    this.cachePages = n("cache_pages");
    Object.freeze(this);
  }

  /** Plain JSON-able view (bigints as strings are avoided: byte counts here fit in a double). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this)) {
      if (key === "c") continue;
      out[key] = typeof value === "bigint" ? Number(value)
        : Array.isArray(value) ? value.map((x) => (typeof x === "bigint" ? Number(x) : x)) : value;
    }
    return out;
  }
}

/** Device tensors of one run (shapes in templates/pod/contract.h); unused parts may be null. */
export interface PodBuffers {
  qPrefill?: DevPtrLike;
  qDecode?: DevPtrLike;
  k: DevPtrLike;
  v: DevPtrLike;
  /** Device copy of pageIndices (paged caches); the page bases come with the plan. */
  pageIndices?: DevPtrLike;
  oPrefill?: DevPtrLike;
  oDecode?: DevPtrLike;
  lsePrefill?: DevPtrLike;
  lseDecode?: DevPtrLike;
  workspace: DevPtrLike;
  workspaceBytes: number | bigint;
  /** 0 / omitted: 1/sqrt(headDim). */
  smScale?: number;
  /** Kernels with attention sinks (KernelInfo.sinks): fp32 [Hq] sink logits; else null / omitted. */
  sinks?: DevPtrLike;
  /** fp8 KV kernels (KernelInfo.kvDtype "e4m3"): fp32 K and V dequantization scales, 1 or Hkv each (KernelInfo.kvScalePerHead); else null / omitted. */
  kScale?: DevPtrLike;
  vScale?: DevPtrLike;
}

/** Device tensors of one run of a ragged plan. */
export interface PodRaggedBuffers {
  /** [tokens, Hq, D] by the batch's qoIndptr. */
  q: DevPtrLike;
  k: DevPtrLike;
  v: DevPtrLike;
  pageIndices?: DevPtrLike;
  /** Like q. */
  o: DevPtrLike;
  /** Optional fp32 [tokens, Hq]. */
  lse?: DevPtrLike;
  workspace: DevPtrLike;
  workspaceBytes: number | bigint;
  smScale?: number;
  /** Kernels with attention sinks (KernelInfo.sinks): fp32 [Hq] sink logits; else null / omitted. */
  sinks?: DevPtrLike;
  /** fp8 KV kernels (KernelInfo.kvDtype "e4m3"): fp32 K and V dequantization scales, 1 or Hkv each (KernelInfo.kvScalePerHead); else null / omitted. */
  kScale?: DevPtrLike;
  vScale?: DevPtrLike;
}

/** Arguments of the fp32 reference kernel; every pointer is a device pointer. */
export interface ReferenceArgs {
  numPrefills: number;
  numDecodes: number;
  qoIndptr: DevPtrLike;
  kvLens: DevPtrLike;
  pageIndptr: DevPtrLike;
  pageIndices?: DevPtrLike;
  qPrefill?: DevPtrLike;
  qDecode?: DevPtrLike;
  k: DevPtrLike;
  v: DevPtrLike;
  /** fp32 [tokens, Hq, D]. */
  oPrefill?: DevPtrLike;
  /** fp32 [numDecodes, Hq, D]. */
  oDecode?: DevPtrLike;
  lsePrefill?: DevPtrLike;
  lseDecode?: DevPtrLike;
  /** Host value of qoIndptr[numPrefills]. */
  totalPrefillTokens: number;
  smScale?: number;
  /** Kernels with attention sinks: fp32 [Hq] sink logits; else null / omitted. */
  sinks?: DevPtrLike;
  /** fp8 KV kernels (KernelInfo.kvDtype "e4m3"): fp32 K and V dequantization scales, 1 or Hkv each (KernelInfo.kvScalePerHead); else null / omitted. */
  kScale?: DevPtrLike;
  vScale?: DevPtrLike;
}

export interface KernelInfo {
  abiVersion: number;
  numHeadsQ: number;
  numHeadsKv: number;
  headDim: number;
  pageSize: number;
  paged: boolean;
  dtype: "fp16" | "bf16";
  prefillTileQ: number;
  prefillTileKv: number;
  decodeTileQ: number;
  decodeTileKv: number;
  threadsPerCta: number;
  ctasPerSm: number;
  virtualCtas: number;
  schedule: "fiftyFifty" | "proportional";
  prefillMaxSplits: number;
  prefillMaxWaves: number;
  decodeMaxSplits: number;
  /** Dynamic shared memory per CTA of the fused kernel. */
  smemBytes: number;
  /** Sliding window: keys a query sees, itself included (0: every earlier key). */
  window: number;
  /** Scaled logits x become cap * tanh(x / cap) (0: off). */
  logitsSoftCap: number;
  /** Runs take a sink logit per query head (PodBuffers.sinks, ReferenceArgs.sinks). */
  sinks: boolean;
  /** Elements of the K/V cache: the dtype, or fp8 e4m3 (runs take PodBuffers.kScale and vScale). */
  kvDtype: KvDType;
  /** fp8 KV: Hkv scales each for K and V (else one each). */
  kvScalePerHead: boolean;
}

/** Element types of a K/V cache (the spec's kvDtype), by podgen_kernel_info.kv_dtype (0, 1, 2). */
export type { KvDType };
const KV_DTYPES: readonly KvDType[] = ["fp16", "bf16", "e4m3"];

/** Bytes of one K/V cache element of a kernel. */
export const kvElementBytes = (info: Pick<KernelInfo, "kvDtype">) => (info.kvDtype === "e4m3" ? 1 : 2);

function int(name: string, v: number | undefined, dflt = 0): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff) throw new RangeError(`${name} = ${x} is not a 32-bit integer`);
  return x;
}

/** The C fields of a page table for `n` requests, after checking its arrays are long enough to read. */
function toCPageTable(t: PageTable, n: number, need: (name: string, a: Int32Array | null | undefined, len: number) => void) {
  const stride = int("batch.blockTableStride", t.blockTableStride);
  if (stride > 0) {
    if (t.pageIndptr) throw new TypeError(`batch.pageIndptr must be null with a block table (blockTableStride = ${stride})`);
    need("pageIndices", t.pageIndices, n * stride);
  } else {
    need("pageIndptr", t.pageIndptr, n + 1);
    if (t.pageIndices !== null && t.pageIndices !== undefined) need("pageIndices", t.pageIndices, Math.max(0, t.pageIndptr![n]!));
  }
  return {
    page_indptr: t.pageIndptr,
    page_indices: t.pageIndices ?? null,
    block_table_stride: stride,
    num_pages: int("batch.numPages", t.numPages),
    num_heads_q: int("batch.numHeadsQ", t.numHeadsQ),
    num_heads_kv: int("batch.numHeadsKv", t.numHeadsKv),
    head_dim: int("batch.headDim", t.headDim),
  };
}

function arrayCheck(what: string) {
  return (name: string, a: Int32Array | null | undefined, len: number) => {
    if (!(a instanceof Int32Array)) throw new TypeError(`batch.${name} must be an Int32Array`);
    if (a.length < len) throw new RangeError(`batch.${name} has ${a.length} elements; ${len} needed for ${what}`);
  };
}

/** The C-named podgen_batch object, after checking that every array is long enough to read. */
export function toCBatch(b: PodBatch): Record<string, unknown> {
  const np = int("batch.numPrefills", b.numPrefills);
  const nd = int("batch.numDecodes", b.numDecodes);
  if (np < 0 || nd < 0) throw new RangeError(`batch has ${np} prefills and ${nd} decodes; counts must be >= 0`);
  const n = np + nd;
  const need = arrayCheck(`${np} prefills and ${nd} decodes`);
  need("qoIndptr", b.qoIndptr, np + 1);
  need("kvLens", b.kvLens, n);
  return { num_prefills: np, num_decodes: nd, qo_indptr: b.qoIndptr, kv_lens: b.kvLens, ...toCPageTable(b, n, need) };
}

/** The C-named podgen_ragged_batch object, after checking that every array is long enough to read. */
export function toCRaggedBatch(b: PodRaggedBatch): Record<string, unknown> {
  const n = int("batch.numRequests", b.numRequests);
  if (n < 0) throw new RangeError(`batch has ${n} requests; the count must be >= 0`);
  const need = arrayCheck(`${n} requests`);
  need("qoIndptr", b.qoIndptr, n + 1);
  need("kvLens", b.kvLens, n);
  return { num_requests: n, qo_indptr: b.qoIndptr, kv_lens: b.kvLens, ...toCPageTable(b, n, need) };
}

export function toCPlanOptions(o: PlanOptions = {}): Record<string, unknown> {
  return {
    num_sms: int("options.numSms", o.numSms),
    graph_mode: o.graphMode ? 1 : 0,
    max_prefills: int("options.maxPrefills", o.maxPrefills),
    max_decodes: int("options.maxDecodes", o.maxDecodes),
    max_prefill_tokens: int("options.maxPrefillTokens", o.maxPrefillTokens),
    max_kv_len: int("options.maxKvLen", o.maxKvLen),
    max_num_pages: int("options.maxNumPages", o.maxNumPages),
    max_page_entries: int("options.maxPageEntries", o.maxPageEntries),
    prefill_max_splits: int("options.prefillMaxSplits", o.prefillMaxSplits),
    decode_max_splits: int("options.decodeMaxSplits", o.decodeMaxSplits),
    debug_count_tiles: o.debugCountTiles ? 1 : 0,
    decode_max_q_len: int("options.decodeMaxQLen", o.decodeMaxQLen),
    reserved: [0, 0, 0, 0],
  };
}

export function toCBuffers(b: PodBuffers): Record<string, unknown> {
  return {
    q_prefill: devptr(b.qPrefill),
    q_decode: devptr(b.qDecode),
    k: devptr(b.k),
    v: devptr(b.v),
    page_indices: devptr(b.pageIndices),
    o_prefill: devptr(b.oPrefill),
    o_decode: devptr(b.oDecode),
    lse_prefill: devptr(b.lsePrefill),
    lse_decode: devptr(b.lseDecode),
    workspace: devptr(b.workspace),
    workspace_bytes: BigInt(b.workspaceBytes),
    sm_scale: b.smScale ?? 0,
    reserved: 0,
    sinks: devptr(b.sinks),
    k_scale: devptr(b.kScale),
    v_scale: devptr(b.vScale),
  };
}

export function toCRaggedBuffers(b: PodRaggedBuffers): Record<string, unknown> {
  return {
    q: devptr(b.q),
    k: devptr(b.k),
    v: devptr(b.v),
    page_indices: devptr(b.pageIndices),
    o: devptr(b.o),
    lse: devptr(b.lse),
    workspace: devptr(b.workspace),
    workspace_bytes: BigInt(b.workspaceBytes),
    sm_scale: b.smScale ?? 0,
    reserved: 0,
    sinks: devptr(b.sinks),
    k_scale: devptr(b.kScale),
    v_scale: devptr(b.vScale),
  };
}

export function toCReferenceArgs(a: ReferenceArgs): Record<string, unknown> {
  return {
    num_prefills: int("args.numPrefills", a.numPrefills),
    num_decodes: int("args.numDecodes", a.numDecodes),
    qo_indptr: devptr(a.qoIndptr),
    kv_lens: devptr(a.kvLens),
    page_indptr: devptr(a.pageIndptr),
    page_indices: devptr(a.pageIndices),
    q_prefill: devptr(a.qPrefill),
    q_decode: devptr(a.qDecode),
    k: devptr(a.k),
    v: devptr(a.v),
    o_prefill: devptr(a.oPrefill),
    o_decode: devptr(a.oDecode),
    lse_prefill: devptr(a.lsePrefill),
    lse_decode: devptr(a.lseDecode),
    total_prefill_tokens: int("args.totalPrefillTokens", a.totalPrefillTokens),
    sm_scale: a.smScale ?? 0,
    sinks: devptr(a.sinks),
    k_scale: devptr(a.kScale),
    v_scale: devptr(a.vScale),
  };
}

export function fromCKernelInfo(c: Record<string, unknown>): KernelInfo {
  const n = (f: string) => Number(c[f]);
  return {
    abiVersion: n("abi_version"),
    numHeadsQ: n("num_heads_q"),
    numHeadsKv: n("num_heads_kv"),
    headDim: n("head_dim"),
    pageSize: n("page_size"),
    paged: n("paged") !== 0,
    dtype: n("dtype") === 1 ? "bf16" : "fp16",
    prefillTileQ: n("prefill_tile_q"),
    prefillTileKv: n("prefill_tile_kv"),
    decodeTileQ: n("decode_tile_q"),
    decodeTileKv: n("decode_tile_kv"),
    threadsPerCta: n("threads_per_cta"),
    ctasPerSm: n("ctas_per_sm"),
    virtualCtas: n("virtual_ctas"),
    schedule: n("schedule") === 1 ? "proportional" : "fiftyFifty",
    prefillMaxSplits: n("prefill_max_splits"),
    prefillMaxWaves: n("prefill_max_waves"),
    decodeMaxSplits: n("decode_max_splits"),
    smemBytes: n("smem_bytes"),
    window: n("window"),
    logitsSoftCap: n("logits_soft_cap"),
    sinks: n("sinks") !== 0,
    kvDtype: KV_DTYPES[n("kv_dtype")] ?? "fp16",
    kvScalePerHead: n("kv_scale_per_head") !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// KernelLibrary

type Fn = (...args: unknown[]) => unknown;

/** Functions of one library, by their unprefixed name. */
interface LibraryFns {
  info: Fn;
  plan: Fn;
  plan_ragged: Fn;
  upload_plan: Fn;
  run: Fn;
  run_ragged: Fn;
  run_prefill: Fn;
  run_decode: Fn;
  run_reference: Fn;
  fill_random: Fn;
  fill_random_kv: Fn;
  status_name: Fn;
  last_error: Fn;
}

/**
 * A built podgen kernel library (the shared object `podgen build` writes), with symbol prefix
 * `prefix` (e.g. "pod_llama3_8b"). Every non-zero status is thrown as PodgenError.
 */
export class KernelLibrary {
  private lib: ReturnType<Koffi["load"]> | undefined;
  private readonly fns: LibraryFns;

  constructor(readonly path: string, readonly prefix: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) throw new Error(`kernel library prefix "${prefix}" is not a C identifier`);
    const k = loadKoffi();
    abiTypes();
    try {
      this.lib = k.load(path);
    } catch (err) {
      throw new Error(`cannot load kernel library ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const p = prefix;
    const decl = (proto: string): Fn => {
      try {
        const f = this.lib!.func(proto) as Fn;
        return (...args: unknown[]) => {
          if (!this.lib) throw new Error(`kernel library ${path} was closed`);
          return f(...args);
        };
      } catch (err) {
        throw new Error(`kernel library ${path} does not export the podgen ABI with prefix "${p}": ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    this.fns = {
      info: decl(`void ${p}_info(_Out_ podgen_kernel_info *out)`),
      plan: decl(
        `int ${p}_plan(const podgen_batch *batch, const podgen_plan_options *options, void *host_staging, uint64_t host_staging_bytes, _Out_ podgen_plan *plan)`,
      ),
      plan_ragged: decl(
        `int ${p}_plan_ragged(const podgen_ragged_batch *batch, const podgen_plan_options *options, void *host_staging, uint64_t host_staging_bytes, _Out_ podgen_plan *plan)`,
      ),
      upload_plan: decl(
        `int ${p}_upload_plan(const podgen_plan *plan, const void *host_staging, void *workspace, uint64_t workspace_bytes, void *stream)`,
      ),
      run: decl(`int ${p}_run(const podgen_plan *plan, const podgen_buffers *buffers, void *stream)`),
      run_ragged: decl(`int ${p}_run_ragged(const podgen_plan *plan, const podgen_ragged_buffers *buffers, void *stream)`),
      run_prefill: decl(`int ${p}_run_prefill(const podgen_plan *plan, const podgen_buffers *buffers, void *stream)`),
      run_decode: decl(`int ${p}_run_decode(const podgen_plan *plan, const podgen_buffers *buffers, void *stream)`),
      run_reference: decl(`int ${p}_run_reference(const podgen_reference_args *args, void *stream)`),
      fill_random: decl(`int ${p}_fill_random(podgen_devptr dst, uint64_t count, uint64_t seed, uint32_t tensor, void *stream)`),
      fill_random_kv: decl(`int ${p}_fill_random_kv(podgen_devptr dst, uint64_t count, uint64_t seed, uint32_t tensor, void *stream)`),
      status_name: decl(`const char *${p}_status_name(int status)`),
      last_error: decl(`const char *${p}_last_error()`),
    };
    const version = this.info().abiVersion;
    if (version !== PODGEN_ABI_VERSION_SUPPORTED) {
      this.close();
      throw new Error(
        `kernel library ${path} has C ABI version ${version}; this runtime mirrors version ${PODGEN_ABI_VERSION_SUPPORTED} (rebuild it with this podgen)`,
      );
    }
  }

  static open(path: string, prefix: string): KernelLibrary {
    return new KernelLibrary(path, prefix);
  }

  statusName(status: number): string {
    return (this.fns.status_name(status) as string | null) ?? (PODGEN_STATUS as Record<number, string | undefined>)[status] ?? `PODGEN_STATUS_${status}`;
  }

  lastError(): string {
    return (this.fns.last_error() as string | null) ?? "";
  }

  private check(fn: keyof LibraryFns, status: unknown): void {
    const s = Number(status);
    if (s !== 0) throw new PodgenError(`${this.prefix}_${fn}`, s, this.statusName(s), this.lastError());
  }

  info(): KernelInfo {
    const out: Record<string, unknown> = {};
    this.fns.info(out);
    return fromCKernelInfo(out);
  }

  /**
   * Plans a batch on the host: a first call learns the staging and workspace sizes, a second
   * fills `staging` (reused when one large enough is passed). Needs no GPU.
   */
  plan(batch: PodBatch, options: PlanOptions = {}, staging?: Buffer): { plan: PodPlan; staging: Buffer } {
    return this.planWith("plan", toCBatch(batch), options, staging);
  }

  /** The same for a ragged batch (one q for every request, in any order); run it with runRagged. */
  planRagged(batch: PodRaggedBatch, options: PlanOptions = {}, staging?: Buffer): { plan: PodPlan; staging: Buffer } {
    return this.planWith("plan_ragged", toCRaggedBatch(batch), options, staging);
  }

  private planWith(fn: "plan" | "plan_ragged", cBatch: Record<string, unknown>, options: PlanOptions, staging?: Buffer) {
    const cOptions = toCPlanOptions(options);
    const sizes: Record<string, unknown> = {};
    this.check(fn, this.fns[fn](cBatch, cOptions, null, 0, sizes));
    const hostBytes = Number(sizes.host_bytes);
    const buf = staging && staging.length >= hostBytes ? staging : Buffer.alloc(hostBytes);
    const out: Record<string, unknown> = {};
    this.check(fn, this.fns[fn](cBatch, cOptions, buf, buf.length, out));
    return { plan: new PodPlan(out), staging: buf };
  }

  /** Copies the plan's staging bytes into the device workspace (ordered on `stream`). */
  uploadPlan(plan: PodPlan, staging: Buffer, workspace: DevPtrLike, workspaceBytes: number | bigint, stream?: StreamLike): void {
    if (BigInt(staging.length) < plan.hostBytes) {
      throw new RangeError(`uploadPlan: the staging buffer holds ${staging.length} bytes; the plan needs ${plan.hostBytes}`);
    }
    this.check("upload_plan", this.fns.upload_plan(plan.c, staging, devptr(workspace), BigInt(workspaceBytes), streamHandle(stream)));
  }

  /** The fused prefill+decode launch (no allocation, no synchronization; graph-capturable). */
  run(plan: PodPlan, buffers: PodBuffers, stream?: StreamLike): void {
    this.check("run", this.fns.run(plan.c, toCBuffers(buffers), streamHandle(stream)));
  }

  /** The fused launch of a ragged plan. */
  runRagged(plan: PodPlan, buffers: PodRaggedBuffers, stream?: StreamLike): void {
    this.check("run_ragged", this.fns.run_ragged(plan.c, toCRaggedBuffers(buffers), streamHandle(stream)));
  }

  /** The prefill-only baseline launch. */
  runPrefill(plan: PodPlan, buffers: PodBuffers, stream?: StreamLike): void {
    this.check("run_prefill", this.fns.run_prefill(plan.c, toCBuffers(buffers), streamHandle(stream)));
  }

  /** The decode-only baseline launch. */
  runDecode(plan: PodPlan, buffers: PodBuffers, stream?: StreamLike): void {
    this.check("run_decode", this.fns.run_decode(plan.c, toCBuffers(buffers), streamHandle(stream)));
  }

  /** The naive fp32 reference kernel (outputs fp32). */
  runReference(args: ReferenceArgs, stream?: StreamLike): void {
    this.check("run_reference", this.fns.run_reference(toCReferenceArgs(args), streamHandle(stream)));
  }

  /**
   * Fills `count` elements of the kernel's dtype at `dst` with random values on the GPU
   * (approximately standard normal, never zero); element i depends on (seed, tensor, i) only, so
   * the same seed gives the same data. A negative seed stands for its 64-bit two's complement.
   */
  fillRandom(dst: DevPtrLike, count: number, seed: number | bigint, tensor: number, stream?: StreamLike): void {
    this.fill("fillRandom", "fill_random", 2, dst, count, seed, tensor, stream);
  }

  /**
   * The same for a K or V cache: `count` elements of the kernel's KV dtype (KernelInfo.kvDtype; fp8:
   * the draws rounded to e4m3, never zero or NaN).
   */
  fillRandomKv(dst: DevPtrLike, count: number, seed: number | bigint, tensor: number, stream?: StreamLike): void {
    this.fill("fillRandomKv", "fill_random_kv", kvElementBytes(this.info()), dst, count, seed, tensor, stream);
  }

  private fill(
    method: string,
    fn: "fill_random" | "fill_random_kv",
    elementBytes: number,
    dst: DevPtrLike,
    count: number,
    seed: number | bigint,
    tensor: number,
    stream?: StreamLike,
  ): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`${method}: count = ${count} is not an element count`);
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) throw new RangeError(`${method}: seed = ${seed} is not an integer`);
    if (!Number.isInteger(tensor) || tensor < 0 || tensor > 0xffffffff) throw new RangeError(`${method}: tensor = ${tensor} is not a 32-bit unsigned integer`);
    if (dst instanceof DeviceBuffer && count * elementBytes > dst.bytes) {
      throw new RangeError(
        `${method}: count = ${count} ${elementBytes * 8}-bit elements need ${count * elementBytes} bytes; device buffer "${dst.label}" holds ${dst.bytes}`,
      );
    }
    this.check(fn, this.fns[fn](devptr(dst), BigInt(count), BigInt.asUintN(64, BigInt(seed)), tensor, streamHandle(stream)));
  }

  /** Unloads the library; the object is unusable afterwards. */
  close(): void {
    this.lib?.unload();
    this.lib = undefined;
  }
}
