// CPU-only tests of runtime/: no-GPU behaviour, the koffi mirror of the C ABI structs (compiled
// against the rendered header with gcc), KernelLibrary against a stub library, and the driver
// bindings against a fake libcuda.so.1 (test/fixtures/fake_libcuda.c) in child processes.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ABI_VERSION } from "../codegen/paths.ts";
import {
  abiTypes,
  cudaAvailable,
  CudaUnavailableError,
  Device,
  DeviceBuffer,
  KernelLibrary,
  loadKoffi,
  NoCudaDriverError,
  PODGEN_ABI_VERSION_SUPPORTED,
  PODGEN_STATUS,
  PodgenError,
  toCBatch,
  type PodBatch,
} from "../runtime/index.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = join(ROOT, "test/fixtures");
const tmp = mkdtempSync(join(tmpdir(), "podgen-runtime-test-"));
const has = (cmd: string) => spawnSync("bash", ["-c", `command -v ${cmd}`]).status === 0;
const HAS_GCC = has("gcc");
const HAS_NVCC = has("nvcc");

test.after(() => rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

function gcc(args: string[]): void {
  const r = run("gcc", args);
  assert.is(r.status, 0, `gcc ${args.join(" ")}:\n${r.out}`);
}

// --------------------------------------------------------------------------------------------
// Without a GPU

const avail = cudaAvailable();

test("cudaAvailable() never throws and, without CUDA, says why", () => {
  if (avail.ok) {
    assert.ok(avail.device.sms > 0);
    return;
  }
  assert.match(avail.reason, /^no CUDA (driver|device)/);
  if (process.env.PODGEN_LIBCUDA === undefined && avail.reason.startsWith("no CUDA driver")) {
    assert.match(avail.reason, /^no CUDA driver: libcuda\.so\.1 could not be loaded \(.+\)$/);
  }
});

test("Device.open() without CUDA throws a clean error, not a crash", () => {
  if (avail.ok) return;
  try {
    Device.open();
    assert.unreachable("Device.open() should throw");
  } catch (err) {
    assert.instance(err, CudaUnavailableError);
    if (avail.reason.startsWith("no CUDA driver")) assert.instance(err, NoCudaDriverError);
    assert.is((err as Error).message, avail.reason);
  }
  // and again: the failure is cached, still clean
  assert.throws(() => Device.open(), (e: unknown) => e instanceof CudaUnavailableError);
});

test("DeviceBuffer.alloc before Device.open names the problem", () => {
  if (avail.ok) return;
  assert.throws(() => DeviceBuffer.alloc(16), /no CUDA device is open: call Device.open\(\) first/);
});

test("PODGEN_ABI_VERSION_SUPPORTED follows codegen's ABI_VERSION", () => {
  assert.is(PODGEN_ABI_VERSION_SUPPORTED, ABI_VERSION);
});

test("PODGEN_STATUS names every status of the C header's podgen_status enum, by the header's values", () => {
  const header = readFileSync(join(ROOT, "templates", "pod_attention.h.hbs"), "utf8");
  const body = /enum podgen_status \{([^}]*)\}/.exec(header)?.[1];
  assert.ok(body, "podgen_status enum in templates/pod_attention.h.hbs");
  const fromHeader = Object.fromEntries([...body!.matchAll(/(PODGEN_\w+)\s*=\s*(\d+)/g)].map((m) => [m[2]!, m[1]!]));
  assert.equal({ ...PODGEN_STATUS }, fromHeader);
});

test("toCBatch rejects arrays too short to read, naming the field", () => {
  const batch: PodBatch = {
    numPrefills: 2, numDecodes: 1,
    qoIndptr: new Int32Array([0, 5]), kvLens: new Int32Array(3), pageIndptr: new Int32Array(4), pageIndices: null,
    numPages: 1, numHeadsQ: 32, numHeadsKv: 8, headDim: 128,
  };
  assert.throws(() => toCBatch(batch), /batch\.qoIndptr has 2 elements; 3 needed for 2 prefills and 1 decodes/);
  assert.throws(() => toCBatch({ ...batch, qoIndptr: new Int32Array(3), pageIndices: new Int32Array(1), pageIndptr: new Int32Array([0, 1, 2, 5]) }),
    /batch\.pageIndices has 1 elements; 5 needed/);
  assert.throws(() => toCBatch({ ...batch, qoIndptr: [0, 1, 2] as unknown as Int32Array }), /batch\.qoIndptr must be an Int32Array/);
});

