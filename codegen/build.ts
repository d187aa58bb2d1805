// The build step: render a spec, compile it with nvcc into a shared library with a C ABI, parse
// the ptxas report into a manifest, and cache the result under a content hash.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { canonicalJson, libraryFileName, resourceModel, specFields, symbolPrefix, TARGET_LIMITS, type KernelSpec } from "../dsl/index.ts";
import { z } from "zod";
import { generateCudaSources, type GeneratedFile } from "./generate.ts";
import { JsonInputError, readJsonFile } from "./json.ts";
import { parsePtxasReport, resourceWarnings, type KernelResources } from "./manifest.ts";
import { KERNEL_HEADERS_DIR, PACKAGE_ROOT, TEMPLATES_DIR } from "./paths.ts";

export interface Manifest {
  name: string;
  specHash: string;
  buildKey: string;
  target: string;
  nvcc: string;
  flags: string[];
  library: string;
  symbolPrefix: string;
  /** Dynamic shared memory per CTA the kernels request (resource model). */
  smemBytes: number;
  threadsPerCta: number;
  ctasPerSm: number;
  kernels: KernelResources[];
  warnings: string[];
  spec: unknown;
}

const kernelResourcesSchema = z.looseObject({
  symbol: z.string(),
  name: z.string(),
  arch: z.string(),
  registers: z.number(),
  barriers: z.number(),
  staticSharedBytes: z.number(),
  stackBytes: z.number(),
  spillStoreBytes: z.number(),
  spillLoadBytes: z.number(),
  wgmmaSerialized: z.string().nullable(),
  hot: z.boolean(),
}) satisfies z.ZodType<KernelResources>;

/** The manifest as a cached build holds it, checked against Manifest (a field one lacks fails typecheck). */
export const manifestSchema = z.looseObject({
  name: z.string(),
  specHash: z.string(),
  buildKey: z.string(),
  target: z.string(),
  nvcc: z.string(),
  flags: z.array(z.string()),
  library: z.string(),
  symbolPrefix: z.string(),
  smemBytes: z.number(),
  threadsPerCta: z.number(),
  ctasPerSm: z.number(),
  kernels: z.array(kernelResourcesSchema),
  warnings: z.array(z.string()),
  spec: z.unknown(),
}) satisfies z.ZodType<Manifest>;

/** A build's manifest.json; JsonInputError naming the file and the field when it is not one. */
export function readManifest(path: string): Manifest {
  return readJsonFile(manifestSchema, path, `build manifest ${path}`);
}

export interface BuildResult {
  dir: string;
  library: string;
  manifest: Manifest;
  cached: boolean;
  seconds: number;
}

export interface BuildOptions {
  /** Root of the build cache (default: $PODGEN_CACHE_DIR or ./.cache/podgen). */
  cacheDir?: string;
  /** Rebuild even when the cache has this build. */
  force?: boolean;
  /** Extra nvcc flags (part of the cache key). */
  extraFlags?: string[];
}

export const defaultCacheDir = () => process.env.PODGEN_CACHE_DIR ?? join(process.cwd(), ".cache", "podgen");

export interface Diagnostic {
  file: string;
  line: number;
  severity: "error" | "warning";
  message: string;
  /** The generated line the error points at, when it is in a generated file. */
  sourceLine?: string;
  /** The spec field behind that line or behind a traits constant the message names. */
  specField?: string;
}

export class BuildError extends Error {
  constructor(
    readonly specName: string,
    readonly diagnostics: Diagnostic[],
    readonly output: string,
  ) {
    const lines = diagnostics
      .filter((d) => d.severity === "error")
      .slice(0, 10)
      .map((d) => {
        const spec = d.specField ? `\n      spec field: ${d.specField}` : "";
        const src = d.sourceLine ? `\n      ${d.sourceLine.trim()}` : "";
        return `  ${d.file}:${d.line}: ${d.message}${src}${spec}`;
      });
    super(
      `nvcc failed for kernel "${specName}":\n` +
        (lines.length > 0 ? lines.join("\n") : output.split("\n").slice(-20).join("\n")),
    );
    this.name = "BuildError";
  }
}

