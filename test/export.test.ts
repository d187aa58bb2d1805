// `podgen export`: the folder's contents and determinism, the CLI's errors, and — for every preset —
// the exported CMake package built with nvcc, installed, found by a C consumer through
// find_package and run on its host-only path (plan a batch, check the planner's error reports).
// No GPU needed. The PyTorch op cannot be built here (no torch): it is syntax-checked against a
// stand-in of the torch API (test/fixtures/fake_torch), its Python files byte-compiled, and its
// attention-variant argument checks (window, logits_soft_cap, sinks) and fp8 KV cache checks (the
// caches' dtype, k_scale, v_scale) run on the host against the built library through a runnable
// stand-in (test/fixtures/host_torch).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { pod, PRESETS, presetByName, type KernelInput, type KernelSpec } from "../dsl/index.ts";
import { EXPORT_MANIFEST, generateExport } from "../codegen/export.ts";
import { generateCudaSources } from "../codegen/generate.ts";
import { KERNEL_HEADERS_DIR } from "../codegen/paths.ts";
import { exportKernel } from "../cli/export.ts";
import { exitCodeFor, UsageError } from "../cli/errors.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-export-"));
const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const cudaHome = process.env.CUDA_HOME ?? "/usr/local/cuda";

test("an export holds the CUDA sources, the header, CMake, the PyTorch op and examples; same spec → same bytes", () => {
  const spec = presetByName("llama3_8b")!;
  const files = generateExport(spec);
  const again = generateExport(spec);
  assert.equal(again, files, "deterministic");
  const byPath = new Map(files.map((f) => [f.path, f.contents]));
  const [kernel, header] = generateCudaSources(spec);
  assert.is(byPath.get("src/kernel.cu"), kernel!.contents);
  assert.is(byPath.get("include/podgen/llama3_8b/pod_attention.h"), header!.contents);
  for (const h of readdirSync(KERNEL_HEADERS_DIR)) {
    assert.is(byPath.get(`src/pod/${h}`), readFileSync(join(KERNEL_HEADERS_DIR, h), "utf8"), `copy of pod/${h}`);
  }
  for (const path of [
    "CMakeLists.txt",
    "cmake/llama3_8bConfig.cmake.in",
    "README.md",
    "csrc/torch_op.cpp",
    "python/pod_llama3_8b/__init__.py",
    "examples/c_consumer/CMakeLists.txt",
    "examples/c_consumer/main.c",
    "examples/python_usage.py",
    "examples/decode_loop.py",
    "tests/test_torch.py",
    "spec.json",
  ]) {
    assert.ok(byPath.has(path), `export has ${path}`);
    assert.not.match(byPath.get(path)!, /\{\{|\}\}/, `${path}: no unrendered handlebars`);
  }
  const manifest = JSON.parse(byPath.get(EXPORT_MANIFEST)!);
  assert.equal(manifest.files, [...byPath.keys()].sort(), "the manifest lists every file");
  assert.match(byPath.get("CMakeLists.txt")!, /set\(CMAKE_CUDA_ARCHITECTURES "90a-real"/);
  assert.match(byPath.get("CMakeLists.txt")!, /install\(EXPORT llama3_8bTargets NAMESPACE podgen::/);
  assert.match(byPath.get("csrc/torch_op.cpp")!, /TORCH_LIBRARY\(podgen_llama3_8b, m\)/);
  assert.match(byPath.get("csrc/torch_op.cpp")!, /at::kBFloat16/);
  assert.match(byPath.get("tests/test_torch.py")!, /scaled_dot_product_attention/);
  // The op keeps a statically linked C++ runtime to itself: a $CXX that links libstdc++ statically
  // (the GPU machine's) otherwise crashed the first ostream number format (stop 20).
  assert.match(byPath.get("python/pod_llama3_8b/__init__.py")!, /extra_ldflags=\[[^\]]*"-Wl,--exclude-libs,ALL"\]/);
  // Another kernel differs where it should: its dtype reaches the op and the Python wrapper.
  const fp16 = new Map(generateExport(presetByName("llama2_7b")!).map((f) => [f.path, f.contents]));
  assert.match(fp16.get("csrc/torch_op.cpp")!, /const at::ScalarType kDType = at::kHalf;/);
  assert.match(fp16.get("python/pod_llama2_7b/__init__.py")!, /DTYPE = torch.float16/);
});

/** The files of `spec`'s export that the op's tests read, rendered. */
function renderedOp(spec: KernelSpec) {
  const byPath = new Map(generateExport(spec).map((f) => [f.path, f.contents]));
  const file = (path: string) => byPath.get(path)!;
  return {
    op: file("csrc/torch_op.cpp"),
    python: file(`python/pod_${spec.name}/__init__.py`),
    tests: file("tests/test_torch.py"),
    readme: file("README.md"),
    usage: file("examples/python_usage.py"),
  };
}

test("an fp8-KV export: the op takes float8_e4m3fn caches and k_scale / v_scale; the wrapper, tests and docs say so", () => {
  const cases = [
    { spec: presetByName("llama3_8b_fp8")!, at: "at::kFloat8_e4m3fn", torch: "torch.float8_e4m3fn", scales: 8, tolerance: "2e-2" },
    { spec: pod.kernel(VARIANT_SPECS.fp8tensor), at: "at::kFloat8_e4m3fn", torch: "torch.float8_e4m3fn", scales: 1, tolerance: "2e-2" },
    { spec: presetByName("llama3_8b")!, at: "at::kBFloat16", torch: "torch.bfloat16", scales: 0, tolerance: "1e-2" },
    { spec: presetByName("llama2_7b")!, at: "at::kHalf", torch: "torch.float16", scales: 0, tolerance: "5e-3" },
  ];
  for (const c of cases) {
    const name = c.spec.name;
    const { op, python, tests, readme } = renderedOp(c.spec);
    const fp8 = c.scales > 0;
    assert.ok(op.includes(`const at::ScalarType kKvDType = ${c.at};`), `${name}: the op's cache dtype`);
    assert.ok(op.includes("check_tensor(t, op, name, kKvDType, /*cuda=*/true);"), `${name}: the caches are checked against it`);
    assert.not.ok(op.includes("takes no fp8"), `${name}: no refusal of fp8 caches`);
    assert.ok(op.includes("const bool fp8 = i.kv_dtype == kKvDtypeE4m3;"), `${name}: scales taken as the library says`);
    assert.ok(python.includes(`KV_DTYPE = ${c.torch}\n`) && python.includes(`KV_SCALES = ${c.scales}\n`), `${name}: KV_DTYPE, KV_SCALES`);
    assert.ok(tests.includes(`TOLERANCE = ${c.tolerance}\n`), `${name}: tolerance ${c.tolerance}`);
    for (const text of [op, python, readme]) {
      assert.is(text.includes(`k_scale/v_scale [${c.scales}]  fp32 (device)`), fp8, `${name}: the tensor contract lists the scales exactly for fp8`);
      assert.is(text.includes("fp8 e4m3, paged"), fp8, `${name}: the caches' dtype in the tensor contract`);
    }
    assert.is(readme.includes("| KV cache elements | fp8 e4m3"), fp8, `${name}: the README's table says fp8`);
    assert.not.match(op + python + tests + readme, /\{\{|\}\}/, `${name}: no unrendered handlebars`);
  }
});

test("export refuses a non-empty folder, a file in the way and an unknown preset (exit 2); --force rewrites its own files", async () => {
  const expectUsage = async (run: () => Promise<unknown>, pattern: RegExp) => {
    try {
      await run();
      assert.unreachable("should fail");
    } catch (e) {
      assert.instance(e, UsageError, String(e));
      assert.is(exitCodeFor(e), 2);
      assert.match((e as Error).message, pattern);
    }
  };
  const dir = join(work, "errors");
  mkdirSync(dir);
  writeFileSync(join(dir, "mine.txt"), "not podgen's");
  await expectUsage(() => exportKernel("llama3_8b", dir), /is not empty .*--force/);
  await expectUsage(() => exportKernel("llama3_8b", join(dir, "mine.txt")), /exists and is not a folder/);
  await expectUsage(() => exportKernel("llama3_9b", join(work, "none")), /neither a preset .* nor an existing spec file/);
  assert.not.ok(existsSync(join(work, "none")), "nothing written for an unknown preset");
  const specs = join(work, "two.json");
  writeFileSync(specs, JSON.stringify([{ name: "a", heads: { q: 8, kv: 8 }, headDim: 64 }, { name: "b", heads: { q: 8, kv: 2 }, headDim: 64 }]));
  await expectUsage(() => exportKernel(specs, join(work, "two")), /defines 2 kernels \(a, b\).*--kernel/);
  assert.is((await exportKernel(specs, join(work, "two"), { kernel: "b" })).spec.name, "b");

  // --force: a previous export's files are replaced, files it no longer makes removed, others kept.
  await exportKernel("llama3_8b", dir, { force: true });
  const manifestPath = join(dir, EXPORT_MANIFEST);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  writeFileSync(join(dir, "src", "pod", "gone.cuh"), "// from an older export");
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, files: [...manifest.files, "src/pod/gone.cuh", "../outside.txt"] }));
  writeFileSync(join(dir, "README.md"), "edited");
  await exportKernel("llama3_8b", dir, { force: true });
  assert.not.ok(existsSync(join(dir, "src", "pod", "gone.cuh")), "stale file of the previous export removed");
  assert.ok(existsSync(join(dir, "mine.txt")), "a file the export did not make is kept");
  assert.match(readFileSync(join(dir, "README.md"), "utf8"), /^<!--/, "README rewritten");
});

