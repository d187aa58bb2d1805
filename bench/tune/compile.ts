// Compiling `podgen tune`'s candidates: every candidate through the content-hash build cache
// (codegen/build.ts; a re-run compiles nothing), `jobs` nvcc processes at a time. Build failures are
// recorded in the tuning database, never thrown. A candidate whose build key changed since it was
// measured loses its verdict and timings.
import { availableParallelism } from "node:os";
import { buildKernel, type BuildResult } from "../../codegen/build.ts";
import type { Candidate } from "../../dsl/index.ts";
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
        if (rec) {
          // Same spec, different kernel (podgen's templates or nvcc changed): what was measured
          // of the old build says nothing about this one, so it is verified and timed again.
          if (rec.build?.key !== undefined && rec.build.key !== r.manifest.buildKey) {
            delete rec.verify;
            rec.timings = {};
          }
          rec.build = { ok: true, key: r.manifest.buildKey, seconds: r.cached ? (rec.build?.seconds ?? r.seconds) : r.seconds, warnings: r.manifest.warnings };
        }
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
