// The top-k table of tuning results (`podgen tune --report`, and after a run), from entries of the
// tuning database, and its bar chart (`--plot`, through bench/plot.ts's renderer). No GPU, no codegen.
import { writeFileSync } from "node:fs";
import type { TopLevelSpec } from "vega-lite";
import { describePoint } from "../../dsl/index.ts";
import { vegaLiteToSvg } from "../plot.ts";
import { table } from "../table.ts";
import { rankEntry, type Entry } from "./db.ts";

/** The space a report's pruning figure is of, recomputed by the caller (the database keeps no pruned points). */
export interface SpacePruning {
  /** Which space: "default" or its file. */
  space: string;
  points: number;
  pruned: number;
}

export function reportEntries(entries: Entry[], top: number, json: boolean, pruning?: SpacePruning): void {
  if (json) {
    console.log(JSON.stringify(entries.map((e) => ({ key: e.key, ...(pruning ? { pruning } : {}), ranking: rankEntry(e).slice(0, top).map((r) => ({ name: r.record.name, totalMs: r.totalMs, point: r.record.point, perWorkload: Object.fromEntries(e.workloads.names.map((n, i) => [n, r.perWorkload[i]])) })), runs: e.runs })), null, 1));
    return;
  }
  for (const e of entries) {
    const ranked = rankEntry(e);
    const base = ranked.find((r) => r.record.isBase);
    const recs = Object.values(e.candidates);
    const wrong = recs.filter((r) => r.verify && !r.verify.pass);
    const buildFailed = recs.filter((r) => r.build && !r.build.ok);
    console.log(`${e.key}\n  ${recs.length} candidates recorded, ${ranked.length} fully measured, ${wrong.length} wrong (discarded), ${buildFailed.length} failed to build; updated ${e.updated}`);
    if (pruning) console.log(`  space (${pruning.space}): ${pruning.points} points, ${pruning.pruned} pruned by the resource model as it is now (\`--dry-run\` says why)`);
    console.log(
      table(
        ["#", "candidate", "total ms", base ? `vs ${base.record.name}` : "vs base", ...e.workloads.names.map((n) => n.slice(0, 24)), "point"],
        ranked.slice(0, top).map((r, i) => [
          i + 1,
          r.record.name,
          r.totalMs.toFixed(4),
          base ? `${((base.totalMs / r.totalMs - 1) * 100).toFixed(1)}%` : "-",
          ...r.perWorkload.map((x) => x.toFixed(4)),
          r.record.isBase ? "(base spec)" : describePoint(r.record.point),
        ]),
      ),
    );
    for (const w of wrong) console.log(`  wrong: ${w.name}: ${w.verify!.problems.slice(0, 3).join("; ")}`);
    for (const run of e.runs.slice(-5)) {
      console.log(
        `  run ${run.date.slice(0, 16)} ${run.strategy}: ${run.candidates} candidates, ${run.fullEvaluations.toFixed(1)} full evaluations (${((run.cost / run.exhaustiveCost) * 100).toFixed(0)}% of exhaustive)` +
          `${run.best ? `, best ${run.best.name} ${run.best.totalMs.toFixed(4)} ms` : ""}${run.gapToBest !== null ? `, gap to the entry's best ${(run.gapToBest * 100).toFixed(2)}%` : ""}${run.stopped ? ` (stopped: ${run.stopped})` : ""}`,
      );
    }
    console.log("");
  }
}


/** Total ms of each entry's top-k candidates, one bar chart per entry. */
export function tunePlotSpec(entries: Entry[], top: number): TopLevelSpec {
  const values = entries.flatMap((e) => rankEntry(e).slice(0, top).map((r) => ({ entry: `${e.gpu.name} | ${e.workloads.label}`, candidate: r.record.isBase ? `${r.record.name} (base)` : r.record.name, ms: r.totalMs })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "podgen tune — total ms of the workload mix (lower is better)" },
    data: { values },
    facet: { row: { field: "entry", title: null, header: { labelAngle: 0, labelAlign: "left", labelLimit: 600 } } },
    spec: { width: 600, mark: "bar", encoding: { y: { field: "candidate", sort: "x", title: null }, x: { field: "ms", type: "quantitative", title: "ms" }, color: { field: "candidate", legend: null } } },
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

/** Writes the chart of `tunePlotSpec` to `out` (SVG); returns `out`. */
export async function plotEntries(entries: Entry[], top: number, out: string): Promise<string> {
  writeFileSync(out, await vegaLiteToSvg(tunePlotSpec(entries, top)));
  return out;
}