// A soft-capped kernel (no preset has one): Gemma 2's cap on a small GQA shape, a window and sinks
// beside it; an fp8 KV cache with one scale per tensor (the preset llama3_8b_fp8 has one per head).
const VARIANT_SPECS: Record<"softcap" | "all" | "fp8tensor", KernelInput> = {
  softcap: { name: "softcap_gqa4", heads: { q: 8, kv: 2 }, headDim: 64, logitsSoftCap: 30.5 },
  all: { name: "all_variants", heads: { q: 8, kv: 2 }, headDim: 64, window: 77, logitsSoftCap: 50, sinks: true },
  fp8tensor: { name: "fp8_per_tensor", dtype: "fp16", heads: { q: 8, kv: 2 }, headDim: 64, kvDtype: "e4m3", kvScale: "tensor" },
};
function variantSpecFile(which: keyof typeof VARIANT_SPECS): string {
  const file = join(work, `${which}.json`);
  writeFileSync(file, JSON.stringify(VARIANT_SPECS[which]));
  return file;
}

test("the exported PyTorch op is valid C++ against a stand-in of the torch API; its Python byte-compiles", async () => {
  const exports: [name: string, spec: string][] = [
    ["llama3_8b", "llama3_8b"],
    ["llama2_7b", "llama2_7b"],
    ["mistral_7b", "mistral_7b"],
    ["gpt_oss_20b", "gpt_oss_20b"],
    ["llama3_8b_fp8", "llama3_8b_fp8"],
    [VARIANT_SPECS.all.name, variantSpecFile("all")],
    [VARIANT_SPECS.fp8tensor.name, variantSpecFile("fp8tensor")],
  ];
  for (const [name, spec] of exports) {
    const dir = join(work, `torch-${name}`);
    await exportKernel(spec, dir);
    const gxx = await execa(
      "g++",
      ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", `-I${join(fixtures, "fake_torch")}`, `-I${join(dir, "include")}`, `-I${cudaHome}/include`, join(dir, "csrc", "torch_op.cpp")],
      { reject: false, all: true },
    );
    assert.is(gxx.exitCode, 0, gxx.all);
    const python = await execa("python3", ["-c", "import sys, py_compile\nfor f in sys.argv[1:]: py_compile.compile(f, doraise=True)", join(dir, "python", `pod_${name}`, "__init__.py"), join(dir, "tests", "test_torch.py"), join(dir, "examples", "python_usage.py"), join(dir, "examples", "decode_loop.py")], { reject: false, all: true });
    if ((python as { code?: string }).code === "ENOENT") console.log("  (python3 not found: Python files not byte-compiled)");
    else assert.is(python.exitCode, 0, python.all);
  }
});

