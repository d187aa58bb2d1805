// GPU-suite cases for the generated kernels: the random inputs' fill kernel against its definition,
// the fp32 reference against a CPU computation, the case matrix of kernel-cases.json (fused, fused again, standalone; poisoned outputs; exactly-once
// tile counts), a CUDA graph captured once and replayed over re-planned batches, and small runs
// for compute-sanitizer (`--filter sanitize`; skipped unless the sanitizer wraps the run).
import kernelCases from "../kernel-cases.json" with { type: "json" };
import exampleCases from "../../../examples/verify.json" with { type: "json" };
import { casesFrom, type VerifyCase } from "../../../cli/verify-cases.ts";
import { libraryFileName, symbolPrefix } from "../../../dsl/index.ts";
import {
  compare,
  DeviceBatch,
  DeviceBuffer,
  KernelLibraries,
  kvElementBytes,
  kvToFloat32,
  makeHostBatch,
  Rng,
  Stream,
  toFloat32,
  type BatchShape,
  type Dtype16,
  type HostBatch,
  type KernelInfo,
  type KernelLibrary,
} from "../../../runtime/index.ts";
import { outputTolerance, tilesExecuted, TOLERANCE, verifyBatch } from "../../../runtime/verify.ts";
import { gpuCase, skip, type SuiteContext } from "../harness.ts";
import { randomNormals } from "../../random.ts";

export const MATRIX: VerifyCase[] = casesFrom(kernelCases, "kernel-cases.json");
export const EXAMPLE: VerifyCase[] = casesFrom(exampleCases, "examples/verify.json");

// Loaded once for the whole suite (the process ends with it).
const libraries = new KernelLibraries();
function library(ctx: SuiteContext, specName: string): KernelLibrary {
  return libraries.get(ctx.artifact(libraryFileName({ name: specName })), symbolPrefix({ name: specName }));
}

/**
 * fp64 attention on the host, straight from the definition (for small batches), with the kernel's
 * variants, on the device's inputs: a query sees the last `window` of its causal keys (0: all), a logit x becomes
 * cap * tanh(x / cap), and the batch's sink logit of its head joins the denominator.
 */
function cpuAttention(host: HostBatch, dev: DeviceBatch, variants: Pick<KernelInfo, "window" | "logitsSoftCap"> = { window: 0, logitsSoftCap: 0 }) {
  const { window, logitsSoftCap: cap } = variants;
  const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d, paged, pageSize } = host.dims;
  const dtype = host.dims.dtype as Dtype16;
  const inputs = dev.readInputs();
  const [q0, q1] = [inputs.qPrefill, inputs.qDecode].map((t) => toFloat32(t, dtype));
  const [k, v] = [inputs.k, inputs.v].map((t) => kvToFloat32(t, host.dims.kvDtype));
  // An fp8 cache's scales (k = k_scale * k8), per tensor or per KV head; 1 for a 16-bit cache.
  const kvScale = (scales: Float32Array, kvh: number) => (scales.length === 0 ? 1 : scales[scales.length === 1 ? 0 : kvh]!);
  const b = host.batch;
  const scale = 1 / Math.sqrt(d);
  const row = (r: number, j: number) =>
    paged ? b.pageIndices![b.pageIndptr![r]! + Math.floor(j / pageSize)]! * pageSize + (j % pageSize) : b.pageIndptr![r]! + j;
  const out = { o: [new Float32Array(q0!.length), new Float32Array(q1!.length)], lse: [new Float32Array(q0!.length / d), new Float32Array(q1!.length / d)] };
  const requests = [
    ...host.shape.prefills.map((p, i) => ({ part: 0, r: i, base: b.qoIndptr[i]!, qLen: p.qLen, kvLen: p.kvLen })),
    ...host.shape.decodes.map((kvLen, i) => ({ part: 1, r: b.numPrefills + i, base: i, qLen: 1, kvLen })),
  ];
  for (const { part, r, base, qLen, kvLen } of requests) {
    const q = part === 0 ? q0! : q1!;
    for (let t = 0; t < qLen; t++) {
      const visible = kvLen - qLen + t + 1;
      const first = window > 0 ? Math.max(0, visible - window) : 0;
      for (let h = 0; h < hq; h++) {
        const kvh = Math.floor(h / (hq / hkv));
        const qOff = ((base + t) * hq + h) * d;
        const s = new Float64Array(visible);
        let m = -Infinity;
        for (let j = first; j < visible; j++) {
          const kOff = (row(r, j) * hkv + kvh) * d;
          let dot = 0;
          for (let x = 0; x < d; x++) dot += q[qOff + x]! * k![kOff + x]! * kvScale(host.kScale, kvh);
          s[j] = cap > 0 ? cap * Math.tanh((dot * scale) / cap) : dot * scale;
          m = Math.max(m, s[j]!);
        }
        let sum = 0;
        for (let j = first; j < visible; j++) sum += (s[j] = Math.exp(s[j]! - m));
        let keep = 1; // what the keys' terms are scaled by when the sink raises the max
        if (host.sinks.length > 0) {
          const sink = host.sinks[h]!, max = Math.max(m, sink);
          keep = Math.exp(m - max);
          sum = sum * keep + Math.exp(sink - max);
          m = max;
        }
        for (let x = 0; x < d; x++) {
          let acc = 0;
          for (let j = first; j < visible; j++) acc += s[j]! * v![(row(r, j) * hkv + kvh) * d + x]! * kvScale(host.vScale, kvh);
          out.o[part]![qOff + x] = (acc * keep) / sum;
        }
        out.lse[part]![(base + t) * hq + h] = m + Math.log(sum);
      }
    }
  }
  return out;
}

