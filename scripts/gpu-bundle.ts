// Makes .gpu/, the self-contained GPU-suite bundle that travels to the GPU machine:
//
//   .gpu/node.xz                      this machine's node binary, xz -9 (run.sh unpacks it to a temp dir)
//   .gpu/suite.mjs                    esbuild bundle of test/gpu/suite.ts (node20, esm; koffi external)
//   .gpu/node_modules/koffi/          koffi's JS loader files (the package's runtime files only)
//   .gpu/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node
//                                     the prebuilt native module, where koffi's loader requires it
//   .gpu/artifacts.tar.xz             add_one.sm_90a.cubin, libinterop.so (built here with nvcc), the suite's
//                                     kernel libraries and every --artifact, as artifacts/ in one xz tar
//   .gpu/bundle.json                  commit, node version, artifact sizes and sha256
//   .gpu/run.sh                       unpacks node and the artifacts, runs `node suite.mjs --out "$OUT"
//                                     --artifacts <unpacked> --require-gpu`
//   .gpu/land.sh                      scripts/gpu-land.sh: after a templates/ change, the suite, the re-tune of
//                                     every family with a shipped cost model, and the sanitizers, in one call
//                                     (or two: --only suite,tune, then --only sanitize)
//   .gpu/podgen.mjs, .gpu/podgen      the whole CLI (cli/main.ts) bundled, and a launcher: `bash .gpu/podgen tune ...`
//                                     compiles with the GPU machine's nvcc and cores and runs there. It reads
//                                     templates/ and bench/ from the repository around .gpu/ (the device tool
//                                     sends the working tree). Left out: ts-morph and prettier (`generate`'s
//                                     TypeScript bindings), vega (plots), tsx (.ts spec files); each loads
//                                     only where used, so everything else runs.
//
// Usage: npx tsx scripts/gpu-bundle.ts [--artifact PATH]... [--out DIR] [--no-verify] [--cli-only]
// (--cli-only leaves the suite's kernels out: enough for `bash .gpu/podgen verify|bench|tune`.)
// Example: npx tsx scripts/gpu-bundle.ts --artifact .cache/build/3c2b8e6e/libpod_llama3_8b.so
// then, with the device tool: run {command: "bash .gpu/run.sh", carry: [".gpu"]}
// (or "bash .gpu/podgen bench --out $OUT/bench.json -j 16" for the benchmarks, compiled there).
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
import { buildSuiteKernels } from "../test/gpu/artifacts.ts";
import { gitCommit } from "../codegen/commit.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MAX_BYTES = 60 * 2 ** 20; // the device tool carries 64 MiB in all; leave room for scratch files
const ENTRY = join(ROOT, "test/gpu/suite.ts");
const ADD_ONE_SRC = join(ROOT, "test/gpu/kernels/add_one.cu");
const INTEROP_SRC = join(ROOT, "test/gpu/kernels/interop.cu");

class BundleError extends Error {}