// execa takes ~0.1 s to load; commands that never run nvcc (generate, inspect) should not pay it.
export async function runProcess(file: string, args: readonly string[], options: { cwd?: string } = {}) {
  const { execa } = await import("execa");
  const r = await execa(file, args, { ...options, reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, all: r.all ?? "", stdout: r.stdout, message: r.message ?? "" };
}

let nvccVersionCache: Promise<string> | undefined;
export function nvccVersion(): Promise<string> {
  nvccVersionCache ??= (async () => {
    const r = await runProcess("nvcc", ["--version"]);
    if (r.exitCode !== 0) {
      nvccVersionCache = undefined;
      throw new Error(`nvcc not found on PATH or not working (${r.message.split("\n")[0]}); install the CUDA toolkit`);
    }
    return /release [\d.]+, V([\d.]+)/.exec(r.stdout)?.[1] ?? r.stdout.trim().split("\n").pop()!;
  })();
  return nvccVersionCache;
}

/**
 * nvcc flags for a spec: one explicit -gencode for its target (with its PTX where the target says
 * so), ptxas report, position-independent.
 */
export function nvccFlags(spec: KernelSpec, extra: readonly string[] = []): string[] {
  const { arch, code, ptx } = TARGET_LIMITS[spec.target].gencode;
  return [
    "-std=c++17",
    "-O3",
    "-shared",
    "-Xcompiler=-fPIC",
    `-gencode=arch=${arch},code=${ptx ? `[${code},${arch}]` : code}`,
    "-Xptxas=-v",
    "-lineinfo",
    ...extra,
  ];
}

/** The headers of a folder of templates/ (default pod/: every kernel build includes them), in a stable order, with their contents. */
export function kernelHeaders(dir = KERNEL_HEADERS_DIR): { path: string; contents: string }[] {
  return readdirSync(dir)
    .sort()
    .map((f) => ({ path: `${basename(dir)}/${f}`, contents: readFileSync(join(dir, f), "utf8") }));
}

function buildKey(spec: KernelSpec, files: readonly GeneratedFile[], nvcc: string, flags: readonly string[]): string {
  const h = createHash("sha256");
  h.update(canonicalJson({ spec: spec.hash, nvcc, flags }));
  for (const f of [...files, ...kernelHeaders()]) h.update(`\0${f.path}\0${f.contents}`);
  return h.digest("hex").slice(0, 20);
}

/**
 * The build key `podgen build` would give `spec` with this nvcc version (nvccVersion()) and extra
 * flags, without building: what a recorded key (a tuning database's, a manifest's) is compared
 * with to tell whether it was measured on the kernels the current templates make.
 */
export function buildKeyFor(spec: KernelSpec, nvcc: string, extraFlags: readonly string[] = []): string {
  return buildKey(spec, generateCudaSources(spec), nvcc, nvccFlags(spec, extraFlags));
}

interface BuildPlan {
  key: string;
  dir: string;
  files: GeneratedFile[];
  flags: string[];
  nvcc: string;
  libraryName: string;
  cacheDir: string;
}

async function planBuild(spec: KernelSpec, options: BuildOptions): Promise<BuildPlan> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const files = generateCudaSources(spec);
  const flags = nvccFlags(spec, options.extraFlags);
  const nvcc = await nvccVersion();
  const key = buildKey(spec, files, nvcc, flags);
  const dir = join(cacheDir, "builds", `${spec.name}-${key}`);
  return { key, dir, files, flags, nvcc, libraryName: libraryFileName(spec), cacheDir };
}

/** The cached build of a spec, if there is one (nothing is compiled). */
export async function findCachedBuild(spec: KernelSpec, options: BuildOptions = {}): Promise<BuildResult | undefined> {
  const started = performance.now();
  const { dir, libraryName } = await planBuild(spec, options);
  if (!existsSync(join(dir, "manifest.json"))) return undefined;
  let manifest: Manifest;
  try {
    manifest = readManifest(join(dir, "manifest.json"));
  } catch (e) {
    // Damaged, or written by a podgen whose manifest had other fields: not a build this one can
    // use. buildKernel builds it again and replaces the entry.
    if (e instanceof JsonInputError) return undefined;
    throw e;
  }
  return { dir, library: join(dir, libraryName), manifest, cached: true, seconds: (performance.now() - started) / 1000 };
}

/** The manifest of one kernel compiled with `build` whose nvcc output (ptxas report) is `output`. */
export function kernelManifest(spec: KernelSpec, build: Pick<Manifest, "buildKey" | "nvcc" | "flags" | "library">, output: string): Manifest {
  const model = resourceModel(spec);
  const kernels = parsePtxasReport(output);
  return {
    name: spec.name,
    specHash: spec.hash,
    buildKey: build.buildKey,
    target: spec.target,
    nvcc: build.nvcc,
    flags: build.flags,
    library: build.library,
    symbolPrefix: symbolPrefix(spec),
    smemBytes: model.smem.perCta,
    threadsPerCta: model.threads,
    ctasPerSm: spec.ctasPerSm,
    kernels,
    warnings: resourceWarnings(
      kernels,
      (k) =>
        k.name.includes("pod_prefill_kernel") || k.name.includes("pod_prefill_ws_kernel")
          ? model.standaloneThreads.prefill
          : k.name.includes("pod_decode_kernel")
            ? model.standaloneThreads.decode
            : model.threads,
      spec.ctasPerSm,
      model.limits.registersPerSm,
    ),
    spec: specFields(spec),
  };
}

/**
 * Moves a build finished in its private folder `tmp` to its cache entry `dir` (over the entry there
 * when `replace`); when a build of the same key got there first, that one is kept.
 */
export function publishBuild(tmp: string, dir: string, replace: boolean): void {
  mkdirSync(dirname(dir), { recursive: true });
  if (replace) rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(join(dir, "manifest.json"))) throw e;
  }
}

