// Hybrid batches: shapes → host page tables and random data → device tensors → PodBuffers.
// Shared by the GPU suite, `podgen verify` and the benchmarks, so every path feeds the kernels
// the same way a serving engine would.
import type { KernelInfo, PodBatch, PodBuffers, ReferenceArgs } from "./abi.ts";
import { DeviceBuffer } from "./device.ts";
import { randomTensor16, Rng, type Dtype16 } from "./numerics.ts";

export interface PrefillShape {
  /** New query tokens of the chunk. */
  qLen: number;
  /** Keys the chunk attends to (its own tokens included): kvLen ≥ qLen. */
  kvLen: number;
}

export interface BatchShape {
  prefills: PrefillShape[];
  /** KV length of each decode request. */
  decodes: number[];
}

export interface BatchOptions {
  seed: number;
  /** Scatter pages over the cache in random order (default true). */
  shufflePages?: boolean;
  /** Unused pages in the cache besides the batch's own (default 3). */
  sparePages?: number;
  /** Pages (paged) or rows (contiguous) of the whole cache; default: the batch's own plus spares. */
  cachePages?: number;
  /**
   * Which tensors to draw: "all" (default), "queries" (k and v left empty, e.g. when the cache on
   * the device is reused with new page tables), or "none" (planning needs only lengths).
   */
  data?: "all" | "queries" | "none";
}

/** The shape-defining constants of a kernel (KernelInfo has them all). */
export type KernelDims = Pick<KernelInfo, "numHeadsQ" | "numHeadsKv" | "headDim" | "paged" | "pageSize" | "dtype" | "sinks">;

export interface HostBatch {
  shape: BatchShape;
  dims: KernelDims;
  /** What the planner reads. */
  batch: PodBatch;
  totalPrefillTokens: number;
  qPrefill: Uint16Array;
  qDecode: Uint16Array;
  k: Uint16Array;
  v: Uint16Array;
  /** Kernels with attention sinks: a sink logit per query head (empty otherwise, or with data "none"). */
  sinks: Float32Array;
}

/**
 * Sink logits as a model might have learned them, drawn from N(3, 2^2): comparable to the logsumexp
 * of a short row's logits (standard normal q and k give scaled logits of unit variance), so that a
 * sink moves o and lse visibly for short and long rows alike.
 */
function randomSinks(rng: Rng, count: number): Float32Array {
  return Float32Array.from({ length: count }, () => 3 + 2 * rng.normal());
}

/** Page table and lengths for a batch (CSR over requests, prefills first). */
export function pageTable(dims: KernelDims, shape: BatchShape, rng: Rng, opts: Omit<BatchOptions, "seed"> = {}) {
  const kvLens = [...shape.prefills.map((p) => p.kvLen), ...shape.decodes];
  const pageIndptr = new Int32Array(kvLens.length + 1);
  if (!dims.paged) {
    kvLens.forEach((len, r) => (pageIndptr[r + 1] = pageIndptr[r]! + len));
    return { kvLens: Int32Array.from(kvLens), pageIndptr, pageIndices: null, numPages: pageIndptr[kvLens.length]! };
  }
  kvLens.forEach((len, r) => (pageIndptr[r + 1] = pageIndptr[r]! + Math.ceil(len / dims.pageSize)));
  const used = pageIndptr[kvLens.length]!;
  const numPages = opts.cachePages ?? used + (opts.sparePages ?? 3);
  if (numPages < used) throw new RangeError(`the batch needs ${used} pages but the cache has ${numPages}`);
  const ids = Array.from({ length: numPages }, (_, i) => i);
  if (opts.shufflePages ?? true) rng.shuffle(ids);
  return { kvLens: Int32Array.from(kvLens), pageIndptr, pageIndices: Int32Array.from(ids.slice(0, used)), numPages };
}

