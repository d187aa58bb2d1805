import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { pod, PRESETS } from "../dsl/index.ts";
import { generateKernel, staleKernelFiles } from "../codegen/generate.ts";
import { mapDiagnostics, traitsToSpecFields } from "../codegen/build.ts";
import { parsePtxasReport, resourceWarnings, spillReasons } from "../codegen/manifest.ts";
import { GENERATED_DIR, PACKAGE_ROOT } from "../codegen/paths.ts";
import { gitCommit } from "../codegen/commit.ts";

const spec = pod.kernel({
  name: "snap",
  dtype: "fp16",
  heads: { q: 16, kv: 2 },
  headDim: 64,
  kvCache: pod.contiguous(),
  prefill: { tile: { q: 64, kv: 32 }, stages: 3, maxSplits: 8 },
  decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1, maxSplits: 4 },
  ctasPerSm: 4,
  schedule: pod.fiftyFifty(),
});

test("same spec, same bytes", async () => {
  const a = await generateKernel(spec);
  const b = await generateKernel(pod.kernel(spec as never));
  assert.equal(a, b);
});

/** The body of `struct <name> { ... }` in `src` (braces matched, so nested structs stay inside). */
function structBody(src: string, name: string): string {
  const open = new RegExp(`\\bstruct ${name}(?:\\s*:\\s*\\w+)?\\s*\\{`).exec(src);
  if (!open) throw new Error(`no struct ${name}`);
  let depth = 0;
  for (let i = open.index + open[0].length - 1; i < src.length; i++) {
    if (src[i] === "{") depth++;
    else if (src[i] === "}" && --depth === 0) return src.slice(open.index + open[0].length, i);
  }
  throw new Error(`struct ${name} is not closed`);
}