gpuCase("random inputs: the fill kernel draws its definition's values; same seed, same data; another seed or tensor, other data; moments of a standard normal", (ctx) => {
  const lines: string[] = [];
  for (const specName of ["llama3_8b", "llama2_7b"]) {
    const lib = library(ctx, specName);
    const dtype = lib.info().dtype;
    const count = 2 ** 22 + 3; // a partial last group of four
    const buffer = DeviceBuffer.alloc(count * 2, "random");
    try {
      const draw = (seed: number, tensor: number) => {
        buffer.poison();
        lib.fillRandom(buffer, count, seed, tensor);
        ctx.device.synchronize();
        return buffer.download(new Uint16Array(count));
      };
      const bits = draw(7, 2);
      const again = draw(7, 2);
      if (bits.some((b, i) => b !== again[i])) throw new Error(`${dtype}: two draws with seed 7 differ`);
      for (const [what, other] of [["seed 8", draw(8, 2)], ["tensor 3", draw(7, 3)]] as const) {
        const same = other.filter((b, i) => b === bits[i]).length / count;
        if (same > 0.02) throw new Error(`${dtype}: ${(100 * same).toFixed(1)}% of the values equal with ${what} (independent draws agree on well under 1%)`);
      }
      const values = toFloat32(bits, dtype);
      let sum = 0;
      let sum2 = 0;
      for (const x of values) {
        if (!Number.isFinite(x) || x === 0) throw new Error(`${dtype}: value ${x} (not written, not finite or zero)`);
        sum += x;
        sum2 += x * x;
      }
      const mean = sum / count;
      const variance = sum2 / count - mean * mean;
      // Standard errors ~5e-4 (mean) and ~7e-4 (variance): the bounds are ten of them.
      if (!(Math.abs(mean) < 5e-3 && Math.abs(variance - 1) < 7e-3)) throw new Error(`${dtype}: mean ${mean}, variance ${variance}`);
      // The definition (test/random.ts) at the start and across the partial last group; within two
      // units in the last place of the dtype (the GPU's logf and sincospif against doubles).
      const ulp = dtype === "bf16" ? 2 ** -7 : 2 ** -10;
      for (const first of [0, count - 4099]) {
        const want = randomNormals(7n, 2, 4099, first);
        want.forEach((w, i) => {
          const got = values[first + i]!;
          if (!(Math.abs(got - w) <= 2 * ulp * Math.abs(w) + 2 ** -24)) throw new Error(`${dtype}: element ${first + i} is ${got}; the definition gives ${w}`);
        });
      }
      lines.push(`${dtype}: mean ${mean.toExponential(1)}, variance ${variance.toFixed(4)}`);
    } finally {
      buffer.free();
    }
  }
  ctx.log(lines.join("; "));
});

