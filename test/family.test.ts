// Config families on the host: the DSL's checks, the generated header's constants against the
// runtime's mirrors, a two-member family built with nvcc and planned through its C ABI (the
// choice by static rule, by cost model, forced, and fixed per graph-mode bucket), the cost
// model's least-squares fit, and the serving-batch generator.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkOverrides, FAMILY_PRESETS, familyPresetByName, pod, presetByName, resourceModel, SpecError, specFields, type FamilySpec, type SpecOverrides } from "../dsl/index.ts";
import { fittedAnalogue } from "../dsl/family-presets.ts";
import { buildFamily, familyBuildSources, familyKeys, familyTimingKeyFor, generateFamilySources } from "../codegen/family.ts";
import { nvccVersion } from "../codegen/build.ts";
import { COST_FEATURES, PLAN_GOLDEN_FILE } from "../codegen/paths.ts";
import { CHOICE_REASONS, COST_FEATURE_COUNT, FAMILY_MAX_MEMBERS, FamilyLibrary, MODES, PODGEN_FAMILY_ABI_VERSION_SUPPORTED, type FamilyPlan, makeHostBatch, Rng, type BatchShape, type CostModel } from "../runtime/index.ts";
import { ERROR_BOUND_QUANTILE, evaluateCostModel, findCostModel, fitCostModel, leastSquares, predictUs, readCostModels, writeCostModel, type TimingRecord } from "../bench/tune/cost-model.ts";
import { SERVING_MIXES, servingBatches } from "../bench/serving-batches.ts";
import { quantile } from "../bench/stats.ts";
import { timePlan } from "../bench/family-bench.ts";
import { sameLaunch } from "../bench/family-timing.ts";
import { randomFeatures } from "./cost-features.ts";

// Two CTA shapes of one model: the paper's (2 CTAs/SM) and roles (one CTA per SM).
const base = presetByName("llama3_8b_2cta")!;
const tiny = (): FamilySpec =>
  pod.family({ name: "tiny", base, members: [{ name: "a" }, { name: "b", ctasPerSm: 1, prefill: { warps: 8 }, decode: { warps: 4 } }] });

function issuesOf(f: () => unknown): { path: string; value: unknown }[] {
  try {
    f();
  } catch (e) {
    if (e instanceof SpecError) return e.issues.map((i) => ({ path: i.path, value: i.value }));
    throw e;
  }
  assert.unreachable("expected a SpecError");
  return [];
}

test("family: members are the base with their overrides, named <family>__<member>; the hash follows the members", () => {
  const f = tiny();
  assert.equal(f.memberNames, ["a", "b"]);
  assert.equal(f.members.map((m) => m.name), ["tiny__a", "tiny__b"]);
  assert.is(f.members[1]!.ctasPerSm, 1);
  assert.is(f.members[0]!.decode.tile.kv, base.decode.tile.kv);
  assert.is(tiny().hash, f.hash);
  const other = pod.family({ name: "tiny", base, members: [{ name: "a" }, { name: "b", ctasPerSm: 1, prefill: { warps: 8 }, decode: { warps: 4, stages: 1 } }] });
  assert.is.not(other.hash, f.hash);
});

test("family: every bad field is named, with the member's index", () => {
  const issues = issuesOf(() =>
    pod.family({
      name: "bad__name",
      base,
      members: [
        { name: "a", heads: { q: 8, kv: 1 } } as never,
        { name: "a", prefill: { tile: { q: 999 } } },
        { name: "Upper" },
      ],
    }),
  );
  const paths = issues.map((i) => i.path);
  assert.ok(paths.includes("name"), paths.join());
  // The name error stops before the members are merged; the members' own errors follow once it is fixed.
  const members = issuesOf(() =>
    pod.family({ name: "ok", base, members: [{ name: "a", heads: { q: 8, kv: 1 } } as never, { name: "a", prefill: { tile: { q: 999 } } }, { name: "Upper" }] }),
  ).map((i) => i.path);
  assert.ok(members.includes("members.0.heads"), members.join());
  assert.ok(members.includes("members.1.name"), members.join());
  assert.ok(members.some((p) => p.startsWith("members.1.prefill.tile")), members.join());
  assert.ok(members.includes("members.2.name"), members.join());
  // The KV cache's element type is the family's too: every member reads the same cache.
  const kv = issuesOf(() => pod.family({ name: "ok", base, members: [{ name: "a", kvDtype: "e4m3" } as never] })).map((i) => i.path);
  assert.equal(kv, ["members.0.kvDtype"]);
  const many = issuesOf(() => pod.family({ name: "big", base, members: Array.from({ length: FAMILY_MAX_MEMBERS + 1 }, (_, i) => ({ name: `m${i}` })) }));
  assert.equal(many.map((i) => i.path), ["members"]);
});