// --------------------------------------------------------------------------------------------
// The ABI mirror: koffi sizes and offsets against the C compiler's, on the rendered header

const HEADER_CONTEXT = {
  name: "abi_test", hash: "0000000000000000", prefix: "pod_abi_test", abiVersion: ABI_VERSION,
  target: "sm_90a", dtype: "bf16", heads: { q: 32, kv: 8 }, headDim: 128, paged: true, pageSize: 16,
};

function renderHeader(dir: string): void {
  const hbs = Handlebars.create();
  hbs.registerPartial("generatedBanner", "// rendered by test/runtime.test.ts\n");
  const source = readFileSync(join(ROOT, "templates/pod_attention.h.hbs"), "utf8");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "pod_attention.h"), hbs.compile(source, { noEscape: true })(HEADER_CONTEXT));
}

const STRUCTS = ["podgen_batch", "podgen_ragged_batch", "podgen_plan_options", "podgen_plan", "podgen_buffers", "podgen_ragged_buffers", "podgen_reference_args", "podgen_kernel_info"] as const;

(HAS_GCC ? test : test.skip)("koffi ABI structs match the C header field for field (gcc sizeof/offsetof)", () => {
  const dir = join(tmp, "abi");
  renderHeader(dir);
  const koffi = loadKoffi();
  const types = abiTypes();
  const expected = new Map<string, number>();
  const lines: string[] = ["#include <stdio.h>", "#include <stddef.h>", '#include "pod_attention.h"', "int main(void) {"];
  for (const s of STRUCTS) {
    const t = types[s];
    assert.is(t.name, s, "koffi struct names are the C names");
    lines.push(`  printf("${s} sizeof %zu\\n", sizeof(${s}));`);
    lines.push(`  printf("${s} alignof %zu\\n", _Alignof(${s}));`);
    expected.set(`${s} sizeof`, koffi.sizeof(t));
    expected.set(`${s} alignof`, koffi.alignof(t));
    const members = Object.values(t.members ?? {});
    assert.ok(members.length > 0, `${s} has members`);
    for (const m of members) {
      lines.push(`  printf("${s}.${m.name} offset %zu\\n", offsetof(${s}, ${m.name}));`);
      lines.push(`  printf("${s}.${m.name} size %zu\\n", sizeof(((${s}*)0)->${m.name}));`);
      expected.set(`${s}.${m.name} offset`, koffi.offsetof(t, m.name));
      expected.set(`${s}.${m.name} size`, m.type.size);
    }
  }
  lines.push("  return 0;", "}");
  writeFileSync(join(dir, "layout.c"), lines.join("\n") + "\n");
  gcc(["-std=c11", "-Wall", "-Werror", "-I", dir, "-o", join(dir, "layout"), join(dir, "layout.c")]);
  const r = run(join(dir, "layout"), []);
  assert.is(r.status, 0, r.out);
  const actual = new Map(r.out.trim().split("\n").map((l) => {
    const i = l.lastIndexOf(" ");
    return [l.slice(0, i), Number(l.slice(i + 1))] as const;
  }));
  const mismatches = [...expected].filter(([k, v]) => actual.get(k) !== v).map(([k, v]) => `${k}: koffi ${v}, C ${actual.get(k)}`);
  assert.equal(mismatches, [], `ABI mirror differs from pod_attention.h:\n${mismatches.join("\n")}`);
  assert.is(actual.size, expected.size);
});

// --------------------------------------------------------------------------------------------
// KernelLibrary against a stub library implementing the ABI

function buildFakeKernelLib(): string {
  const dir = join(tmp, "kernel-lib");
  renderHeader(dir);
  const lib = join(dir, "libfake_kernel.so");
  gcc(["-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", "-I", dir, "-o", lib, join(FIXTURES, "fake_kernel_lib.c")]);
  return lib;
}

function sampleBatch(): PodBatch {
  // 2 prefills (5 and 3 tokens), 2 decodes; paged, 4 pages per request
  return {
    numPrefills: 2, numDecodes: 2,
    qoIndptr: new Int32Array([0, 5, 8]),
    kvLens: new Int32Array([40, 3, 17, 64]),
    pageIndptr: new Int32Array([0, 4, 5, 7, 11]),
    pageIndices: new Int32Array([9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 10]),
    numPages: 11, numHeadsQ: 32, numHeadsKv: 8, headDim: 128,
  };
}