gpuCase("random inputs, fp8 KV: fill_random_kv writes e4m3 (never NaN or zero) of its definition's values, rounded; 16-bit KV: the same as fill_random", (ctx) => {
  const lines: string[] = [];
  for (const specName of ["llama3_8b_fp8", "llama3_8b"]) {
    const lib = library(ctx, specName);
    const { dtype, kvDtype } = lib.info();
    const count = 2 ** 20 + 3;
    const bytes = kvElementBytes({ kvDtype });
    const buffer = DeviceBuffer.alloc(count * bytes, "random kv");
    try {
      buffer.poison();
      lib.fillRandomKv(buffer, count, 7, 2);
      ctx.device.synchronize();
      const elements = bytes === 1 ? buffer.download(new Uint8Array(count)) : buffer.download(new Uint16Array(count));
      if (kvDtype !== "e4m3") {
        lib.fillRandom(buffer, count, 7, 2);
        ctx.device.synchronize();
        const again = buffer.download(new Uint16Array(count));
        if (elements.some((b, i) => b !== again[i])) throw new Error(`${kvDtype}: fill_random_kv and fill_random differ on a 16-bit cache`);
        lines.push(`${kvDtype}: equal to fill_random`);
        continue;
      }
      const values = kvToFloat32(elements, kvDtype);
      for (const [i, x] of values.entries()) {
        if (!Number.isFinite(x) || x === 0) throw new Error(`e4m3 element ${i} is ${x} (byte ${elements[i]}): not written, NaN or zero`);
      }
      // The definition rounded to e4m3 (3 mantissa bits: within 2^-4 relative, one more step where the
      // GPU's draw sits on the other side of a rounding boundary), magnitudes at least 2^-9.
      const want = randomNormals(7n, 2, 4099, 0);
      want.forEach((w, i) => {
        const got = values[i]!;
        if (!(Math.abs(got - w) <= 2 ** -3 * Math.abs(w) + 2 ** -9)) throw new Error(`e4m3 element ${i} is ${got}; the definition gives ${w}`);
      });
      lines.push(`e4m3 (${dtype} queries): ${count} elements finite and nonzero, the first 4099 the definition's`);
    } finally {
      buffer.free();
    }
  }
  ctx.log(lines.join("; "));
});

/** The fp32 reference kernel of `specName` against cpuAttention on one small batch. */
function referenceCase(title: string, specName: string, shape: BatchShape) {
  gpuCase(`reference: the fp32 reference kernel matches an fp64 CPU computation${title} [${specName}]`, (ctx) => {
    const lib = library(ctx, specName);
    const host = makeHostBatch(lib.info(), shape, { seed: 99 });
    const dev = DeviceBatch.forBatch(host, lib);
    try {
      lib.runReference(dev.referenceArgs());
      ctx.device.synchronize();
      const gpu = dev.readOutputs();
      const cpu = cpuAttention(host, dev, lib.info());
      const errors = [
        compare(gpu.refPrefill, cpu.o[0]!),
        compare(gpu.refDecode, cpu.o[1]!),
        compare(gpu.refLsePrefill, cpu.lse[0]!),
        compare(gpu.refLseDecode, cpu.lse[1]!),
      ].map((e) => e.relativeL2);
      if (!errors.every((e) => e <= 1e-5)) throw new Error(`reference vs CPU relative L2 errors ${errors.map((e) => e.toExponential(2)).join(", ")} (limit 1e-5)`);
      ctx.log(`relative L2 o prefill/decode ${errors[0]!.toExponential(1)}/${errors[1]!.toExponential(1)}, lse ${errors[2]!.toExponential(1)}/${errors[3]!.toExponential(1)}`);
    } finally {
      dev.free();
    }
  });
}
const matrixSpec = (namePrefix: string) => MATRIX.find((c) => c.name.startsWith(namePrefix))!.spec.name;
referenceCase("", "llama3_8b", { prefills: [{ qLen: 37, kvLen: 77 }, { qLen: 1, kvLen: 5 }], decodes: [1, 33, 130] });
// Rows whose window starts inside the KV, and rows that see fewer keys than the window.
const windowShape: BatchShape = { prefills: [{ qLen: 37, kvLen: 300 }, { qLen: 1, kvLen: 5 }], decodes: [1, 77, 78, 300] };
referenceCase(", sliding window 77 and soft-cap 50", matrixSpec("window 77 + soft-cap 50"), windowShape);
referenceCase(", sinks and sliding window 128", "gpt_oss_20b", windowShape);
referenceCase(", fp8 KV cache with per-head scales", "llama3_8b_fp8", { prefills: [{ qLen: 37, kvLen: 77 }, { qLen: 1, kvLen: 5 }], decodes: [1, 33, 130] });
referenceCase(", fp8 KV cache with one scale per tensor, fp16", MATRIX.find((c) => c.name.startsWith("fp8 KV: per-tensor scales"))!.spec.name, windowShape);
// Head dims 96 (fewer columns than the CTA's 128 threads) and 256 (two columns a thread).
referenceCase(", D96", "phi3_mini", windowShape);
referenceCase(", D256 with soft-cap 50 and sliding window 4096", "gemma2_9b_local", { prefills: [{ qLen: 5, kvLen: 4100 }, { qLen: 1, kvLen: 5 }], decodes: [1, 4096, 4097] });

