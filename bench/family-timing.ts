// Timing a config family on the GPU, batch by batch (`podgen tune --family` fits its cost model
// on these times, `podgen bench --family` reports them): every candidate the family's planner
// weighs — each member fused and serial — and, for the bench, the planner's own choice ("auto").
//
// A candidate is timed through the family library as `plan` forced to it, then `run`: exactly the
// launch `run` makes when the planner chooses that candidate (serial: the member's prefill-only
// then decode-only kernels on one stream). Its features are those the unforced plan of the batch
// reports for it (templates/family/select.h computes them, once, in C).
//
// The launches of a batch (every candidate, then auto) are timed *interleaved*: in rounds, each
// round one iteration of every launch in that order, and a launch's time is the median over the
// rounds. Slow drift of clocks and temperature then moves every launch alike; timed one after
// another, a launch's iterations could all fall on a fast or a slow stretch (in the H100 run at
// 8d60782, auto and the candidate of the same launch, timed seconds apart, differed by up to 7%).
// Each launch has its own workspace with its plan uploaded once, so a round switches launches
// without uploads. The first warm-up round checks every launch on its own: outputs poisoned, one
// run, a synchronize, every output written and finite; a launch that fails there gets no time and
// says why, and the rounds go on without it. Then the other warm-up rounds and `iters` timed ones,
// all enqueued before one synchronize, with CUDA events right around each launch (so a host-side
// gap between two launches falls outside both). Inputs rotate as in bench/run.ts: the n-th launch
// of the batch reads device copy n mod copies, so the launch before it read another copy and the
// L2 holds none of the one it reads.
import {
  DeviceBuffer,
  Event,
  makeHostBatch,
  median,
  Stream,
  type ChoiceReason,
  type CostModel,
  type DeviceBatch,
  type Device,
  type Dtype16,
  type FamilyLibrary,
  type FamilyPlan,
  type KernelLibrary,
  type Mode,
} from "../runtime/index.ts";
import { copiesFor, deviceCopies, nonFinite, workingSetBytes } from "./run.ts";
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
  /** Median µs over the rounds; null when the candidate failed (error says why). */
  us: number | null;
  error?: string;
}

/** What the planner chose by itself, and its time (timed in the same rounds as the candidates). */
export interface AutoTiming {
  member: string;
  mode: Mode;
  reason: ChoiceReason;
  predictedUs: number | null;
  us: number | null;
  /**
   * Whether auto's plan is, byte for byte (the plan and its staging), the forced plan of the
   * candidate of its member and mode: then the two time the same launch (bench/family-report.ts
   * judges auto by that candidate's time). The family's plan plans with the chosen member alone,
   * from the batch, so this holds unless the planner changes. Absent in reports before
   * interleaved timing.
   */
  sameLaunchAsCandidate?: boolean;
  error?: string;
}

export interface FamilyBatchTiming {
  candidates: CandidateTiming[];
  /** With `auto` only. */
  auto?: AutoTiming;
}

/** One launch of a round, and the device copy of the inputs it reads. */
export interface RoundStep {
  launch: number;
  copy: number;
}

/**
 * `rounds` rounds over `launches` (indices, in the order every round runs them). The n-th step
 * overall, counted on from `firstStep`, reads copy n mod `copies`: consecutive launches read
 * different copies (with copies ≥ 2), and a copy comes back only after all the others.
 */
export function interleavedRounds(launches: readonly number[], rounds: number, copies: number, firstStep = 0): RoundStep[][] {
  return Array.from({ length: rounds }, (_, r) => launches.map((launch, k) => ({ launch, copy: (firstStep + r * launches.length + k) % copies })));
}

/** Whether two family plans launch the same thing: the same member and mode, the same plan and staging bytes. */
export function sameLaunch(a: { plan: FamilyPlan; staging: Buffer }, b: { plan: FamilyPlan; staging: Buffer }): boolean {
  const bytes = Number(a.plan.plan.hostBytes);
  return (
    a.plan.member === b.plan.member &&
    a.plan.mode === b.plan.mode &&
    JSON.stringify(a.plan.plan) === JSON.stringify(b.plan.plan) &&
    a.staging.subarray(0, bytes).equals(b.staging.subarray(0, bytes))
  );
}

export interface FamilyTimerOptions {
  iters: number;
  /** Warm-up rounds, ≥ 1: the first checks every launch's outputs. */
  warmup: number;
  /** The model `auto` plans with (null: the static rule). */
  costModel?: CostModel | null;
  log?: (line: string) => void;
}

/** A launch of the batch, ready to run on any input copy: its plan uploaded to its own workspace. */
interface Launch {
  label: string;
  run: (copy: number) => void;
}