(HAS_GCC ? test : test.skip)("KernelLibrary: info, two-phase plan, upload and run marshal every field", () => {
  const path = buildFakeKernelLib();
  const lib = new KernelLibrary(path, "pod_abi_test");
  const koffi = loadKoffi();
  const hooks = koffi.load(path);
  const lastKind = hooks.func("int fake_last_run_kind()");
  const lastStream = hooks.func("uint64_t fake_last_stream()");
  const lastBuffers = hooks.func("void fake_last_buffers(_Out_ podgen_buffers *out)");
  const lastRaggedBuffers = hooks.func("void fake_last_ragged_buffers(_Out_ podgen_ragged_buffers *out)");
  const lastReference = hooks.func("void fake_last_reference(_Out_ podgen_reference_args *out)");
  const lastPlan = hooks.func("void fake_last_plan(_Out_ podgen_plan *out)");
  const lastFill = hooks.func("uint64_t fake_last_fill(int i)");
  try {
    const info = lib.info();
    assert.equal(
      { abi: info.abiVersion, hq: info.numHeadsQ, hkv: info.numHeadsKv, d: info.headDim, dtype: info.dtype, schedule: info.schedule, smem: info.smemBytes, waves: info.prefillMaxWaves, kv: info.kvDtype, perHead: info.kvScalePerHead },
      { abi: ABI_VERSION, hq: 32, hkv: 8, d: 128, dtype: "bf16", schedule: "proportional", smem: 98304, waves: 2, kv: "e4m3", perHead: true },
    );

    const { plan, staging } = lib.plan(sampleBatch(), { numSms: 114, maxDecodes: 77, maxNumPages: 5, maxPageEntries: 6, debugCountTiles: true });
    assert.is(plan.numPrefills, 2);
    assert.is(plan.numDecodes, 2);
    assert.is(plan.totalPrefillTokens, 8, "read qo_indptr[num_prefills]");
    assert.is(plan.numSms, 114);
    assert.equal(plan.numItems, [40 + 3 + 17 + 64, 11], "read kv_lens and page_indptr");
    assert.is(plan.numMerges[0], 9, "read page_indices");
    assert.equal(plan.ratio, [3, 1]);
    assert.is(plan.gridFused, 77, "options reach C");
    assert.ok(plan.debugCountTiles);
    assert.equal(plan.itemsOffset, [0n, 0x100000000n]);
    assert.is(plan.partialLseOffset[0], 4096n);
    assert.is(plan.hostBytes, 64n + 16n);
    assert.is(plan.workspaceBytes, 1n << 40n);
    assert.is(staging.length, 80);
    assert.is(plan.pageEntries, (1n << 33n) + 6n, "options.maxPageEntries reaches C; page_entries comes back as 64 bits");
    assert.equal([plan.qRows, plan.cachePages, plan.numRequests, plan.ragged], [[8, 2], 11 + 5, 4, false]);
    assert.ok(staging.every((b) => b === 0xab), "the second call filled the staging buffer");
    assert.is(JSON.stringify(plan.toJSON()).includes('"workspaceBytes":1099511627776'), true);

    // a large enough staging buffer is reused
    const again = lib.plan(sampleBatch(), {}, Buffer.alloc(4096));
    assert.is(again.staging.length, 4096);
    assert.is(again.plan.numSms, 132);

    lib.uploadPlan(plan, staging, 0x7000n, 1n << 40n, 0x1234n);
    assert.is(lastKind(), 5);
    assert.is(Number(lastStream()), 0x1234);
    const seen: Record<string, unknown> = {};
    lastPlan(seen);
    assert.is(BigInt(seen.workspace_bytes as number), 1n << 40n, "the plan went back to C unchanged");
    assert.is(BigInt((seen.items_offset as BigUint64Array)[1]), 0x100000000n);

    const buffers = {
      qPrefill: 0x1000n, qDecode: 0x2000n, k: 0x3000n, v: 0x4000n, pageIndices: { ptr: 0x6000n },
      oPrefill: 0x7000n, oDecode: 0x8000n, lsePrefill: null, lseDecode: 0xa000n, workspace: 0xb000000000n,
      workspaceBytes: 1n << 40n, smScale: 0.125, kScale: 0xc000n, vScale: 0xd000n,
    };
    for (const [method, kind] of [["run", 1], ["runPrefill", 2], ["runDecode", 3]] as const) {
      lib[method](plan, buffers);
      assert.is(lastKind(), kind, method);
      assert.is(Number(lastStream()), 0, `${method}: no stream is the default stream`);
      const b: Record<string, unknown> = {};
      lastBuffers(b);
      const big = (k: string) => BigInt(b[k] as number | bigint);
      assert.equal(
        [big("q_prefill"), big("q_decode"), big("k"), big("v"), big("page_indices"), big("o_prefill"), big("o_decode"),
          big("lse_prefill"), big("lse_decode"), big("workspace"), big("workspace_bytes"), big("sinks"), big("k_scale"), big("v_scale")],
        [0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x6000n, 0x7000n, 0x8000n, 0n, 0xa000n, 0xb000000000n, 1n << 40n, 0n, 0xc000n, 0xd000n],
        `${method}: buffers reach C field for field`,
      );
      assert.is(b.sm_scale, 0.125);
    }

    // The ragged form: a block table (no pageIndptr) and one q / o.
    const ragged = lib.planRagged({
      numRequests: 3, qoIndptr: new Int32Array([0, 1, 6, 7]), kvLens: new Int32Array([5, 9, 33]), pageIndptr: null,
      pageIndices: new Int32Array([1, 2, 3, 4, 5, 6, 7, 8, 42]), blockTableStride: 3, numPages: 50, numHeadsQ: 32, numHeadsKv: 8, headDim: 128,
    });
    assert.equal([ragged.plan.ragged, ragged.plan.qRows[0], ragged.plan.numItems[0], ragged.plan.numItems[1], ragged.plan.numMerges, ragged.plan.cachePages],
      [true, 7, 33, -1, [42, 3], 50], "every ragged batch field reaches C");
    assert.throws(() => lib.planRagged({ numRequests: 3, qoIndptr: new Int32Array(4), kvLens: new Int32Array(3), pageIndptr: null, pageIndices: new Int32Array(8),
      blockTableStride: 3, numPages: 50, numHeadsQ: 32, numHeadsKv: 8, headDim: 128 }), /batch\.pageIndices has 8 elements; 9 needed for 3 requests/);
    assert.throws(() => lib.planRagged({ numRequests: 1, qoIndptr: new Int32Array(2), kvLens: new Int32Array(1), pageIndptr: new Int32Array(2), pageIndices: new Int32Array(3),
      blockTableStride: 3, numPages: 50, numHeadsQ: 32, numHeadsKv: 8, headDim: 128 }), /pageIndptr must be null with a block table/);
    lib.runRagged(ragged.plan, { q: 0x21n, k: 0x22n, v: 0x23n, pageIndices: 0x24n, o: 0x25n, lse: null, workspace: 0x26n, workspaceBytes: 99, smScale: 0.25, kScale: 0x27n, vScale: 0x28n }, 0x77n);
    assert.is(lastKind(), 7);
    const rb: Record<string, unknown> = {};
    lastRaggedBuffers(rb);
    assert.equal(["q", "k", "v", "page_indices", "o", "lse", "workspace", "workspace_bytes", "k_scale", "v_scale"].map((f) => Number(rb[f])), [0x21, 0x22, 0x23, 0x24, 0x25, 0, 0x26, 99, 0x27, 0x28]);
    assert.is(rb.sm_scale, 0.25);

    lib.runReference({
      numPrefills: 2, numDecodes: 2, qoIndptr: 0x11n, kvLens: 0x12n, pageIndptr: 0x13n, pageIndices: 0x14n,
      qPrefill: 0x15n, qDecode: 0x16n, k: 0x17n, v: 0x18n, oPrefill: 0x19n, oDecode: 0x1an, totalPrefillTokens: 8, smScale: 0.5,
      kScale: 0x1bn, vScale: 0x1cn,
    }, 0x99n);
    assert.is(lastKind(), 4);
    assert.is(Number(lastStream()), 0x99);
    const ref: Record<string, unknown> = {};
    lastReference(ref);
    assert.equal(
      [ref.num_prefills, ref.num_decodes, Number(ref.qo_indptr), Number(ref.k), Number(ref.o_decode), Number(ref.lse_prefill), ref.total_prefill_tokens, ref.sm_scale, Number(ref.k_scale), Number(ref.v_scale)],
      [2, 2, 0x11, 0x17, 0x1a, 0, 8, 0.5, 0x1b, 0x1c],
    );

    // The seed travels as 64 bits: a negative one as its two's complement, one above 2^53 exactly.
    lib.fillRandom(0x2000n, 4099, -1, 3, 0x77n);
    assert.equal([lastKind(), Number(lastStream())], [6, 0x77]);
    assert.equal([0, 1, 2, 3].map((i) => BigInt(lastFill(i) as number | bigint)), [0x2000n, 4099n, 2n ** 64n - 1n, 3n]);
    lib.fillRandom(0x2000n, 1, 2n ** 60n + 1n, 0);
    assert.is(BigInt(lastFill(2) as number | bigint), 2n ** 60n + 1n);
    assert.throws(() => lib.fillRandom(0x2000n, 1.5, 1, 0), /fillRandom: count = 1.5 is not an element count/);
    assert.throws(() => lib.fillRandom(0x2000n, 1, 0.5, 0), /fillRandom: seed = 0.5 is not an integer/);
    assert.throws(() => lib.fillRandom(0x2000n, 1, 1, -1), /fillRandom: tensor = -1 is not a 32-bit unsigned integer/);
    // The KV cache's fill: its own entry point, the same checks under its own name.
    lib.fillRandomKv(0x3000n, 4097, 5, 2, 0x78n);
    assert.equal([lastKind(), Number(lastStream())], [8, 0x78]);
    assert.equal([0, 1, 2, 3].map((i) => BigInt(lastFill(i) as number | bigint)), [0x3000n, 4097n, 5n, 2n]);
    assert.throws(() => lib.fillRandomKv(0x3000n, -1, 1, 0), /fillRandomKv: count = -1 is not an element count/);
  } finally {
    lib.close();
  }
  assert.throws(() => lib.info(), /was closed/);
});

