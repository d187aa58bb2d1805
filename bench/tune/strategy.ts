// Search strategies of `podgen tune`, independent of the GPU: they decide which candidate to time
// on which workloads with how many iterations, through an injected `time` function (the real one
// is bench/tune/gpu.ts; tests pass a fake), and read/record every timing through the TuningStore so
// that a resumed run re-times nothing.
//
//   exhaustive  every candidate on every workload at full iterations.
//   halving     successive halving (Jamieson & Talwalkar 2016): rung r times the survivors at
//               fidelity f_r = eta^(r-R+1) — the first ⌈W·f⌉ workloads of the mix, with
//               iterations scaled so a rung costs ≈ f × a full evaluation (at least minIters) —
//               keeps the best 1/eta, and the last rung times the finalists in full.
//
// Cost is counted in timed launches (Σ iterations of every fresh measurement); a full evaluation
// of one candidate is workloads × iters launches, so `fullEvaluations` compares with exhaustive's
// candidate count.
import type { Candidate } from "../../dsl/index.ts";
import type { RunSummary, Timed, TuningStore } from "./db.ts";
import { rankEntry } from "./db.ts";

export type StrategyName = "exhaustive" | "halving";

/** Times candidates on one workload at `iters` iterations: median ms, or an error, per candidate name. */
export type TimeFn = (cands: readonly Candidate[], workload: string, iters: number) => Promise<Map<string, { ms: number | null; error?: string }>>;

export interface SearchOptions {
  strategy: StrategyName;
  /** Workload names of the mix, in order (halving's early rungs take a prefix). */
  workloads: readonly string[];
  iters: number;
  /** Halving: keep 1/eta per rung (default 3). */
  eta?: number;
  /** Fewest iterations of any measurement (default 5). */
  minIters?: number;
  /** Candidates timed per `time` call (default 8): the unit of persistence. */
  chunk?: number;
  /** Ignore the store's timings (they are still overwritten): for comparing strategies honestly. */
  fresh?: boolean;
  /** Stop starting new measurements once this returns a reason (a --minutes deadline, SIGINT). */
  shouldStop?: () => string | undefined;
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  done: number;
  total: number;
  rung: number;
  rungs: number;
  /** Best total of the current rung so far (on the rung's workloads). */
  best: { name: string; ms: number } | null;
}

export interface Rung {
  fidelity: number;
  workloads: string[];
  iters: number;
  /** Candidates timed in this rung. */
  size: number;
}

export interface SearchResult {
  strategy: StrategyName;
  rungs: Rung[];
  /** Final ranking: the last rung's candidates by total ms on the full mix (failed ones last, as Infinity). */
  ranking: { name: string; totalMs: number }[];
  best: { name: string; totalMs: number } | null;
  cost: number;
  fullEvaluations: number;
  exhaustiveCost: number;
  stopped?: string;
}

/** The rung plan of a strategy for `n` candidates (sizes assume nobody fails). */
export function planRungs(strategy: StrategyName, n: number, workloads: readonly string[], iters: number, eta = 3, minIters = 5): Rung[] {
  const W = workloads.length;
  const full = (size: number): Rung => ({ fidelity: 1, workloads: [...workloads], iters, size });
  if (strategy === "exhaustive" || n <= eta) return [full(n)];
  const R = Math.max(1, Math.ceil(Math.log(n) / Math.log(eta) - 1e-9));
  const rungs: Rung[] = [];
  let size = n;
  for (let r = 0; r < R; r++) {
    const f = eta ** (r - R + 1);
    const k = Math.min(W, Math.max(1, Math.ceil(W * f - 1e-9)));
    const it = Math.min(iters, Math.max(minIters, Math.round((iters * f * W) / k)));
    rungs.push({ fidelity: f, workloads: workloads.slice(0, k), iters: r === R - 1 ? iters : it, size });
    if (r === R - 1) rungs[r] = full(size);
    size = Math.max(1, Math.ceil(size / eta));
  }
  return rungs;
}

