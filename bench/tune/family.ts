// `podgen tune --family`: time every candidate of a config family (each member fused and serial),
// interleaved in rounds as the bench times them (bench/family-timing.ts), on the fit batches (bench/family-batches.ts: the paper's and serving-like ones from the fit
// seed), fit the family's per-GPU cost model on those times (bench/tune/cost-model.ts) and say how
// well it predicts and chooses on them. The raw times are a file of their own (FamilyTimings,
// `--out`), so the fit can be redone from it without a GPU (`--from`).
import type { Device, FamilyLibrary } from "../../runtime/index.ts";
import { batchLengths, describeShape, type BatchSet, type FamilyBatch } from "../family-batches.ts";
import { FamilyTimer, type CandidateTiming } from "../family-timing.ts";
import { table } from "../table.ts";
import { evaluateCostModel, fitCostModel, predictUs, type TimingRecord } from "./cost-model.ts";
import type { CostModel } from "../../runtime/index.ts";

/** The raw times of a family's candidates on its fit batches (what the model is fitted on). */
export interface FamilyTimings {
  kind: "family-timings";
  version: 1;
  family: string;
  familyHash: string;
  /** The family build timed. */
  buildKey: string;
  /**
   * Its timing key (codegen/family.ts): a model fitted on these times is used by the builds of this
   * key, the same kernels and plans. Absent in files before it (stop 34): their models match no build.
   */
  timingKey?: string;
  gpu: string;
  driver: string;
  sms: number;
  commit: string;
  date: string;
  iters: number;
  warmup: number;
  /** How the candidates were timed: in interleaved rounds (bench/family-timing.ts); absent in files before, which timed each apart. */
  timing?: "interleaved";
  /** How the generated fit batches were drawn (the bench draws its held-out batches apart from them). */
  fitSet: FitSet;
  /** The planner's feature names and the members, in the library's order. */
  features: string[];
  members: string[];
  batches: {
    name: string;
    set: BatchSet;
    prefills: [number, number][];
    decodes: number[];
    candidates: CandidateTiming[];
  }[];
}

/** The serving mix, seed and number of the generated fit batches. */
export interface FitSet {
  mix: string;
  seed: number;
  count: number;
  /** Light-decode batches after them (bench/family-batches.ts lightDecodeMix); absent in records before: none. */
  lightDecode?: number;
}

export interface TimeFamilyOptions {
  family: string;
  fitSet: FitSet;
  familyHash: string;
  buildKey: string;
  timingKey: string;
  commit: string;
  iters: number;
  warmup: number;
  log?: (line: string) => void;
}

/** Times every candidate on every batch (GPU). */
export function timeFamily(device: Device, lib: FamilyLibrary, batches: readonly FamilyBatch[], o: TimeFamilyOptions): FamilyTimings {
  const log = o.log ?? (() => {});
  const timer = new FamilyTimer(device, lib, { iters: o.iters, warmup: o.warmup, log });
  try {
    const timed = batches.map((b, i) => {
      log(`[${i + 1}/${batches.length}] ${b.name} (${b.set}): ${describeShape(b.shape)}`);
      return {
        name: b.name,
        set: b.set,
        ...batchLengths(b.shape),
        candidates: timer.timeBatch(b).candidates,
      };
    });
    return {
      kind: "family-timings",
      version: 1,
      family: o.family,
      familyHash: o.familyHash,
      buildKey: o.buildKey,
      timingKey: o.timingKey,
      gpu: device.info.name,
      driver: device.info.driverVersion,
      sms: device.sms,
      commit: o.commit,
      date: new Date().toISOString(),
      iters: o.iters,
      warmup: o.warmup,
      timing: "interleaved",
      fitSet: o.fitSet,
      features: [...lib.featureNames],
      members: [...lib.memberNames],
      batches: timed,
    };
  } finally {
    timer.destroy();
  }
}

/** The timed candidates as the fit's records (failed ones left out). */
export function timingRecords(t: FamilyTimings): TimingRecord[] {
  return t.batches.flatMap((b) =>
    b.candidates.flatMap((c) => (c.us === null ? [] : [{ workload: b.name, member: c.member, mode: c.mode, features: c.features, us: c.us }])),
  );
}