function registerVerify(prefix: string, cases: VerifyCase[]) {
  for (const c of cases) {
    gpuCase(`${prefix}: ${c.name} [${c.spec.name}]`, (ctx) => {
      const startedAt = performance.now();
      const lib = library(ctx, c.spec.name);
      const host = makeHostBatch(lib.info(), c.shape, { seed: c.seed, shufflePages: c.shufflePages });
      const r = verifyBatch(ctx.device, lib, host, { startedAt });
      const problems = r.runs.flatMap((run) => run.problems.map((p) => `${run.mode}: ${p}`));
      if (!r.pass) throw new Error(problems.join("; "));
      ctx.log(`o ≤ ${r.worst.o.toExponential(1)}, lse ≤ ${r.worst.lse.toExponential(1)}, items ${r.plan.numItems}, max splits ${r.plan.maxSplits}, ratio ${r.plan.ratio}, host ${(r.hostMs / 1000).toFixed(2)} s before the first launch`);
      return { errors: r.runs.map((x) => ({ mode: x.mode, ...x.errors })), plan: r.plan, hostMs: r.hostMs };
    });
  }
}
registerVerify("kernels", MATRIX);
registerVerify("verify example", EXAMPLE);

/**
 * Why a sanitize: case cannot say anything here, or undefined when it can: the case itself never
 * sees what compute-sanitizer finds, so it means something only when the sanitizer wraps this
 * process (.gpu/run.sh runs node under $PODGEN_WRAP) and a finding fails the run's exit code.
 */
export function sanitizerMissing(wrap = process.env.PODGEN_WRAP ?? ""): string | undefined {
  const example = 'PODGEN_WRAP="compute-sanitizer --tool racecheck --error-exitcode 1" bash .gpu/run.sh --filter sanitize';
  if (!/compute-sanitizer/.test(wrap)) return `no sanitizer wraps this run (PODGEN_WRAP ${wrap ? `= "${wrap}"` : "unset"}); run ${example}`;
  if (!/--error-exitcode[ =]*[1-9]/.test(wrap)) return `PODGEN_WRAP = "${wrap}" has no --error-exitcode: an error or hazard could not fail the run; run ${example}`;
  return undefined;
}

