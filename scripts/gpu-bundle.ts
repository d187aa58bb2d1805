// Makes .gpu/, the self-contained GPU-suite bundle that travels to the GPU machine:
//
//   .gpu/node.xz                      this machine's node binary, xz -9 (run.sh unpacks it to a temp dir)
//   .gpu/suite.mjs                    esbuild bundle of test/gpu/suite.ts (node20, esm; koffi external)
//   .gpu/node_modules/koffi/          koffi's JS loader files (the package's runtime files only)
//   .gpu/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node
//                                     the prebuilt native module, where koffi's loader requires it
//   .gpu/artifacts/                   add_one.sm_90a.cubin, libinterop.so (built here with nvcc) + every --artifact
//   .gpu/bundle.json                  commit, node version, artifact sizes and sha256
//   .gpu/run.sh                       unpacks node, runs `node suite.mjs --out "$OUT" --require-gpu`
//   .gpu/bench.mjs                    esbuild bundle of bench/main.ts (the benchmark harness, bench/run.ts)
//   .gpu/workloads/, torch_baselines.py  bench/workloads/*.json and the PyTorch baselines script
//   .gpu/tune.mjs                     esbuild bundle of bench/tune/main.ts (times candidates from `podgen tune --prepare`)
//   .gpu/run-bench.sh                 unpacks node, runs `node bench.mjs --out "$OUT"` (torch baselines first)
//
// Usage: npx tsx scripts/gpu-bundle.ts [--artifact PATH]... [--out DIR] [--no-verify]
// Example: npx tsx scripts/gpu-bundle.ts --artifact .cache/build/3c2b8e6e/libpod_llama3_8b.so
// then, with the device tool: run {command: "bash .gpu/run.sh", carry: [".gpu"]}
// (or "bash .gpu/run-bench.sh" for the benchmarks; the kernels bench/workloads/paper.json needs are bundled too).
//
// koffi is resolved by plain Node module resolution: suite.mjs does `require("koffi")` through
// createRequire(import.meta.url) (runtime/cuda.ts), which finds .gpu/node_modules/koffi, whose
// loader requires "@koromix/koffi-linux-x64" from .gpu/node_modules/@koromix/.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildKernel } from "../codegen/build.ts";
import { loadWorkloads, specsOf } from "../bench/run.ts";
import { buildSuiteKernels } from "../test/gpu/artifacts.ts";
import { gitCommit } from "../codegen/commit.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MAX_BYTES = 50 * 2 ** 20;
const ENTRY = join(ROOT, "test/gpu/suite.ts");
const BENCH_ENTRY = join(ROOT, "bench/main.ts");
const BENCH_WORKLOADS = join(ROOT, "bench/workloads");
const BENCH_TORCH = join(ROOT, "bench/torch_baselines.py");
const ADD_ONE_SRC = join(ROOT, "test/gpu/kernels/add_one.cu");
const INTEROP_SRC = join(ROOT, "test/gpu/kernels/interop.cu");

class BundleError extends Error {}

interface Options {
  out: string;
  artifacts: string[];
  verify: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { out: join(ROOT, ".gpu"), artifacts: [], verify: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new BundleError(`${a} needs a value`);
      return v;
    };
    if (a === "--artifact") o.artifacts.push(resolve(value()));
    else if (a === "--out") o.out = resolve(value());
    else if (a === "--no-verify") o.verify = false;
    else if (a === "--help" || a === "-h") {
      console.log("usage: npx tsx scripts/gpu-bundle.ts [--artifact PATH]... [--out DIR] [--no-verify]\n" +
        "example: npx tsx scripts/gpu-bundle.ts --artifact .cache/build/<hash>/libpod_llama3_8b.so");
      process.exit(0);
    } else throw new BundleError(`unknown argument ${a} (see --help)`);
  }
  return o;
}

function which(cmd: string): string | null {
  const r = spawnSync("bash", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || null : null;
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

function treeBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, f) => sum + treeBytes(join(path, f)), 0);
}