(HAS_GCC ? test : test.skip)("KernelLibrary: a non-zero status throws PodgenError with the library's name and message", () => {
  const lib = new KernelLibrary(buildFakeKernelLib(), "pod_abi_test");
  try {
    const batch = { ...sampleBatch(), numHeadsQ: 16 };
    try {
      lib.plan(batch);
      assert.unreachable("plan should fail");
    } catch (err) {
      assert.instance(err, PodgenError);
      const e = err as PodgenError;
      assert.is(e.fn, "pod_abi_test_plan");
      assert.is(e.status, 2);
      assert.is(e.statusName, "PODGEN_ERR_BAD_BATCH");
      assert.is(e.message, "pod_abi_test_plan failed: PODGEN_ERR_BAD_BATCH: batch heads 16/8, dim 128; the kernel has 32/8, dim 128");
    }
    const { plan, staging } = lib.plan(sampleBatch());
    assert.throws(() => lib.uploadPlan(plan, staging, 0x1000n, 1024), /pod_abi_test_upload_plan failed: PODGEN_ERR_WORKSPACE_TOO_SMALL: workspace too small/);
    assert.throws(() => lib.uploadPlan(plan, Buffer.alloc(3), 0x1000n, 1n << 40n), /staging buffer holds 3 bytes; the plan needs 80/);
    assert.throws(() => lib.run(plan, { k: 1n, v: 2n, pageIndices: 3n, workspace: null, workspaceBytes: 0 }),
      /pod_abi_test_run failed: PODGEN_ERR_INVALID_ARGUMENT: buffers.workspace is NULL/);
  } finally {
    lib.close();
  }
});