// Small enough for racecheck (a few seconds a case on the H100).
function sanitizeCase(title: string, specName: string) {
  gpuCase(`sanitize: ${title} [${specName}]`, (ctx) => {
    const missing = sanitizerMissing();
    if (missing) skip(missing);
    const lib = library(ctx, specName);
    const host = makeHostBatch(lib.info(), { prefills: [{ qLen: 70, kvLen: 300 }, { qLen: 5, kvLen: 5 }], decodes: [1, 40, 700] }, { seed: 5 });
    const r = verifyBatch(ctx.device, lib, host, { plan: { prefillMaxSplits: 2 } });
    if (!r.pass) throw new Error(r.runs.flatMap((x) => x.problems).join("; "));
    ctx.log(`o ≤ ${r.worst.o.toExponential(1)}, max splits ${r.plan.maxSplits}`);
  });
}
sanitizeCase("small fused + standalone run", "llama3_8b");
sanitizeCase("the same in the paper's CTA shape (2 CTAs/SM, wgmma prefill)", "llama3_8b_2cta");
sanitizeCase("the same with an fp8 KV cache (the prefill dequantizes tiles in shared memory, the decode reads fp8 fragments)", "llama3_8b_fp8");
for (const [title, matrixCase] of [
  ["the same with the P V carried across KV tiles", "3-stage prefill"],
  ["the same with 1-stage 128-key prefill tiles", "1-stage prefill"],
  ["the same with 8-warp CTAs", "8 warps: two prefill warpgroups"],
  ["the same with an fp8 KV cache, mma.sync prefill and a 1-stage decode", "fp8 KV: per-tensor scales"],
  ["the same with an fp8 KV cache and the P V carried across KV tiles", "fp8 KV: 3-stage prefill"],
  ["the same with prefill and decode roles in one CTA per SM", "roles: one CTA per SM"],
  ["the same with the warp-specialized prefill (TMA, mbarrier ring, ping-pong)", "warp-specialized: 128x128 2-stage"],
  ["the same with the warp-specialized prefill on a contiguous cache", "warp-specialized: contiguous KV"],
  ["the same with the prefill-only kernel on its own 3-stage 128-key tiles, page size 128", "warp-specialized: the prefill-only kernel on its own"],
  ["the same at D96 (rows padded to 128 columns in shared memory)", "D96 phi3_mini"],
  ["the same at D256 with the warp-specialized prefill (four TMA boxes a page)", "D256 warp-specialized"],
] as const) {
  sanitizeCase(title, MATRIX.find((c) => c.name.startsWith(matrixCase))!.spec.name);
}

for (const [title, specName] of [
  ["", "llama3_8b"],
  [", the paper's CTA shape", "llama3_8b_2cta"],
  [", warp-specialized prefill", MATRIX.find((c) => c.name.startsWith("warp-specialized: 128x128 2-stage"))!.spec.name],
  [", fp8 KV cache", "llama3_8b_fp8"],
] as const)
gpuCase(`graph: one capture, 100 replays over re-planned batches (lengths, page tables and queries change)${title}`, (ctx) => {
  const lib = library(ctx, specName);
  const info = lib.info();
  const bucket = { maxPrefills: 3, maxDecodes: 24, maxPrefillTokens: 768, maxKvLen: 2048 };
  const cachePages = (bucket.maxPrefills + bucket.maxDecodes) * Math.ceil(bucket.maxKvLen / info.pageSize);
  const options = { graphMode: true, ...bucket, maxNumPages: cachePages, maxPageEntries: cachePages, numSms: ctx.device.sms, debugCountTiles: true };
  const rng = new Rng(2024);
  const shape = (): BatchShape => {
    const prefills = Array.from({ length: rng.int(0, bucket.maxPrefills) }, () => {
      const qLen = rng.int(1, Math.floor(bucket.maxPrefillTokens / bucket.maxPrefills));
      return { qLen, kvLen: rng.int(qLen, bucket.maxKvLen) };
    });
    const decodes = Array.from({ length: rng.int(prefills.length ? 0 : 1, bucket.maxDecodes) }, () => rng.int(1, bucket.maxKvLen));
    return { prefills, decodes };
  };
  // One K/V cache drawn once; every replay addresses it through a new shuffled page table.
  const pool = makeHostBatch(info, { prefills: [], decodes: [1] }, { seed: 1, cachePages });
  const dev = new DeviceBatch(info, { prefillTokens: bucket.maxPrefillTokens, decodes: bucket.maxDecodes, requests: bucket.maxPrefills + bucket.maxDecodes, pages: cachePages, pageIndices: cachePages });
  dev.upload(pool, lib);
  const first = makeHostBatch(info, shape(), { seed: 1000, cachePages });
  dev.upload(first, lib, "queries");
  const planned = lib.plan(first.batch, options);
  const staging = planned.staging;
  const workspace = DeviceBuffer.alloc(Number(planned.plan.workspaceBytes), "workspace");
  const stream = Stream.create();
  const worst = { o: 0, replays: 0 };
  try {
    lib.uploadPlan(planned.plan, staging, workspace, workspace.bytes, stream);
    const graph = stream.capture((s) => lib.run(planned.plan, dev.podBuffers(workspace), s));
    const limit = outputTolerance(info);
    for (let i = 0; i < 100; i++) {
      const host = i === 0 ? first : makeHostBatch(info, shape(), { seed: 1000 + i, cachePages });
      if (i > 0) dev.upload(host, lib, "queries");
      const { plan } = lib.plan(host.batch, options, staging);
      if (plan.gridFused !== planned.plan.gridFused || plan.workspaceBytes !== planned.plan.workspaceBytes) {
        throw new Error(`replay ${i}: graph-mode plan changed its grid or workspace`);
      }
      lib.uploadPlan(plan, staging, workspace, workspace.bytes, stream);
      graph.launch(stream);
      stream.synchronize();
      lib.runReference(dev.referenceArgs());
      ctx.device.synchronize();
      const out = dev.readOutputs();
      for (const [got, ref] of [[toFloat32(out.oPrefill, info.dtype), out.refPrefill], [toFloat32(out.oDecode, info.dtype), out.refDecode]] as const) {
        if (ref.length === 0) continue;
        const e = compare(got, ref);
        if (e.nonFinite > 0 || !(e.relativeL2 <= limit)) {
          throw new Error(`replay ${i} (${host.shape.prefills.length} prefills, ${host.shape.decodes.length} decodes): relative L2 ${e.relativeL2}, ${e.nonFinite} unwritten`);
        }
        worst.o = Math.max(worst.o, e.relativeL2);
      }
      const executed = tilesExecuted(workspace);
      if (executed[0] !== plan.numItems[0] || executed[1] !== plan.numItems[1]) {
        throw new Error(`replay ${i}: tiles executed ${executed.join("/")} != planned ${plan.numItems.join("/")}`);
      }
      worst.replays++;
    }
    graph.destroy();
    ctx.log(`${worst.replays} replays of one graph (grid ${planned.plan.gridFused}), worst relative L2 ${worst.o.toExponential(2)}`);
  } finally {
    stream.destroy();
    workspace.free();
    dev.free();
  }
});

