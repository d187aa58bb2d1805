// Hybrid batches: shapes → host page tables → device tensors (random data drawn on the GPU) →
// PodBuffers. Shared by the GPU suite, `podgen verify` and the benchmarks, so every path feeds the
// kernels the same way a serving engine would.
import { kvElementBytes, type KernelInfo, type KernelLibrary, type PodBatch, type PodBuffers, type ReferenceArgs } from "./abi.ts";
import { DeviceBuffer } from "./device.ts";
import { Rng } from "./numerics.ts";

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
}

/**
 * Which tensors DeviceBatch.upload draws: "all", or "queries" (k and v keep the cache already on
 * the device, e.g. when it is reused with new page tables).
 */
export type DrawnTensors = "all" | "queries";

/** The generator's tensor numbers (KernelLibrary.fillRandom): each tensor its own values. */
export const RANDOM_TENSOR = { qPrefill: 0, qDecode: 1, k: 2, v: 3 } as const;

/** The shape-defining constants of a kernel (KernelInfo has them all). */
export type KernelDims = Pick<
  KernelInfo,
  "numHeadsQ" | "numHeadsKv" | "headDim" | "paged" | "pageSize" | "dtype" | "sinks" | "kvDtype" | "kvScalePerHead"
>;

/** What the host knows of a batch: its lengths, page table and the seed its data is drawn with. */
export interface HostBatch {
  shape: BatchShape;
  dims: KernelDims;
  /** What the planner reads. */
  batch: PodBatch;
  totalPrefillTokens: number;
  /** Seed of q, k and v (drawn on the device by DeviceBatch.upload). */
  seed: number;
  /** Kernels with attention sinks: a sink logit per query head (empty otherwise). */
  sinks: Float32Array;
  /** fp8 KV kernels: the K and V dequantization scales, 1 or Hkv each (empty otherwise). */
  kScale: Float32Array;
  vScale: Float32Array;
}

/**
 * Sink logits as a model might have learned them, drawn from N(3, 2^2): comparable to the logsumexp
 * of a short row's logits (standard normal q and k give scaled logits of unit variance), so that a
 * sink moves o and lse visibly for short and long rows alike.
 */
function randomSinks(rng: Rng, count: number): Float32Array {
  return Float32Array.from({ length: count }, () => 3 + 2 * rng.normal());
}

/**
 * fp8 KV scales as a quantizer might have chosen them, drawn from [0.5, 2): the fp8 values are
 * standard normal draws, so the dequantized K and V are too, up to the scale; distinct per head, so
 * that a kernel reading another head's scale (or none) fails the comparison.
 */
