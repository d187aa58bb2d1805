// `podgen bench --family <name>`: what users of a config family get (bench/family-bench.ts).
//
//   batches   the workload file's batches of the family's shape ("paper": the model was fitted on
//             them) + serving-like batches from the held-out seed, none with the lengths of a fit batch
//   build     the family, into one library (cached by content)
//   model     the stored cost model of this GPU and build (auto plans with it), else the static rule
//   torch     PyTorch's baselines on the same batches, in their own process, before this one holds
//             device memory
//   time      auto and every candidate, in interleaved rounds (bench/family-timing.ts), and the
//             host's plan time; the report and its table
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { buildFamily } from "../codegen/family.ts";
import { defaultCacheDir } from "../codegen/build.ts";
import { gitCommit } from "../codegen/commit.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { cudaAvailable, Device, FamilyLibrary } from "../runtime/index.ts";
import { DEFAULT_FIT_BATCHES, DEFAULT_FIT_SEED, DEFAULT_LIGHT_DECODE_BATCHES, fitBatches, heldOutBatches, type FamilyBatch, type ServingMixName } from "../bench/family-batches.ts";
import { runFamilyBench, torchWorkloads } from "../bench/family-bench.ts";
import { formatFamilyTable, type FamilyBenchReport, type ReportedSet } from "../bench/family-report.ts";
import { fitSetSchema } from "../bench/schemas.ts";
import { SERVING_MIXES } from "../bench/serving-batches.ts";
import { torchRunner } from "../bench/torch.ts";
import { findCostModel } from "../bench/tune/cost-model.ts";
import type { FitSet } from "../bench/tune/family.ts";
import { checkTarget } from "../bench/tune/gpu.ts";
import { familyArg, mixArg, paperBatches, paperStyleName, printTimingPlan } from "./family-options.ts";
import { positiveArg, shownPath } from "./args.ts";
import { UsageError } from "./usage-error.ts";

export interface BenchFamilyOpts {
  family: string;
  workloads: string;
  filter: string[];
  heldout: string;
  heldoutSeed: string;
  mix?: string;
  iters: string;
  warmup: string;
  torch: boolean;
  python: string;
  out?: string;
  models: string;
  planIters: string;
  dryRun?: boolean;
  json?: boolean;
}

/** PyTorch's baselines on some 30 batches (the plain bench's 240 s is for its 10 workloads). */
const TORCH_TIMEOUT_S = 360;
const DEFAULT_FIT_SET = (mix: ServingMixName): FitSet => ({ mix, seed: DEFAULT_FIT_SEED, count: DEFAULT_FIT_BATCHES, lightDecode: DEFAULT_LIGHT_DECODE_BATCHES });

/** The held-out batches: from their seed, apart from the fit set (that seed must be another). */
function heldOut(fitSet: FitSet, paper: readonly FamilyBatch[], mix: ServingMixName, seed: number, count: number): (FamilyBatch & { set: ReportedSet })[] {
  if (seed === fitSet.seed) throw new UsageError(`--heldout-seed ${seed}: the fit batches (of the stored cost model, else the default fit set) come from seed ${fitSet.seed}; held-out batches need another`);
  const fitMix = SERVING_MIXES[fitSet.mix as ServingMixName] ?? SERVING_MIXES[mix];
  const fitted = [...paper, ...fitBatches(fitMix, fitSet.seed, fitSet.count, fitSet.lightDecode ?? 0)];
  return heldOutBatches(SERVING_MIXES[mix], seed, count, fitted).map((b) => ({ ...b, set: "heldout" }));
}

export async function benchFamily(opts: BenchFamilyOpts): Promise<void> {
  const family = await familyArg(opts.family);
  const iters = positiveArg("--iters", opts.iters);
  const warmup = positiveArg("--warmup", opts.warmup);
  const count = positiveArg("--heldout", opts.heldout);
  const seed = positiveArg("--heldout-seed", opts.heldoutSeed);
  const planIters = positiveArg("--plan-iters", opts.planIters);
  const mix = mixArg(opts.mix, family);
  const models = resolve(opts.models);
  const paper = paperBatches(resolve(opts.workloads), opts.filter, family).map((b) => ({ ...b, set: "paper" as const }));
  if (opts.dryRun) {
    const batches = [...paper, ...heldOut(DEFAULT_FIT_SET(mix.name), paper, mix.name, seed, count)];
    return printTimingPlan(family, batches, { iters, warmup, json: !!opts.json, extraTimings: 1 });
  }

  // The GPU first: without one, fail before compiling anything.
  const avail = cudaAvailable();
  if (!avail.ok) throw new Error(`podgen bench --family needs a GPU: ${avail.reason} (try --dry-run to see the batches and candidates)`);
  const log = (line: string) => console.error(line);
  log(`${family.name}: building ${family.members.length} members (${family.memberNames.join(", ")})...`);
  const build = await buildFamily(family);
  const costModel = findCostModel(family.name, avail.device.name, build.manifest.timingKey, models);
  if (costModel.model === null) log(`auto: the static rule: ${costModel.why}`);
  const recorded = costModel.model && fitSetSchema.safeParse(costModel.model.fit.fitSet);
  const fitSet = recorded?.success ? recorded.data : DEFAULT_FIT_SET(mix.name);
  const batches = [...paper, ...heldOut(fitSet, paper, mix.name, seed, count)];

  const scratch = mkdtempSync(join(tmpdir(), "podgen-bench-family-"));
  const torch = opts.torch ? torchRunner(opts.python, join(PACKAGE_ROOT, "bench/torch_baselines.py"), scratch, iters, warmup, log, TORCH_TIMEOUT_S)(torchWorkloads(batches, family.members[0]!)) : null;
  const device = Device.open(0);
  for (const spec of family.members) checkTarget(device, spec);
  const lib = new FamilyLibrary(build.library, build.manifest.symbolPrefix);
  let report: FamilyBenchReport;
  try {
    report = runFamilyBench(device, lib, batches, {
      family: family.name,
      familyHash: family.hash,
      buildKey: build.manifest.buildKey,
      commit: gitCommit(PACKAGE_ROOT),
      iters,
      warmup,
      costModel,
      heldOut: { mix: mix.name, seed },
      torch,
      paperStyle: paperStyleName(paper, family),
      planIters: { c: planIters, binding: planIters },
      log,
    });
  } finally {
    lib.close();
  }
  const out = resolve(opts.out ?? join(defaultCacheDir(), "bench", `${family.name}.json`));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 1) + "\n");
  if (opts.json) console.log(JSON.stringify(report, null, 1));
  else console.log(`wrote ${shownPath(out)}\n${formatFamilyTable(report)}`);
  if (report.batches.some((b) => b.errors.length > 0)) process.exitCode = 1;
}