/**
 * Runs one batch through the split API (fused, and the fp32 reference) and through the ragged API:
 * its requests interleaved in a random order, one q and one o, pages as a padded block table whose
 * spare columns hold page ids past the cache (never read). Returns, per ragged request, its rows of
 * the ragged run's o / lse next to the split run's and the reference's.
 */
function raggedAgainstSplit(ctx: SuiteContext, specName: string, shape: BatchShape, decodeMaxQLen: number) {
  const lib = library(ctx, specName);
  const info = lib.info();
  const { numHeadsQ: hq, headDim: d } = info;
  const host = makeHostBatch(info, shape, { seed: 31 });
  const b = host.batch;
  const np = b.numPrefills, n = np + b.numDecodes;
  const rng = new Rng(77);
  const order = Array.from({ length: n }, (_, r) => r);  // ragged position -> split request, shuffled
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const qLen = (r: number) => (r < np ? b.qoIndptr[r + 1]! - b.qoIndptr[r]! : 1);
  const splitRow = (r: number) => (r < np ? { part: 0, row: b.qoIndptr[r]! } : { part: 1, row: r - np });
  const qoIndptr = new Int32Array(n + 1);
  order.forEach((r, j) => (qoIndptr[j + 1] = qoIndptr[j]! + qLen(r)));
  const tokens = qoIndptr[n]!;
  const rowElems = hq * d;
  const q = new Uint16Array(tokens * rowElems);
  const dev = DeviceBatch.forBatch(host, lib);  // draws q, k and v on the device
  const inputs = dev.readInputs();
  const splitQ = [inputs.qPrefill, inputs.qDecode];
  order.forEach((r, j) => {
    const { part, row } = splitRow(r);
    q.set(splitQ[part]!.subarray(row * rowElems, (row + qLen(r)) * rowElems), qoIndptr[j]! * rowElems);
  });
  let pageTable: { pageIndptr: Int32Array | null; pageIndices: Int32Array | null; blockTableStride: number };
  if (info.paged) {
    const pages = (r: number) => b.pageIndptr![r + 1]! - b.pageIndptr![r]!;
    const stride = Math.max(...order.map(pages)) + 2;
    const table = new Int32Array(n * stride).fill(b.numPages + 1000);
    order.forEach((r, j) => table.set(b.pageIndices!.subarray(b.pageIndptr![r]!, b.pageIndptr![r + 1]!), j * stride));
    pageTable = { pageIndptr: null, pageIndices: table, blockTableStride: stride };
  } else {
    const first = new Int32Array(n + 1);
    order.forEach((r, j) => (first[j] = b.pageIndptr![r]!));
    pageTable = { pageIndptr: first, pageIndices: null, blockTableStride: 0 };
  }
  const ragged = lib.planRagged({ numRequests: n, qoIndptr, kvLens: Int32Array.from(order, (r) => b.kvLens[r]!), ...pageTable,
    numPages: b.numPages, numHeadsQ: hq, numHeadsKv: info.numHeadsKv, headDim: d }, { numSms: ctx.device.sms, decodeMaxQLen, debugCountTiles: true });
  const split = lib.plan(b, { numSms: ctx.device.sms });
  const buffers: DeviceBuffer[] = [];
  const alloc = (bytes: number, label: string) => (buffers.push(DeviceBuffer.alloc(Math.max(bytes, 16), label)), buffers.at(-1)!);
  try {
    lib.runReference(dev.referenceArgs());
    const splitWs = alloc(Number(split.plan.workspaceBytes), "split workspace");
    lib.uploadPlan(split.plan, split.staging, splitWs, splitWs.bytes);
    const splitBuffers = dev.podBuffers(splitWs);
    lib.run(split.plan, splitBuffers);
    const raggedWs = alloc(Number(ragged.plan.workspaceBytes), "ragged workspace");
    const qd = alloc(q.byteLength, "q");
    qd.upload(q);
    const o = alloc(q.byteLength, "o").poison();
    const lse = alloc(tokens * hq * 4, "lse").poison();
    const table = pageTable.pageIndices ? alloc(pageTable.pageIndices.byteLength, "block table").upload(pageTable.pageIndices) : null;
    lib.uploadPlan(ragged.plan, ragged.staging, raggedWs, raggedWs.bytes);
    const { kScale, vScale, sinks } = splitBuffers;
    lib.runRagged(ragged.plan, { q: qd, k: dev.k, v: dev.v, pageIndices: table, o, lse, workspace: raggedWs, workspaceBytes: raggedWs.bytes, sinks, kScale, vScale });
    ctx.device.synchronize();
    const executed = tilesExecuted(raggedWs);
    if (executed.join() !== ragged.plan.numItems.join()) throw new Error(`ragged tiles executed ${executed} != planned ${ragged.plan.numItems}`);
    const gotO = o.download(new Uint16Array(q.length)), gotLse = lse.download(new Float32Array(tokens * hq));
    const want = dev.readOutputs();
    const wantO = [want.oPrefill, want.oDecode], wantLse = [want.lsePrefill, want.lseDecode];
    const refO = [want.refPrefill, want.refDecode], refLse = [want.refLsePrefill, want.refLseDecode];
    const requests = order.map((r, j) => {
      const { part, row } = splitRow(r);
      const rows = (a: ArrayLike<number> & { subarray(b: number, e: number): ArrayLike<number> }, first: number, width: number) => a.subarray(first * width, (first + qLen(r)) * width);
      return {
        qLen: qLen(r),
        kvLen: b.kvLens[r]!,
        o: rows(gotO, qoIndptr[j]!, rowElems) as Uint16Array,
        lse: rows(gotLse, qoIndptr[j]!, hq) as Float32Array,
        splitO: rows(wantO[part]!, row, rowElems) as Uint16Array,
        splitLse: rows(wantLse[part]!, row, hq) as Float32Array,
        refO: rows(refO[part]!, row, rowElems) as Float32Array,
        refLse: rows(refLse[part]!, row, hq) as Float32Array,
      };
    });
    return { info, order, tokens, requests, ragged: ragged.plan, split: split.plan };
  } finally {
    for (const buf of buffers) buf.free();
    dev.free();
  }
}