test("preset families: one per preset of #18 (and the variant presets), member 0 the preset, the analogues' KV tiles as wide as the resource model allows", () => {
  const names = ["llama2_7b", "yi_6b", "llama3_70b_tp8", "qwen2_0_5b", "mistral_7b", "gpt_oss_20b"];
  assert.equal(FAMILY_PRESETS.map((f) => f.name), ["llama3_8b_auto", ...names.map((n) => `${n}_auto`)]);
  for (const name of names) {
    const f = familyPresetByName(`${name}_auto`)!;
    const preset = presetByName(name)!;
    assert.equal(f.memberNames, ["preset", "warp_specialized", "wide", "roles"]);
    assert.equal({ ...specFields(f.members[0]!), name }, specFields(preset), `${name}: member 0 is the preset`);
    assert.ok(f.members.every((m) => m.target === "sm_90a" && m.window === preset.window && m.sinks === preset.sinks));
    assert.is(resourceModel(f.members[1]!).prefillEngine, "warp-specialized");
    // 8192 / D keys per stage: 64 at D=128, 128 at D=64.
    for (const m of f.members.slice(1)) assert.is(m.prefill.tile.kv, 8192 / preset.headDim, `${m.name}`);
  }
  // At D=128 a 128-key tile does not fit beside the decode role: the resource model halves it, saying why.
  const ws = fittedAnalogue("llama2_7b", "warp_specialized") as SpecOverrides & { prefill: { tile: { q: number; kv: number } } };
  const wider = checkOverrides(presetByName("llama2_7b")!, { ...ws, prefill: { ...ws.prefill, tile: { q: 128, kv: 128 } } });
  assert.not.ok(wider.ok);
  assert.match(JSON.stringify(wider), /prefill\.tile.*shared memory per CTA/);
  assert.throws(() => fittedAnalogue("llama2_7b", "nope"), /no preset "llama2_7b" or analogue "nope"/);
});