test("variant exports: the op, the Python wrapper, its tests and examples carry the spec's window, soft-cap and sinks", () => {
  const cases = [
    { spec: presetByName("llama3_8b")!, window: "None", cap: "None", sinks: "False", attention: "causal." },
    { spec: presetByName("mistral_7b")!, window: "4096", cap: "None", sinks: "False", attention: "causal, sliding window of 4096 keys." },
    { spec: presetByName("gpt_oss_20b")!, window: "128", cap: "None", sinks: "True", attention: "causal, sliding window of 128 keys, attention sinks." },
    { spec: presetByName("gpt_oss_20b_global")!, window: "None", cap: "None", sinks: "True", attention: "causal, attention sinks." },
    { spec: pod.kernel(VARIANT_SPECS.softcap), window: "None", cap: "30.5", sinks: "False", attention: "causal, logits soft-capped at 30.5." },
    { spec: pod.kernel(VARIANT_SPECS.all), window: "77", cap: "50.0", sinks: "True", attention: "causal, sliding window of 77 keys, logits soft-capped at 50, attention sinks." },
  ];
  for (const c of cases) {
    const name = c.spec.name;
    const { op, python, tests, readme, usage } = renderedOp(c.spec);
    assert.ok(op.includes(`// Attention of this kernel: ${c.attention}\n`), `${name}: the op says its attention`);
    // Every op has the variant arguments, whatever the spec (others refuse them at run time, from
    // the library's podgen_kernel_info rather than from rendered constants).
    assert.ok(op.includes('"int max_kv_len=0, int max_num_pages=0, int max_page_entries=0, *, int? window=None, "'), `${name}: plan(window=)`);
    assert.ok(op.includes('"float? logits_soft_cap=None, int decode_max_q_len=0) -> (Tensor, int)"'), `${name}: plan(logits_soft_cap=, decode_max_q_len=)`);
    assert.match(op, /float sm_scale=0\.0, \*, "\s+\\\s+"Tensor\? sinks=None, Tensor\? k_scale=None, Tensor\? v_scale=None\) -> \(\)"/, `${name}: run / run_prefill / run_decode(sinks=, k_scale=, v_scale=)`);
    assert.ok(op.includes('"Tensor(b!) o, Tensor(c!)? lse=None, float sm_scale=0.0, *, Tensor? sinks=None, Tensor? k_scale=None, "\n      "Tensor? v_scale=None) -> ()"'), `${name}: run_ragged(sinks=, k_scale=, v_scale=)`);
    assert.ok(op.includes("const podgen_kernel_info& i = kernel_info();") && op.includes("i.sinks != 0"), `${name}: checked against the library`);
    assert.ok(python.includes(`WINDOW: Optional[int] = ${c.window}\n`), `${name}: WINDOW = ${c.window}`);
    assert.ok(python.includes(`LOGITS_SOFT_CAP: Optional[float] = ${c.cap}\n`), `${name}: LOGITS_SOFT_CAP = ${c.cap}`);
    assert.ok(python.includes(`SINKS = ${c.sinks}\n`), `${name}: SINKS = ${c.sinks}`);
    assert.ok(python.includes(`Attention: ${c.attention.replace(/\.$/, "")}`), `${name}: the wrapper's docstring says its attention`);
    assert.ok(readme.includes(`| attention | ${c.attention.replace(/\.$/, "")} |`), `${name}: the README says its attention`);
    assert.ok(tests.includes("def test_variant_arguments():") && tests.includes("    test_variant_arguments()\n"), `${name}: variant-argument test runs`);
    assert.is(usage.includes("sinks=sinks)"), c.sinks === "True", `${name}: the usage example passes sinks exactly with sinks`);
    assert.is(usage.includes("The sliding window"), c.window !== "None", `${name}: the usage example mentions the window exactly with one`);
    assert.not.match(python + tests + usage, /\{\{|\}\}/, `${name}: no unrendered handlebars`);
  }
});