// With decode_max_q_len 1 (single-token requests decode, as in the split API) the planner makes the
// same tiles and splits, so o and lse must be bitwise equal to the split API's fused run, which the
// matrix checks against the reference.
const RAGGED_SPECS = [
  ["", "llama3_8b"],
  [", the paper's CTA shape", "llama3_8b_2cta"],
  [", page size 1", MATRIX.find((c) => c.name.startsWith("page size 1"))!.spec.name],
  [", contiguous KV", MATRIX.find((c) => c.name.startsWith("contiguous KV"))!.spec.name],
  [", roles", MATRIX.find((c) => c.name.startsWith("roles: one CTA per SM"))!.spec.name],
  [", warp-specialized prefill", MATRIX.find((c) => c.name.startsWith("warp-specialized: 128x128 2-stage"))!.spec.name],
  [", fp8 KV cache", "llama3_8b_fp8"],
] as const;
for (const [title, specName] of RAGGED_SPECS)
gpuCase(`ragged: one q in any order with a padded block table is bitwise equal to the split API${title}`, (ctx) => {
  const shape = { prefills: [{ qLen: 300, kvLen: 2000 }, { qLen: 7, kvLen: 7 }, { qLen: 129, kvLen: 4100 }], decodes: [1, 900, 5000, 33, 64, 65] };
  const r = raggedAgainstSplit(ctx, specName, shape, 1);
  let differing = 0;
  for (const q of r.requests) {
    for (let x = 0; x < q.o.length; x++) differing += q.o[x] !== q.splitO[x] ? 1 : 0;
    for (let x = 0; x < q.lse.length; x++) differing += Object.is(q.lse[x], q.splitLse[x]) ? 0 : 1;
  }
  if (differing > 0) throw new Error(`${differing} elements of o / lse differ from the split API's run`);
  if (r.ragged.numItems.join() !== r.split.numItems.join()) throw new Error(`items ${r.ragged.numItems} vs ${r.split.numItems}`);
  ctx.log(`${r.requests.length} requests in order ${r.order.join(",")}, ${r.tokens} tokens, items ${r.ragged.numItems}: o and lse bitwise equal`);
});

