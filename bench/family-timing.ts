// Timing a config family on the GPU, batch by batch (`podgen tune --family` fits its cost model
// on these times, `podgen bench --family` reports them): every candidate the family's planner
// weighs — each member fused and serial — and, for the bench, the planner's own choice ("auto").
//
// A candidate is timed through the family library as `plan` forced to it, then `run`: exactly the
// launch `run` makes when the planner chooses that candidate (serial: the member's prefill-only
// then decode-only kernels on one stream). Its features are those the unforced plan of the batch
// reports for it (templates/family/select.h computes them, once, in C). Timing as in the bench
// harness (bench/run.ts): CUDA events around each iteration after a warm-up, the median, inputs
// rotated among enough device copies that the L2 holds none of the copy an iteration reads.
// A candidate that fails, or leaves an output unwritten (poisoned first) or not finite, gets no
// time and says why.
import {
  DeviceBuffer,
  makeHostBatch,
  Stream,
  type ChoiceReason,
  type CostModel,
  type Device,
  type Dtype16,
  type FamilyLibrary,
  type FamilyPlan,
  type KernelLibrary,
  type Mode,
} from "../runtime/index.ts";
import { copiesFor, deviceCopies, nonFinite, Timer, workingSetBytes } from "./run.ts";
import type { FamilyBatch } from "./family-batches.ts";

/** The seed of every batch's q, k and v (the lengths are the batch's; the values do not matter to the time). */
const INPUT_SEED = 3;

export interface CandidateTiming {
  member: string;
  mode: Mode;
  /** As the family's plan reported them, in its feature order (FamilyLibrary.featureNames). */
  features: number[];
  /** The cost model's prediction for the candidate (µs); null without a model. */
  predictedUs: number | null;
  /** Median µs; null when the candidate failed (error says why). */
  us: number | null;
  error?: string;
}

/** What the planner chose by itself, and its time. */
export interface AutoTiming {
  member: string;
  mode: Mode;
  reason: ChoiceReason;
  predictedUs: number | null;
  us: number | null;
  error?: string;
}

export interface FamilyBatchTiming {
  candidates: CandidateTiming[];
  /** With `auto` only. */
  auto?: AutoTiming;
}

export interface FamilyTimerOptions {
  iters: number;
  warmup: number;
  /** The model `auto` plans with (null: the static rule). */
  costModel?: CostModel | null;
  log?: (line: string) => void;
}

export class FamilyTimer {
  private readonly stream = Stream.create();
  private readonly timer: Timer;
  /** Member 0's kernel library: draws the batches' inputs on the GPU. */
  private readonly random: KernelLibrary;
  private readonly dtype: Dtype16;

  constructor(
    readonly device: Device,
    readonly lib: FamilyLibrary,
    readonly options: FamilyTimerOptions,
  ) {
    this.timer = new Timer(this.stream, options.iters, options.warmup);
    this.random = lib.member(lib.memberNames[0]!);
    this.dtype = lib.info().dtype as Dtype16;
  }

  /** Times every candidate on the batch (and, with `auto`, the planner's own choice). */
  timeBatch(batch: FamilyBatch, { auto = false } = {}): FamilyBatchTiming {
    const log = this.options.log ?? (() => {});
    const numSms = this.device.sms;
    const host = makeHostBatch(this.lib.info(), batch.shape, { seed: INPUT_SEED });
    const copies = deviceCopies(host, copiesFor(workingSetBytes(host)), this.random);
    let workspace: DeviceBuffer | undefined;
    try {
      const chosen = this.lib.plan(host.batch, { numSms, costModel: this.options.costModel ?? undefined });
      const forced = chosen.plan.candidates.map((c) => ({ c, ...this.lib.plan(host.batch, { numSms, member: c.memberName, mode: c.mode }) }));
      const bytes = Math.max(16, ...[chosen, ...forced].map((p) => Number(p.plan.plan.workspaceBytes)));
      workspace = DeviceBuffer.alloc(bytes, "workspace");
      const ws = workspace;
      const buffers = copies.map((c) => c.podBuffers(ws));
      const time = (label: string, plan: FamilyPlan, staging: Buffer): { us: number | null; error?: string } => {
        try {
          this.lib.uploadPlan(plan, staging, ws, ws.bytes, this.stream);
          copies[0]!.poisonOutputs();
          this.device.synchronize();
          const t = this.timer.time(copies.length, (i) => this.lib.run(plan, buffers[i % copies.length]!, this.stream));
          const bad = nonFinite(copies[0]!, this.dtype);
          if (bad > 0) return { us: null, error: `${bad} outputs not written or not finite` };
          log(`  ${label.padEnd(20)} ${(t.ms * 1000).toFixed(1).padStart(9)} µs`);
          return { us: t.ms * 1000 };
        } catch (e) {
          try {
            this.device.synchronize();
          } catch {
            // a sticky error: the next timings fail too, and say so
          }
          return { us: null, error: e instanceof Error ? e.message : String(e) };
        }
      };
      const candidates = forced.map(({ c, plan, staging }): CandidateTiming => ({
        member: c.memberName,
        mode: c.mode,
        features: this.lib.featureNames.map((f) => c.features[f]!),
        predictedUs: c.predictedUs,
        ...time(`${c.memberName} ${c.mode}`, plan, staging),
      }));
      if (!auto) return { candidates };
      const p = chosen.plan;
      const predicted = p.candidates.find((c) => c.member === p.member && c.mode === p.mode)?.predictedUs ?? null;
      return { candidates, auto: { member: p.memberName, mode: p.mode, reason: p.reason, predictedUs: predicted, ...time(`auto: ${p.describe()}`, p, chosen.staging) } };
    } finally {
      workspace?.free();
      for (const c of copies) c.free();
    }
  }

  destroy(): void {
    this.timer.destroy();
    this.stream.destroy();
    this.random.close();
  }
}