(HAS_GCC ? test : test.skip)("KernelLibrary: a wrong prefix or path says so", () => {
  const path = buildFakeKernelLib();
  assert.throws(() => new KernelLibrary(path, "pod_other"), /does not export the podgen ABI with prefix "pod_other"/);
  assert.throws(() => new KernelLibrary(join(tmp, "missing.so"), "pod_abi_test"), /cannot load kernel library .*missing\.so/);
  assert.throws(() => new KernelLibrary(path, "pod-bad"), /not a C identifier/);
});

(HAS_NVCC ? test : test.skip)("a library linked with the static CUDA runtime loads and runs host code without libcuda", () => {
  const dir = join(tmp, "interop");
  mkdirSync(dir, { recursive: true });
  const lib = join(dir, "libinterop.so");
  const r = run("nvcc", ["-gencode=arch=compute_90a,code=sm_90a", "-shared", "-Xcompiler", "-fPIC", "-cudart", "static", "-o", lib,
    join(ROOT, "test/gpu/kernels/interop.cu")]);
  assert.is(r.status, 0, r.out);
  const version = loadKoffi().load(lib).func("int interop_version()");
  assert.is(version(), 1);
});

// --------------------------------------------------------------------------------------------
// The driver bindings against a fake libcuda.so.1, in child processes (the driver is per process)

function buildFakeLibcuda(): string {
  const dir = join(tmp, "fake-cuda");
  mkdirSync(dir, { recursive: true });
  const lib = join(dir, "libcuda.so.1");
  gcc(["-Wall", "-shared", "-fPIC", "-o", lib, join(FIXTURES, "fake_libcuda.c")]);
  return lib;
}