// ---- every preset through CMake: build + install the package, then a C consumer via find_package

interface Step {
  what: string;
  seconds: number;
}

async function step(steps: Step[], what: string, file: string, args: string[], cwd?: string) {
  const started = performance.now();
  const r = await execa(file, args, { cwd, reject: false, all: true });
  steps.push({ what, seconds: (performance.now() - started) / 1000 });
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}):\n${(r.all ?? "").split("\n").slice(-40).join("\n")}`);
  return r.all ?? "";
}

/** Export a preset, build and install its package, build the C consumer against it, run it. */
async function exportBuildConsume(name: string, linkStatic: boolean) {
  const root = join(work, "cmake", name);
  const src = join(root, "export");
  const prefix = join(root, "prefix");
  const steps: Step[] = [];
  await exportKernel(name, src);
  await step(steps, "configure", "cmake", ["-S", src, "-B", join(root, "build"), "-DCMAKE_BUILD_TYPE=Release"]);
  await step(steps, "build", "cmake", ["--build", join(root, "build")]);
  await step(steps, "install", "cmake", ["--install", join(root, "build"), "--prefix", prefix]);
  const consumers: { linkStatic: boolean; output: string }[] = [];
  for (const asStatic of linkStatic ? [false, true] : [false]) {
    const build = join(root, asStatic ? "consumer-static" : "consumer");
    await step(steps, `consumer configure${asStatic ? " (static)" : ""}`, "cmake", [
      "-S",
      join(src, "examples", "c_consumer"),
      "-B",
      build,
      `-DCMAKE_PREFIX_PATH=${prefix}`,
      `-DPODGEN_LINK_STATIC=${asStatic ? "ON" : "OFF"}`,
    ]);
    await step(steps, "consumer build", "cmake", ["--build", build]);
    // The executable finds the installed shared library through the RPATH CMake gave it.
    const r = await execa(join(build, "c_consumer"), [], { reject: false, all: true });
    consumers.push({ linkStatic: asStatic, output: `${r.all ?? ""}\n(exit ${r.exitCode})` });
  }
  return { name, prefix, steps, consumers };
}

test("every preset: export → cmake build + install → find_package from a C consumer → host-only plan and error checks", async () => {
  const started = performance.now();
  const queue = PRESETS.map((p) => p.name);
  const results: Awaited<ReturnType<typeof exportBuildConsume>>[] = [];
  // One nvcc compile per preset; as many at once as there are cores (CI has 2).
  const worker = async () => {
    for (let name = queue.shift(); name; name = queue.shift()) results.push(await exportBuildConsume(name, name === "llama3_8b"));
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), PRESETS.length)) }, worker));

  for (const r of results) {
    const lib = join(r.prefix, "lib");
    const installed = readdirSync(lib);
    assert.ok(installed.includes(`libpod_${r.name}.so`) && installed.includes(`libpod_${r.name}.a`), `${r.name}: ${installed}`);
    assert.ok(existsSync(join(r.prefix, "include", "podgen", r.name, "pod_attention.h")), `${r.name}: header installed`);
    assert.ok(existsSync(join(lib, "cmake", r.name, `${r.name}Config.cmake`)), `${r.name}: package config installed`);
    for (const c of r.consumers) {
      const what = `${r.name} (${c.linkStatic ? "static" : "shared"})`;
      assert.match(c.output, /\(exit 0\)/, `${what}:\n${c.output}`);
      assert.match(c.output, /ok {3}plan needs the workspace the sizing call reported/, what);
      assert.match(c.output, /kv_len < q_len is PODGEN_ERR_BAD_BATCH naming kv_lens -> PODGEN_ERR_BAD_BATCH: pod_\w+_plan: kv_lens\[0\]=10/, what);
      assert.match(c.output, /page_indices\[2\]=\d+ >= num_pages=/, what);
      const workspace = Number(/workspace (\d+) B/.exec(c.output)?.[1]);
      assert.ok(workspace > 0, `${what}: workspace ${workspace}`);
      assert.match(c.output, /\d+ checks, 0 failures/, what);
    }
    console.log(`  ${r.name}: ${r.steps.map((s) => `${s.what} ${s.seconds.toFixed(1)} s`).join(", ")}`);
  }
  assert.is(results.length, PRESETS.length);
  console.log(`  ${PRESETS.length} presets exported, built, installed and consumed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

