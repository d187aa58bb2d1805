// nvcc builds of every preset (no GPU needed), the build cache under concurrency, and the planner
// of a real built library called through its C ABI with koffi.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normalizeSpec, pod, PRESETS, presetByName, resourceModel, specFields, symbolPrefix, TARGET_LIMITS, type KernelSpec } from "../dsl/index.ts";
import { buildKernel, buildMany, findCachedBuild, nvccFlags, readManifest, type BuildResult } from "../codegen/build.ts";
import { JsonInputError } from "../codegen/json.ts";
import { TEMPLATES_DIR } from "../codegen/paths.ts";
import { renderHeader, renderKernelSource } from "../codegen/render.ts";
import { KernelLibrary, PodgenError, makeHostBatch, Rng, type BatchShape, type PodPlan } from "../runtime/index.ts";

const cacheDir = mkdtempSync(join(tmpdir(), "podgen-build-test-"));
const built = new Map<string, BuildResult>();

test("every preset compiles for its target, with a manifest of its kernels", async () => {
  const outcomes = await buildMany(PRESETS, { cacheDir, jobs: 2 });
  for (const [i, r] of outcomes.entries()) {
    if (r instanceof Error) throw r;
    built.set(PRESETS[i]!.name, r);
  }
  for (const spec of PRESETS) {
    const r = built.get(spec.name)!;
    assert.ok(existsSync(r.library), `${spec.name}: library`);
    assert.is(r.manifest.target, spec.target);
    assert.is(r.manifest.specHash, spec.hash);
    const names = r.manifest.kernels.map((k) => k.name).join("\n");
    // The fused launch: with one CTA per SM (roles) the CTA holds both roles, in pod_roles_kernel.
    const fused = resourceModel(spec).roles ? "pod_roles_kernel" : "pod_fused_kernel";
    for (const kind of [fused, "prefill", "decode", "combine", "reference"]) {
      assert.match(names, new RegExp(kind, "i"), `${spec.name}: a ${kind} kernel in the manifest`);
    }
    for (const k of r.manifest.kernels) {
      assert.ok(k.registers > 0 && k.arch === spec.target, `${k.name}: ${k.registers} registers on ${k.arch}`);
    }
  }
});

test("buildMany: a failed build comes back in its place as an Error, and the others still build", async () => {
  // Not a valid spec (no such target): buildKernel throws before nvcc runs.
  const broken = { ...presetByName("qwen2_0_5b")!, target: "sm_00" } as unknown as KernelSpec;
  const seen: string[] = [];
  const [bad, good] = await buildMany([broken, presetByName("llama3_8b")!], {
    cacheDir,
    jobs: 1,
    onDone: (spec, r) => seen.push(`${spec.name} ${r instanceof Error ? "failed" : "built"}`),
  });
  assert.instance(bad, Error);
  assert.ok(!(good instanceof Error) && existsSync(good!.library));
  assert.equal(seen, ["qwen2_0_5b failed", "llama3_8b built"]);
});

test("a second build of the same spec comes from the cache", async () => {
  const spec = presetByName("llama3_8b")!;
  const again = await buildKernel(spec, { cacheDir });
  assert.is(again.cached, true);
  assert.is(again.dir, built.get("llama3_8b")!.dir);
});

