// Compiling `podgen tune`'s candidates: every candidate through the content-hash build cache
// (codegen/build.ts; a re-run compiles nothing), `jobs` nvcc processes at a time. Build failures are
// recorded in the tuning database, never thrown. A candidate whose build key changed since it was
// measured loses its verdict and timings.
import { buildMany, type BuildResult } from "../../codegen/build.ts";
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
  await buildMany(
    cands.map((c) => c.spec),
    {
      jobs: opts.jobs,
      onDone: (_spec, r, i) => {
        const c = cands[i]!;
        const rec = store?.candidate(c);
        if (r instanceof Error) {
          if (rec) rec.build = { ok: false, error: r.message };
          failed.push({ name: c.name, error: r.message });
        } else {
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
        }
        opts.onDone?.(c, r);
        store?.save();
      },
    },
  );
  return { built, failed };
}