/** A launch's time (µs, the median over the rounds), or why it has none. */
type Outcome = { us: number | null; error?: string };

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class FamilyTimer {
  private readonly stream = Stream.create();
  /** Member 0's kernel library: draws the batches' inputs on the GPU. */
  private readonly random: KernelLibrary;
  private readonly dtype: Dtype16;

  constructor(
    readonly device: Device,
    readonly lib: FamilyLibrary,
    readonly options: FamilyTimerOptions,
  ) {
    if (!Number.isInteger(options.iters) || options.iters < 1) throw new RangeError(`iters = ${options.iters}: must be a positive integer`);
    if (!Number.isInteger(options.warmup) || options.warmup < 1) {
      throw new RangeError(`warmup = ${options.warmup}: must be a positive integer (the first warm-up round checks every launch's outputs)`);
    }
    this.random = lib.member(lib.memberNames[0]!);
    this.dtype = lib.info().dtype as Dtype16;
  }

  /** Times every candidate on the batch (and, with `auto`, the planner's own choice), interleaved. */
  timeBatch(batch: FamilyBatch, { auto = false } = {}): FamilyBatchTiming {
    const numSms = this.device.sms;
    const host = makeHostBatch(this.lib.info(), batch.shape, { seed: INPUT_SEED });
    const copies = deviceCopies(host, copiesFor(workingSetBytes(host)), this.random);
    const workspaces: DeviceBuffer[] = [];
    try {
      const chosen = this.lib.plan(host.batch, { numSms, costModel: this.options.costModel ?? undefined });
      const forced = chosen.plan.candidates.map((c) => ({ c, ...this.lib.plan(host.batch, { numSms, member: c.memberName, mode: c.mode }) }));
      // Every candidate, then auto: the order of each round.
      const planned = forced.map(({ c, plan, staging }) => ({ label: `${c.memberName} ${c.mode}`, plan, staging }));
      if (auto) planned.push({ label: `auto: ${chosen.plan.describe()}`, ...chosen });
      const launches = planned.map(({ label, plan, staging }): Launch => {
        try {
          const ws = DeviceBuffer.alloc(Math.max(16, Number(plan.plan.workspaceBytes)), "workspace");
          workspaces.push(ws);
          this.lib.uploadPlan(plan, staging, ws, ws.bytes, this.stream);
          const buffers = copies.map((c) => c.podBuffers(ws));
          return { label, run: (copy) => this.lib.run(plan, buffers[copy]!, this.stream) };
        } catch (e) {
          // Reported by the check round, as a launch that failed.
          return { label, run: () => { throw e; } };
        }
      });
      const times = this.timeInterleaved(launches, copies);
      const candidates = forced.map(({ c }, i): CandidateTiming => ({
        member: c.memberName,
        mode: c.mode,
        features: this.lib.featureNames.map((f) => c.features[f]!),
        predictedUs: c.predictedUs,
        ...times[i]!,
      }));
      if (!auto) return { candidates };
      const p = chosen.plan;
      const twin = forced.find(({ c }) => c.member === p.member && c.mode === p.mode);
      return {
        candidates,
        auto: {
          member: p.memberName,
          mode: p.mode,
          reason: p.reason,
          predictedUs: twin?.c.predictedUs ?? null,
          sameLaunchAsCandidate: twin !== undefined && sameLaunch(chosen, twin),
          ...times[forced.length]!,
        },
      };
    } finally {
      for (const w of workspaces) w.free();
      for (const c of copies) c.free();
    }
  }

  /** The launches' times, interleaved in rounds (the top of the file). */
  private timeInterleaved(launches: readonly Launch[], copies: readonly DeviceBatch[]): Outcome[] {
    const log = this.options.log ?? (() => {});
    const outcomes: Outcome[] = launches.map(() => ({ us: null }));
    const failed = (k: number, e: unknown) => {
      outcomes[k] = { us: null, error: message(e) };
      try {
        this.device.synchronize();
      } catch {
        // a sticky error: the launches after it fail too, and say so
      }
    };
    const all = launches.map((_, k) => k);
    // The first warm-up round, a launch at a time: each must write every output of its copy.
    for (const { launch, copy } of interleavedRounds(all, 1, copies.length)[0]!) {
      try {
        copies[copy]!.poisonOutputs();
        this.device.synchronize();
        launches[launch]!.run(copy);
        this.device.synchronize();
        const bad = nonFinite(copies[copy]!, this.dtype);
        if (bad > 0) outcomes[launch] = { us: null, error: `${bad} outputs not written or not finite` };
      } catch (e) {
        failed(launch, e);
      }
    }
    const checked = all.filter((k) => outcomes[k]!.error === undefined);
    const { iters, warmup } = this.options;
    const events = Array.from({ length: iters }, () => checked.map(() => ({ start: Event.create(), end: Event.create() })));
    try {
      interleavedRounds(checked, warmup - 1 + iters, copies.length, all.length).forEach((round, r) =>
        round.forEach(({ launch, copy }, k) => {
          const timed = r >= warmup - 1 ? events[r - (warmup - 1)]![k]! : undefined;
          timed?.start.record(this.stream);
          launches[launch]!.run(copy);
          timed?.end.record(this.stream);
        }),
      );
      this.stream.synchronize();
      checked.forEach((launch, k) => {
        const us = median(events.map((round) => round[k]!.end.elapsedMs(round[k]!.start))) * 1000;
        outcomes[launch] = { us };
        log(`  ${launches[launch]!.label.padEnd(20)} ${us.toFixed(1).padStart(9)} µs`);
      });
    } catch (e) {
      for (const launch of checked) failed(launch, e);
    } finally {
      for (const { start, end } of events.flat()) {
        start.destroy();
        end.destroy();
      }
    }
    return outcomes;
  }

  destroy(): void {
    this.stream.destroy();
    this.random.close();
  }
}
