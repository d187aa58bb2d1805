// Building the specs of a command (build, verify, bench) with progress on stderr: a bar on a
// terminal, else a line per finished build.
import { SingleBar, Presets as BarStyles } from "cli-progress";
import { buildMany, type BuildResult } from "../codegen/build.ts";
import type { KernelSpec } from "../dsl/index.ts";

/** Every spec built (or taken from the cache), in order; throws the first failure once all are done. */
export async function buildAll(specs: readonly KernelSpec[], opts: { force?: boolean; jobs: number; quiet: boolean }): Promise<BuildResult[]> {
  const bar =
    specs.length > 1 && !opts.quiet && process.stderr.isTTY
      ? new SingleBar({ format: "building [{bar}] {value}/{total} {names} | {duration}s", stream: process.stderr }, BarStyles.shades_classic)
      : undefined;
  bar?.start(specs.length, 0, { names: "" });
  const running = new Set<string>();
  let done = 0;
  let outcomes: (BuildResult | Error)[];
  try {
    outcomes = await buildMany(specs, {
      force: opts.force,
      jobs: opts.jobs,
      onStart: (spec) => {
        running.add(spec.name);
        bar?.update({ names: [...running].join(", ") });
      },
      onDone: (spec, outcome) => {
        running.delete(spec.name);
        done++;
        if (bar) bar.update(done, { names: [...running].join(", ") });
        else if (specs.length > 1 && !opts.quiet) {
          const what = outcome instanceof Error ? "FAILED" : outcome.cached ? "cached" : `built in ${outcome.seconds.toFixed(1)} s`;
          console.error(`[${done}/${specs.length}] ${spec.name} ${what}`);
        }
      },
    });
  } finally {
    bar?.stop();
  }
  const failed = outcomes.find((o): o is Error => o instanceof Error);
  if (failed) throw failed;
  return outcomes as BuildResult[];
}
