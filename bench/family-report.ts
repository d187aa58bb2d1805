// What `podgen bench --family` reports: per batch, first what users get — the family planner's own
// choice ("auto") — then the preset (member 0, fused) and the best of every candidate, each as a
// speedup over our own serial (member 0's prefill-only then decode-only kernels) and over
// PyTorch's best serial; which candidate auto chose, and its predicted against its measured time.
// The paper's batches (which the model was fitted on) and the held-out ones (never fitted on) are
// summarised apart. Also the host's plan time. The table is printed from a report (also `--from`).
//
// Auto and the candidates are timed in the same interleaved rounds (bench/family-timing.ts). Auto's
// launch is always one of the candidates' (the plan plans with the chosen member alone; the timer
// checks the plans byte for byte), so one launch is timed twice, and two medians of one launch
// differ by noise alone. Auto is judged by the candidate's time (autoUs): then "auto / best" is
// exactly 1 where auto chose the fastest candidate, and otherwise the ratio of two candidates'
// medians from the same rounds, so the figure says how well auto chose and nothing else. Pooling
// the two timings would not do that: a pooled median against the best's own differs from 1 by
// noise again. Auto's own time is kept and reported beside it (autoOwnOverCandidate): the check
// that the launch users get costs what the candidate does (`run` adds nothing the candidate's
// run lacks), and the spread of that ratio over the batches is the bench's noise.
import type { ChoiceReason, Mode } from "../runtime/index.ts";
import type { AutoTiming, CandidateTiming } from "./family-timing.ts";
import { geomean, upperMedian } from "./stats.ts";
import { table } from "./table.ts";
import { torchBestSerial, type TorchPart, type TorchReport, type TorchWorkload } from "./torch.ts";
import { batchLengths, type FamilyBatch } from "./family-batches.ts";

/** Speedups of one way of running a batch: our serial's time over its time, and PyTorch's. */
export interface Speedups {
  vsOwnSerial: number | null;
  vsTorch: number | null;
}

export type ReportedSet = "paper" | "heldout";

export interface FamilyBenchBatch {
  name: string;
  set: ReportedSet;
  prefills: [number, number][];
  decodes: number[];
  /** What users get: the plan with no forcing (the stored cost model, else the static rule); `auto.us` is its own launch's time. */
  auto: AutoTiming;
  /**
   * The time auto is judged by (its speedups, autoOverBest): the time of the candidate whose
   * launch auto's is (auto.sameLaunchAsCandidate) where both were timed, else auto's own.
   */
  autoUs: number | null;
  /** Auto's own time over that candidate's (the same launch timed twice: noise); null where auto is judged by its own. */
  autoOwnOverCandidate: number | null;
  /** The preset: member 0, fused. */
  presetUs: number | null;
  /** The fastest candidate timed (every member fused and serial). */
  best: { member: string; mode: Mode; us: number } | null;
  /** Our own serial: member 0's prefill-only then decode-only kernels. */
  ownSerialUs: number | null;
  /** PyTorch's best serial; null where it lacked an op (torchSerialMissing) or did not run. */
  torchSerialUs: number | null;
  torchSerialMissing: TorchPart[];
  speedup: { auto: Speedups; preset: Speedups; best: Speedups };
  /** autoUs over the fastest candidate's time (1: it ran the fastest). */
  autoOverBest: number | null;
  candidates: CandidateTiming[];
  torch: TorchWorkload | null;
  errors: string[];
}

/** Geometric means over the batches of one set that have each figure. */
export interface FamilySetSummary {
  batches: number;
  speedup: { auto: Speedups; preset: Speedups; best: Speedups };
  autoOverBest: number | null;
  /** Batches on which auto chose the fastest candidate. */
  autoChoseFastest: number;
  /** Median |predicted − measured| / measured of auto's choice; null without a cost model. */
  autoMedianPredictionError: number | null;
  /** autoOwnOverCandidate over the batches that have it: the same launch timed twice, so the bench's noise; null where none has. */
  autoOwnOverCandidate: { batches: number; median: number; min: number; max: number } | null;
}