/** A struct's own constants (`static constexpr T kX = v;`, `using X = T;`), nested structs left out, with their `// spec:` notes. */
function constantsOf(body: string): Map<string, { value: string; note: string }> {
  let own = body;
  for (const [, nested] of body.matchAll(/\bstruct (\w+)(?:\s*:\s*\w+)?\s*\{/g)) own = own.replace(structBody(own, nested!), "");
  const out = new Map<string, { value: string; note: string }>();
  for (const m of own.matchAll(/(?:static constexpr \w+ (k\w+)|using (\w+)) = ([^;]+);[ \t]*(?:\/\/ (.*))?/g)) {
    const name = (m[1] ?? m[2])!;
    assert.not.ok(out.has(name), `${name} defined twice at one level`);
    out.set(name, { value: m[3]!.trim(), note: m[4] ?? "" });
  }
  return out;
}

test("traits carry every spec value, each in its own struct: Traits, Traits::Prefill, Traits::Decode", async () => {
  const cu = (await generateKernel(spec)).find((f) => f.path === "kernel.cu")!.contents;
  const traits = structBody(cu, "Traits");
  const values = (body: string) => Object.fromEntries([...constantsOf(body)].map(([k, v]) => [k, v.value]));
  const top = values(traits);
  const prefill = values(structBody(traits, "Prefill"));
  const decode = values(structBody(traits, "Decode"));
  const expectIn = (level: Record<string, string>, where: string, expected: Record<string, string>) => {
    for (const [k, v] of Object.entries(expected)) assert.is(level[k], v, `${where}::${k}`);
  };
  expectIn(top, "Traits", { DType: "half", kHeadDim: "64", kNumHeadsQ: "16", kNumHeadsKv: "2", kGroup: "8", kPaged: "false", kPageSize: "1", kThreads: "128", kCtasPerSm: "4", kRoles: "false", kSchedule: "0" });
  // The spec's prefill and decode differ in every field they share but warps (equal by rule), so a
  // value in the wrong struct shows.
  expectIn(prefill, "Prefill", { kTileQ: "64", kTileKv: "32", kWarps: "4", kStages: "3", kMaxSplits: "8", kMaxWaves: "0" });
  expectIn(decode, "Decode", { kTileQ: "16", kTileKv: "64", kWarpsPerVirtualCta: "4", kStages: "2", kVirtualCtas: "1", kMaxSplits: "4" });
  // The prefill-only kernel's prefill: the fused kernel's tile and stages unless prefill.standalone
  // (warp-specialized) gives its own.
  expectIn(values(structBody(traits, "PrefillAlone")), "PrefillAlone", { kTileKv: "32", kStages: "3" });
  assert.not.ok("kTileQ" in top || "kVirtualCtas" in prefill || "kMaxWaves" in decode, "no constant at the wrong level");
  // Each nested struct's constants cite their own section of the spec.
  for (const [struct, section] of [["Prefill", "prefill."], ["PrefillAlone", "prefill."], ["Decode", "decode."]] as const) {
    for (const [k, { note }] of constantsOf(structBody(traits, struct))) {
      const cited = /^spec: ([\w.]+)/.exec(note)?.[1];
      if (cited) assert.ok(cited.startsWith(section), `${struct}::${k} cites ${cited}`);
    }
  }
  assert.ok(cu.includes("#define POD_API(name) pod_snap_##name"));
  assert.ok(cu.includes(`spec hash ${spec.hash}`));
});

test("traits carry the attention variants: off (0, false, PodParams) unless the spec turns them on", async () => {
  const traitsOf = async (input: object) => {
    const cu = (await generateKernel(pod.kernel({ name: "snap", heads: { q: 16, kv: 2 }, headDim: 64, ...input } as never))).find((f) => f.path === "kernel.cu")!.contents;
    return Object.fromEntries([...constantsOf(structBody(cu, "Traits"))].map(([k, v]) => [k, v]));
  };
  const off = await traitsOf({});
  assert.equal([off.kWindow!.value, off.kLogitsSoftCap!.value, off.kSinks!.value, off.Params!.value], ["0", "0.0f", "false", "pod::PodParams"]);
  const on = await traitsOf({ window: 4096, logitsSoftCap: 50, sinks: true });
  assert.equal([on.kWindow!.value, on.kLogitsSoftCap!.value, on.kSinks!.value, on.Params!.value], ["4096", "50.0f", "true", "pod::PodSinkParams"]);
  assert.equal([on.kWindow!.note, on.kLogitsSoftCap!.note, on.kSinks!.note].map((n) => /^spec: (\w+)/.exec(n)?.[1]), ["window", "logitsSoftCap", "sinks"]);
  assert.is((await traitsOf({ logitsSoftCap: 0.125 })).kLogitsSoftCap!.value, "0.125f");
  assert.is((await traitsOf({ logitsSoftCap: 1e-7 })).kLogitsSoftCap!.value, "1e-7f");
});

test("traits carry the KV dtype: the dtype and no staging unless the spec asks for an fp8 cache, whose scales join the parameters", async () => {
  const traitsOf = async (input: object, struct = "Traits") => {
    const cu = (await generateKernel(pod.kernel({ name: "snap", heads: { q: 16, kv: 2 }, headDim: 64, ...input } as never))).find((f) => f.path === "kernel.cu")!.contents;
    return Object.fromEntries([...constantsOf(structBody(cu, struct))].map(([k, v]) => [k, v.value]));
  };
  const off = await traitsOf({});
  assert.equal([off.KvDType, off.kKvFp8, off.kKvScalePerHead, off.Params], ["__nv_bfloat16", "false", "false", "pod::PodParams"]);
  assert.equal([(await traitsOf({}, "Prefill")).kKvStaging, (await traitsOf({}, "Decode")).kKvStaging, (await traitsOf({}, "Decode")).kKvBuffers], ["0", "0", "2"]);
  const fp8 = { kvDtype: "e4m3", kvScale: "head", sinks: true, prefill: { tile: { q: 64, kv: 32 }, stages: 3 } };
  const on = await traitsOf(fp8);
  assert.equal([on.KvDType, on.kKvFp8, on.kKvScalePerHead, on.Params], ["__nv_fp8_e4m3", "true", "true", "pod::PodKvScaleParams<pod::PodSinkParams>"]);
  // From the resource model: prefill fp8 staging for the tiles in flight; every decode stage fp8, none 16-bit.
  assert.equal([(await traitsOf(fp8, "Prefill")).kKvStaging, (await traitsOf(fp8, "Decode")).kKvStaging, (await traitsOf(fp8, "Decode")).kKvBuffers], ["2", "2", "0"]);
  assert.is((await traitsOf({ kvDtype: "e4m3" })).kKvScalePerHead, "false", "one scale per tensor by default");
});

test("the C header names the kernel's symbols and constants", async () => {
  const h = (await generateKernel(spec)).find((f) => f.path === "pod_attention.h")!.contents;
  for (const s of ["int pod_snap_plan(", "int pod_snap_run(", "int pod_snap_run_reference(", "Hq=16, Hkv=2, D=64", "KV cache contiguous"]) {
    assert.ok(h.includes(s), s);
  }
});

test("bindings are typed for the kernel's shapes", async () => {
  const ts = (await generateKernel(spec)).find((f) => f.path === "bindings.ts")!.contents;
  assert.match(ts, /qPrefill: readonly \[tokens: number, heads: 16, dim: 64\]/);
  assert.match(ts, /kCache: readonly \[rows: number, heads: 2, dim: 64\]/);
  assert.match(ts, /export function loadSnap\(libraryPath: string\): KernelLibrary/);
  assert.match(ts, /symbolPrefix: "pod_snap"/);
});

test("committed generated/ matches the generator for every preset", async () => {
  for (const preset of PRESETS) {
    const stale = staleKernelFiles(GENERATED_DIR, preset.name, await generateKernel(preset));
    assert.equal(stale, [], `stale: ${stale.join(", ")} (run podgen generate)`);
  }
});

test("a changed generated file is reported stale", async () => {
  const files = await generateKernel(PRESETS[0]!);
  const edited = files.map((f) => (f.path === "kernel.cu" ? { ...f, contents: f.contents + "// edit\n" } : f));
  assert.equal(staleKernelFiles(GENERATED_DIR, PRESETS[0]!.name, edited), [join(PRESETS[0]!.name, "kernel.cu")]);
});

const PTXAS = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN3pod12fused_kernelEv' for 'sm_90a'
ptxas info    : Function properties for _ZN3pod12fused_kernelEv
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 168 registers, used 1 barriers, 528 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN3pod16reference_kernelEv' for 'sm_90a'
ptxas info    : Function properties for _ZN3pod16reference_kernelEv
    16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 40 registers, used 0 barriers, 1024 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN3pod14decode_kernelEv' for 'sm_90a'
ptxas info    : Function properties for _ZN3pod14decode_kernelEv
    24 bytes stack frame, 32 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 400 bytes cmem[0]
ptxas info    : (C7512) Potential Performance Loss: wgmma.mma_async instructions are serialized due to insufficient register resources for the function '_ZN3pod14prefill_kernelEv'
ptxas info    : Compiling entry function '_ZN3pod14prefill_kernelEv' for 'sm_90a'
ptxas info    : Function properties for _ZN3pod14prefill_kernelEv
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 400 bytes cmem[0]
`;

test("ptxas report → per-kernel resources, demangled", () => {
  const kernels = parsePtxasReport(PTXAS);
  assert.is(kernels.length, 4);
  const fused = kernels.find((k) => k.name.includes("fused_kernel"))!;
  assert.equal(
    { registers: fused.registers, barriers: fused.barriers, stack: fused.stackBytes, spill: fused.spillStoreBytes, arch: fused.arch },
    { registers: 168, barriers: 1, stack: 0, spill: 0, arch: "sm_90a" },
  );
  assert.is(fused.name, "pod::fused_kernel()");
  const reference = kernels.find((k) => k.name.includes("reference"))!;
  assert.is(reference.staticSharedBytes, 1024);
  assert.is(reference.hot, false);
  const prefill = kernels.find((k) => k.name.includes("prefill_kernel"))!;
  assert.is(prefill.wgmmaSerialized, "C7512: wgmma.mma_async instructions are serialized due to insufficient register resources");
  assert.is(fused.wgmmaSerialized, null);
});

/** ptxas's report of a build's fused, prefill-only and decode-only kernels (spills as given). */
function podReport(spills: { fused: number; prefill: number; decode: number }): string {
  return Object.entries(spills)
    .map(([kind, bytes]) => {
      const symbol = `_ZN3pod${`pod_${kind}_kernel`.length}pod_${kind}_kernelEv`;
      return [
        `ptxas info    : Compiling entry function '${symbol}' for 'sm_90a'`,
        `ptxas info    : Function properties for ${symbol}`,
        `    ${bytes} bytes stack frame, ${bytes} bytes spill stores, ${bytes} bytes spill loads`,
        `ptxas info    : Used ${kind === "decode" ? 190 : 255} registers, used 16 barriers`,
      ].join("\n");
    })
    .join("\n");
}

test("inspect's spill reasons: the fused kernel's spill is the fusion's when both tile loops fit alone, else the loop's", () => {
  const fusion = spillReasons(parsePtxasReport(podReport({ fused: 40, prefill: 0, decode: 0 })));
  assert.equal(fusion.map((s) => [s.kernel, s.arch]), [["fused", "sm_90a"]]);
  assert.match(fusion[0]!.reason, /^40 bytes stored \/ 40 loaded at 255 registers; the prefill-only kernel: 255 registers, no spill; the decode-only kernel: 190 registers, no spill: each tile loop fits alone/);
  const loop = spillReasons(parsePtxasReport(podReport({ fused: 40, prefill: 8, decode: 0 })));
  assert.equal(loop.map((s) => s.kernel), ["fused", "prefill"]);
  assert.match(loop[0]!.reason, /the prefill-only kernel: 255 registers, spills 8 bytes.*: the spill is in the prefill tile loop$/);
  assert.match(loop[1]!.reason, /^8 bytes stored \/ 8 loaded at 255 registers: its own tile loop needs more registers/);
  assert.equal(spillReasons(parsePtxasReport(podReport({ fused: 0, prefill: 0, decode: 0 }))), []);
});

test("spills, stacks, serialized wgmma and register pressure in hot kernels become warnings; the reference is exempt", () => {
  const warnings = resourceWarnings(parsePtxasReport(PTXAS), 128, 2, 65536);
  assert.is(warnings.length, 3, warnings.join("\n"));
  assert.ok(warnings.some((w) => /decode_kernel.*spills 32 bytes/.test(w)));
  assert.ok(warnings.some((w) => /prefill_kernel.*serialized its wgmma instructions \(C7512/.test(w)));
  assert.ok(warnings.some((w) => /decode_kernel.*24-byte stack/.test(w)));
  assert.ok(resourceWarnings(parsePtxasReport(PTXAS), 128, 4, 65536).some((w) => /168 registers/.test(w)));
  // Per-kernel CTA sizes (roles): only the kernels launched with many threads are flagged.
  const perKernel = resourceWarnings(parsePtxasReport(PTXAS), (k) => (k.name.includes("decode_kernel") ? 1024 : 128), 1, 65536);
  assert.ok(perKernel.some((w) => /decode_kernel.*1024 threads × 1 CTAs\/SM/.test(w)), perKernel.join("\n"));
  assert.not.ok(perKernel.some((w) => /prefill_kernel.*threads ×/.test(w)));
});

test("nvcc errors point at the generated line and its spec field", async () => {
  const files = await generateKernel(spec);
  const cu = files.find((f) => f.path === "kernel.cu")!.contents.split("\n");
  const line = cu.findIndex((l) => l.includes("kStages = 3")) + 1;
  const src = "/tmp/build/src";
  const output = [
    `${src}/kernel.cu(${line}): error: something about stages`,
    `/x/templates/pod/prefill.cuh(12): error: static assertion failed with "Prefill::kTileQ must be a multiple of 16 * Prefill::kWarps"`,
  ].join("\n");
  const [generated, template] = mapDiagnostics(output, src, files);
  assert.is(generated!.file, "generated/kernel.cu");
  assert.is(generated!.specField, "prefill.stages");
  assert.match(generated!.sourceLine!, /kStages = 3/);
  assert.is(template!.specField, "prefill.tile.q");
});

test("traits map covers nested structs", async () => {
  const cu = (await generateKernel(spec)).find((f) => f.path === "kernel.cu")!.contents;
  const map = traitsToSpecFields(cu);
  assert.is(map.get("Decode::kTileKv"), "decode.tile.kv");
  assert.is(map.get("Prefill::kTileKv"), "prefill.tile.kv");
  assert.is(map.get("kHeadDim"), "headDim");
});

test("gitCommit: $PODGEN_COMMIT (set by the GPU bundle's scripts) wins over the checkout's HEAD", () => {
  const saved = process.env.PODGEN_COMMIT;
  try {
    delete process.env.PODGEN_COMMIT;
    const head = gitCommit(PACKAGE_ROOT);
    assert.match(head, /^([0-9a-f]{40}(-dirty)?|unknown)$/);
    process.env.PODGEN_COMMIT = "feb4c6fca4b89382d6b5c3020f815b845c0444ff";
    assert.is(gitCommit(PACKAGE_ROOT), "feb4c6fca4b89382d6b5c3020f815b845c0444ff");
  } finally {
    if (saved === undefined) delete process.env.PODGEN_COMMIT;
    else process.env.PODGEN_COMMIT = saved;
  }
});

test.run();
