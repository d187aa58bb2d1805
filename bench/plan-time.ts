// Host plan time, no GPU needed: builds the llama3_8b_auto family library (or --family), then
// times its planner in C on a 256-request batch (4 prefill chunks of 512 tokens, 252 decodes;
// family-batches.ts planTimeShape): the family's auto plan (choice + the chosen member's plan) and
// the unified ragged plan of the same requests (bench/plan_time.cpp has the timing loop).
//
//   node --import tsx bench/plan-time.ts [--family NAME] [--iters N] [--gpu NAME] [--out FILE]
//
// Auto plans with the cost model stored for --gpu (default the H100's) and this family. A model
// fitted on another build of the family still ranks the same candidates, so it is used for the
// timing when no model of this build exists (the report says which). Targets: #18 auto ≤ 50 µs,
// #20 ragged ≤ 100 µs, for a 256-request batch.
import { execa } from "execa";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { familyPresetByName } from "../dsl/index.ts";
import { buildFamily, generateFamilySources } from "../codegen/family.ts";
import { writeGeneratedFiles } from "../codegen/generate.ts";
import { gitCommit } from "../codegen/commit.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { CHOICE_REASONS, FamilyLibrary, makeHostBatch, MODES } from "../runtime/index.ts";
import { planTimeShape } from "./family-batches.ts";
import { readCostModels } from "./tune/cost-model.ts";

const here = dirname(fileURLToPath(import.meta.url));
const H100 = "NVIDIA H100 80GB HBM3";
const NUM_SMS = 132;

const { values: args } = parseArgs({
  options: {
    family: { type: "string", default: "llama3_8b_auto" },
    iters: { type: "string", default: "5000" },
    warmup: { type: "string", default: "500" },
    gpu: { type: "string", default: H100 },
    out: { type: "string" },
  },
});
const positive = (name: string, value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} = ${JSON.stringify(value)}: must be a positive integer`);
  return n;
};
const iters = positive("iters", args.iters!);
const warmup = positive("warmup", args.warmup!);
const family = familyPresetByName(args.family!);
if (!family) throw new RangeError(`--family = ${JSON.stringify(args.family)}: no family preset of that name`);

const built = await buildFamily(family);
const lib = new FamilyLibrary(built.library, built.manifest.symbolPrefix);
const models = readCostModels().models.filter((m) => m.family === family.name && m.gpu === args.gpu);
const model = models.find((m) => m.timingKey === built.manifest.timingKey) ?? models.at(-1) ?? null;
const shape = planTimeShape();
const { batch } = makeHostBatch(lib.info(), shape, { seed: 1 });
const flat = model ? lib.flatten(model) : null;
const coefficients = flat ? [...flat.coefficients] : [];
const errorBounds = flat?.errorBounds ? [...flat.errorBounds] : [];
lib.close();
const { pageIndptr, pageIndices } = batch;
if (!pageIndptr || !pageIndices) throw new RangeError(`--family = ${family.name}: its KV cache is contiguous; plan_time.cpp times paged families (CSR pages)`);

const member0 = `${built.manifest.symbolPrefix}__${family.memberNames[0]}`;
const input = [
  built.manifest.symbolPrefix, member0, NUM_SMS, warmup, iters,
  batch.numHeadsQ, batch.numHeadsKv, batch.headDim, batch.numPages, batch.numPrefills, batch.numDecodes,
  ...batch.qoIndptr, ...batch.kvLens, ...pageIndptr, pageIndices.length, ...pageIndices,
  coefficients.length, ...coefficients.map((c) => (Number.isNaN(c) ? "nan" : String(c))),
  errorBounds.length, ...errorBounds,
].join(" ");

const work = mkdtempSync(join(tmpdir(), "podgen-plan-time-"));
let measured: { familyAuto: Summary; choice: { member: number; mode: number; reason: number }; ragged: Summary; workItems: [number, number] };
try {
  writeGeneratedFiles(work, generateFamilySources(family).filter((s) => s.path.endsWith(".h")));
  const exe = join(work, "plan_time");
  await execa("g++", ["-std=c++17", "-O2", "-Wall", "-Wextra", `-I${work}`, join(here, "plan_time.cpp"), "-o", exe, "-ldl"]);
  measured = JSON.parse((await execa(exe, [built.library], { input })).stdout);
} finally {
  rmSync(work, { recursive: true, force: true });
}

interface Summary { medianUs: number; p99Us: number; meanUs: number; minUs: number; iters: number }
/** Targets of a 256-request batch's plan: #18 (family auto) and #20 (ragged), in µs. */
const TARGET_US = { familyAuto: 50, ragged: 100 };
const report = {
  kind: "plan-time",
  version: 1,
  commit: gitCommit(PACKAGE_ROOT),
  date: new Date().toISOString(),
  family: family.name,
  buildKey: built.manifest.buildKey,
  host: { cpu: cpus()[0]?.model ?? "unknown", cores: availableParallelism(), node: process.version },
  batch: { requests: shape.prefills.length + shape.decodes.length, prefills: shape.prefills.length, decodes: shape.decodes.length, numSms: NUM_SMS, workItems: measured.workItems },
  costModel: model ? { gpu: model.gpu, timingKey: model.timingKey, thisBuild: model.timingKey === built.manifest.timingKey } : null,
  familyAuto: { ...measured.familyAuto, choice: `${family.memberNames[measured.choice.member]} ${MODES[measured.choice.mode - 1]} (${CHOICE_REASONS[measured.choice.reason]})`, targetUs: TARGET_US.familyAuto },
  ragged: { ...measured.ragged, member: family.memberNames[0], targetUs: TARGET_US.ragged },
};
const json = JSON.stringify(report, null, 1) + "\n";
if (args.out) writeFileSync(args.out, json);
else process.stdout.write(json);
const line = (name: string, s: Summary, target: number) => `${name}: median ${s.medianUs.toFixed(1)} µs, p99 ${s.p99Us.toFixed(1)} µs (target ≤ ${target})`;
console.error(`${report.batch.requests}-request batch on ${report.host.cores} cores of ${report.host.cpu}, ${iters} plans each:`);
console.error(`  ${line("family auto", measured.familyAuto, TARGET_US.familyAuto)}, ${report.familyAuto.choice}`);
console.error(`  ${line("ragged", measured.ragged, TARGET_US.ragged)}`);
