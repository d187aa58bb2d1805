// Replays a config family's choices on recorded times under other serial-margin quantiles, without
// a GPU. The cost model is refitted from a `podgen tune --family --out` file's records
// (fitCostModel, with the quantile asked for); the family library's own planner (built here, run
// on the host) chooses for each batch; the choice is judged by the candidates' recorded times.
// Reported per quantile, as geomean / worst of the chosen candidate's time over the fastest's: on
// the held-out batches of a `podgen bench --family --out` report, and leave-one-batch-out on the
// tune file's own batches. It measures nothing; the family's members must be those timed.
//
//   node --import tsx bench/replay-margin.ts TUNE.json BENCH.json [QUANTILE ...]   (default 0.5 0.6 0.7 0.8 0.9)
import { familyPresetByName } from "../dsl/index.ts";
import { buildFamily } from "../codegen/family.ts";
import { FamilyLibrary, makeHostBatch, type CostModel } from "../runtime/index.ts";
import type { CandidateTiming } from "./family-timing.ts";
import { readFamilyBenchReport, readFamilyTimings } from "./schemas.ts";
import { geomean } from "./stats.ts";
import { fitCostModel, type TimingRecord } from "./tune/cost-model.ts";
import { timingRecords } from "./tune/family.ts";

interface RecordedBatch {
  name: string;
  prefills: [number, number][];
  decodes: number[];
  candidates: CandidateTiming[];
}

const [tunePath, benchPath, ...qs] = process.argv.slice(2);
if (!tunePath || !benchPath) throw new RangeError("usage: bench/replay-margin.ts TUNE.json BENCH.json [QUANTILE ...]");
const quantiles = qs.length ? qs.map(Number) : [0.5, 0.6, 0.7, 0.8, 0.9];
const timings = readFamilyTimings(tunePath);
const bench = readFamilyBenchReport(benchPath);
const family = familyPresetByName(timings.family);
if (!family || bench.family !== timings.family) throw new RangeError(`${tunePath} and ${benchPath} must time one family preset (${timings.family}, ${bench.family})`);
const built = await buildFamily(family);
const lib = new FamilyLibrary(built.library, built.manifest.symbolPrefix);

const fit = (records: TimingRecord[], quantile: number): CostModel =>
  fitCostModel(records, { gpu: timings.gpu, family: timings.family, timingKey: timings.timingKey ?? timings.buildKey, memberNames: timings.members, featureNames: timings.features, quantile });

/** The chosen candidate's recorded time over the fastest recorded one. */
function pickOverFastest(model: CostModel, b: RecordedBatch): number {
  const shape = { prefills: b.prefills.map(([qLen, kvLen]) => ({ qLen, kvLen })), decodes: b.decodes };
  const { plan } = lib.plan(makeHostBatch(lib.info(), shape, { seed: 1 }).batch, { numSms: timings.sms, costModel: model });
  const times = b.candidates.flatMap((c) => (c.us === null ? [] : [c.us]));
  const chosen = b.candidates.find((c) => c.member === plan.memberName && c.mode === plan.mode)?.us;
  if (chosen === undefined || chosen === null) throw new Error(`${b.name}: the planner chose ${plan.describe()}, which has no recorded time`);
  return chosen / Math.min(...times);
}

const heldOut = bench.batches.filter((b) => b.set !== "paper");
const records = timingRecords(timings);
const fmt = (xs: number[]) => `${geomean(xs)!.toFixed(3)} / ${Math.max(...xs).toFixed(3)}`;
console.log(`${timings.family}: the chosen candidate's time over the fastest's, geomean / worst`);
for (const q of quantiles) {
  const model = fit(records, q);
  const held = heldOut.map((b) => pickOverFastest(model, b));
  const loo = timings.batches.map((b) => pickOverFastest(fit(records.filter((r) => r.workload !== b.name), q), b));
  console.log(`  quantile ${q.toFixed(2)}: held-out ${fmt(held)}   leave-one-out on the fit set ${fmt(loo)}`);
}
lib.close();