/** node.xz, reused when the node binary has not changed since the last bundle. */
function packNode(out: string): void {
  const xz = which("xz");
  if (!xz) throw new BundleError("xz is not installed (apt-get install xz-utils); it compresses the node binary");
  const node = which("node");
  if (!node) throw new BundleError("node is not on PATH");
  const st = statSync(node);
  const stamp = `${node} ${st.size} ${st.mtimeMs} ${process.version}`;
  const target = join(out, "node.xz");
  const stampFile = join(out, "node.xz.stamp");
  if (existsSync(target) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) {
    console.log(`node.xz: reused (${mib(statSync(target).size)})`);
    return;
  }
  const t0 = Date.now();
  const tmp = `${target}.tmp`;
  // -T0 would split the input into blocks and compress worse; one thread at -9 takes about a minute.
  execFileSync("bash", ["-c", `"${xz}" -9 -c -- "$1" > "$2"`, "pack", node, tmp], { stdio: "inherit" });
  rmSync(target, { force: true });
  execFileSync("mv", [tmp, target]);
  writeFileSync(stampFile, stamp);
  console.log(`node.xz: ${node} (${mib(st.size)}) -> ${mib(statSync(target).size)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** Copies koffi's runtime files into <out>/node_modules so `require("koffi")` resolves there. */
function copyKoffi(out: string): void {
  const nm = (p: string) => join(ROOT, "node_modules", p);
  const koffiDir = nm("koffi");
  const pkg = JSON.parse(readFileSync(join(koffiDir, "package.json"), "utf8")) as { version: string };
  const files = [
    "package.json",
    "LICENSE.txt",
    "index.js",
    "index.cjs",
    "src/koffi/index.js",
    "src/koffi/index.cjs",
    "src/koffi/src/static.js",
    "src/koffi/src/static.cjs",
  ];
  for (const f of files) {
    const src = join(koffiDir, f);
    if (!existsSync(src)) throw new BundleError(`koffi ${pkg.version} has no ${f}; scripts/gpu-bundle.ts needs updating for its layout`);
    const dst = join(out, "node_modules/koffi", f);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(src, dst);
  }
  const nativePkg = nm("@koromix/koffi-linux-x64");
  for (const f of ["package.json", "index.js", "linux_x64/koffi.node"]) {
    const src = join(nativePkg, f);
    if (!existsSync(src)) throw new BundleError(`@koromix/koffi-linux-x64 has no ${f} (is koffi installed for linux x64?)`);
    const dst = join(out, "node_modules/@koromix/koffi-linux-x64", f);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(src, dst);
  }
  // The bundle must find this koffi, not the repository's: check from the bundle folder.
  const check = spawnSync(process.execPath, ["--input-type=module", "-e",
    "import k from 'koffi'; import {createRequire} from 'node:module'; " +
    "console.log(k.version, createRequire(import.meta.url).resolve('koffi'))"], { cwd: out, encoding: "utf8" });
  const resolved = check.stdout.trim();
  if (check.status !== 0 || !resolved.includes(join(out, "node_modules/koffi"))) {
    throw new BundleError(`the bundled koffi does not load from ${out}: ${check.stderr.trim() || resolved}`);
  }
  console.log(`koffi: ${pkg.version} -> ${relative(ROOT, join(out, "node_modules"))} (${mib(treeBytes(join(out, "node_modules")))})`);
}

async function bundleSuite(out: string, entry = ENTRY, name = "suite.mjs"): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile: join(out, name),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["koffi", "@koromix/*"],
    // CommonJS dependencies bundled into ESM call require(); give them one.
    banner: {
      js: "import { createRequire as __podgenCreateRequire } from 'node:module';\n" +
        "const require = __podgenCreateRequire(import.meta.url);",
    },
    legalComments: "none",
    logLevel: "warning",
  });
  console.log(`${name}: ${relative(ROOT, entry)} -> ${mib(statSync(join(out, name)).size)}`);
}

/** bench.mjs, the workload files and the torch baselines script. */
async function bundleBench(out: string): Promise<void> {
  await bundleSuite(out, BENCH_ENTRY, "bench.mjs");
  mkdirSync(join(out, "workloads"), { recursive: true });
  for (const f of readdirSync(BENCH_WORKLOADS).filter((f) => f.endsWith(".json"))) copyFileSync(join(BENCH_WORKLOADS, f), join(out, "workloads", f));
  copyFileSync(BENCH_TORCH, join(out, "torch_baselines.py"));
  writeFileSync(join(out, "run-bench.sh"), RUN_BENCH_SH);
  chmodSync(join(out, "run-bench.sh"), 0o755);
}

/** The kernel libraries of every spec in bench/workloads/*.json (built or from the cache). */
async function benchKernelLibraries(): Promise<string[]> {
  const specs = readdirSync(BENCH_WORKLOADS)
    .filter((f) => f.endsWith(".json"))
    .flatMap((f) => specsOf(loadWorkloads(join(BENCH_WORKLOADS, f))));
  const libraries: string[] = [];
  for (const spec of new Map(specs.map((s) => [s.hash, s])).values()) {
    const r = await buildKernel(spec);
    if (!r.cached) console.log(`kernel: ${spec.name} built in ${r.seconds.toFixed(1)} s (bench)`);
    libraries.push(r.library);
  }
  return libraries;
}

function buildArtifacts(out: string, extra: string[]): { name: string; bytes: number; sha256: string }[] {
  const dir = join(out, "artifacts");
  mkdirSync(dir, { recursive: true });
  const nvcc = which("nvcc");
  if (nvcc) {
    const gencode = "-gencode=arch=compute_90a,code=sm_90a";
    execFileSync(nvcc, [gencode, "-cubin", "-O3", "-o", join(dir, "add_one.sm_90a.cubin"), ADD_ONE_SRC], { stdio: "inherit" });
    // A stand-in for a built kernel library: runtime-API host code, static cudart, loaded by koffi.
    execFileSync(nvcc, [gencode, "-shared", "-Xcompiler", "-fPIC", "-cudart", "static", "-O2", "-o", join(dir, "libinterop.so"), INTEROP_SRC],
      { stdio: "inherit" });
  } else {
    console.warn("warning: nvcc is not on PATH; add_one.sm_90a.cubin and libinterop.so are not built and their cases will be skipped");
  }
  for (const path of extra) {
    if (!existsSync(path)) throw new BundleError(`--artifact ${path} does not exist`);
    const dst = join(dir, basename(path));
    if (existsSync(dst)) throw new BundleError(`two artifacts are named ${basename(path)}`);
    cpSync(path, dst, { recursive: true, dereference: true });
  }
  const list: { name: string; bytes: number; sha256: string }[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else list.push({ name: relative(dir, p), bytes: statSync(p).size, sha256: sha256(p) });
    }
  };
  walk(dir);
  for (const a of list) console.log(`artifact: ${a.name} (${mib(a.bytes)})`);
  return list;
}

/** Every kernel library the suite's cases run on, built or taken from the build cache. */
function suiteKernelLibraries(): Promise<string[]> {
  return buildSuiteKernels((r) =>
    console.log(`kernel: ${r.manifest.name} ${r.cached ? "(cached)" : `built in ${r.seconds.toFixed(1)} s`}${r.manifest.warnings.length ? ` — ${r.manifest.warnings.length} manifest warning(s)` : ""}`),
  );
}

const RUN_SH = `#!/usr/bin/env bash
# Runs the podgen GPU suite from this bundle (made by scripts/gpu-bundle.ts): unpacks node into a
# temporary folder (not into the bundle, so it never travels), runs suite.mjs and exits with its
# code. Results go to $OUT/gpu-suite.json ($OUT defaults to <bundle>/out).
set -uo pipefail
here="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
out="\${OUT:-$here/out}"
mkdir -p "$out"
tmp="$(mktemp -d "\${TMPDIR:-/tmp}/podgen-node.XXXXXX")" || exit 4
trap 'rm -rf "$tmp"' EXIT
if command -v xz >/dev/null 2>&1; then
  xz -dc "$here/node.xz" > "$tmp/node" || exit 4
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \\
    "$here/node.xz" "$tmp/node" || exit 4
else
  echo "run.sh: neither xz nor python3 is available to unpack node" >&2
  exit 4
fi
chmod +x "$tmp/node"
# Container runtimes sometimes mount the driver without registering it with ldconfig.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -e "$d/libcuda.so.1" ] && export LD_LIBRARY_PATH="$d\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
# PODGEN_WRAP runs node under a tool, e.g. PODGEN_WRAP="compute-sanitizer --tool racecheck".
\${PODGEN_WRAP:-} "$tmp/node" "$here/suite.mjs" --out "$out" --require-gpu "$@"
`;

const RUN_BENCH_SH = RUN_SH.replace(
  /# Runs the podgen GPU suite[^\n]*\n[^\n]*\n[^\n]*\n/,
  "# Runs the podgen benchmarks from this bundle (made by scripts/gpu-bundle.ts): unpacks node into a\n" +
    "# temporary folder, runs bench.mjs (PyTorch baselines through python3 first) and exits with its\n" +
    "# code. Results go to $OUT/bench.json and $OUT/torch.json ($OUT defaults to <bundle>/out).\n",
).replace(/"\$tmp\/node" "\$here\/suite\.mjs" --out "\$out" --require-gpu "\$@"/, '"$tmp/node" "$here/bench.mjs" --out "$out" "$@"');

function verify(out: string): void {
  // From another directory, with whatever driver this machine has (none: every case skipped).
  const cwd = mkdtempSync(join(tmpdir(), "podgen-bundle-verify-"));
  try {
    const r = spawnSync(process.execPath, [join(out, "suite.mjs"), "--out", join(cwd, "out")], { cwd, encoding: "utf8" });
    const lines = `${r.stdout}${r.stderr}`.trim().split("\n");
    const last = lines[lines.length - 1] ?? "";
    if (r.status !== 0 && r.status !== 1) throw new BundleError(`verify: node suite.mjs exited ${r.status}:\n${lines.slice(-15).join("\n")}`);
    if (!/^\d+ passed, \d+ failed, \d+ skipped$/.test(last)) throw new BundleError(`verify: unexpected last line "${last}"`);
    if (!existsSync(join(cwd, "out", "gpu-suite.json"))) throw new BundleError("verify: gpu-suite.json was not written");
    const gpuLine = lines.find((l) => l.startsWith("GPU:")) ?? "";
    console.log(`verify: node suite.mjs from ${cwd}: ${gpuLine} -> ${last}`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const out = opts.out;
  mkdirSync(out, { recursive: true });
  // Start clean, but keep node.xz (and its stamp) so an unchanged node is not recompressed.
  for (const f of readdirSync(out)) {
    if (f !== "node.xz" && f !== "node.xz.stamp") rmSync(join(out, f), { recursive: true, force: true });
  }
  packNode(out);
  copyKoffi(out);
  await bundleSuite(out);
  await bundleBench(out);
  // tune.mjs times tuning candidates compiled here (`podgen tune --prepare .gpu/tune-artifacts`).
  await bundleSuite(out, join(ROOT, "bench/tune/main.ts"), "tune.mjs");
  const artifacts = buildArtifacts(out, [...new Set([...opts.artifacts, ...(await suiteKernelLibraries()), ...(await benchKernelLibraries())])]);
  writeFileSync(join(out, "run.sh"), RUN_SH);
  chmodSync(join(out, "run.sh"), 0o755);
  writeFileSync(join(out, "bundle.json"), JSON.stringify({
    commit: gitCommit(ROOT),
    createdAt: new Date().toISOString(),
    node: process.version,
    artifacts,
  }, null, 2) + "\n");
  if (opts.verify) {
    verify(out);
    if (!RUN_BENCH_SH.includes("bench.mjs")) throw new BundleError("run-bench.sh does not run bench.mjs");
    const b = spawnSync(process.execPath, [join(out, "bench.mjs"), "--help"], { encoding: "utf8" });
    if (b.status !== 0) throw new BundleError(`verify: node bench.mjs --help exited ${b.status}:\n${b.stderr}`);
    console.log("verify: node bench.mjs --help loads");
    // tune.mjs must load and refuse missing candidates with a usage error (exit 2), not crash.
    const scratch = mkdtempSync(join(tmpdir(), "podgen-tune-verify-"));
    const t = spawnSync(process.execPath, [join(out, "tune.mjs"), "--artifacts", join(out, "artifacts"),
      "--workloads", join(out, "workloads", "paper.json"), "--db", join(scratch, "db.json")], { encoding: "utf8" });
    rmSync(scratch, { recursive: true, force: true });
    if (t.status !== 2 || !/candidates\.json does not exist/.test(t.stderr)) throw new BundleError(`verify: node tune.mjs exited ${t.status}:\n${t.stderr}`);
    console.log(`verify: node tune.mjs loads (exit ${t.status})`);
  }
  const total = treeBytes(out);
  console.log(`bundle: ${relative(process.cwd(), out) || "."} ${mib(total)} (limit ${mib(MAX_BYTES)})`);
  if (total > MAX_BYTES) throw new BundleError(`the bundle is ${mib(total)}, over the ${mib(MAX_BYTES)} limit`);
}

main().catch((err: unknown) => {
  console.error(`gpu-bundle: ${err instanceof Error ? (err instanceof BundleError ? err.message : err.stack) : String(err)}`);
  process.exit(1);
});
