// Compiling `podgen tune`'s candidates: every candidate through the content-hash build cache
// (codegen/build.ts; a re-run compiles nothing), `jobs` nvcc processes at a time. Build failures are
// recorded in the tuning database, never thrown. `writeArtifacts` lays the libraries out for a GPU
// machine without node or podgen (bench/tune/main.ts reads them there).
import { mkdirSync, readFileSync } from "node:fs";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../../codegen/fs.ts";
import { buildKernel, type BuildResult } from "../../codegen/build.ts";
import { specFields, type Candidate, type KernelSpec, type SpacePoint } from "../../dsl/index.ts";
import type { TuningStore } from "./db.ts";

export interface CompileOutcome {
  built: Map<string, BuildResult>;
  failed: { name: string; error: string }[];
}

export async function compileCandidates(
  cands: readonly Candidate[],
  store: TuningStore | undefined,
  opts: { jobs?: number; onDone?: (c: Candidate, r: BuildResult | Error) => void } = {},
): Promise<CompileOutcome> {
  const built = new Map<string, BuildResult>();
  const failed: CompileOutcome["failed"] = [];
  const queue = [...cands];
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const rec = store?.candidate(c);
      try {
        const r = await buildKernel(c.spec);
        built.set(c.name, r);
        if (rec) rec.build = { ok: true, seconds: r.cached ? (rec.build?.seconds ?? r.seconds) : r.seconds, warnings: r.manifest.warnings };
        opts.onDone?.(c, r);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        if (rec) rec.build = { ok: false, error };
        failed.push({ name: c.name, error });
        opts.onDone?.(c, e instanceof Error ? e : new Error(error));
      }
      store?.save();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs ?? availableParallelism(), cands.length)) }, worker));
  return { built, failed };
}

/** candidates.json of an artifacts folder: what bench/tune/main.ts needs besides the libraries. */
export interface ArtifactIndex {
  base: { name: string; fields: Record<string, unknown>; hash: string };
  candidates: { name: string; hash: string; fields: Record<string, unknown>; point: SpacePoint; isBase: boolean; library: string }[];
  pruned: { point: SpacePoint; reasons: string[] }[];
}

/**
 * Write the built candidates' libraries into `dir`, brotli-compressed (`.so.br`, about 5× smaller:
 * the default space's 28 libraries fit the device tool's carry limit), with candidates.json beside them.
 */
export function writeArtifacts(dir: string, base: KernelSpec, cands: readonly Candidate[], built: ReadonlyMap<string, BuildResult>, pruned: ArtifactIndex["pruned"]): string {
  mkdirSync(dir, { recursive: true });
  const index: ArtifactIndex = {
    base: { name: base.name, fields: specFields(base) as unknown as Record<string, unknown>, hash: base.hash },
    candidates: [],
    pruned,
  };
  for (const c of cands) {
    const b = built.get(c.name);
    if (!b) continue;
    const library = `${basename(b.library)}.br`;
    const packed = brotliCompressSync(readFileSync(b.library), { params: { [zlib.BROTLI_PARAM_QUALITY]: 9 } });
    writeFileAtomic(join(dir, library), packed);
    index.candidates.push({ name: c.name, hash: c.spec.hash, fields: specFields(c.spec) as unknown as Record<string, unknown>, point: c.point, isBase: c.isBase, library });
  }
  const path = join(dir, "candidates.json");
  writeFileAtomic(path, JSON.stringify(index, null, 1) + "\n");
  return path;
}
