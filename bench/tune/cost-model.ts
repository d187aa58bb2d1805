// The per-GPU cost model of a config family: for each member and mode (fused, serial), a linear
// model of its time in µs over the features the family's planner computes
// (templates/family/select.h; every timing record carries them as the plan reported them, so they
// are computed once, in C). Fitted by weighted least squares, each record weighted by 1 / its time²
// so that the fit minimises the squared relative error (a 60 µs batch counts as much as a 1 ms one).
// Each candidate also gets error bounds, quantiles of its relative residuals on those records: the
// planner's serial margin (templates/family/select.h) asks a fused pick to beat serial by them.
//
// Models are kept in bench/tuning/cost-models.json, keyed by GPU name + the family's build key: a
// model measured on other kernels (another build key) is never used, as with `build --tuned`. The
// store keeps one model a family and GPU, the latest fit: a re-tune after a template change
// replaces the model of the old kernels rather than leaving it behind, stale.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../../codegen/fs.ts";
import { PACKAGE_ROOT } from "../../codegen/paths.ts";
import { readJsonFile } from "../../codegen/json.ts";
import { costModelSchema, MODES, type CostModel, type Mode } from "../../runtime/family.ts";
import { geomean, quantile, upperMedian } from "../stats.ts";

// From the package root, which the bundled CLI (.gpu/podgen.mjs) resolves too (codegen/paths.ts).
export const DEFAULT_COST_MODELS = join(PACKAGE_ROOT, "bench", "tuning", "cost-models.json");

/** One timed candidate on one batch. */
export interface TimingRecord {
  workload: string;
  member: string;
  mode: Mode;
  /** As the family's plan reported them, in its feature order. */
  features: number[];
  us: number;
}

/**
 * Solves min Σ w_i (x_i · c − y_i)² for c (normal equations, Cholesky). On the scaled system a
 * ridge of 1e-12 keeps a rank-deficient one (a feature constant over every record, e.g. one wave)
 * solvable without visibly moving a well-determined fit.
 */
export function leastSquares(x: readonly (readonly number[])[], y: readonly number[], w: readonly number[] = y.map(() => 1)): number[] {
  const n = x[0]?.length ?? 0;
  if (x.length !== y.length || x.length !== w.length || x.some((r) => r.length !== n)) throw new RangeError("leastSquares: rows, targets and weights must agree in length");
  const a = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const b = new Array<number>(n).fill(0);
  x.forEach((row, r) => {
    for (let i = 0; i < n; i++) {
      b[i]! += w[r]! * row[i]! * y[r]!;
      for (let j = 0; j < n; j++) a[i]![j]! += w[r]! * row[i]! * row[j]!;
    }
  });
  // Columns scaled to a unit diagonal, so that the ridge weighs every feature alike.
  const scale = a.map((row, i) => (row[i]! > 0 ? Math.sqrt(row[i]!) : 1));
  for (let i = 0; i < n; i++) {
    b[i]! /= scale[i]!;
    for (let j = 0; j < n; j++) a[i]![j]! /= scale[i]! * scale[j]!;
    a[i]![i]! += 1e-12;
  }
  // Cholesky a = L Lᵀ, then L z = b, Lᵀ c = z.
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j]![j]!;
    }
  }
  const z = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * z[k]!;
    z[i] = s / l[i]![i]!;
  }
  const c = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k]![i]! * c[k]!;
    c[i] = s / l[i]![i]!;
  }
  return c.map((ci, i) => ci / scale[i]!);
}

export interface FitOptions {
  gpu: string;
  family: string;
  timingKey: string;
  memberNames: readonly string[];
  featureNames: readonly string[];
  date?: string;
  /** The error bounds' quantile (default ERROR_BOUND_QUANTILE; bench/replay-margin.ts tries others). */
  quantile?: number;
}

/**
 * The quantile of each candidate's relative residuals that bounds its error (errorBounds). The
 * planner runs fused only where the fused pick, at its high bound, beats the best serial at its low
 * bound (templates/family/select.h, serial margin). At 0.5 both bounds are the candidate's median
 * residual: each prediction is corrected by its own bias and no risk premium is charged. The
 * premium did not pay: replaying the stop-21 H100 records of the five dense families
 * (bench/replay-margin.ts; bench/NOTES.md, "serial margin"), every quantile above 0.5 ran serial
 * on some batches where fused was faster (yi_6b held-out worst 0.88x the best at 0.8, 1.00x at
 * 0.5) and none ever avoided a fused launch slower than serial; leave-one-batch-out on the fit
 * sets agreed.
 */
export const ERROR_BOUND_QUANTILE = 0.5;

/** [low, high] quantiles of (measured - predicted) / predicted over the records (those predicted > 0); null without any. */
function errorBound(coefficients: readonly number[], rs: readonly TimingRecord[], q: number): [number, number] | null {
  const residuals = rs.flatMap((r) => {
    const p = coefficients.reduce((s, c, i) => s + c * r.features[i]!, 0);
    return p > 0 ? [(r.us - p) / p] : [];
  });
  const low = quantile(residuals, 1 - q);
  const high = quantile(residuals, q);
  return low === null || high === null ? null : [low, high];
}

