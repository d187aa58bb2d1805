// The top-k table of tuning results (`podgen tune --report`, and after a run), from entries of the
// tuning database. Plain text; no GPU, no codegen.
import { describePoint } from "../../dsl/index.ts";
import { table } from "../table.ts";
import { rankEntry, type Entry } from "./db.ts";

export function reportEntries(entries: Entry[], top: number, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(entries.map((e) => ({ key: e.key, ranking: rankEntry(e).slice(0, top).map((r) => ({ name: r.record.name, totalMs: r.totalMs, point: r.record.point, perWorkload: Object.fromEntries(e.workloads.names.map((n, i) => [n, r.perWorkload[i]])) })), runs: e.runs })), null, 1));
    return;
  }
  for (const e of entries) {
    const ranked = rankEntry(e);
    const base = ranked.find((r) => r.record.isBase);
    const recs = Object.values(e.candidates);
    const wrong = recs.filter((r) => r.verify && !r.verify.pass);
    const buildFailed = recs.filter((r) => r.build && !r.build.ok);
    console.log(`${e.key}\n  ${recs.length} candidates recorded, ${ranked.length} fully measured, ${wrong.length} wrong (discarded), ${buildFailed.length} failed to build; updated ${e.updated}`);
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