/** The planner's host time on one mixed batch. */
export interface PlanTime {
  requests: number;
  prefills: number;
  decodes: number;
  /** What the planner chose for it (FamilyPlan.describe()). */
  choice: string;
  /** The planner alone: <prefix>_plan_benchmark's loop in C, µs per plan. */
  cUsPerPlan: number;
  cIters: number;
  /** FamilyLibrary.plan from TypeScript: koffi marshalling, a sizing call and the plan, µs per plan. */
  bindingUsPerPlan: number;
  bindingIters: number;
}

export interface FamilyBenchReport {
  kind: "family-bench";
  version: 1;
  family: string;
  familyHash: string;
  buildKey: string;
  gpu: string;
  driver: string;
  cuda: string;
  sms: number;
  commit: string;
  date: string;
  iters: number;
  warmup: number;
  /** How the launches were timed: in interleaved rounds (bench/family-timing.ts); absent in reports before, which timed each launch apart. */
  timing?: "interleaved";
  /** The model auto planned with: stored for this GPU and the build's timing key (its kernels and plans), or none (then the static rule) and why. */
  costModel: { used: boolean; fitted: string | null; why: string | null };
  /** The serving mix and seed of the held-out batches. */
  heldOut: { mix: string; seed: number };
  torch: Omit<TorchReport, "workloads"> | null;
  planTime: PlanTime;
  batches: FamilyBenchBatch[];
  summary: Record<ReportedSet, FamilySetSummary>;
  /** The paper batch of the preset's heads (bench/family-batches.ts paperStyleBatch); absent in reports before it, null where --filter left it out. */
  paperStyle?: string | null;
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a !== null && a !== undefined && b !== null && b !== undefined && b > 0 ? a / b : null);

/** One batch's row of the report from its timings (the candidates and auto) and PyTorch's entry. */
export function familyBatchResult(batch: FamilyBatch & { set: ReportedSet }, candidates: readonly CandidateTiming[], auto: AutoTiming, torch: TorchWorkload | null, memberNames: readonly string[]): FamilyBenchBatch {
  const member0 = memberNames[0]!;
  const of = (member: string, mode: Mode) => candidates.find((c) => c.member === member && c.mode === mode)?.us ?? null;
  const timed = candidates.filter((c): c is CandidateTiming & { us: number } => c.us !== null);
  const fastest = timed.length ? timed.reduce((a, c) => (c.us < a.us ? c : a)) : null;
  const ownSerialUs = of(member0, "serial");
  const presetUs = of(member0, "fused");
  const torchSerial = torchBestSerial(torch, batch.shape);
  const torchUs = torchSerial.ms === null ? null : torchSerial.ms * 1000;
  const speedups = (us: number | null): Speedups => ({ vsOwnSerial: ratio(ownSerialUs, us), vsTorch: ratio(torchUs, us) });
  // The candidate of auto's launch, where both were timed: auto is judged by its time (the top of the file).
  const twinUs = auto.sameLaunchAsCandidate && auto.us !== null ? of(auto.member, auto.mode) : null;
  const autoUs = twinUs ?? auto.us;
  return {
    name: batch.name,
    set: batch.set,
    ...batchLengths(batch.shape),
    auto,
    autoUs,
    autoOwnOverCandidate: ratio(auto.us, twinUs),
    presetUs,
    best: fastest && { member: fastest.member, mode: fastest.mode, us: fastest.us },
    ownSerialUs,
    torchSerialUs: torchUs,
    torchSerialMissing: torchSerial.missing,
    speedup: { auto: speedups(autoUs), preset: speedups(presetUs), best: speedups(fastest?.us ?? null) },
    autoOverBest: ratio(autoUs, fastest?.us),
    candidates: [...candidates],
    torch,
    errors: [
      ...(auto.error ? [`auto (${auto.member} ${auto.mode}): ${auto.error}`] : []),
      ...candidates.flatMap((c) => (c.error ? [`${c.member} ${c.mode}: ${c.error}`] : [])),
    ],
  };
}