interface Options {
  out: string;
  artifacts: string[];
  verify: boolean;
  /** Leave the suite's kernel libraries out: for runs of the bundled CLI, which compiles on the GPU machine. */
  cliOnly: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { out: join(ROOT, ".gpu"), artifacts: [], verify: true, cliOnly: false };
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
    else if (a === "--cli-only") o.cliOnly = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: npx tsx scripts/gpu-bundle.ts [--artifact PATH]... [--out DIR] [--no-verify] [--cli-only]\n" +
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

async function bundleSuite(out: string, entry = ENTRY, name = "suite.mjs", external: string[] = []): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile: join(out, name),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["koffi", "@koromix/*", ...external],
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

// The artifacts travel as one xz-compressed tar (about 15x smaller: the device tool carries 64 MiB
// in all, the repository's tracked files included); run.sh unpacks it into a temporary folder.
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
  execFileSync("bash", ["-c", 'tar -C "$1" -cf - artifacts | xz -6 -T0 > "$1/artifacts.tar.xz"', "pack", out], { stdio: "inherit" });
  rmSync(dir, { recursive: true, force: true });
  console.log(`artifacts.tar.xz: ${mib(list.reduce((n, a) => n + a.bytes, 0))} -> ${mib(statSync(join(out, "artifacts.tar.xz")).size)}`);
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
# Results name the commit the bundle was built from, not that of whatever checkout runs it.
export PODGEN_COMMIT="\${PODGEN_COMMIT:-$(sed -n 's/^ *"commit": "\\([^"]*\\)".*/\\1/p' "$here/bundle.json" | head -1)}"
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
# The suite's kernel libraries travel as artifacts.tar.xz; unpack them next to node.
if command -v xz >/dev/null 2>&1; then
  tar -C "$tmp" -xJf "$here/artifacts.tar.xz" || exit 4
else
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/artifacts.tar.xz" "$tmp" || exit 4
fi
# PODGEN_WRAP runs node under a tool, e.g. PODGEN_WRAP="compute-sanitizer --tool racecheck --error-exitcode 1"
# (--error-exitcode makes the sanitizer's findings fail the run; the sanitize: cases skip without it).
\${PODGEN_WRAP:-} "$tmp/node" "$here/suite.mjs" --out "$out" --artifacts "$tmp/artifacts" --require-gpu "$@"
`;

/** The CLI's dependencies that load lazily and stay out of podgen.mjs (see the header). */
const CLI_LEFT_OUT = ["ts-morph", "prettier", "vega", "vega-lite", "tsx", "tsx/*"];

/** The whole CLI as one file, `out/<name>` (.gpu/podgen.mjs); test/cli.test.ts runs it too. */
export async function bundleCli(out: string, name = "podgen.mjs"): Promise<void> {
  await bundleSuite(out, join(ROOT, "cli/main.ts"), name, CLI_LEFT_OUT);
}

const PODGEN_SH = RUN_SH.replace(
  /# Runs the podgen GPU suite[^\n]*\n[^\n]*\n[^\n]*\n/,
  "# The podgen CLI from this bundle (made by scripts/gpu-bundle.ts): unpacks node into a temporary\n" +
    "# folder and runs podgen.mjs with the arguments, e.g. `bash .gpu/podgen tune --preset llama3_8b`.\n" +
    "# Kernels build into $PODGEN_CACHE_DIR (default: a temporary folder).\n",
).replace(/out="[^\n]*\nmkdir -p "\$out"\n/, 'export PODGEN_CACHE_DIR="${PODGEN_CACHE_DIR:-${TMPDIR:-/tmp}/podgen-cache}"\n')
  .replace(/# The suite's kernel libraries[\s\S]*?\nfi\n/, "")
  .replace(/"\$tmp\/node" "\$here\/suite\.mjs" .*"\$@"/, '"$tmp/node" "$here/podgen.mjs" "$@"');

function verify(out: string): void {
  // From another directory, with whatever driver this machine has (none: every case skipped).
  const cwd = mkdtempSync(join(tmpdir(), "podgen-bundle-verify-"));
  try {
    execFileSync("tar", ["-C", cwd, "-xJf", join(out, "artifacts.tar.xz")]);
    const r = spawnSync(process.execPath, [join(out, "suite.mjs"), "--out", join(cwd, "out"), "--artifacts", join(cwd, "artifacts")], { cwd, encoding: "utf8" });
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

// The bundled CLI runs from another folder, and the packages it leaves out (absent on the GPU
// machine) are imported lazily only.
function verifyCli(out: string): void {
  const scratch = mkdtempSync(join(tmpdir(), "podgen-cli-verify-"));
  try {
    const t = spawnSync("bash", [join(out, "podgen"), "tune", "--preset", "llama3_8b", "--dry-run"], { cwd: scratch, encoding: "utf8" });
    if (t.status !== 0 || !/candidates \(base included\)/.test(t.stdout)) throw new BundleError(`verify: podgen tune --dry-run exited ${t.status}:\n${t.stderr}`);
    // A left-out package may only be imported lazily: a top-level import would fail at start there.
    const eager = readFileSync(join(out, "podgen.mjs"), "utf8").split("\n").filter((l) => CLI_LEFT_OUT.some((m) => new RegExp(`^import .* from "${m.replace("/*", "/")}`).test(l)));
    if (eager.length > 0) throw new BundleError(`verify: podgen.mjs imports left-out packages at load time:\n${eager.join("\n")}`);
    console.log("verify: bash podgen tune --dry-run runs; left-out packages load lazily only");
  } finally {
    rmSync(scratch, { recursive: true, force: true });
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
  await bundleCli(out);
  writeFileSync(join(out, "podgen"), PODGEN_SH);
  chmodSync(join(out, "podgen"), 0o755);
  const suiteKernels = opts.cliOnly ? [] : await suiteKernelLibraries();
  const artifacts = buildArtifacts(out, [...new Set([...opts.artifacts, ...suiteKernels])]);
  writeFileSync(join(out, "run.sh"), RUN_SH);
  chmodSync(join(out, "run.sh"), 0o755);
  copyFileSync(join(ROOT, "scripts", "gpu-land.sh"), join(out, "land.sh"));
  chmodSync(join(out, "land.sh"), 0o755);
  writeFileSync(join(out, "bundle.json"), JSON.stringify({
    commit: gitCommit(ROOT),
    createdAt: new Date().toISOString(),
    node: process.version,
    artifacts,
  }, null, 2) + "\n");
  if (opts.verify) {
    verify(out);
    // The bundled CLI reads templates/ and bench/ from the folder above the bundle: elsewhere
    // (--out outside the repository root) only the suite can run, and there is no CLI to check.
    if (dirname(out) !== ROOT) {
      console.log(`verify: the CLI not run: ${out} is not a folder of the repository root, so its podgen finds no templates/ (move it to ${join(ROOT, ".gpu")} to use podgen)`);
    } else {
      verifyCli(out);
    }
  }
  const total = treeBytes(out);
  console.log(`bundle: ${relative(process.cwd(), out) || "."} ${mib(total)} (limit ${mib(MAX_BYTES)})`);
  if (total > MAX_BYTES) throw new BundleError(`the bundle is ${mib(total)}, over the ${mib(MAX_BYTES)} limit`);
}

// Run as a script (npm run gpu:bundle), not when a test imports bundleCli.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`gpu-bundle: ${err instanceof Error ? (err instanceof BundleError ? err.message : err.stack) : String(err)}`);
    process.exit(1);
  });
}