const TSX = ["--import", "tsx"];

(HAS_GCC ? test : test.skip)("importing runtime/ loads no libcuda; cudaAvailable() does", () => {
  const fake = buildFakeLibcuda();
  const script = [
    "import { readFileSync } from 'node:fs';",
    "const rt = await import('./runtime/index.ts');",
    "const maps = () => readFileSync('/proc/self/maps', 'utf8').includes(process.env.PODGEN_LIBCUDA);",
    "const before = maps();",
    "const a = rt.cudaAvailable();",
    "console.log(JSON.stringify({ before, after: maps(), ok: a.ok, name: a.ok ? a.device.name : a.reason, sms: a.ok ? a.device.sms : 0 }));",
  ].join("\n");
  const r = run(process.execPath, [...TSX, "--input-type=module", "-e", script], { PODGEN_LIBCUDA: fake });
  assert.is(r.status, 0, r.out);
  const last = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.equal(last, { before: false, after: true, ok: true, name: "Fake CUDA Device", sms: 132 });

  const nodev = run(process.execPath, [...TSX, "--input-type=module", "-e",
    "const rt = await import('./runtime/index.ts'); const a = rt.cudaAvailable(); console.log(a.ok ? 'ok' : a.reason);"],
  { PODGEN_LIBCUDA: fake, FAKE_CUDA: "nodevice" });
  assert.match(nodev.out, /no CUDA device: cuInit returned CUDA_ERROR_NO_DEVICE \(no CUDA-capable device is detected\)/);
});

(HAS_GCC ? test : test.skip)("the GPU suite's runtime cases pass against the fake driver (buffers, launches, graphs, errors)", () => {
  const fake = buildFakeLibcuda();
  const art = join(tmp, "suite-artifacts");
  mkdirSync(art, { recursive: true });
  // the fake driver accepts any ELF image and runs add_one / axpb on the host
  writeFileSync(join(art, "add_one.sm_90a.cubin"), Buffer.from("\x7fELF fake cubin\0"));
  const out = join(tmp, "suite-out");
  const r = run(process.execPath, [...TSX, "test/gpu/suite.ts", "--out", out, "--artifacts", art, "--filter", "cuda:", "--filter", "runtime:"],
    { PODGEN_LIBCUDA: fake });
  assert.is(r.status, 0, r.out);
  const report = JSON.parse(readFileSync(join(out, "gpu-suite.json"), "utf8")) as {
    gpu: string; sms: number; cases: { name: string; status: string; detail: string }[]; failed: number; skipped: number; passed: number;
  };
  assert.is(report.gpu, "Fake CUDA Device");
  assert.is(report.sms, 132);
  const notPassed = report.cases.filter((c) => c.status !== "passed").map((c) => `${c.name}: ${c.status} ${c.detail}`);
  assert.equal(notPassed, []);
  assert.ok(report.passed >= 7, `${report.passed} cases passed`);
  assert.match(r.out.trim().split("\n").pop()!, /^\d+ passed, 0 failed, 0 skipped$/);
  const errors = report.cases.find((c) => c.name.includes("errors"))!;
  assert.match(errors.detail, /cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY \(out of memory\)/);
});

(HAS_GCC ? test : test.skip)("the GPU suite without CUDA marks GPU cases skipped, never passed", () => {
  const out = join(tmp, "suite-nogpu");
  const r = run(process.execPath, [...TSX, "test/gpu/suite.ts", "--out", out, "--artifacts", join(tmp, "none"), "--filter", "runtime:"],
    { PODGEN_LIBCUDA: join(tmp, "no-such-libcuda.so.1") });
  assert.is(r.status, 0, r.out);
  const report = JSON.parse(readFileSync(join(out, "gpu-suite.json"), "utf8")) as { gpu: null; cases: { status: string; detail: string }[] };
  assert.is(report.gpu, null);
  assert.ok(report.cases.length > 0);
  for (const c of report.cases) {
    assert.is(c.status, "skipped");
    assert.match(c.detail, /^no CUDA driver: libcuda\.so\.1 could not be loaded/);
  }
  const req = run(process.execPath, [...TSX, "test/gpu/suite.ts", "--out", out, "--filter", "runtime:", "--require-gpu"],
    { PODGEN_LIBCUDA: join(tmp, "no-such-libcuda.so.1") });
  assert.is(req.status, 3, "--require-gpu without a GPU exits 3");
});

test.run();
