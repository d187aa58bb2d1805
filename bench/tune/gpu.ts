// The GPU side of `podgen tune`, for built candidates (bench/tune/compile.ts builds them): check
// each against the fp32 reference kernel on one batch (runtime/verify.ts — a wrong candidate is
// recorded and never timed), then search with the bench harness as the timer (bench/run.ts
// runWorkload: the same CUDA-event medians over L2-cold input copies as `podgen bench`).
import { symbolPrefix, type Candidate, type KernelSpec } from "../../dsl/index.ts";
import { TARGET_LIMITS } from "../../dsl/targets.ts";
import { KernelLibraries, makeHostBatch, Stream, type BatchShape, type Device, type KernelLibrary } from "../../runtime/index.ts";
import { verifyBatch } from "../../runtime/verify.ts";
import { runWorkload, Timer } from "../run.ts";
import type { Workload } from "../workloads.ts";
import type { TuningStore } from "./db.ts";
import { runSummary, search, type Progress, type SearchResult, type StrategyName, type TimeFn } from "./strategy.ts";
import type { RunSummary } from "./db.ts";

/**
 * The batch every candidate must get right before it is timed: two prefill chunks (one square,
 * one over a longer history, odd lengths) and decodes from 1 to 4099 keys, pages shuffled.
 */
export const VERIFY_SHAPE: BatchShape = {
  prefills: [
    { qLen: 300, kvLen: 1013 },
    { qLen: 77, kvLen: 77 },
  ],
  decodes: [1, 17, 64, 65, 300, 513, 2000, 4099],
};
export const VERIFY_SEED = 0x7e57;

/**
 * The device must run the spec's target: an arch-specific target (sm_90a) needs exactly its
 * compute capability; sm_80/86/89 SASS runs on the same major version at an equal or higher minor.
 */
export function checkTarget(device: Device, spec: KernelSpec): void {
  const code = TARGET_LIMITS[spec.target].gencode.code; // "sm_90a"
  const want = Number(/sm_(\d+)/.exec(code)![1]);
  const have = device.info.ccMajor * 10 + device.info.ccMinor;
  const ok = code.endsWith("a") ? want === have : Math.floor(want / 10) === device.info.ccMajor && want <= have;
  if (!ok) {
    throw new Error(`${spec.name} targets ${spec.target} (compute capability ${Math.floor(want / 10)}.${want % 10}); ${device.info.name} is ${device.info.ccMajor}.${device.info.ccMinor}: tune a spec with the matching target`);
  }
}

/** A candidate's loaded library. */
export type LibraryOf = (spec: KernelSpec) => KernelLibrary;

/**
 * Verify a candidate on VERIFY_SHAPE (fused twice, standalone once) unless the store already has
 * its verdict; the verdict is stored. Returns whether it may be timed.
 */
export function verifyCandidate(device: Device, libFor: LibraryOf, c: Candidate, store: TuningStore): boolean {
  const rec = store.candidate(c);
  if (rec.verify) return rec.verify.pass;
  try {
    const lib = libFor(c.spec);
    const host = makeHostBatch(lib.info(), VERIFY_SHAPE, { seed: VERIFY_SEED, shufflePages: true });
    const r = verifyBatch(device, lib, host);
    rec.verify = { pass: r.pass, worstO: r.worst.o, worstLse: r.worst.lse, problems: r.runs.flatMap((run) => run.problems.map((p) => `${run.mode}: ${p}`)) };
  } catch (e) {
    rec.verify = { pass: false, worstO: NaN, worstLse: NaN, problems: [e instanceof Error ? e.message : String(e)] };
    try {
      device.synchronize();
    } catch {
      // a sticky error: later candidates fail too and say so
    }
  }
  store.save();
  return rec.verify.pass;
}

/**
 * The real TimeFn: one runWorkload call per chunk, with the chunk's candidates as the workload's
 * fused configs (labelled by candidate name), fused runs only.
 */
