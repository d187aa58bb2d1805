// Config families: the sources and the build of one library that holds every member.
//
// Why one translation unit per member, linked into one shared object: each member's kernel.cu is
// exactly what `podgen generate` makes for that spec (its traits in an anonymous namespace, its C
// ABI under its own prefix), so a member compiles to the same kernels as the spec alone and
// nothing in the templates needs a namespace parameter. The family's own TU (family.cu) only holds
// the member table and the selection (templates/family/). Every member compiles in its own nvcc
// process (in parallel, each ptxas report read apart for the member's manifest), then nvcc links
// the objects. Same family, same bytes: the sources are rendered deterministically and the objects
// are linked in member order.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { canonicalJson, libraryFileName, symbolPrefix, type FamilySpec } from "../dsl/index.ts";
import {
  BuildError,
  defaultCacheDir,
  kernelHeaders,
  kernelManifest,
  manifestSchema,
  mapDiagnostics,
  nvccFlags,
  nvccVersion,
  publishBuild,
  runProcess,
  type BuildOptions,
  type Manifest,
} from "./build.ts";
import { generateCudaSources, writeGeneratedFiles, type GeneratedFile } from "./generate.ts";
import { JsonInputError, readJsonFile } from "./json.ts";
import { FAMILY_HEADERS_DIR, TEMPLATES_DIR } from "./paths.ts";
import { renderFamilyHeader, renderFamilySource } from "./render.ts";

/** What nvcc compiles for a family: family.cu, pod_family.h and members/<member>/{kernel.cu, pod_attention.h}. */
export function generateFamilySources(family: FamilySpec): GeneratedFile[] {
  return [
    { path: "family.cu", contents: renderFamilySource(family) },
    { path: "pod_family.h", contents: renderFamilyHeader(family) },
    ...family.members.flatMap((spec, i) =>
      generateCudaSources(spec).map((f) => ({ path: `members/${family.memberNames[i]}/${f.path}`, contents: f.contents })),
    ),
  ];
}

export interface FamilyManifest {
  kind: "family";
  name: string;
  familyHash: string;
  buildKey: string;
  target: string;
  nvcc: string;
  flags: string[];
  library: string;
  symbolPrefix: string;
  memberNames: string[];
  /** Each member's manifest (its kernels, resources and warnings), in member order. */
  members: Manifest[];
}

const familyManifestSchema = z.looseObject({
  kind: z.literal("family"),
  name: z.string(),
  familyHash: z.string(),
  buildKey: z.string(),
  target: z.string(),
  nvcc: z.string(),
  flags: z.array(z.string()),
  library: z.string(),
  symbolPrefix: z.string(),
  memberNames: z.array(z.string()),
  members: z.array(manifestSchema),
}) satisfies z.ZodType<FamilyManifest, unknown>;

export interface FamilyBuildResult {
  dir: string;
  library: string;
  manifest: FamilyManifest;
  cached: boolean;
  seconds: number;
}

/** The content key of a family build: its sources, every header they include, nvcc and the flags. */
function familyBuildKey(family: FamilySpec, files: readonly GeneratedFile[], nvcc: string, flags: readonly string[]): string {
  const h = createHash("sha256");
  h.update(canonicalJson({ family: family.hash, nvcc, flags }));
  for (const f of [...files, ...kernelHeaders(), ...kernelHeaders(FAMILY_HEADERS_DIR)]) h.update(`\0${f.path}\0${f.contents}`);
  return h.digest("hex").slice(0, 20);
}

/**
 * The build key `podgen build` would give `family` with this nvcc version and extra flags, without
 * building: what a cost model's recorded key is compared with (as buildKeyFor is for a spec).
 */
export function familyBuildKeyFor(family: FamilySpec, nvcc: string, extraFlags: readonly string[] = []): string {
  return familyBuildKey(family, generateFamilySources(family), nvcc, familyNvccFlags(family, extraFlags));
}

// Every member shares the target (dsl/family.ts), hence the flags.
const familyNvccFlags = (family: FamilySpec, extraFlags?: readonly string[]) => nvccFlags(family.members[0]!, extraFlags);

