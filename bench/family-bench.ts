// `podgen bench --family`, the GPU side: for each batch, in one run, auto (the family planner's own
// choice, planned as users plan) and every candidate (each member fused and serial: the preset, our
// serial and the best of the family are among them), timed in interleaved rounds
// (bench/family-timing.ts); PyTorch's best serial where it ran (bench/torch.ts), and the host's
// plan time (bench/family-report.ts has the report).
import type { KernelSpec } from "../dsl/index.ts";
import { makeHostBatch, type CostModel, type Device, type FamilyLibrary } from "../runtime/index.ts";
import { describeShape, planTimeShape, type FamilyBatch } from "./family-batches.ts";
import { familyBatchResult, summarizeSet, type FamilyBenchBatch, type FamilyBenchReport, type PlanTime, type ReportedSet } from "./family-report.ts";
import { FamilyTimer } from "./family-timing.ts";
import type { TorchReport } from "./torch.ts";
import type { Workload } from "./workloads.ts";

/** The batches as workloads of the family's shape, for bench/torch_baselines.py (resolvedWorkloads). */
export function torchWorkloads(batches: readonly FamilyBatch[], spec: KernelSpec): Workload[] {
  return batches.map((b) => ({ name: b.name, specName: spec.name, shape: b.shape, shufflePages: true, configs: [{ label: "default", spec }] }));
}

/**
 * The planner's host time on planTimeShape(): `cIters` plans timed inside the library (the planner
 * alone) and `bindingIters` FamilyLibrary.plan calls timed here (what a TypeScript caller pays).
 */
export function timePlan(lib: FamilyLibrary, o: { numSms: number; costModel: CostModel | null; cIters: number; bindingIters: number }): PlanTime {
  const shape = planTimeShape();
  const { batch } = makeHostBatch(lib.info(), shape, { seed: 1 });
  const options = { numSms: o.numSms, costModel: o.costModel ?? undefined };
  const first = lib.plan(batch, options);
  let staging = first.staging;
  const started = performance.now();
  for (let i = 0; i < o.bindingIters; i++) staging = lib.plan(batch, options, staging).staging;
  const bindingUs = ((performance.now() - started) * 1000) / o.bindingIters;
  return {
    requests: shape.prefills.length + shape.decodes.length,
    prefills: shape.prefills.length,
    decodes: shape.decodes.length,
    choice: first.plan.describe(),
    cUsPerPlan: lib.planBenchmark(batch, options, o.cIters) / 1000,
    cIters: o.cIters,
    bindingUsPerPlan: bindingUs,
    bindingIters: o.bindingIters,
  };
}

export interface FamilyBenchOptions {
  family: string;
  familyHash: string;
  buildKey: string;
  commit: string;
  iters: number;
  warmup: number;
  /** The stored model auto plans with, or why there is none (the static rule decides then). */
  costModel: { model: CostModel } | { model: null; why: string };
  heldOut: { mix: string; seed: number };
  torch: TorchReport | null;
  /** The batch that is the preset's paper-style batch (null where --filter left it out). */
  paperStyle: string | null;
  planIters: { c: number; binding: number };
  log?: (line: string) => void;
}

export function runFamilyBench(device: Device, lib: FamilyLibrary, batches: readonly (FamilyBatch & { set: ReportedSet })[], o: FamilyBenchOptions): FamilyBenchReport {
  const log = o.log ?? (() => {});
  const stored = o.costModel;
  const model = stored.model;
  const timer = new FamilyTimer(device, lib, { iters: o.iters, warmup: o.warmup, costModel: model, log });
  let results: FamilyBenchBatch[];
  try {
    results = batches.map((b, i) => {
      log(`[${i + 1}/${batches.length}] ${b.name} (${b.set}): ${describeShape(b.shape)}`);
      const t = timer.timeBatch(b, { auto: true });
      return familyBatchResult(b, t.candidates, t.auto!, o.torch?.workloads.find((w) => w.name === b.name) ?? null, lib.memberNames);
    });
  } finally {
    timer.destroy();
  }
  const planTime = timePlan(lib, { numSms: device.sms, costModel: model, cIters: o.planIters.c, bindingIters: o.planIters.binding });
  const { workloads: _, ...torchMeta } = o.torch ?? { workloads: [] };
  return {
    kind: "family-bench",
    version: 1,
    family: o.family,
    familyHash: o.familyHash,
    buildKey: o.buildKey,
    gpu: device.info.name,
    driver: device.info.driverVersion,
    cuda: device.info.cudaVersion,
    sms: device.sms,
    commit: o.commit,
    date: new Date().toISOString(),
    iters: o.iters,
    warmup: o.warmup,
    timing: "interleaved",
    costModel: stored.model === null ? { used: false, fitted: null, why: stored.why } : { used: true, fitted: stored.model.fit.date, why: null },
    heldOut: o.heldOut,
    torch: o.torch ? (torchMeta as Omit<TorchReport, "workloads">) : null,
    planTime,
    batches: results,
    summary: { paper: summarizeSet(results.filter((r) => r.set === "paper")), heldout: summarizeSet(results.filter((r) => r.set === "heldout")) },
    paperStyle: o.paperStyle,
  };
}
