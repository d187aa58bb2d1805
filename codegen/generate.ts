// The generator: a pure function from a KernelSpec to the files of its kernel, plus the
// write/check helpers behind `podgen generate [--check]`.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { canonicalJson, specFields, type KernelSpec } from "../dsl/index.ts";
import { writeFileAtomic } from "./fs.ts";
import { renderHeader, renderKernelSource } from "./render.ts";

export interface GeneratedFile {
  /** Path inside the kernel's folder, e.g. "kernel.cu". */
  path: string;
  contents: string;
}

/** What nvcc compiles: the traits translation unit and the C header. */
export function generateCudaSources(spec: KernelSpec): GeneratedFile[] {
  return [
    { path: "kernel.cu", contents: renderKernelSource(spec) },
    { path: "pod_attention.h", contents: renderHeader(spec) },
  ];
}

/** Every generated file of a kernel: the CUDA sources, its TypeScript binding and its spec. */
export async function generateKernel(spec: KernelSpec): Promise<GeneratedFile[]> {
  // ts-morph and prettier take ~0.5 s to load; only the binding needs them, builds do not.
  const { emitBindings } = await import("./bindings.ts");
  return [
    ...generateCudaSources(spec),
    { path: "bindings.ts", contents: await emitBindings(spec) },
    {
      path: "spec.json",
      contents: JSON.stringify({ hash: spec.hash, spec: JSON.parse(canonicalJson(specFields(spec))) }, null, 2) + "\n",
    },
  ];
}

/** Write files under `dir` as they are, creating the folders of their paths (e.g. members/<member>/kernel.cu). */
export function writeGeneratedFiles(dir: string, files: readonly GeneratedFile[]): void {
  for (const f of files) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.contents);
  }
}

/** Write a kernel's files into `dir/<name>/`, removing files the generator no longer makes. */
export function writeKernelFiles(dir: string, name: string, files: readonly GeneratedFile[]): void {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  const keep = new Set(files.map((f) => f.path));
  for (const existing of readdirSync(out)) if (!keep.has(existing)) rmSync(join(out, existing), { recursive: true });
  for (const f of files) writeFileAtomic(join(out, f.path), f.contents);
}

/** Paths under `dir/<name>/` whose contents differ from what the generator makes now. */
export function staleKernelFiles(dir: string, name: string, files: readonly GeneratedFile[]): string[] {
  const out = join(dir, name);
  const stale = files
    .filter((f) => !existsSync(join(out, f.path)) || readFileSync(join(out, f.path), "utf8") !== f.contents)
    .map((f) => join(name, f.path));
  if (existsSync(out)) {
    const expected = new Set(files.map((f) => f.path));
    for (const existing of readdirSync(out)) if (!expected.has(existing)) stale.push(join(name, existing));
  }
  return stale;
}