/** A batch of the given shape with fresh random q, k and v (standard normal). */
export function makeHostBatch(dims: KernelDims, shape: BatchShape, opts: BatchOptions): HostBatch {
  const rng = new Rng(opts.seed);
  const { kvLens, pageIndptr, pageIndices, numPages } = pageTable(dims, shape, rng, opts);
  const qoIndptr = new Int32Array(shape.prefills.length + 1);
  shape.prefills.forEach((p, i) => (qoIndptr[i + 1] = qoIndptr[i]! + p.qLen));
  const totalPrefillTokens = qoIndptr[shape.prefills.length]!;
  const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d } = dims;
  const dtype = dims.dtype as Dtype16;
  const cacheRows = dims.paged ? numPages * dims.pageSize : numPages;
  const data = opts.data ?? "all";
  const tensor = (count: number, kind: "q" | "kv") =>
    data === "all" || (data === "queries" && kind === "q") ? randomTensor16(rng, count, dtype) : new Uint16Array(0);
  return {
    shape,
    dims,
    totalPrefillTokens,
    batch: {
      numPrefills: shape.prefills.length,
      numDecodes: shape.decodes.length,
      qoIndptr,
      kvLens,
      pageIndptr,
      pageIndices,
      numPages,
      numHeadsQ: hq,
      numHeadsKv: hkv,
      headDim: d,
    },
    qPrefill: tensor(totalPrefillTokens * hq * d, "q"),
    qDecode: tensor(shape.decodes.length * hq * d, "q"),
    k: tensor(cacheRows * hkv * d, "kv"),
    v: tensor(cacheRows * hkv * d, "kv"),
    // Drawn last, so that a seed gives the same q, k and v with sinks or without.
    sinks: dims.sinks && data !== "none" ? randomSinks(rng, hq) : new Float32Array(0),
  };
}

/** Sizes device buffers are allocated for; a batch fits when each of its sizes is within. */
export interface BatchCapacity {
  prefillTokens: number;
  decodes: number;
  requests: number;
  /** Pages (paged) or rows (contiguous) of the KV cache. */
  pages: number;
  /** Entries of the page table (paged). */
  pageIndices: number;
}

export function capacityOf(host: HostBatch): BatchCapacity {
  return {
    prefillTokens: host.totalPrefillTokens,
    decodes: host.shape.decodes.length,
    requests: host.shape.prefills.length + host.shape.decodes.length,
    pages: host.batch.numPages,
    pageIndices: host.batch.pageIndices?.length ?? 0,
  };
}

/**
 * Device tensors of a batch, allocated once for a capacity and refilled per batch (the addresses
 * never move, as CUDA graphs need). Outputs are poisoned on every upload.
 */
export class DeviceBatch {
  private readonly buffers: DeviceBuffer[] = [];
  readonly qPrefill: DeviceBuffer;
  readonly qDecode: DeviceBuffer;
  readonly k: DeviceBuffer;
  readonly v: DeviceBuffer;
  readonly pageIndptr: DeviceBuffer;
  readonly pageIndices: DeviceBuffer;
  readonly qoIndptr: DeviceBuffer;
  readonly kvLens: DeviceBuffer;
  readonly oPrefill: DeviceBuffer;
  readonly oDecode: DeviceBuffer;
  readonly lsePrefill: DeviceBuffer;
  readonly lseDecode: DeviceBuffer;
  /** fp32 outputs of the reference kernel. */
  readonly refPrefill: DeviceBuffer;
  readonly refDecode: DeviceBuffer;
  readonly refLsePrefill: DeviceBuffer;
  readonly refLseDecode: DeviceBuffer;
  /** Kernels with attention sinks: fp32 [Hq] sink logits. */
  readonly sinks: DeviceBuffer;
  current: HostBatch | undefined;