export function summarizeSet(batches: readonly FamilyBenchBatch[]): FamilySetSummary {
  const speedups = (of: (b: FamilyBenchBatch) => Speedups): Speedups => ({
    vsOwnSerial: geomean(batches.map((b) => of(b).vsOwnSerial)),
    vsTorch: geomean(batches.map((b) => of(b).vsTorch)),
  });
  const errors = batches.flatMap((b) => (b.auto.predictedUs !== null && b.autoUs !== null ? [Math.abs(b.auto.predictedUs - b.autoUs) / b.autoUs] : []));
  const twins = batches.flatMap((b) => (b.autoOwnOverCandidate === null ? [] : [b.autoOwnOverCandidate]));
  return {
    batches: batches.length,
    speedup: { auto: speedups((b) => b.speedup.auto), preset: speedups((b) => b.speedup.preset), best: speedups((b) => b.speedup.best) },
    autoOverBest: geomean(batches.map((b) => b.autoOverBest)),
    autoChoseFastest: batches.filter((b) => b.best && b.best.member === b.auto.member && b.best.mode === b.auto.mode).length,
    autoMedianPredictionError: upperMedian(errors),
    autoOwnOverCandidate: twins.length ? { batches: twins.length, median: upperMedian(twins)!, min: Math.min(...twins), max: Math.max(...twins) } : null,
  };
}

const f = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? "-" : x.toFixed(digits));
const x2 = (x: number | null) => (x === null ? "-" : `${x.toFixed(2)}x`);
/** A ratio as a signed percentage: 1.073 → "+7.3%". */
const pct = (r: number) => `${r >= 1 ? "+" : ""}${((r - 1) * 100).toFixed(1)}%`;
const reasonLabel: Record<ChoiceReason, string> = { "cost-model": "model", "static-rule": "rule", forced: "forced", "serial-margin": "serial margin" };

function setTable(batches: readonly FamilyBenchBatch[]): string {
  const header = [
    "batch", "auto µs", "own launch µs", "auto chose", "predicted µs", "x serial", "x torch",
    "preset µs", "x serial", "x torch", "best µs", "best of family", "x serial", "x torch", "serial µs", "torch µs",
  ];
  const rows = batches.map((b) => [
    b.name,
    f(b.autoUs, 1),
    b.autoOwnOverCandidate === null ? f(b.auto.us, 1) : `${f(b.auto.us, 1)} (${pct(b.autoOwnOverCandidate)})`,
    `${b.auto.member} ${b.auto.mode} (${reasonLabel[b.auto.reason]})`,
    f(b.auto.predictedUs, 1),
    x2(b.speedup.auto.vsOwnSerial),
    x2(b.speedup.auto.vsTorch),
    f(b.presetUs, 1),
    x2(b.speedup.preset.vsOwnSerial),
    x2(b.speedup.preset.vsTorch),
    f(b.best?.us, 1),
    b.best ? `${b.best.member} ${b.best.mode}` : "-",
    x2(b.speedup.best.vsOwnSerial),
    x2(b.speedup.best.vsTorch),
    f(b.ownSerialUs, 1),
    b.torchSerialMissing.length ? `no ${b.torchSerialMissing.join("+")}` : f(b.torchSerialUs, 1),
  ]);
  return table(header, rows, (c) => c !== 0 && c !== 3 && c !== 11);
}

const pair = (x: Speedups) => `${x2(x.vsOwnSerial)} our serial, ${x2(x.vsTorch)} PyTorch`;

/** The batch with the least of a figure (ignoring batches without it), for the worst-case lines. */
function worst(batches: readonly FamilyBenchBatch[], of: (b: FamilyBenchBatch) => number | null): { name: string; value: number } | null {
  return batches.reduce<{ name: string; value: number } | null>((w, b) => {
    const v = of(b);
    return v !== null && (w === null || v < w.value) ? { name: b.name, value: v } : w;
  }, null);
}

