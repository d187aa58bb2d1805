// The host planner and the C ABI, compiled natively (no GPU needed): random-batch invariants over
// several kernel shapes, graph-mode layout stability, every bad-batch error (test/native/*.cpp).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { pod } from "../dsl/index.ts";
import { renderHeader } from "../codegen/render.ts";
import { TEMPLATES_DIR } from "../codegen/paths.ts";

const native = join(dirname(fileURLToPath(import.meta.url)), "native");
const cudaHome = process.env.CUDA_HOME ?? "/usr/local/cuda";
const work = mkdtempSync(join(tmpdir(), "podgen-planner-"));
// The tests call pod_test_*; any spec named "test" renders that header.
writeFileSync(join(work, "pod_attention.h"), renderHeader(pod.kernel({ name: "test", heads: { q: 32, kv: 8 }, headDim: 128 })));

const gxx = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", `-I${work}`, `-I${TEMPLATES_DIR}`];

async function compileAndRun(source: string, extra: string[] = [], args: string[] = []) {
  const exe = join(work, source.replace(/\.cpp$/, ""));
  await execa("g++", [...gxx, join(native, source), ...extra, "-o", exe]);
  return execa(exe, args, { reject: false, all: true, env: { ASAN_OPTIONS: "detect_leaks=1" } });
}

test("planner invariants over thousands of random batches (ASan/UBSan)", async () => {
  const r = await compileAndRun("test_planner.cpp");
  assert.is(r.exitCode, 0, r.all?.split("\n").slice(-30).join("\n"));
  assert.not.match(r.all ?? "", /FAILED/);
});

test("C ABI: argument checks, launch sequence, per-thread errors (ASan/UBSan)", async () => {
  const r = await compileAndRun("test_abi.cpp", [`-I${cudaHome}/include`, `-L${cudaHome}/lib64`, "-lcudart", `-Wl,-rpath,${cudaHome}/lib64`]);
  assert.is(r.exitCode, 0, r.all?.split("\n").slice(-30).join("\n"));
  assert.match(r.all ?? "", /\d+ checks, 0 failures/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