export async function search(cands: readonly Candidate[], store: TuningStore, time: TimeFn, opts: SearchOptions): Promise<SearchResult> {
  const eta = opts.eta ?? 3;
  const minIters = Math.min(opts.minIters ?? 5, opts.iters);
  const chunk = Math.max(1, opts.chunk ?? 8);
  for (const c of cands) store.candidate(c);
  const plan = planRungs(opts.strategy, cands.length, opts.workloads, opts.iters, eta, minIters);
  const total = plan.reduce((s, r) => s + r.size * r.workloads.length, 0);
  let done = 0;
  let cost = 0;
  let stopped: string | undefined;
  let survivors = [...cands];
  const rungs: Rung[] = [];
  let ranking: { name: string; totalMs: number }[] = [];

  for (let r = 0; r < plan.length && survivors.length > 0; r++) {
    const rung = { ...plan[r]!, size: survivors.length };
    rungs.push(rung);
    const ms = new Map<string, number[]>(survivors.map((c) => [c.name, []]));
    let best: Progress["best"] = null;
    const progress = () => opts.onProgress?.({ done, total, rung: r, rungs: plan.length, best });
    progress();
    for (const w of rung.workloads) {
      const cached = (c: Candidate): Timed | undefined => (opts.fresh ? undefined : store.timing(c.spec.hash, w, rung.iters));
      const todo = survivors.filter((c) => !cached(c));
      for (const c of survivors) {
        const t = cached(c);
        if (t) {
          ms.get(c.name)!.push(t.ms ?? Infinity);
          done++;
        }
      }
      for (let i = 0; i < todo.length; i += chunk) {
        stopped ??= opts.shouldStop?.();
        if (stopped) break;
        const part = todo.slice(i, i + chunk);
        const got = await time(part, w, rung.iters);
        for (const c of part) {
          const t = got.get(c.name) ?? { ms: null, error: "not timed" };
          store.recordTiming(c.spec.hash, w, { ms: t.ms, iters: rung.iters, ...(t.error ? { error: t.error } : {}), date: new Date().toISOString() });
          ms.get(c.name)!.push(t.ms ?? Infinity);
          cost += rung.iters;
          done++;
        }
        progress();
      }
      if (stopped) break;
      // Best so far: candidates timed on every workload of the rung up to this one.
      for (const c of survivors) {
        const xs = ms.get(c.name)!;
        const sum = xs.reduce((a, b) => a + b, 0);
        if (xs.length === rung.workloads.indexOf(w) + 1 && Number.isFinite(sum) && (!best || sum < best.ms)) best = { name: c.name, ms: sum };
      }
      progress();
    }
    if (stopped) break;
    const totals = survivors
      .map((c) => ({ name: c.name, totalMs: ms.get(c.name)!.reduce((a, b) => a + b, 0) }))
      .sort((a, b) => a.totalMs - b.totalMs || a.name.localeCompare(b.name));
    ranking = totals;
    if (r < plan.length - 1) {
      const keep = Math.max(1, Math.ceil(survivors.length / eta));
      const alive = new Set(totals.filter((t) => Number.isFinite(t.totalMs)).slice(0, keep).map((t) => t.name));
      // The base spec rides along to the end (when it works): every run reports tuned vs default.
      const base = survivors.find((c) => c.isBase);
      if (base && Number.isFinite(totals.find((t) => t.name === base.name)!.totalMs)) alive.add(base.name);
      survivors = survivors.filter((c) => alive.has(c.name));
    }
  }
  const finished = rungs.length === plan.length && !stopped;
  const W = opts.workloads.length;
  const bestRow = finished ? ranking.find((t) => Number.isFinite(t.totalMs)) ?? null : null;
  return {
    strategy: opts.strategy,
    rungs,
    ranking: finished ? ranking : [],
    best: bestRow,
    cost,
    fullEvaluations: cost / (W * opts.iters),
    exhaustiveCost: cands.length * W * opts.iters,
    ...(stopped ? { stopped } : {}),
  };
}

/** What a run adds to its entry's history, with its gap to the entry's best fully measured candidate. */
export function runSummary(store: TuningStore, result: SearchResult, candidates: number, iters: number): RunSummary {
  const ranked = rankEntry(store.entry, iters);
  const entryBest = ranked[0];
  const base = ranked.find((r) => r.record.isBase);
  return {
    date: new Date().toISOString(),
    strategy: result.strategy,
    candidates,
    cost: result.cost,
    fullEvaluations: result.fullEvaluations,
    exhaustiveCost: result.exhaustiveCost,
    best: result.best,
    base: base ? { name: base.record.name, totalMs: base.totalMs } : null,
    gapToBest: result.best && entryBest ? result.best.totalMs / entryBest.totalMs - 1 : null,
    ...(result.stopped ? { stopped: result.stopped } : {}),
  };
}