test("two concurrent cold builds of one spec both succeed and leave one whole cache entry", async () => {
  const spec = pod.kernel({ name: "concurrent", heads: { q: 8, kv: 8 }, headDim: 64 });
  const dir = mkdtempSync(join(tmpdir(), "podgen-concurrent-"));
  try {
    const [a, b] = await Promise.all([buildKernel(spec, { cacheDir: dir }), buildKernel(spec, { cacheDir: dir })]);
    assert.is(a.dir, b.dir);
    assert.is(a.cached || b.cached, false, "both were cold builds");
    assert.ok(existsSync(a.library));
    const manifest = JSON.parse(readFileSync(join(a.dir, "manifest.json"), "utf8"));
    assert.is(manifest.specHash, spec.hash);
    assert.equal(readdirSync(join(dir, "builds")), [`concurrent-${manifest.buildKey}`]);
    assert.equal(readdirSync(join(dir, "tmp")), [], "no temporary folders left behind");
    assert.is((await buildKernel(spec, { cacheDir: dir })).cached, true);

    // A manifest that does not parse (damaged, or another podgen's): readManifest names the file
    // and the field; the entry is no cached build, and the next build replaces it.
    const path = join(a.dir, "manifest.json");
    const { kernels: _kernels, ...partial } = manifest;
    writeFileSync(path, JSON.stringify(partial));
    assert.throws(() => readManifest(path), (e: unknown) => e instanceof JsonInputError && /manifest\.json: kernels: Invalid input: expected array/.test((e as Error).message));
    assert.is(await findCachedBuild(spec, { cacheDir: dir }), undefined);
    const rebuilt = await buildKernel(spec, { cacheDir: dir });
    assert.equal([rebuilt.cached, rebuilt.dir], [false, a.dir]);
    assert.ok(readManifest(path).kernels.length > 0, "the entry was replaced");
    assert.is((await buildKernel(spec, { cacheDir: dir })).cached, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- which MMA the prefill tile loop compiles to (PTX only: the front end, no ptxas)

function prefillPtx(spec: KernelSpec): string {
  const dir = mkdtempSync(join(tmpdir(), "podgen-ptx-"));
  try {
    writeFileSync(join(dir, "pod_attention.h"), renderHeader(spec));
    writeFileSync(join(dir, "kernel.cu"), renderKernelSource(spec));
    const { arch } = TARGET_LIMITS[spec.target].gencode;
    execFileSync("nvcc", ["-std=c++17", "-ptx", `-arch=${arch}`, "-I", TEMPLATES_DIR, "-o", "kernel.ptx", "kernel.cu"], { cwd: dir, stdio: "pipe" });
    return readFileSync(join(dir, "kernel.ptx"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("prefill MMA: wgmma on sm_90a with whole warpgroups, mma.sync on sm_80 and for 2-warp CTAs", () => {
  const base = specFields(presetByName("llama3_8b_2cta")!);
  const hopper = prefillPtx(normalizeSpec({ ...base, name: "mma_hopper" }));
  assert.match(hopper, /wgmma\.mma_async\.sync\.aligned\.m64n32k16\.f32\.bf16\.bf16/, "S = Q K^T: 128 rows, 32-key sub-blocks");
  assert.match(hopper, /wgmma\.mma_async\.sync\.aligned\.m64n128k16\.f32\.bf16\.bf16/, "O += P V over D = 128");
  assert.match(hopper, /fence\.proxy\.async\.shared::cta/, "cp.async writes are fenced before wgmma reads them");
  const twoWarps = normalizeSpec({
    ...base,
    name: "mma_two_warps",
    prefill: { ...base.prefill, warps: 2, tile: { q: 64, kv: 32 } },
    decode: { ...base.decode, warps: 2, virtualCtas: 1 },
  });
  const ampere = normalizeSpec({ ...base, name: "mma_ampere", target: "sm_80", prefill: { ...base.prefill, tile: { q: 64, kv: 64 } } });
  for (const spec of [twoWarps, ampere]) {
    const ptx = prefillPtx(spec);
    assert.not.match(ptx, /wgmma/, `${spec.name}: no wgmma`);
    assert.match(ptx, /mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32/, `${spec.name}: mma.sync`);
  }
});

test("prefill sub-blocks follow the register budget: 64 keys at 255 registers, 32 at 128 (8-warp CTAs)", () => {
  const base = specFields(presetByName("llama3_8b_2cta")!);
  const sTile = (ptx: string) => [...new Set([...ptx.matchAll(/wgmma\.mma_async\.sync\.aligned\.m64n(\d+)k16/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
  // 64-row tile, one warpgroup, 2 CTAs per SM: 255 registers a thread.
  const wideSpec = normalizeSpec({ ...base, name: "sub_wide", prefill: { ...base.prefill, tile: { q: 64, kv: 64 } } });
  assert.equal(sTile(prefillPtx(wideSpec)), [64, 128], "S over 64 keys, O over D = 128");
  // Two warpgroups of 64 rows at 128 registers: 64-key scores would make ptxas serialize the wgmmas.
  const eight = normalizeSpec({
    ...base,
    name: "sub_eight_warps",
    prefill: { ...base.prefill, warps: 8 },
    decode: { ...base.decode, warps: 8, tile: { q: 16, kv: 64 }, stages: 1, virtualCtas: 2 },
  });
  assert.equal(sTile(prefillPtx(eight)), [32, 128], "S over 32 keys, O over D = 128");
  // The widths come from the resource model (the generated Traits::Prefill::kSubKv).
  assert.equal([wideSpec, eight].map((s) => resourceModel(s).prefillSubBlockKeys), [64, 32]);
});

// ---- the planner through the built library's C ABI (no GPU: the static CUDA runtime loads lazily)

const ITEM_INTS = 12; // PodWorkItem: 12 int32 fields (templates/pod/contract.h)
type Item = { request: number; kvHead: number; qLen: number; kvLen: number; rowBegin: number; kvBegin: number; kvEnd: number; split: number; numSplits: number };

/** The kernel's items of an op: item i is stored item i / numHeadsKv for KV head i % numHeadsKv (contract.h). */
function items(plan: PodPlan, staging: Buffer, op: 0 | 1, numHeadsKv: number): Item[] {
  const stored = plan.numItems[op] / numHeadsKv;
  assert.ok(Number.isInteger(stored), `op ${op}: ${plan.numItems[op]} items for ${numHeadsKv} KV heads`);
  const ints = new Int32Array(staging.buffer, staging.byteOffset + Number(plan.itemsOffset[op]), stored * ITEM_INTS);
  return Array.from({ length: plan.numItems[op] }, (_, i) => {
    const at = Math.floor(i / numHeadsKv) * ITEM_INTS;
    const f = ints.subarray(at, at + ITEM_INTS);
    assert.is(f[1], 0, "stored items have KV head 0");
    return { request: f[0]!, kvHead: i % numHeadsKv, qLen: f[3]!, kvLen: f[4]!, rowBegin: f[5]!, kvBegin: f[6]!, kvEnd: f[7]!, split: f[8]!, numSplits: f[9]! };
  });
}

function randomShape(rng: Rng): BatchShape {
  const prefills = Array.from({ length: rng.int(0, 4) }, () => {
    const qLen = rng.int(1, 700);
    return { qLen, kvLen: qLen + (rng.next() < 0.3 ? 0 : rng.int(0, 5000)) };
  });
  const decodes = Array.from({ length: rng.int(prefills.length === 0 ? 1 : 0, 80) }, () => rng.int(1, 9000));
  return { prefills, decodes };
}

test("planner via the C ABI: every query row of every request and KV head is covered exactly once", () => {
  const spec = presetByName("llama3_8b")!;
  const lib = new KernelLibrary(built.get("llama3_8b")!.library, "pod_llama3_8b");
  const info = lib.info();
  assert.equal([info.numHeadsQ, info.numHeadsKv, info.headDim, info.pageSize, info.dtype], [32, 8, 128, 16, spec.dtype]);
  const rng = new Rng(7);
  const group = info.numHeadsQ / info.numHeadsKv;
  for (let trial = 0; trial < 2000; trial++) {
    const host = makeHostBatch(info, randomShape(rng), { seed: trial });
    const { plan, staging } = lib.plan(host.batch, { numSms: 132 });
    const qLens = [...host.shape.prefills.map((p) => p.qLen), ...host.shape.decodes.map(() => 1)];
    const kvLens = [...host.shape.prefills.map((p) => p.kvLen), ...host.shape.decodes];
    // covered[request][kvHead][row] counts split-0 tiles; every split covers [kvBegin, kvEnd).
    const keysSeen = new Map<string, number>();
    for (const op of [0, 1] as const) {
      const tileRows = op === 0 ? info.prefillTileQ : info.decodeTileQ;
      for (const it of items(plan, staging, op, info.numHeadsKv)) {
        assert.ok(it.kvBegin < it.kvEnd && it.kvEnd <= it.kvLen, `trial ${trial}: split range`);
        assert.is(it.qLen, qLens[it.request]);
        assert.is(it.kvLen, kvLens[it.request]);
        const rows = Math.min(tileRows, it.qLen * group - it.rowBegin);
        const key = `${it.request}/${it.kvHead}/${it.rowBegin}`;
        keysSeen.set(key, (keysSeen.get(key) ?? 0) + (it.kvEnd - it.kvBegin));
        const lastToken = Math.floor((it.rowBegin + rows - 1) / group);
        const causalEnd = Math.min(it.kvLen, it.kvLen - it.qLen + lastToken + 1);
        if (it.split === it.numSplits - 1) assert.is(it.kvEnd, causalEnd, `trial ${trial}: last split ends at the causal end`);
      }
    }
    // Each (request, head, tile) must see exactly its causal key range, summed over splits.
    let tiles = 0;
    for (let r = 0; r < qLens.length; r++) {
      const tileRows = r < host.shape.prefills.length ? info.prefillTileQ : info.decodeTileQ;
      for (let h = 0; h < info.numHeadsKv; h++) {
        for (let row = 0; row < qLens[r]! * group; row += tileRows) {
          const rows = Math.min(tileRows, qLens[r]! * group - row);
          const lastToken = Math.floor((row + rows - 1) / group);
          const causalEnd = Math.min(kvLens[r]!, kvLens[r]! - qLens[r]! + lastToken + 1);
          assert.is(keysSeen.get(`${r}/${h}/${row}`), causalEnd, `trial ${trial}: request ${r} head ${h} row ${row}`);
          tiles++;
        }
      }
    }
    assert.is(keysSeen.size, tiles, "no tile outside the batch");
    assert.ok(plan.numItems[0] <= Math.max(info.prefillMaxWaves * 132 * info.ctasPerSm, tiles), "two-wave cap");
    assert.ok(BigInt(staging.length) >= plan.hostBytes && plan.workspaceBytes >= plan.hostBytes);
  }
  lib.close();
});

test("roles (ctasPerSm 1): one persistent CTA per SM in the fused launch, the roles' registers split by setmaxnreg", async () => {
  const spec = normalizeSpec(JSON.parse(readFileSync(join(TEMPLATES_DIR, "..", "examples", "llama3_8b_roles.json"), "utf8")));
  const r = await buildKernel(spec, { cacheDir });
  const names = r.manifest.kernels.map((k) => k.name).join("\n");
  for (const kind of ["roles", "prefill", "decode", "combine", "reference"]) assert.match(names, new RegExp(`pod_${kind}_kernel`), kind);
  assert.not.match(names, /pod_fused_kernel/, "the roles kernel replaces the fused kernel");
  // The launch bound gives every thread 168 registers; the roles then ask for 184 and 136.
  assert.is(r.manifest.kernels.find((k) => k.name.includes("pod_roles_kernel"))!.registers, 168);
  const source = renderKernelSource(spec);
  assert.match(source, /kPrefillRoleRegs = 184;/);
  assert.match(source, /kDecodeRoleRegs = 136;/);
  const lib = new KernelLibrary(r.library, symbolPrefix(spec));
  try {
    const info = lib.info();
    assert.equal([info.threadsPerCta, info.ctasPerSm], [384, 1]);
    const shape = { prefills: [{ qLen: 1000, kvLen: 4000 }], decodes: Array.from({ length: 64 }, () => 4096) };
    const host = makeHostBatch(info, shape, { seed: 1 });
    for (const numSms of [132, 100]) {
      const { plan } = lib.plan(host.batch, { numSms });
      assert.is(plan.gridFused, numSms, "one CTA per SM, looping over tickets");
      assert.is(plan.gridPrefill, plan.numItems[0], "the prefill-only kernel: one CTA per item");
    }
    const decodeOnly = makeHostBatch(info, { prefills: [], decodes: [5, 9000] }, { seed: 2 });
    assert.is(lib.plan(decodeOnly.batch, { numSms: 132 }).plan.gridFused, 132);
  } finally {
    lib.close();
  }
});

test("warp-specialized prefill: its kernels build without spills, the traits name the engine, the prefill-only grid is persistent", async () => {
  const spec = normalizeSpec(JSON.parse(readFileSync(join(TEMPLATES_DIR, "..", "examples", "llama3_8b_ws.json"), "utf8")));
  const r = await buildKernel(spec, { cacheDir });
  const kernel = (kind: string) => r.manifest.kernels.find((k) => k.name.includes(`pod_${kind}_kernel`));
  assert.ok(kernel("prefill_ws"), "the prefill-only kernel is the warp-specialized one");
  assert.not.ok(kernel("prefill"), "no other prefill-only kernel");
  for (const kind of ["prefill_ws", "roles"]) {
    const k = kernel(kind)!;
    assert.equal([k.spillStoreBytes, k.stackBytes], [0, 0], `${kind}: no local memory`);
  }
  // Registers at launch: 384 threads (prefill-only) and 512 (fused, with the decode role).
  assert.is(kernel("prefill_ws")!.registers, 168);
  assert.is(kernel("roles")!.registers, 128);
  const model = resourceModel(spec);
  const source = renderKernelSource(spec);
  assert.match(source, /kEngine = POD_ENGINE_WARP_SPECIALIZED;/);
  assert.match(source, new RegExp(`kThreads = ${model.prefillThreads};`));
  assert.match(source, new RegExp(`kProducerRegs = ${model.registers.warpSpecialized!.producer};`));
  // The prefill-only kernel runs prefill.standalone's 128-key tiles (Traits::PrefillAlone), the fused kernel 64-key ones.
  assert.equal([spec.prefill.tile.kv, model.prefillAlone.tileKv], [64, 128]);
  assert.match(source, /struct PrefillAlone : Prefill \{\s*static constexpr int kTileKv = 128;/);
  assert.match(kernel("prefill_ws")!.name, /PrefillAloneTraits/);
  const lib = new KernelLibrary(r.library, symbolPrefix(spec));
  try {
    const info = lib.info();
    const host = makeHostBatch(info, { prefills: [{ qLen: 1000, kvLen: 4000 }], decodes: [4096, 17] }, { seed: 1 });
    for (const numSms of [132, 16]) {
      const { plan } = lib.plan(host.batch, { numSms });
      assert.ok(plan.numItems[0] > 16, "more items than the small GPU's SMs");
      assert.is(plan.gridPrefill, Math.min(plan.numItems[0], numSms), "persistent prefill-only CTAs, at most one per SM");
      assert.is(plan.gridFused, numSms);
    }
  } finally {
    lib.close();
  }
});

test("targets before sm_90a embed their PTX, so newer GPUs can run the build", () => {
  const ampere = normalizeSpec({ ...specFields(presetByName("llama3_8b_2cta")!), name: "ptx_ampere", target: "sm_80", prefill: { tile: { q: 64, kv: 64 } } });
  assert.ok(nvccFlags(ampere).includes("-gencode=arch=compute_80,code=[sm_80,compute_80]"));
  assert.ok(nvccFlags(presetByName("llama3_8b")!).includes("-gencode=arch=compute_90a,code=sm_90a"), "sm_90a code runs on sm_90a only");
});

test("planner via the C ABI: bad batches are refused with a message naming the field", () => {
  const lib = new KernelLibrary(built.get("llama3_8b")!.library, "pod_llama3_8b");
  const info = lib.info();
  const good = () => makeHostBatch(info, { prefills: [{ qLen: 40, kvLen: 100 }], decodes: [33, 70] }, { seed: 1 }).batch;
  const cases: [string, (b: ReturnType<typeof good>) => void, RegExp][] = [
    ["kv shorter than the chunk", (b) => (b.kvLens[0] = 10), /kv_lens\[0\]/],
    ["page index past the cache", (b) => (b.pageIndices![2] = b.numPages + 5), /page_indices\[2\]/],
    ["negative decode length", (b) => (b.kvLens[2] = 0), /kv_lens\[2\]/],
    ["heads not matching the kernel", (b) => (b.numHeadsQ = 16), /num_heads_q/],
    ["head dim not matching", (b) => (b.headDim = 64), /head_dim/],
    ["decreasing qo_indptr", (b) => (b.qoIndptr[1] = -1), /qo_indptr/],
  ];
  for (const [title, mutate, pattern] of cases) {
    const b = good();
    mutate(b);
    try {
      lib.plan(b);
      assert.unreachable(`${title}: plan should fail`);
    } catch (e) {
      assert.instance(e, PodgenError, title);
      assert.match((e as Error).message, pattern, `${title}: ${(e as Error).message}`);
      assert.match((e as Error).message, /PODGEN_ERR_BAD_BATCH/, title);
    }
  }
  lib.close();
});

test.after(() => rmSync(cacheDir, { recursive: true, force: true }));
test.run();