test("family: the rendered header's constants are the runtime's mirrors and the features are codegen's list", () => {
  const header = generateFamilySources(tiny()).find((f) => f.path === "pod_family.h")!.contents;
  assert.match(header, new RegExp(`#define PODGEN_FAMILY_MAX_MEMBERS ${FAMILY_MAX_MEMBERS}\\b`));
  assert.match(header, new RegExp(`#define PODGEN_COST_FEATURES ${COST_FEATURE_COUNT}\\b`));
  assert.match(header, new RegExp(`#define PODGEN_FAMILY_ABI_VERSION ${PODGEN_FAMILY_ABI_VERSION_SUPPORTED}\\b`));
  assert.is(COST_FEATURES.length, COST_FEATURE_COUNT);
  // What C's plan reports reads as CHOICE_REASONS[reason] and MODES[mode - 1] (runtime, bench/plan-time.ts).
  const enumValue = (name: string) => Number(new RegExp(`\\b${name} = (\\d+)`).exec(header)?.[1]);
  CHOICE_REASONS.forEach((r, i) => assert.is(enumValue(`PODGEN_CHOICE_${r.toUpperCase().replaceAll("-", "_")}`), i, r));
  assert.is(header.match(/\bPODGEN_CHOICE_\w+ = \d+/g)?.length, CHOICE_REASONS.length, "every podgen_choice_reason has a name");
  MODES.forEach((m, i) => assert.is(enumValue(`PODGEN_MODE_${m.toUpperCase()}`), i + 1, m));
  assert.match(header, /#include "members\/a\/pod_attention.h"/);
  assert.is(generateFamilySources(tiny()).map((f) => f.contents).join(), generateFamilySources(tiny()).map((f) => f.contents).join());
  assert.ok(FAMILY_PRESETS.every((f) => f.members.every((m) => m.heads.q === f.members[0]!.heads.q)));
});

test("cost model: least squares recovers a known linear model, and the fit per member and mode predicts it", () => {
  const rng = new Rng(7);
  const truth = { a: { fused: [20, 3, 400, 15, 2, 0.05], serial: [30, 2.5, 380, 10, 4, 0] }, b: { fused: [25, 2, 420, 5, 1, 0.1], serial: [35, 2.2, 390, 8, 3, 0.02] } };
  const records: TimingRecord[] = [];
  for (let w = 0; w < 40; w++) {
    const features = randomFeatures(rng);
    for (const member of ["a", "b"] as const)
      for (const mode of ["fused", "serial"] as const) {
        const us = truth[member][mode].reduce((s, c, i) => s + c * features[i]!, 0);
        records.push({ workload: `w${w}`, member, mode, features, us });
      }
  }
  const model = fitCostModel(records, { gpu: "GPU", family: "tiny", timingKey: "k", memberNames: ["a", "b"], featureNames: [...COST_FEATURES] });
  for (const member of ["a", "b"] as const)
    for (const mode of ["fused", "serial"] as const)
      model.members[member]![mode]!.forEach((c, i) => assert.ok(Math.abs(c - truth[member][mode][i]!) < 1e-6 * Math.max(1, Math.abs(truth[member][mode][i]!)), `${member} ${mode} c${i} = ${c}`));
  const ev = evaluateCostModel(model, records);
  assert.ok(ev.maxRelError! < 1e-8, String(ev.maxRelError));
  assert.is(ev.geomeanRegret, 1);
  // Too few records for a candidate: no coefficients, no prediction.
  const thin = fitCostModel(records.slice(0, 8), { gpu: "GPU", family: "tiny", timingKey: "k", memberNames: ["a", "b"], featureNames: [...COST_FEATURES] });
  assert.is(thin.members.a!.fused, null);
  assert.is(predictUs(thin, records[0]!), null);
  // A weighted fit with noise stays close, and a constant column (rank deficiency) still solves.
  const c = leastSquares([[1, 1], [1, 1], [1, 1]], [3, 3, 3]);
  assert.ok(Math.abs(c[0]! + c[1]! - 3) < 1e-6, c.join());
});

test("cost model: each candidate's error bounds are the quantiles of its relative residuals on the records it was fitted on", () => {
  const rng = new Rng(11);
  const records: TimingRecord[] = [];
  for (let w = 0; w < 40; w++) {
    const features = randomFeatures(rng);
    const exact = [20, 3, 400, 15, 2, 0.05].reduce((s, c, i) => s + c * features[i]!, 0);
    records.push({ workload: `w${w}`, member: "a", mode: "fused", features, us: exact * (1 + 0.2 * (rng.next() - 0.5)) });
    records.push({ workload: `w${w}`, member: "a", mode: "serial", features, us: exact });
  }
  const model = fitCostModel(records, { gpu: "GPU", family: "tiny", timingKey: "k", memberNames: ["a", "b"], featureNames: [...COST_FEATURES] });
  assert.is(model.errorBounds!.quantile, ERROR_BOUND_QUANTILE);
  const residuals = records.filter((r) => r.mode === "fused").map((r) => (r.us - predictUs(model, r)!) / predictUs(model, r)!);
  const [low, high] = model.errorBounds!.members.a!.fused!;
  assert.is(low, quantile(residuals, 1 - ERROR_BOUND_QUANTILE));
  assert.is(high, quantile(residuals, ERROR_BOUND_QUANTILE));
  // At the shipped quantile (0.5) both bounds are the median residual, which least squares keeps near 0.
  assert.ok(low <= high && low > -0.15 && high < 0.15, `${low}, ${high}: within the ±10% noise`);
  assert.ok(ERROR_BOUND_QUANTILE !== 0.5 || (low === high && Math.abs(low) < 0.05), `${low}, ${high}: the median residual`);
  // Another quantile (bench/replay-margin.ts) spreads them over the noise.
  const wide = fitCostModel(records, { gpu: "GPU", family: "tiny", timingKey: "k", memberNames: ["a", "b"], featureNames: [...COST_FEATURES], quantile: 0.8 });
  assert.is(wide.errorBounds!.quantile, 0.8);
  const [wideLow, wideHigh] = wide.errorBounds!.members.a!.fused!;
  assert.equal([wideLow, wideHigh], [quantile(residuals, 0.2), quantile(residuals, 0.8)]);
  assert.ok(wideLow < -0.03 && wideHigh > 0.03 && wideLow > -0.15 && wideHigh < 0.15, `${wideLow}, ${wideHigh}: about the ±10% noise`);
  for (const bound of model.errorBounds!.members.a!.serial!) assert.ok(Math.abs(bound) < 1e-9, `noiseless: ${bound}`);
  assert.equal(model.errorBounds!.members.b, { fused: null, serial: null }, "no records, no coefficients, no bounds");
  // Nearest rank: with 10 values, the 0.9 quantile is the 9th smallest and the 0.1 quantile the smallest.
  assert.equal([quantile([5, 1, 4, 2, 3, 10, 9, 8, 7, 6], 0.9), quantile([5, 1, 4, 2, 3, 10, 9, 8, 7, 6], 0.1), quantile([], 0.5)], [9, 1, null]);
  assert.throws(() => quantile([1], 1), /q = 1 must be in \(0, 1\)/);
});

test("cost model store: keyed by GPU and build key; a model of another build is not used and says why; a re-tune replaces it", () => {
  const dir = mkdtempSync(join(tmpdir(), "podgen-costmodel-"));
  try {
    const path = join(dir, "cost-models.json");
    const model: CostModel = { version: 1, gpu: "H100", family: "tiny", timingKey: "old", features: [...COST_FEATURES], members: {}, fit: { records: 0, date: "d" } };
    writeCostModel(model, path);
    assert.equal(findCostModel("tiny", "H100", "old", path), { model });
    const miss = findCostModel("tiny", "H100", "new", path);
    assert.is(miss.model, null);
    assert.match((miss as { why: string }).why, /other kernels or plans \(timing keys old; this build's is new\)/);
    assert.match((findCostModel("tiny", "A100", "old", path) as { why: string }).why, /no cost model of tiny for A100/);
    // A re-tune on new kernels replaces the family's model on that GPU; other GPUs' and families' stay.
    const otherGpu = { ...model, gpu: "H200" }, otherFamily = { ...model, family: "small", timingKey: "s" };
    writeCostModel(otherGpu, path);
    writeCostModel(otherFamily, path);
    writeCostModel({ ...model, timingKey: "new" }, path);
    assert.is(findCostModel("tiny", "H100", "new", path).model?.timingKey, "new");
    assert.is(findCostModel("tiny", "H100", "old", path).model, null, "the old build's model is gone");
    assert.equal(readCostModels(path).models.map((m) => `${m.family}/${m.gpu}/${m.timingKey}`), ["small/H100/s", "tiny/H100/new", "tiny/H200/old"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("serving batches: same seed, same batches; chunks fit the token budget and continue a prefix", () => {
  const mix = SERVING_MIXES.llama3_8b;
  const a = servingBatches(mix, 11, 30);
  assert.equal(servingBatches(mix, 11, 30), a);
  assert.not.equal(servingBatches(mix, 12, 30), a);
  for (const b of a) {
    const tokens = b.shape.prefills.reduce((s, p) => s + p.qLen, 0) + b.shape.decodes.length;
    assert.ok(tokens <= mix.tokenBudget, `${b.name}: ${tokens} tokens`);
    assert.ok(b.shape.prefills.length >= 1 && b.shape.prefills.every((p) => p.qLen >= 1 && p.kvLen >= p.qLen && p.kvLen <= mix.maxKv));
    assert.ok(b.shape.decodes.length >= mix.decodes.min && b.shape.decodes.every((kv) => kv >= 1 && kv <= mix.maxKv));
  }
  // Long-tailed decode contexts: some far above the median.
  const kvs = a.flatMap((b) => b.shape.decodes).sort((x, y) => x - y);
  assert.ok(kvs[Math.floor(kvs.length * 0.99)]! > 3 * mix.decodeKv.median);
});

// ---------------------------------------------------------------------------------------------
// A built family, planned on the host through its C ABI.

const cacheDir = mkdtempSync(join(tmpdir(), "podgen-family-test-"));
let lib: FamilyLibrary;
let built: Awaited<ReturnType<typeof buildFamily>>;

test.before(async () => {
  built = await buildFamily(tiny(), { cacheDir });
  lib = new FamilyLibrary(built.library, built.manifest.symbolPrefix);
});

test("family build: a second build reads the cached manifest back (its members' manifests checked by the kernel manifest schema)", async () => {
  const again = await buildFamily(tiny(), { cacheDir });
  assert.ok(again.cached);
  assert.is(again.library, built.library);
  assert.equal(again.manifest, built.manifest);
});

const planOf = (shape: BatchShape, options: Parameters<FamilyLibrary["plan"]>[1] = {}) =>
  lib.plan(makeHostBatch(lib.info(), shape, { seed: 1 }).batch, { numSms: 132, ...options }).plan;

const hybrid: BatchShape = { prefills: [{ qLen: 512, kvLen: 4096 }], decodes: [4096, 900, 17] };

test("family library: members, features and the static rule (member 0; fused when both ops, else standalone)", () => {
  assert.equal(lib.memberNames, ["a", "b"]);
  assert.equal(lib.featureNames, [...COST_FEATURES]);
  const p = planOf(hybrid);
  assert.is(p.describe(), "a fused (static-rule)");
  assert.is(p.candidates.length, 4);
  assert.ok(p.candidates.every((c) => c.predictedUs === null));
  // The member plan is member 0's own plan of the batch.
  const direct = lib.member("a").plan(makeHostBatch(lib.info(), hybrid, { seed: 1 }).batch, { numSms: 132 }).plan;
  assert.equal(p.plan.toJSON(), direct.toJSON());
  assert.is(planOf({ prefills: [], decodes: [100, 200] }).describe(), "a serial (static-rule)");
  assert.is(planOf({ prefills: [{ qLen: 64, kvLen: 64 }], decodes: [] }).describe(), "a serial (static-rule)");
  // Features: decode bytes are padded K and V of every KV head (16-bit); prefill work grows with the chunk.
  const f = p.candidates[0]!.features;
  const padded = [4096, 960, 64].reduce((s, kv) => s + kv, 0);
  assert.ok(Math.abs(f.decode_gb! - (padded * 8 * 128 * 2 * 2) / 1e9) < 1e-12, String(f.decode_gb));
  assert.ok(planOf({ prefills: [{ qLen: 1024, kvLen: 4096 }], decodes: [1] }).candidates[0]!.features.prefill_gflop! > f.prefill_gflop!);
  // prefill_crowding is prefill work times the tiles an SM holds: 0 without a prefill, not without decodes.
  for (const c of p.candidates) assert.is(c.features.prefill_crowding, c.features.prefill_gflop! * c.features.tiles_per_sm!);
  assert.ok(f.prefill_crowding! > 0);
  assert.is(planOf({ prefills: [], decodes: [100, 200] }).candidates[0]!.features.prefill_crowding, 0);
});

/** A model whose predictions are easy to reason about: `bias` µs per candidate plus one per decode GB. */
const modelWith = (bias: Record<string, { fused: number; serial: number }>): CostModel => ({
  version: 1, gpu: "test", family: "tiny", timingKey: "k", features: [...COST_FEATURES],
  members: Object.fromEntries(Object.entries(bias).map(([m, b]) => [m, { fused: [b.fused, 0, 1000, 0, 0, 0], serial: [b.serial, 0, 1000, 0, 0, 0] }])),
  fit: { records: 0, date: "" },
});

test("family library: the cost model picks the lowest prediction, the plan records every candidate's, and a caller can force", () => {
  const model = modelWith({ a: { fused: 50, serial: 40 }, b: { fused: 30, serial: 45 } });
  const p = planOf(hybrid, { costModel: model });
  assert.is(p.describe(), "b fused (cost-model)");
  for (const c of p.candidates) {
    const expected = model.members[c.memberName]![c.mode]!.reduce((s, w, i) => s + w * c.features[COST_FEATURES[i]!]!, 0);
    assert.ok(Math.abs(c.predictedUs! - expected) < 1e-9, `${c.memberName} ${c.mode}`);
  }
  assert.is(planOf(hybrid, { costModel: model, member: "a" }).describe(), "a serial (cost-model)");
  assert.is(planOf(hybrid, { costModel: model, mode: "serial" }).describe(), "a serial (cost-model)");
  assert.is(planOf(hybrid, { costModel: model, member: "a", mode: "fused" }).describe(), "a fused (forced)");
  // A model without coefficients for a member leaves the choice among the others.
  const partial: CostModel = { ...model, members: { a: { fused: null, serial: [90, 0, 0, 0, 0, 0] } } };
  assert.is(planOf(hybrid, { costModel: partial }).describe(), "a serial (cost-model)");
  assert.equal(JSON.parse(JSON.stringify(p)).member, "b");
});

/** modelWith's model with error bounds [low, high] per member and mode. */
const withBounds = (model: CostModel, bounds: Record<string, { fused: [number, number]; serial: [number, number] }>): CostModel => ({
  ...model,
  errorBounds: { quantile: 0.9, members: bounds },
});

test("family library: the serial margin runs the best serial where the fused pick, at its high bound, does not beat it at its low bound", () => {
  // Predictions on `hybrid`: bias + 1000 µs per decode GB (about 21 µs): a fused 71.0, a serial 77.0, b serial 79.0.
  const model = modelWith({ a: { fused: 50, serial: 56 }, b: { fused: 90, serial: 58 } });
  const predicted = (p: FamilyPlan, member: string, mode: string) => p.candidates.find((c) => c.memberName === member && c.mode === mode)!.predictedUs!;
  const plain = planOf(hybrid, { costModel: model });
  assert.is(plain.describe(), "a fused (cost-model)", "without bounds: the lowest prediction");
  const [fused, serial] = [predicted(plain, "a", "fused"), predicted(plain, "a", "serial")];
  assert.ok(fused < serial && fused * 1.05 > serial * 0.96, `${fused} vs ${serial}: the bounds below must decide`);
  // Wide bounds: 8% predicted gain is within them, so serial runs, and the plan says why.
  const wide = withBounds(model, { a: { fused: [-0.02, 0.05], serial: [-0.04, 0.03] }, b: { fused: [-0.02, 0.05], serial: [-0.04, 0.03] } });
  const margin = planOf(hybrid, { costModel: wide });
  assert.is(margin.describe(), "a serial (serial-margin)");
  assert.is(JSON.parse(JSON.stringify(margin)).reason, "serial-margin");
  // Tight bounds: the same gain is beyond them, so fused runs.
  const tight = withBounds(model, { a: { fused: [-0.01, 0.01], serial: [-0.01, 0.01] }, b: { fused: [-0.01, 0.01], serial: [-0.01, 0.01] } });
  assert.is(planOf(hybrid, { costModel: tight }).describe(), "a fused (cost-model)");
  // The margin weighs the best predicted serial of any member: here b's (77 µs; a's is 91).
  const bSerial = { ...wide, members: modelWith({ a: { fused: 50, serial: 70 }, b: { fused: 90, serial: 56 } }).members };
  assert.is(planOf(hybrid, { costModel: bSerial }).describe(), "b serial (serial-margin)");
  // Forcing fused leaves no serial to weigh; forcing a member weighs only its own serial.
  assert.is(planOf(hybrid, { costModel: wide, mode: "fused" }).describe(), "a fused (cost-model)");
  assert.is(planOf(hybrid, { costModel: bSerial, member: "a" }).describe(), "a fused (cost-model)");
  // A model picking serial anyway is left alone; bad bounds are named.
  const serialWins = withBounds(modelWith({ a: { fused: 80, serial: 56 } }), { a: { fused: [0, 0.5], serial: [-0.5, 0] } });
  assert.is(planOf(hybrid, { costModel: serialWins }).describe(), "a serial (cost-model)");
  const bad = withBounds(model, { a: { fused: [-0.01, 0.01], serial: [-0.01, 0.01] }, b: { fused: [-3, 0.01], serial: [-0.01, 0.01] } });
  assert.throws(() => planOf(hybrid, { costModel: bad }), /options\.error_bounds\[4\]=-3\.0+ must be finite and above -1/);
});

test("family library: graph mode chooses for the bucket, whatever the live batch", () => {
  // Serial wins below 0.009 GB of decode reads, fused above.
  const model: CostModel = { ...modelWith({ a: { fused: 100, serial: 10 } }), members: { a: { fused: [100, 0, 0, 0, 0, 0], serial: [10, 0, 10000, 0, 0, 0] } } };
  const bucket = { graphMode: true, maxPrefills: 2, maxDecodes: 64, maxPrefillTokens: 1024, maxKvLen: 8192, maxNumPages: 40000, maxPageEntries: 40000 };
  const small = planOf({ prefills: [{ qLen: 16, kvLen: 16 }], decodes: [1] }, { costModel: model, ...bucket });
  const large = planOf({ prefills: [{ qLen: 1000, kvLen: 8000 }], decodes: Array(64).fill(8000) }, { costModel: model, ...bucket });
  assert.is(small.describe(), large.describe());
  assert.equal(small.candidates, large.candidates);
  // Outside graph mode the same model tells them apart.
  assert.is.not(planOf({ prefills: [{ qLen: 16, kvLen: 16 }], decodes: [1] }, { costModel: model }).mode, planOf({ prefills: [{ qLen: 1000, kvLen: 8000 }], decodes: Array(64).fill(8000) }, { costModel: model }).mode);
});

test("family library: the planner's host time, timed inside the library (ns per plan), and its bad input", () => {
  const host = makeHostBatch(lib.info(), hybrid, { seed: 1 });
  const ns = lib.planBenchmark(host.batch, { numSms: 132 }, 50);
  assert.ok(Number.isFinite(ns) && ns > 0, String(ns));
  assert.throws(() => lib.planBenchmark(host.batch, {}, 0), /iters = 0: must be a positive integer/);
  host.batch.kvLens[0] = 3;
  assert.throws(() => lib.planBenchmark(host.batch, {}, 10), /PODGEN_ERR_BAD_BATCH: pod_tiny_plan: member "a": .*kv_lens\[0\]=3 < q_len=512/);
});

test("the bench's host plan time on the tiny family: 256 requests, the planner alone and through the binding", () => {
  const t = timePlan(lib, { numSms: 132, costModel: null, cIters: 20, bindingIters: 5 });
  assert.equal([t.requests, t.prefills, t.decodes, t.cIters, t.bindingIters], [256, 4, 252, 20, 5]);
  assert.is(t.choice, "a fused (static-rule)");
  assert.ok(t.cUsPerPlan > 0 && t.bindingUsPerPlan > 0, JSON.stringify(t));
});

test("the family bench's pairing: the unforced plan is the same launch as the forced plan of its choice, byte for byte, and no other candidate's", () => {
  const { batch } = makeHostBatch(lib.info(), hybrid, { seed: 1 });
  const serialMargin = withBounds(modelWith({ a: { fused: 50, serial: 56 }, b: { fused: 90, serial: 58 } }), {
    a: { fused: [-0.02, 0.05], serial: [-0.04, 0.03] },
    b: { fused: [-0.02, 0.05], serial: [-0.04, 0.03] },
  });
  const choices = [{}, { costModel: modelWith({ a: { fused: 50, serial: 40 }, b: { fused: 30, serial: 45 } }) }, { costModel: serialMargin }].map((options) => {
    const chosen = lib.plan(batch, { numSms: 132, ...options });
    const forced = chosen.plan.candidates.map((c) => lib.plan(batch, { numSms: 132, member: c.memberName, mode: c.mode }));
    const chosenOne = chosen.plan.candidates.map((c) => c.memberName === chosen.plan.memberName && c.mode === chosen.plan.mode);
    assert.equal(forced.map((f) => sameLaunch(chosen, f)), chosenOne, chosen.plan.describe());
    return chosen.plan.describe();
  });
  assert.equal(choices, ["a fused (static-rule)", "b fused (cost-model)", "a serial (serial-margin)"]);
});

test("family library: bad input is named (member, mode, model shape, and the member planner's own batch errors)", () => {
  assert.throws(() => planOf(hybrid, { member: "zz" }), /options.member = "zz": the family pod_tiny has members "a", "b"/);
  assert.throws(() => planOf(hybrid, { mode: "both" as never }), /options.mode = "both"/);
  assert.throws(() => planOf(hybrid, { costModel: { ...modelWith({ a: { fused: 1, serial: 1 } }), features: ["one"] } }), /costModel.features/);
  assert.throws(() => planOf(hybrid, { costModel: modelWith({ c: { fused: 1, serial: 1 } }) }), /options.member = "c"/);
  const host = makeHostBatch(lib.info(), hybrid, { seed: 1 });
  host.batch.kvLens[0] = 3;
  assert.throws(() => lib.plan(host.batch, {}), /pod_tiny_plan failed: PODGEN_ERR_BAD_BATCH: pod_tiny_plan: member "a": .*kv_lens\[0\]=3 < q_len=512/);
});

test.after(() => {
  lib?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

test("cost models: every shipped model is keyed by the timing key its family preset gets from today's templates and golden plans (an edit to a kernel's templates/, a comment too, re-keys all of them; one to the host planner only if its plans change)", async () => {
  const { models } = readCostModels();
  assert.ok(models.length >= 5, "bench/tuning/cost-models.json ships the five dense families' models");
  const nvcc = await nvccVersion();
  for (const m of models) {
    const family = familyPresetByName(m.family);
    assert.ok(family, `${m.family}: a model for no family preset`);
    const key = familyTimingKeyFor(family, nvcc);
    assert.is(m.timingKey, key, `${m.family} on ${m.gpu}: fitted on timing key ${m.timingKey}, but today's templates, golden plans and nvcc ${nvcc} give ${key}; auto would plan by the static rule. Re-tune on the GPU (podgen tune --family ${m.family}), or keep the edit out of templates/`);
  }
});

test("the timing key leaves the host planner's sources out and has the kernels' sources and the golden plans; the build key has every source and no plans", () => {
  const family = familyPresetByName("llama3_8b_auto")!;
  const sources = familyBuildSources(generateFamilySources(family));
  const plans = readFileSync(PLAN_GOLDEN_FILE, "utf8");
  const keys = (edit?: string, otherPlans = plans, nvcc = "13.0") =>
    familyKeys(family, sources.map((f) => (f.path === edit ? { ...f, contents: f.contents + "\n// an edit\n" } : f)), nvcc, ["-O3"], otherPlans);
  const before = keys();
  for (const path of ["pod/planner.h", "pod/planner_input.inl", "family/select.h"]) {
    assert.ok(sources.some((f) => f.path === path), `${path} is a source of the build`);
    assert.equal({ ...keys(path), build: "" }, { ...before, build: "" }, `${path}: the host planner's, timing key kept`);
    assert.is.not(keys(path).build, before.build, `${path}: in the build key`);
  }
  for (const path of ["pod/prefill_ws.cuh", "pod/c_abi.inl", "pod/contract.h", "family/abi.inl", "family.cu", "members/preset/kernel.cu"]) {
    assert.ok(sources.some((f) => f.path === path), `${path} is a source of the build`);
    assert.is.not(keys(path).timing, before.timing, `${path}: the kernels or their launch, timing key changed`);
  }
  const otherPlans = keys(undefined, plans + "x\tsplit\t1\t0\n");
  assert.is.not(otherPlans.timing, before.timing, "other golden plans: timing key changed");
  assert.is(otherPlans.build, before.build, "the golden plans are not compiled");
  assert.is.not(keys(undefined, plans, "12.4.131").timing, before.timing, "the nvcc version is in it");
  assert.is(familyTimingKeyFor(family, "13.0", []), familyTimingKeyFor(family, "13.0", []), "stable");
});

test.run();