function randomKvScales(rng: Rng, dims: KernelDims): Float32Array {
  if (dims.kvDtype !== "e4m3") return new Float32Array(0);
  return Float32Array.from({ length: dims.kvScalePerHead ? dims.numHeadsKv : 1 }, () => 0.5 * 4 ** rng.next());
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

/** A batch of the given shape: lengths and page table (pages shuffled by the seed). */
export function makeHostBatch(dims: KernelDims, shape: BatchShape, opts: BatchOptions): HostBatch {
  const rng = new Rng(opts.seed);
  const { kvLens, pageIndptr, pageIndices, numPages } = pageTable(dims, shape, rng, opts);
  const qoIndptr = new Int32Array(shape.prefills.length + 1);
  shape.prefills.forEach((p, i) => (qoIndptr[i + 1] = qoIndptr[i]! + p.qLen));
  const totalPrefillTokens = qoIndptr[shape.prefills.length]!;
  return {
    shape,
    dims,
    totalPrefillTokens,
    seed: opts.seed,
    batch: {
      numPrefills: shape.prefills.length,
      numDecodes: shape.decodes.length,
      qoIndptr,
      kvLens,
      pageIndptr,
      pageIndices,
      numPages,
      numHeadsQ: dims.numHeadsQ,
      numHeadsKv: dims.numHeadsKv,
      headDim: dims.headDim,
    },
    // After the page table, so that a seed gives the same pages with sinks or without.
    sinks: dims.sinks ? randomSinks(rng, dims.numHeadsQ) : new Float32Array(0),
    // After the sinks, so that a seed gives the same sinks with an fp8 cache or without.
    kScale: randomKvScales(rng, dims),
    vScale: randomKvScales(rng, dims),
  };
}

/** What draws a batch's tensors on the device: a kernel library (its dtype is the batch's). */
export type RandomSource = Pick<KernelLibrary, "fillRandom" | "fillRandomKv" | "info">;

/** Rows of a KV cache of `pages` pages (paged) or `pages` rows (contiguous). */
const cacheRows = (dims: KernelDims, pages: number) => (dims.paged ? pages * dims.pageSize : pages);

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
 * never move, as CUDA graphs need). q, k and v are drawn on the device from the batch's seed by
 * a kernel library's generator; outputs are poisoned on every upload.
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
  /** fp8 KV kernels: fp32 K and V scales (1 or Hkv each). */
  readonly kScale: DeviceBuffer;
  readonly vScale: DeviceBuffer;
  current: HostBatch | undefined;

  constructor(
    readonly dims: KernelDims,
    readonly capacity: BatchCapacity,
  ) {
    const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d } = dims;
    const rows = cacheRows(dims, capacity.pages);
    const alloc = (label: string, bytes: number) => {
      const b = DeviceBuffer.alloc(Math.max(bytes, 16), label);
      this.buffers.push(b);
      return b;
    };
    this.qPrefill = alloc("qPrefill", capacity.prefillTokens * hq * d * 2);
    this.qDecode = alloc("qDecode", capacity.decodes * hq * d * 2);
    const kvBytes = kvElementBytes(dims);
    this.k = alloc("k", rows * hkv * d * kvBytes);
    this.v = alloc("v", rows * hkv * d * kvBytes);
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
    const scales = dims.kvDtype === "e4m3" ? (dims.kvScalePerHead ? hkv : 1) : 0;
    this.kScale = alloc("kScale", scales * 4);
    this.vScale = alloc("vScale", scales * 4);
  }

  static forBatch(host: HostBatch, lib: RandomSource): DeviceBatch {
    return new DeviceBatch(host.dims, capacityOf(host)).upload(host, lib);
  }

  /**
   * Copies a batch's page table in, draws its tensors on the device with `lib`'s generator (the
   * whole cache: k and v are those of `host.seed` wherever its pages lie) and poisons every output.
   */
  upload(host: HostBatch, lib: RandomSource, draw: DrawnTensors = "all"): this {
    const cap = capacityOf(host);
    for (const key of Object.keys(cap) as (keyof BatchCapacity)[]) {
      if (cap[key] > this.capacity[key]) {
        throw new RangeError(`batch needs ${key} = ${cap[key]}, but the device buffers hold ${this.capacity[key]}`);
      }
    }
    const { dtype, kvDtype } = lib.info();
    if (dtype !== this.dims.dtype) throw new RangeError(`the batch's dtype is ${this.dims.dtype}, but the library drawing it makes ${dtype}`);
    if (kvDtype !== this.dims.kvDtype) throw new RangeError(`the batch's KV dtype is ${this.dims.kvDtype}, but the library drawing it makes ${kvDtype}`);
    const b = host.batch;
    const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d } = this.dims;
    const kvCount = cacheRows(this.dims, b.numPages) * hkv * d;
    const drawn: [DeviceBuffer, number, number, "fillRandom" | "fillRandomKv"][] = [
      [this.qPrefill, host.totalPrefillTokens * hq * d, RANDOM_TENSOR.qPrefill, "fillRandom"],
      [this.qDecode, b.numDecodes * hq * d, RANDOM_TENSOR.qDecode, "fillRandom"],
    ];
    if (draw === "all") drawn.push([this.k, kvCount, RANDOM_TENSOR.k, "fillRandomKv"], [this.v, kvCount, RANDOM_TENSOR.v, "fillRandomKv"]);
    // The page table, sinks and scales first: these copies are synchronous, and would wait for the fills.
    if (host.sinks.length > 0) this.sinks.upload(host.sinks);
    if (host.kScale.length > 0) this.kScale.upload(host.kScale);
    if (host.vScale.length > 0) this.vScale.upload(host.vScale);
    this.pageIndptr.upload(b.pageIndptr!);
    if (b.pageIndices) this.pageIndices.upload(b.pageIndices);
    this.qoIndptr.upload(b.qoIndptr);
    this.kvLens.upload(b.kvLens);
    for (const [buffer, count, tensor, fill] of drawn) lib[fill](buffer, count, host.seed, tensor);
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
      pageIndices: this.dims.paged ? this.pageIndices : null,
      oPrefill: this.oPrefill,
      oDecode: this.oDecode,
      lsePrefill: withLse ? this.lsePrefill : null,
      lseDecode: withLse ? this.lseDecode : null,
      workspace,
      workspaceBytes: workspace.bytes,
      sinks: this.dims.sinks ? this.sinks : null,
      ...this.kvScales(),
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
      ...this.kvScales(),
    };
  }

  /** fp8 KV kernels: the scale buffers of runs and the reference; else nothing. */
  private kvScales(): { kScale?: DeviceBuffer; vScale?: DeviceBuffer } {
    return this.dims.kvDtype === "e4m3" ? { kScale: this.kScale, vScale: this.vScale } : {};
  }

  /**
   * Inputs of the uploaded batch (q: its rows as 16-bit bits; k and v: the whole cache, as 16-bit
   * bits or fp8 bytes by the KV dtype).
   */
  readInputs() {
    const host = this.requireBatch();
    const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d } = this.dims;
    const kvCount = cacheRows(this.dims, host.batch.numPages) * hkv * d;
    const read16 = (b: DeviceBuffer, count: number) => b.download(new Uint16Array(count));
    const readKv = (b: DeviceBuffer) => (this.dims.kvDtype === "e4m3" ? b.download(new Uint8Array(kvCount)) : read16(b, kvCount));
    return {
      qPrefill: read16(this.qPrefill, host.totalPrefillTokens * hq * d),
      qDecode: read16(this.qDecode, host.shape.decodes.length * hq * d),
      k: readKv(this.k),
      v: readKv(this.v),
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
