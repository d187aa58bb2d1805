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
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { FAMILY_HEADERS_DIR, PLAN_GOLDEN_FILE, TEMPLATES_DIR } from "./paths.ts";
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
  /** What the library's timings depend on (familyTimingKeyFor): the key its cost models are stored under. */
  timingKey: string;
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
  timingKey: z.string(),
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

/** Every file a family build compiles: its generated sources, then the headers they include. */
export function familyBuildSources(files: readonly GeneratedFile[]): GeneratedFile[] {
  return [...files, ...kernelHeaders(), ...kernelHeaders(FAMILY_HEADERS_DIR)];
}

/** The host planner's sources: they decide the plans and the member chosen, and compile into no kernel. */
const PLANNER_SOURCES = new Set(["pod/planner.h", "pod/planner_input.inl", "family/select.h"]);

/**
 * The two keys of a family build, from everything it compiles (familyBuildSources), nvcc, the flags
 * and the golden plans (the contents of PLAN_GOLDEN_FILE):
 *   build   the content key of the library: every source; names its cached build.
 *   timing  what its timings depend on, the key its cost models are stored under: the same less the
 *           host planner's sources, plus the golden plans, which the plan-golden test keeps equal to
 *           what the planner plans (the family's features and choice included). A planner change
 *           that plans the same bytes faster keeps every model; one that plans differently
 *           regenerates the golden plans and re-keys them, as any kernel change does.
 */
export function familyKeys(family: FamilySpec, sources: readonly GeneratedFile[], nvcc: string, flags: readonly string[], plans: string): { build: string; timing: string } {
  const build = createHash("sha256"), timing = createHash("sha256");
  for (const h of [build, timing]) h.update(canonicalJson({ family: family.hash, nvcc, flags }));
  for (const f of sources) {
    build.update(`\0${f.path}\0${f.contents}`);
    if (!PLANNER_SOURCES.has(f.path)) timing.update(`\0${f.path}\0${f.contents}`);
  }
  timing.update(`\0plans\0${plans}`);
  return { build: build.digest("hex").slice(0, 20), timing: timing.digest("hex").slice(0, 20) };
}

/** The keys a build of `family` gets from today's templates and golden plans, with this nvcc version and flags. */
function keysOf(family: FamilySpec, files: readonly GeneratedFile[], nvcc: string, flags: readonly string[]) {
  return familyKeys(family, familyBuildSources(files), nvcc, flags, readFileSync(PLAN_GOLDEN_FILE, "utf8"));
}

/**
 * The build key `podgen build` would give `family` with this nvcc version and extra flags, without
 * building (as buildKeyFor is for a spec).
 */
export function familyBuildKeyFor(family: FamilySpec, nvcc: string, extraFlags: readonly string[] = []): string {
  return keysOf(family, generateFamilySources(family), nvcc, familyNvccFlags(family, extraFlags)).build;
}

/** The timing key a build of `family` would get, without building: what a cost model's recorded key is compared with. */
export function familyTimingKeyFor(family: FamilySpec, nvcc: string, extraFlags: readonly string[] = []): string {
  return keysOf(family, generateFamilySources(family), nvcc, familyNvccFlags(family, extraFlags)).timing;
}

// Every member shares the target (dsl/family.ts), hence the flags.
const familyNvccFlags = (family: FamilySpec, extraFlags?: readonly string[]) => nvccFlags(family.members[0]!, extraFlags);

async function planFamilyBuild(family: FamilySpec, options: BuildOptions) {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const files = generateFamilySources(family);
  const flags = familyNvccFlags(family, options.extraFlags);
  const nvcc = await nvccVersion();
  const { build: key, timing: timingKey } = keysOf(family, files, nvcc, flags);
  const dir = join(cacheDir, "builds", `${family.name}-${key}`);
  return { cacheDir, files, flags, nvcc, key, timingKey, dir, libraryName: libraryFileName(family) };
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
  const { cacheDir, files, flags, nvcc, key, timingKey, dir, libraryName } = await planFamilyBuild(family, options);
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
      timingKey,
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