/**
 * Fits every (member, mode) that has at least as many records as features, and its error bounds
 * on those records; the others stay null.
 */
export function fitCostModel(records: readonly TimingRecord[], o: FitOptions): CostModel {
  const q = o.quantile ?? ERROR_BOUND_QUANTILE;
  const members: CostModel["members"] = {};
  const bounds: NonNullable<CostModel["errorBounds"]>["members"] = {};
  for (const member of o.memberNames) {
    const row = { fused: null, serial: null } as CostModel["members"][string];
    const bound = { fused: null, serial: null } as NonNullable<CostModel["errorBounds"]>["members"][string];
    for (const mode of MODES) {
      const rs = records.filter((r) => r.member === member && r.mode === mode && Number.isFinite(r.us) && r.us > 0);
      if (rs.length >= o.featureNames.length) {
        const coefficients = leastSquares(rs.map((r) => r.features), rs.map((r) => r.us), rs.map((r) => 1 / (r.us * r.us)));
        row[mode] = coefficients;
        bound[mode] = errorBound(coefficients, rs, q);
      }
    }
    members[member] = row;
    bounds[member] = bound;
  }
  return {
    version: 1,
    gpu: o.gpu,
    family: o.family,
    timingKey: o.timingKey,
    features: [...o.featureNames],
    members,
    fit: { records: records.length, date: o.date ?? new Date().toISOString() },
    errorBounds: { quantile: q, members: bounds },
  };
}

/** The model's prediction for a record (null where it has no coefficients for its candidate). */
export function predictUs(model: CostModel, r: Pick<TimingRecord, "member" | "mode" | "features">): number | null {
  const c = model.members[r.member]?.[r.mode];
  return c ? c.reduce((s, ci, i) => s + ci * r.features[i]!, 0) : null;
}

/** How well the model predicts records, and how well it chooses: per batch, its pick's measured time over the best measured. */
export function evaluateCostModel(model: CostModel, records: readonly TimingRecord[]) {
  const errors = records.flatMap((r) => {
    const p = predictUs(model, r);
    return p === null ? [] : [Math.abs(p - r.us) / r.us];
  });
  const byWorkload = new Map<string, TimingRecord[]>();
  for (const r of records) byWorkload.set(r.workload, [...(byWorkload.get(r.workload) ?? []), r]);
  const regret = [...byWorkload.values()].map((rs) => {
    const best = Math.min(...rs.map((r) => r.us));
    const predicted = rs.filter((r) => predictUs(model, r) !== null);
    if (predicted.length === 0) return NaN;
    const pick = predicted.reduce((a, b) => (predictUs(model, b)! < predictUs(model, a)! ? b : a));
    return pick.us / best;
  });
  return {
    records: records.length,
    medianRelError: upperMedian(errors),
    maxRelError: errors.length ? Math.max(...errors) : null,
    /** Geometric mean over batches of (measured time of the model's pick / the best measured). */
    geomeanRegret: geomean(regret.filter(Number.isFinite)),
  };
}

const storeSchema = z.strictObject({ version: z.literal(1), models: z.array(costModelSchema) });
type Store = z.infer<typeof storeSchema>;

export function readCostModels(path = DEFAULT_COST_MODELS): Store {
  if (!existsSync(path)) return { version: 1, models: [] };
  return readJsonFile(storeSchema, path, `cost model file ${path}`);
}

/** Adds the model, replacing any earlier one of its family on its GPU (whatever build it was fitted on). */
export function writeCostModel(model: CostModel, path = DEFAULT_COST_MODELS): void {
  const store = readCostModels(path);
  const models = store.models.filter((m) => !(m.gpu === model.gpu && m.family === model.family));
  models.push(model);
  models.sort((a, b) => a.family.localeCompare(b.family) || a.gpu.localeCompare(b.gpu) || a.timingKey.localeCompare(b.timingKey));
  writeFileAtomic(path, JSON.stringify({ version: 1, models }, null, 2) + "\n");
}

/**
 * The model fitted on this GPU for a build of this timing key (the same kernels and plans: the
 * manifest's timingKey), or why there is none (the static rule then decides).
 */
export function findCostModel(family: string, gpu: string, timingKey: string, path = DEFAULT_COST_MODELS): { model: CostModel } | { model: null; why: string } {
  const mine = readCostModels(path).models.filter((m) => m.family === family);
  const hit = mine.find((m) => m.gpu === gpu && m.timingKey === timingKey);
  if (hit) return { model: hit };
  const sameGpu = mine.filter((m) => m.gpu === gpu);
  return {
    model: null,
    why: sameGpu.length > 0
      ? `the cost models of ${family} on ${gpu} were fitted on other kernels or plans (timing keys ${sameGpu.map((m) => m.timingKey).join(", ")}; this build's is ${timingKey}): run \`podgen tune --family ${family}\` again`
      : `no cost model of ${family} for ${gpu}: run \`podgen tune --family ${family}\` on it`,
  };
}