/**
 * Fits the cost model on the timings. Its `fit` records how the generated batches were drawn
 * (fitSet), when they were timed, and how the model predicts and chooses on them (onFitSet).
 */
export function fitFamilyTimings(t: FamilyTimings, date = new Date().toISOString()): CostModel {
  if (t.timingKey === undefined)
    throw new RangeError(`timings of ${t.family} on ${t.gpu} (build ${t.buildKey}, ${t.date}) have no timingKey: recorded before timing keys, so no build could use a model fitted on them; time them again`);
  const records = timingRecords(t);
  const model = fitCostModel(records, { gpu: t.gpu, family: t.family, timingKey: t.timingKey, memberNames: t.members, featureNames: t.features, date });
  const evaluation = evaluateCostModel(model, records);
  return { ...model, fit: { ...model.fit, batches: t.batches.length, fitSet: t.fitSet, timed: t.date, onFitSet: evaluation } };
}

const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);
const us = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x.toFixed(1));

/** The serial margin's bounds, a line per member: [low, high] of (measured - predicted) / predicted, fused then serial. */
function errorBoundLines(model: CostModel): string[] {
  const b = model.errorBounds;
  if (!b) return [];
  const range = (x: [number, number] | null) => (x ? `${pct(x[0])}..${pct(x[1])}` : "-");
  const q = `${Math.round((1 - b.quantile) * 100)}th..${Math.round(b.quantile * 100)}th percentile`;
  return Object.entries(b.members).map(([member, m]) => `error bounds (${q} of (measured - predicted) / predicted), ${member}: fused ${range(m.fused)}, serial ${range(m.serial)}`);
}

/** The fit's report: its errors, then per batch the fastest candidate against the model's pick. */
export function formatFit(t: FamilyTimings, model: CostModel): string {
  const records = timingRecords(t);
  const ev = evaluateCostModel(model, records);
  const failed = t.batches.flatMap((b) => b.candidates.filter((c) => c.us === null).map((c) => `${b.name}: ${c.member} ${c.mode}: ${c.error ?? "no time"}`));
  const rows = t.batches.map((b) => {
    const timed = b.candidates.filter((c) => c.us !== null);
    const best = timed.length ? timed.reduce((a, c) => (c.us! < a.us! ? c : a)) : null;
    const predicted = timed.map((c) => ({ c, p: predictUs(model, c) })).filter((x) => x.p !== null);
    const pick = predicted.length ? predicted.reduce((a, x) => (x.p! < a.p! ? x : a)) : null;
    return [
      b.name,
      b.set,
      best ? `${best.member} ${best.mode}` : "-",
      us(best?.us),
      pick ? `${pick.c.member} ${pick.c.mode}` : "-",
      us(pick?.p),
      us(pick?.c.us),
      best && pick ? (pick.c.us! / best.us!).toFixed(3) : "-",
    ];
  });
  return [
    `${t.family} on ${t.gpu} (build ${t.buildKey}, timing key ${model.timingKey}): ${t.batches.length} batches x ${t.members.length * 2} candidates, ${records.length} timed; medians of ${t.iters} ${t.timing === "interleaved" ? "interleaved rounds" : "iterations, each candidate timed apart,"} after ${t.warmup} warm-up`,
    table(["batch", "set", "fastest", "µs", "model's pick", "predicted µs", "measured µs", "pick / fastest"], rows, (c) => [3, 5, 6, 7].includes(c)),
    `fit: median |error| ${pct(ev.medianRelError)}, max ${pct(ev.maxRelError)}; geomean pick / fastest ${ev.geomeanRegret?.toFixed(3) ?? "-"} (the lowest prediction, before the serial margin; on the batches it was fitted on; podgen bench --family judges the planner's choices on held-out ones)`,
    ...errorBoundLines(model),
    ...failed.map((f) => `failed: ${f}`),
  ].join("\n");
}