  constructor(
    readonly dims: KernelDims,
    readonly capacity: BatchCapacity,
  ) {
    const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d } = dims;
    const rows = dims.paged ? capacity.pages * dims.pageSize : capacity.pages;
    const alloc = (label: string, bytes: number) => {
      const b = DeviceBuffer.alloc(Math.max(bytes, 16), label);
      this.buffers.push(b);
      return b;
    };
    this.qPrefill = alloc("qPrefill", capacity.prefillTokens * hq * d * 2);
    this.qDecode = alloc("qDecode", capacity.decodes * hq * d * 2);
    this.k = alloc("k", rows * hkv * d * 2);
    this.v = alloc("v", rows * hkv * d * 2);
    this.pageIndptr = alloc("pageIndptr", (capacity.requests + 1) * 4);
    this.pageIndices = alloc("pageIndices", capacity.pageIndices * 4);
    this.qoIndptr = alloc("qoIndptr", (capacity.requests + 1) * 4);
    this.kvLens = alloc("kvLens", capacity.requests * 4);
    this.oPrefill = alloc("oPrefill", capacity.prefillTokens * hq * d * 2);
    this.oDecode = alloc("oDecode", capacity.decodes * hq * d * 2);
    this.lsePrefill = alloc("lsePrefill", capacity.prefillTokens * hq * 4);
    this.lseDecode = alloc("lseDecode", capacity.decodes * hq * 4);
    this.refPrefill = alloc("refPrefill", capacity.prefillTokens * hq * d * 4);
    this.refDecode = alloc("refDecode", capacity.decodes * hq * d * 4);
    this.refLsePrefill = alloc("refLsePrefill", capacity.prefillTokens * hq * 4);
    this.refLseDecode = alloc("refLseDecode", capacity.decodes * hq * 4);
    this.sinks = alloc("sinks", dims.sinks ? hq * 4 : 0);
  }

  static forBatch(host: HostBatch): DeviceBatch {
    return new DeviceBatch(host.dims, capacityOf(host)).upload(host);
  }

  /** Copies a batch's tensors and page table in (synchronously) and poisons every output. */
  upload(host: HostBatch): this {
    const cap = capacityOf(host);
    for (const key of Object.keys(cap) as (keyof BatchCapacity)[]) {
      if (cap[key] > this.capacity[key]) {
        throw new RangeError(`batch needs ${key} = ${cap[key]}, but the device buffers hold ${this.capacity[key]}`);
      }
    }
    const b = host.batch;
    this.qPrefill.upload(host.qPrefill);
    this.qDecode.upload(host.qDecode);
    // An empty k/v (data: "queries") keeps the cache already on the device.
    if (host.k.length > 0) this.k.upload(host.k);
    if (host.v.length > 0) this.v.upload(host.v);
    if (host.sinks.length > 0) this.sinks.upload(host.sinks);
    this.pageIndptr.upload(b.pageIndptr);
    if (b.pageIndices) this.pageIndices.upload(b.pageIndices);
    this.qoIndptr.upload(b.qoIndptr);
    this.kvLens.upload(b.kvLens);
    this.poisonOutputs();
    for (const b of [this.refPrefill, this.refDecode, this.refLsePrefill, this.refLseDecode]) b.poison();
    this.current = host;
    return this;
  }

  /** Poisons the kernel outputs (NaN in fp16, bf16 and fp32), so unwritten elements show. */
  poisonOutputs(): void {
    for (const b of [this.oPrefill, this.oDecode, this.lsePrefill, this.lseDecode]) b.poison();
  }

  /** Arguments of run / runPrefill / runDecode for this batch and a workspace. */
  podBuffers(workspace: DeviceBuffer, withLse = true): PodBuffers {
    return {
      qPrefill: this.qPrefill,
      qDecode: this.qDecode,
      k: this.k,
      v: this.v,
      pageIndptr: this.pageIndptr,
      pageIndices: this.dims.paged ? this.pageIndices : null,
      oPrefill: this.oPrefill,
      oDecode: this.oDecode,
      lsePrefill: withLse ? this.lsePrefill : null,
      lseDecode: withLse ? this.lseDecode : null,
      workspace,
      workspaceBytes: workspace.bytes,
      sinks: this.dims.sinks ? this.sinks : null,
    };
  }

  /** Arguments of the fp32 reference kernel for the uploaded batch. */
  referenceArgs(): ReferenceArgs {
    const host = this.requireBatch();
    return {
      numPrefills: host.batch.numPrefills,
      numDecodes: host.batch.numDecodes,
      qoIndptr: this.qoIndptr,
      kvLens: this.kvLens,
      pageIndptr: this.pageIndptr,
      pageIndices: this.dims.paged ? this.pageIndices : null,
      qPrefill: this.qPrefill,
      qDecode: this.qDecode,
      k: this.k,
      v: this.v,
      oPrefill: this.refPrefill,
      oDecode: this.refDecode,
      lsePrefill: this.refLsePrefill,
      lseDecode: this.refLseDecode,
      totalPrefillTokens: host.totalPrefillTokens,
      sinks: this.dims.sinks ? this.sinks : null,
    };
  }

  /** Outputs of the uploaded batch (only its rows), as 16-bit bits and fp32. */
  readOutputs() {
    const host = this.requireBatch();
    const { numHeadsQ: hq, headDim: d } = this.dims;
    const t = host.totalPrefillTokens;
    const n = host.shape.decodes.length;
    const read16 = (b: DeviceBuffer, count: number) => b.download(new Uint16Array(count));
    const read32 = (b: DeviceBuffer, count: number) => b.download(new Float32Array(count));
    return {
      oPrefill: read16(this.oPrefill, t * hq * d),
      oDecode: read16(this.oDecode, n * hq * d),
      lsePrefill: read32(this.lsePrefill, t * hq),
      lseDecode: read32(this.lseDecode, n * hq),
      refPrefill: read32(this.refPrefill, t * hq * d),
      refDecode: read32(this.refDecode, n * hq * d),
      refLsePrefill: read32(this.refLsePrefill, t * hq),
      refLseDecode: read32(this.refLseDecode, n * hq),
    };
  }

  private requireBatch(): HostBatch {
    if (!this.current) throw new Error("DeviceBatch: no batch uploaded");
    return this.current;
  }

  free(): void {
    for (const b of this.buffers) b.free();
    this.buffers.length = 0;
  }
}