async function planFamilyBuild(family: FamilySpec, options: BuildOptions) {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const files = generateFamilySources(family);
  const flags = familyNvccFlags(family, options.extraFlags);
  const nvcc = await nvccVersion();
  const key = familyBuildKey(family, files, nvcc, flags);
  const dir = join(cacheDir, "builds", `${family.name}-${key}`);
  return { cacheDir, files, flags, nvcc, key, dir, libraryName: libraryFileName(family) };
}

export async function findCachedFamilyBuild(family: FamilySpec, options: BuildOptions = {}): Promise<FamilyBuildResult | undefined> {
  const started = performance.now();
  const { dir, libraryName } = await planFamilyBuild(family, options);
  if (!existsSync(join(dir, "manifest.json"))) return undefined;
  try {
    const manifest = readJsonFile(familyManifestSchema, join(dir, "manifest.json"), `family build manifest ${dir}`);
    return { dir, library: join(dir, libraryName), manifest, cached: true, seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    if (e instanceof JsonInputError) return undefined;  // rebuilt below, as for a kernel
    throw e;
  }
}

/** Builds a family into one library (cached by content, built in a private folder renamed into place). */
export async function buildFamily(family: FamilySpec, options: BuildOptions = {}): Promise<FamilyBuildResult> {
  const started = performance.now();
  if (!options.force) {
    const cached = await findCachedFamilyBuild(family, options);
    if (cached) return { ...cached, seconds: (performance.now() - started) / 1000 };
  }
  const { cacheDir, files, flags, nvcc, key, dir, libraryName } = await planFamilyBuild(family, options);
  const replace = options.force || existsSync(join(dir, "manifest.json"));
  const tmp = join(cacheDir, "tmp", `${family.name}-${key}-${process.pid}-${randomBytes(4).toString("hex")}`);
  const src = join(tmp, "src");
  try {
    writeGeneratedFiles(src, files);
    const compileFlags = flags.filter((f) => f !== "-shared");
    const units = [...family.memberNames.map((m) => `members/${m}/kernel.cu`), "family.cu"];
    const outputs = await Promise.all(
      units.map(async (unit, i) => {
        const r = await runProcess("nvcc", [...compileFlags, `-I${TEMPLATES_DIR}`, `-I${src}`, "-c", "-o", join(tmp, `unit${i}.o`), join(src, unit)], { cwd: tmp });
        const unitFiles = files.filter((f) => f.path === unit || f.path === unit.replace(/kernel\.cu$/, "pod_attention.h")).map((f) => ({ ...f, path: f.path.replace(/^members\/\w+\//, "") }));
        const unitSrc = dirname(join(src, unit));
        if (r.exitCode !== 0) throw new BuildError(i < family.members.length ? family.members[i]!.name : family.name, mapDiagnostics(r.all, unitSrc, unitFiles), r.all);
        return r.all;
      }),
    );
    const link = await runProcess("nvcc", [...flags.filter((f) => f.startsWith("-gencode") || f === "-shared"), "-o", join(tmp, libraryName), ...units.map((_, i) => join(tmp, `unit${i}.o`))], { cwd: tmp });
    if (link.exitCode !== 0) throw new BuildError(family.name, [], link.all);
    for (let i = 0; i < units.length; ++i) rmSync(join(tmp, `unit${i}.o`));

    const members = family.members.map((spec, i) => kernelManifest(spec, { buildKey: key, nvcc, flags, library: libraryName }, outputs[i]!));
    const manifest: FamilyManifest = {
      kind: "family",
      name: family.name,
      familyHash: family.hash,
      buildKey: key,
      target: family.members[0]!.target,
      nvcc,
      flags,
      library: libraryName,
      symbolPrefix: symbolPrefix(family),
      memberNames: [...family.memberNames],
      members,
    };
    writeFileSync(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    writeFileSync(join(tmp, "nvcc.log"), [...outputs, link.all].join("\n"));
    publishBuild(tmp, dir, replace);
    return { dir, library: join(dir, libraryName), manifest, cached: false, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