export async function buildKernel(spec: KernelSpec, options: BuildOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  if (!options.force) {
    const cached = await findCachedBuild(spec, options);
    if (cached) return { ...cached, seconds: (performance.now() - started) / 1000 };
  }
  const { key, dir, files, flags, nvcc, libraryName, cacheDir } = await planBuild(spec, options);
  const seconds = () => (performance.now() - started) / 1000;
  // An entry that findCachedBuild could not read (a bad manifest) is replaced, as with --force.
  const replace = options.force || existsSync(join(dir, "manifest.json"));

  // Build in a private folder, then rename it into place: the cache only ever holds whole builds,
  // and two builds of one key at once both succeed (the second rename finds the first's result).
  const tmp = join(cacheDir, "tmp", `${spec.name}-${key}-${process.pid}-${randomBytes(4).toString("hex")}`);
  const src = join(tmp, "src");
  mkdirSync(src, { recursive: true });
  try {
    for (const f of files) writeFileSync(join(src, f.path), f.contents);
    const result = await runProcess(
      "nvcc",
      [...flags, `-I${TEMPLATES_DIR}`, `-I${src}`, "-o", join(tmp, libraryName), join(src, "kernel.cu")],
      { cwd: tmp },
    );
    const output = result.all;
    if (result.exitCode !== 0) throw new BuildError(spec.name, mapDiagnostics(output, src, files), output);

    const manifest = kernelManifest(spec, { buildKey: key, nvcc, flags, library: libraryName }, output);
    writeFileSync(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    writeFileSync(join(tmp, "nvcc.log"), output);
    publishBuild(tmp, dir, replace);
    return { dir, library: join(dir, libraryName), manifest, cached: false, seconds: seconds() };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface BuildManyOptions extends BuildOptions {
  /** nvcc processes at a time (default: the machine's cores). */
  jobs?: number;
  onStart?: (spec: KernelSpec, index: number) => void;
  /** Each outcome as it completes: the build, or the error it failed with. */
  onDone?: (spec: KernelSpec, outcome: BuildResult | Error, index: number) => void;
}

/**
 * Builds specs `jobs` at a time through the cache: the one worker pool of `podgen build`, `verify`,
 * `bench`, `tune` and the GPU suite. One spec's failure never stops the others; the outcomes come
 * back in the specs' order, each a BuildResult or the Error it failed with.
 */
export async function buildMany(specs: readonly KernelSpec[], options: BuildManyOptions = {}): Promise<(BuildResult | Error)[]> {
  const { jobs = availableParallelism(), onStart, onDone, ...buildOptions } = options;
  const outcomes: (BuildResult | Error)[] = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      const spec = specs[i]!;
      onStart?.(spec, i);
      try {
        outcomes[i] = await buildKernel(spec, buildOptions);
      } catch (e) {
        outcomes[i] = e instanceof Error ? e : new Error(String(e));
      }
      onDone?.(spec, outcomes[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, specs.length)) }, worker));
  return outcomes;
}

const DIAGNOSTIC = /^(.+?)\((\d+)\): (error|warning)[^:]*: (.*)$/;

/** Point nvcc's messages at generated lines and the spec fields behind them. */
export function mapDiagnostics(output: string, srcDir: string, files: readonly GeneratedFile[]): Diagnostic[] {
  const kernel = files.find((f) => f.path === "kernel.cu")?.contents ?? "";
  const traitFields = traitsToSpecFields(kernel);
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split("\n")) {
    const m = DIAGNOSTIC.exec(line.trim());
    if (!m) continue;
    const [, file, lineNo, severity, message] = m as unknown as [string, string, string, "error" | "warning", string];
    const d: Diagnostic = { file, line: Number(lineNo), severity, message };
    const rel = relative(srcDir, file);
    const generated = files.find((f) => f.path === rel);
    if (generated) {
      d.file = `generated/${rel}`;
      d.sourceLine = generated.contents.split("\n")[d.line - 1];
      d.specField = /\/\/ spec: ([\w.,\s]+?)(;|$)/.exec(d.sourceLine ?? "")?.[1];
    } else if (file.startsWith(TEMPLATES_DIR)) {
      d.file = relative(PACKAGE_ROOT, file);
    }
    d.specField ??= [...traitFields.entries()].find(([name]) => message.includes(name))?.[1];
    diagnostics.push(d);
  }
  return diagnostics;
}

/** "Prefill::kTileQ" → "prefill.tile.q", read off the `// spec:` notes of the rendered traits. */
export function traitsToSpecFields(kernelSource: string): Map<string, string> {
  const map = new Map<string, string>();
  let scope = "";
  for (const line of kernelSource.split("\n")) {
    const struct = /^\s*struct (\w+) \{/.exec(line);
    if (struct && struct[1] !== "Traits") scope = `${struct[1]}::`;
    if (/^\s*\};/.test(line)) scope = "";
    const m = /(k\w+|DType) = [^;]*;\s*\/\/ spec: ([\w.,\s]+?)(;|$)/.exec(line);
    if (m) map.set(`${scope}${m[1]}`, m[2]!);
  }
  // Longest names first, so "Prefill::kTileQ" wins over a bare "kTileQ".
  return new Map([...map.entries()].sort((a, b) => b[0].length - a[0].length));
}
