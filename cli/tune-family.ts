// `podgen tune --family <name>`: fit a config family's per-GPU cost model (bench/tune/family.ts).
//
//   batches   the workload file's batches of the family's shape + serving-like ones from the fit seed
//   build     the family, into one library (cached by content)
//   time      every candidate (each member fused and serial) on every batch, on the GPU, in
//             interleaved rounds (bench/family-timing.ts)
//   fit       the cost model; written to the cost model store under this GPU and build key, and the
//             raw times to --out, so that `--from` refits them without a GPU
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { buildFamily } from "../codegen/family.ts";
import { defaultCacheDir } from "../codegen/build.ts";
import { gitCommit } from "../codegen/commit.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { FamilyLibrary } from "../runtime/index.ts";
import { fitBatches } from "../bench/family-batches.ts";
import { readFamilyTimings } from "../bench/schemas.ts";
import { writeCostModel } from "../bench/tune/cost-model.ts";
import { fitFamilyTimings, formatFit, timeFamily, type FamilyTimings } from "../bench/tune/family.ts";
import { checkTarget } from "../bench/tune/gpu.ts";
import { familyArg, mixArg, paperBatches, printTimingPlan } from "./family-options.ts";
import { nonNegativeArg, openGpu, positiveArg, shownPath } from "./args.ts";
import { UsageError } from "./usage-error.ts";

export interface TuneFamilyOpts {
  family: string;
  workloads: string;
  filter: string[];
  fitBatches: string;
  fitLight: string;
  fitSeed: string;
  mix?: string;
  iters: string;
  warmup: string;
  out?: string;
  models: string;
  from?: string;
  dryRun?: boolean;
  json?: boolean;
}


/** Fits and stores the model of timings; prints the fit. */
function fitAndStore(timings: FamilyTimings, models: string, json: boolean): void {
  const model = fitFamilyTimings(timings);
  writeCostModel(model, models);
  if (json) return void console.log(JSON.stringify(model, null, 1));
  console.log(formatFit(timings, model));
  console.log(`cost model of ${timings.family} for ${timings.gpu}, timing key ${model.timingKey}: ${shownPath(models)}`);
}

export async function tuneFamily(opts: TuneFamilyOpts): Promise<void> {
  const family = await familyArg(opts.family);
  const models = resolve(opts.models);
  if (opts.from) {
    const timings = readFamilyTimings(resolve(opts.from));
    if (timings.family !== family.name || timings.members.join() !== family.memberNames.join()) {
      throw new UsageError(`--from ${opts.from}: times ${timings.family} (members ${timings.members.join(", ")}), not ${family.name} (members ${family.memberNames.join(", ")})`);
    }
    return fitAndStore(timings, models, !!opts.json);
  }
  const iters = positiveArg("--iters", opts.iters);
  const warmup = positiveArg("--warmup", opts.warmup);
  const mix = mixArg(opts.mix, family);
  const fitSet = {
    mix: mix.name,
    seed: positiveArg("--fit-seed", opts.fitSeed),
    count: positiveArg("--fit-batches", opts.fitBatches),
    lightDecode: nonNegativeArg("--fit-light", opts.fitLight),
  };
  const batches = [...paperBatches(resolve(opts.workloads), opts.filter, family), ...fitBatches(mix.mix, fitSet.seed, fitSet.count, fitSet.lightDecode)];
  if (opts.dryRun) return printTimingPlan(family, batches, { iters, warmup, json: !!opts.json });

  const device = openGpu("podgen tune --family", "try --dry-run to see the batches and candidates, --from to refit recorded times");
  for (const spec of family.members) checkTarget(device, spec);
  const log = (line: string) => console.error(line);
  log(`${family.name}: building ${family.members.length} members (${family.memberNames.join(", ")})...`);
  const build = await buildFamily(family);
  const lib = new FamilyLibrary(build.library, build.manifest.symbolPrefix);
  let timings: FamilyTimings;
  try {
    log(`timing ${family.memberNames.length * 2} candidates on ${batches.length} batches, ${device.info.name}`);
    timings = timeFamily(device, lib, batches, {
      family: family.name,
      familyHash: family.hash,
      buildKey: build.manifest.buildKey,
      timingKey: build.manifest.timingKey,
      commit: gitCommit(PACKAGE_ROOT),
      fitSet,
      iters,
      warmup,
      log,
    });
  } finally {
    lib.close();
  }
  const out = resolve(opts.out ?? join(defaultCacheDir(), "tune", `${family.name}-timings.json`));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(timings, null, 1) + "\n");
  log(`wrote ${shownPath(out)} (refit without a GPU: podgen tune --family ${opts.family} --from ${shownPath(out)})`);
  fitAndStore(timings, models, !!opts.json);
}