function summaryLines(label: string, s: FamilySetSummary, batches: readonly FamilyBenchBatch[]): string[] {
  const vsBest = worst(batches, (b) => (b.autoOverBest === null ? null : 1 / b.autoOverBest));
  const vsSerial = worst(batches, (b) => b.speedup.auto.vsOwnSerial);
  const at = (w: { name: string; value: number } | null) => (w ? `${x2(w.value)} (${w.name})` : "-");
  return [
    `${label}: auto / best-of-family ${f(s.autoOverBest, 3)} (time ratio, geomean; chose the fastest on ${s.autoChoseFastest} of ${s.batches}), ` +
      `auto's predicted vs measured: median |error| ${s.autoMedianPredictionError === null ? "-" : `${(s.autoMedianPredictionError * 100).toFixed(1)}%`}`,
    `  geomean speedups: auto ${pair(s.speedup.auto)}; preset ${pair(s.speedup.preset)}; best-of-family ${pair(s.speedup.best)}`,
    `  worst batch: auto ${at(vsBest)} the speed of the best of the family, ${at(vsSerial)} our serial's`,
    ...(s.autoOwnOverCandidate
      ? [
          `  auto's own launch against the same launch timed as a candidate: median ${pct(s.autoOwnOverCandidate.median)}, ` +
            `${pct(s.autoOwnOverCandidate.min)}..${pct(s.autoOwnOverCandidate.max)} over ${s.autoOwnOverCandidate.batches} batches (noise: auto is judged by the candidate's time)`,
        ]
      : []),
  ];
}

/** The paper-style batch's line: what auto ran and its speedups. */
function paperStyleLine(r: FamilyBenchReport): string[] {
  const b = r.paperStyle ? r.batches.find((x) => x.name === r.paperStyle) : undefined;
  if (!b) return [];
  return ["", `paper-style batch ${b.name}: auto ${f(b.autoUs, 1)} µs (${b.auto.member} ${b.auto.mode}), ${pair(b.speedup.auto)}; preset ${pair(b.speedup.preset)}; best-of-family ${pair(b.speedup.best)}`];
}

/** The table printed last: paper batches, then held-out batches, each with its geomean lines; the plan time. */
export function formatFamilyTable(r: FamilyBenchReport): string {
  const paper = r.batches.filter((b) => b.set === "paper");
  const heldOut = r.batches.filter((b) => b.set === "heldout");
  const p = r.planTime;
  const errors = r.batches.flatMap((b) => b.errors.map((e) => `error: ${b.name}: ${e}`));
  return [
    `${r.family} on ${r.gpu} (driver ${r.driver}, ${r.sms} SMs), commit ${r.commit}, build ${r.buildKey}; µs are medians of ${r.iters} ` +
      (r.timing === "interleaved" ? `interleaved rounds (every candidate, then auto) after ${r.warmup} warm-up rounds` : `iterations after ${r.warmup} warm-up, each launch timed apart`),
    ...(r.timing === "interleaved"
      ? ["auto µs: the time of the candidate whose launch auto's is (same member, mode and plan); own launch µs: auto timed as planned, against that candidate"]
      : []),
    r.costModel.used ? `auto: the cost model fitted ${r.costModel.fitted} for this GPU and these kernels and plans (the timing key)` : `auto: the static rule (${r.costModel.why})`,
    ...(paper.length ? ["", `paper batches (${paper.length}; the model was fitted on them):`, setTable(paper), ...summaryLines("paper", r.summary.paper, paper)] : []),
    ...(heldOut.length
      ? ["", `held-out batches (${heldOut.length}; ${r.heldOut.mix} mix, seed ${r.heldOut.seed}, never fitted on):`, setTable(heldOut), ...summaryLines("held-out", r.summary.heldout, heldOut)]
      : []),
    ...paperStyleLine(r),
    "",
    `host plan time, ${p.requests} requests (${p.prefills} prefill chunks + ${p.decodes} decodes), chose ${p.choice}: ` +
      `${p.cUsPerPlan.toFixed(2)} µs per plan in C (the planner alone, ${p.cIters} plans), ` +
      `${p.bindingUsPerPlan.toFixed(2)} µs through FamilyLibrary.plan (koffi marshalling + a sizing call + the plan, ${p.bindingIters} plans)`,
    ...errors,
  ].join("\n");
}
