// `podgen export <preset|spec> <dir>`: write a kernel's self-contained folder (CUDA sources, C
// header, CMake package, PyTorch binding, examples; codegen/export.ts renders it).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import type { KernelSpec } from "../dsl/index.ts";
import { EXPORT_MANIFEST, generateExport } from "../codegen/export.ts";
import { writeFileAtomic } from "../codegen/fs.ts";
import type { GeneratedFile } from "../codegen/generate.ts";
import { loadSpecs } from "./load-spec.ts";
import { UsageError } from "./usage-error.ts";
import { shownPath } from "./args.ts";

export interface ExportOptions {
  /** Write into a non-empty folder: overwrite the files the export makes, remove those a previous export made and this one does not. */
  force?: boolean;
  /** Which kernel of a spec file that defines several. */
  kernel?: string;
}

export interface ExportResult {
  spec: KernelSpec;
  dir: string;
  files: GeneratedFile[];
}

/** Pick the one spec to export from what a preset name or spec file resolved to. */
function pickSpec(arg: string, specs: KernelSpec[], kernel: string | undefined): KernelSpec {
  const names = specs.map((s) => s.name).join(", ");
  if (kernel !== undefined) {
    const spec = specs.find((s) => s.name === kernel);
    if (!spec) throw new UsageError(`--kernel ${kernel}: ${arg} defines no kernel of that name (it defines: ${names})`);
    return spec;
  }
  if (specs.length !== 1) {
    throw new UsageError(`${arg} defines ${specs.length} kernels (${names}); export writes one: choose it with --kernel NAME`);
  }
  return specs[0]!;
}

/**
 * Check that `dir` can take the export: absent, an empty folder, or (with force) any folder. A
 * file in the way, or a non-empty folder without force, is a usage error (exit 2).
 */
function prepareDir(dir: string, shown: string, force: boolean): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`${shown} exists and is not a folder`);
    const entries = readdirSync(dir);
    if (entries.length > 0 && !force) {
      throw new UsageError(`${shown} is not empty (${entries.length} entries); choose an empty folder or pass --force to overwrite the export in it`);
    }
    return;
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (["EACCES", "EPERM", "ENOTDIR", "EROFS", "EEXIST"].includes(err.code ?? "")) {
      throw new UsageError(`cannot create the folder ${shown}: ${err.code} (${err.message})`);
    }
    throw e;
  }
}

/** Files a previous export in `dir` made (from its manifest) that this export does not make. */
function staleExportFiles(dir: string, files: readonly GeneratedFile[]): string[] {
  const manifest = join(dir, EXPORT_MANIFEST);
  if (!existsSync(manifest)) return [];
  let previous: unknown;
  try {
    previous = (JSON.parse(readFileSync(manifest, "utf8")) as { files?: unknown }).files;
  } catch {
    return []; // not ours to interpret: remove nothing
  }
  if (!Array.isArray(previous)) return [];
  const now = new Set(files.map((f) => f.path));
  // Only plain relative paths inside dir; a manifest is never a way to delete elsewhere.
  return previous.filter(
    (p): p is string => typeof p === "string" && !now.has(p) && !relative(dir, resolve(dir, p)).startsWith(".."),
  );
}

/** Export one spec (preset name or spec file) into `dir`. */
export async function exportKernel(arg: string, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const spec = pickSpec(arg, await loadSpecs([arg]), options.kernel);
  const files = generateExport(spec);
  const out = resolve(dir);
  prepareDir(out, dir, !!options.force);
  for (const stale of staleExportFiles(out, files)) rmSync(join(out, stale), { force: true });
  for (const f of files) writeFileAtomic(join(out, f.path), f.contents);
  return { spec, dir: out, files };
}

export function registerExportCommand(program: Command): void {
  program
    .command("export")
    .description("write a kernel as a self-contained folder: CUDA sources, C header, CMake package, PyTorch op")
    .argument("<spec>", "preset name or spec file (.ts, .js, .json)")
    .argument("<dir>", "output folder (created; must be empty unless --force)")
    .option("--force", "write into a non-empty folder, replacing a previous export there")
    .option("--kernel <name>", "the kernel to export when the spec file defines several")
    .addHelpText(
      "after",
      `
Example:
  podgen export llama3_8b out/llama3_8b
  cmake -S out/llama3_8b -B build && cmake --build build -j && cmake --install build --prefix /opt/podgen
  # then in another project: find_package(llama3_8b CONFIG) and link podgen::llama3_8b`,
    )
    .action(async (arg: string, dir: string, opts: { force?: boolean; kernel?: string }) => {
      const r = await exportKernel(arg, dir, opts);
      const shown = shownPath(r.dir);
      console.log(`exported ${r.spec.name} (spec hash ${r.spec.hash}) to ${shown}/: ${r.files.length} files`);
      console.log(`  build:  cmake -S ${shown} -B ${shown}/build && cmake --build ${shown}/build -j`);
      console.log(`  read:   ${shown}/README.md`);
    });
}