// ---- the exported op's argument checks, run on the host against the built library

const hostTorch = join(fixtures, "host_torch");

/**
 * Compile an export's csrc/torch_op.cpp with the runnable stand-in of the torch API and its driver
 * (test/fixtures/host_torch/check_torch_op.cpp), link it with the library in `libDir`, run it with
 * no visible CUDA device; returns its output.
 */
async function hostChecks(name: string, exportDir: string, libDir: string): Promise<string> {
  const exe = join(exportDir, "check_torch_op");
  const gxx = await execa(
    "g++",
    ["-std=c++17", "-Wall", "-Wextra", "-Werror", `-I${hostTorch}`, `-I${join(exportDir, "include")}`, `-I${join(exportDir, "csrc")}`, `-I${cudaHome}/include`,
      join(hostTorch, "check_torch_op.cpp"), `-L${libDir}`, `-lpod_${name}`, `-Wl,-rpath,${libDir}`, "-o", exe],
    { reject: false, all: true },
  );
  assert.is(gxx.exitCode, 0, gxx.all);
  const r = await execa(exe, [], { reject: false, all: true, env: { CUDA_VISIBLE_DEVICES: "" } });
  return `${r.all ?? ""}\n(exit ${r.exitCode})`;
}

test("the exported op's variant arguments, checked on the host against the built library: window / soft-cap at plan, sinks and fp8 KV scales at run", async () => {
  // The presets' libraries come from the every-preset test above; a spec with all three variants
  // (the only soft-capped one) and one with per-tensor fp8 KV scales are built here.
  const built: Record<string, { exportDir: string; libDir: string }> = {};
  for (const which of ["all", "fp8tensor"] as const) {
    const name = VARIANT_SPECS[which].name;
    const dir = join(work, "cmake", name);
    await exportKernel(variantSpecFile(which), join(dir, "export"));
    const steps: Step[] = [];
    await step(steps, "configure", "cmake", ["-S", join(dir, "export"), "-B", join(dir, "build"), "-DCMAKE_BUILD_TYPE=Release"]);
    await step(steps, "build", "cmake", ["--build", join(dir, "build"), "--target", name]);
    built[name] = { exportDir: join(dir, "export"), libDir: join(dir, "build") };
  }
  const kernels: [name: string, variants: RegExp][] = [
    ["llama3_8b", /kernel: window 0, logits_soft_cap 0, sinks 0, kv_dtype 1, kv_scale_per_head 0/],
    ["mistral_7b", /kernel: window 4096, logits_soft_cap 0, sinks 0, kv_dtype 1/],
    ["gpt_oss_20b", /kernel: window 128, logits_soft_cap 0, sinks 1, kv_dtype 1/],
    ["llama3_8b_fp8", /kernel: window 0, logits_soft_cap 0, sinks 0, kv_dtype 2, kv_scale_per_head 1/],
    [VARIANT_SPECS.all.name, /kernel: window 77, logits_soft_cap 50, sinks 1, kv_dtype 1/],
    [VARIANT_SPECS.fp8tensor.name, /kernel: window 0, logits_soft_cap 0, sinks 0, kv_dtype 2, kv_scale_per_head 0/],
  ];
  for (const [name, variants] of kernels) {
    const root = join(work, "cmake", name);
    assert.ok(built[name] || existsSync(join(root, "prefix", "lib")), `${name}: needs the every-preset test's install`);
    const { exportDir, libDir } = built[name] ?? { exportDir: join(root, "export"), libDir: join(root, "prefix", "lib") };
    const output = await hostChecks(name, exportDir, libDir);
    assert.match(output, /\(exit 0\)/, `${name}:\n${output}`);
    assert.match(output, variants, `${name}: the library's podgen_kernel_info`);
    assert.match(output, /^\d+ checks, 0 failures$/m, name);
    // The sinks checks that apply ran, and the accepted run got past every op check.
    assert.match(output, /\bsinks 1\b/.test(output) ? /ok {3}run, sinks one short -> .*sinks must have shape/ : /ok {3}run with sinks on a kernel without/, name);
    assert.match(output, /ok {3}run.*: every op check passes.* -> podgen_\w+\.run: PODGEN_ERR_CUDA/, name);
    // The fp8 checks that apply ran: the scales required and checked, or refused with a 16-bit cache.
    if (/kv_dtype 2/.test(output)) {
      assert.match(output, /ok {3}run without k_scale -> .*\.run: k_scale is required: this kernel has an fp8 \(e4m3\) KV cache/, name);
      assert.match(output, /ok {3}run, k_scale one element too many -> .*k_scale must have \d+ element\(s\), got/, name);
      assert.match(output, /ok {3}run, right scales as \[1, n\]: every op check passes.* -> .*\.run: PODGEN_ERR_CUDA/, name);
      assert.match(output, /ok {3}run_ragged, right scales: .* -> .*\.run_ragged: PODGEN_ERR_CUDA/, name);
    } else {
      assert.match(output, /ok {3}run with k_scale on a 16-bit cache -> .*k_scale was given but this kernel has no fp8 \(e4m3\) KV cache/, name);
      assert.match(output, /ok {3}run, an fp8 cache on a 16-bit kernel -> .*k_cache must have dtype \w+, got Float8_e4m3fn/, name);
    }
    console.log(`  ${name}: ${/^(\d+) checks/m.exec(output)![1]} op checks passed`);
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