export function gpuTimer(device: Device, libFor: LibraryOf, workloads: readonly Workload[], warmup: number, log?: (line: string) => void): { time: TimeFn; destroy: () => void } {
  const main = Stream.create();
  const side: [Stream, Stream] = [Stream.create(), Stream.create()];
  const timers = new Map<number, Timer>();
  const timerFor = (iters: number) => {
    let t = timers.get(iters);
    if (!t) timers.set(iters, (t = new Timer(main, iters, warmup)));
    return t;
  };
  const time: TimeFn = async (cands, workloadName, iters) => {
    const w = workloads.find((x) => x.name === workloadName);
    if (!w) throw new Error(`internal: unknown workload ${workloadName}`);
    const chunk: Workload = { ...w, configs: cands.map((c) => ({ label: c.name, spec: c.spec })) };
    const r = runWorkload(device, chunk, { iters, warmup, library: () => "", log, fusedOnly: true }, timerFor(iters), side, libFor);
    const out = new Map<string, { ms: number | null; error?: string }>();
    for (const c of cands) {
      const ms = r.fused_ms[c.name] ?? null;
      const bad = r.nonfinite_outputs[c.name] ?? 0;
      const error = r.errors.filter((e) => e.startsWith(`fused ${c.name}:`) || e.startsWith("workload:")).join("; ");
      out.set(c.name, bad > 0 || ms === null ? { ms: null, error: error || "no timing" } : { ms });
    }
    return out;
  };
  return {
    time,
    destroy: () => {
      for (const t of timers.values()) t.destroy();
      for (const s of [main, ...side]) s.destroy();
    },
  };
}

export interface DeviceTuneOptions {
  device: Device;
  store: TuningStore;
  /** Built candidates (base first) and their libraries. */
  cands: readonly Candidate[];
  libraries: ReadonlyMap<string, string>;
  workloads: readonly Workload[];
  strategy: StrategyName;
  iters: number;
  warmup: number;
  eta: number;
  fresh?: boolean;
  shouldStop?: () => string | undefined;
  onVerified?: (c: Candidate, pass: boolean, done: number, total: number) => void;
  onProgress?: (p: Progress) => void;
}

export interface DeviceTuneResult {
  result: SearchResult;
  summary: RunSummary;
  verified: Candidate[];
  wrong: Candidate[];
}

/** Verify every candidate, then search the verified ones; the run's summary is added to the entry. */
export async function tuneOnDevice(o: DeviceTuneOptions): Promise<DeviceTuneResult> {
  const libs = new KernelLibraries();
  const libFor: LibraryOf = (spec) => {
    const path = o.libraries.get(spec.name);
    if (!path) throw new Error(`${spec.name} was not built`);
    return libs.get(path, symbolPrefix(spec));
  };
  try {
    const verified: Candidate[] = [];
    const wrong: Candidate[] = [];
    const built = o.cands.filter((c) => o.libraries.has(c.name));
    for (const c of built) {
      if (o.shouldStop?.()) break;
      const pass = verifyCandidate(o.device, libFor, c, o.store);
      (pass ? verified : wrong).push(c);
      o.onVerified?.(c, pass, verified.length + wrong.length, built.length);
    }
    const timer = gpuTimer(o.device, libFor, o.workloads, o.warmup);
    let result: SearchResult;
    try {
      result = await search(verified, o.store, timer.time, {
        strategy: o.strategy,
        workloads: o.workloads.map((w) => w.name),
        iters: o.iters,
        eta: o.eta,
        fresh: o.fresh,
        shouldStop: o.shouldStop,
        onProgress: o.onProgress,
      });
    } finally {
      timer.destroy();
    }
    const summary = runSummary(o.store, result, verified.length, o.iters);
    o.store.entry.runs.push(summary);
    o.store.save();
    return { result, summary, verified, wrong };
  } finally {
    libs.close();
  }
}