// Short requests (2 .. 16 tokens: speculative-decoding verification) on the decode path
// (decode_max_q_len 16, so that the longer ones take several decode tiles): the decode tiles mask
// their tokens causally. Each request against the fp32 reference,
// which sees them as prefill chunks; long keys so their decode tiles split, a one-token chunk and a
// chunk as long as its keys, and a window's edge where the kernel has one.
for (const [title, specName] of [...RAGGED_SPECS, [", sliding window", "mistral_7b"], [", sinks", "gpt_oss_20b"], [", MHA head dim 96", "phi3_mini"]] as const)
gpuCase(`ragged: short requests on the decode path match the reference${title}`, (ctx) => {
  const shape = {
    prefills: [{ qLen: 2, kvLen: 9000 }, { qLen: 3, kvLen: 3 }, { qLen: 4, kvLen: 130 }, { qLen: 5, kvLen: 4101 }, { qLen: 7, kvLen: 700 },
      { qLen: 8, kvLen: 8 }, { qLen: 16, kvLen: 5000 }, { qLen: 16, kvLen: 16 }, { qLen: 17, kvLen: 600 }, { qLen: 300, kvLen: 2000 }],
    decodes: [1, 900, 5000, 64],
  };
  const r = raggedAgainstSplit(ctx, specName, shape, 16);
  const shorts = r.requests.filter((q) => q.qLen <= 16).length;
  if (r.ragged.numDecodes !== shorts) throw new Error(`${r.ragged.numDecodes} requests on the decode path, expected ${shorts}`);
  const tol = outputTolerance(r.info);
  let worst = { o: 0, lse: 0 };
  for (const q of r.requests) {
    const eo = compare(toFloat32(q.o, r.info.dtype as Dtype16), q.refO), el = compare(q.lse, q.refLse);
    const what = `request q_len ${q.qLen} kv_len ${q.kvLen}`;
    if (eo.nonFinite > 0 || el.nonFinite > 0) throw new Error(`${what}: ${eo.nonFinite} o / ${el.nonFinite} lse elements not written or not finite`);
    if (!(eo.relativeL2 <= tol)) throw new Error(`${what}: o relative L2 ${eo.relativeL2.toExponential(2)} > ${tol}`);
    if (!(el.relativeL2 <= TOLERANCE.lse)) throw new Error(`${what}: lse relative L2 ${el.relativeL2.toExponential(2)} > ${TOLERANCE.lse}`);
    worst = { o: Math.max(worst.o, eo.relativeL2), lse: Math.max(worst.lse, el.relativeL2) };
  }
  ctx.log(`${shorts} of ${r.requests.length} requests decoded, items ${r.ragged.numItems} (splits ${r.ragged.maxSplits}), worst relative L2 o ${worst.o.toExponential(2)} lse ${worst.lse.toExponential(2)}`);
});
