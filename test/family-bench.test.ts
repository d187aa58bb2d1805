// `podgen tune --family` and `podgen bench --family` without a GPU: the fit and held-out batch
// sets, the order of the interleaved timing rounds, the report's rows (auto paired with the
// candidate of its launch) and geomeans, the table from a recorded report (test/fixtures/
// family-bench-report.json: synthetic numbers in a real report's shape), the schemas, refitting
// recorded times (--from), the dry runs and the errors of both commands. Timing on a GPU: the
// commands themselves on one (README, "Config families").
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT, COST_FEATURES } from "../codegen/paths.ts";
import { canonicalJson, FAMILY_PRESETS, presetByName } from "../dsl/index.ts";
import { Rng } from "../runtime/index.ts";
import { DEFAULT_FIT_BATCHES, DEFAULT_FIT_SEED, DEFAULT_HELDOUT_SEED, DEFAULT_LIGHT_DECODE_BATCHES, fitBatches, heldOutBatches, lightDecodeMix, paperStyleBatch, planTimeShape, sameLengths, servingMixFor } from "../bench/family-batches.ts";
import { torchWorkloads } from "../bench/family-bench.ts";
import { loadWorkloads, resolvedWorkloads } from "../bench/workloads.ts";
import { familyBatchResult, formatFamilyTable, summarizeSet, type FamilyBenchReport } from "../bench/family-report.ts";
import { geomean, upperMedian } from "../bench/stats.ts";
import { interleavedRounds, type AutoTiming, type CandidateTiming } from "../bench/family-timing.ts";
import { familyBenchReportSchema, familyTimingsSchema, readFamilyBenchReport } from "../bench/schemas.ts";
import { SERVING_MIXES } from "../bench/serving-batches.ts";
import type { TorchWorkload } from "../bench/torch.ts";
import { readCostModels } from "../bench/tune/cost-model.ts";
import { fitFamilyTimings, formatFit, timingRecords, type FamilyTimings } from "../bench/tune/family.ts";
import { buildResultsIndex } from "../bench/results-index.ts";
import { randomFeatures } from "./cost-features.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-family-bench-"));
const family = FAMILY_PRESETS.find((f) => f.name === "llama3_8b_auto")!;
const FIXTURE = join(PACKAGE_ROOT, "test/fixtures/family-bench-report.json");
const mix = SERVING_MIXES.llama3_8b;
const key = (shape: unknown) => canonicalJson(shape);

// ---------------------------------------------------------------------------------------------
// The batch sets

test("fit and held-out batches: deterministic from their seeds, disjoint in names and lengths", () => {
  const fit = fitBatches(mix, DEFAULT_FIT_SEED, DEFAULT_FIT_BATCHES);
  const held = heldOutBatches(mix, DEFAULT_HELDOUT_SEED, 20, fit);
  assert.equal(fitBatches(mix, DEFAULT_FIT_SEED, DEFAULT_FIT_BATCHES), fit);
  assert.equal(heldOutBatches(mix, DEFAULT_HELDOUT_SEED, 20, fit), held);
  assert.is(fit.length, 20);
  assert.is(held.length, 20);
  assert.ok(fit.every((b) => b.set === "fit" && b.name.startsWith("fit-s1-")));
  assert.ok(held.every((b) => b.set === "heldout" && b.name.startsWith("heldout-s2-")));
  const fitKeys = new Set(fit.map((b) => key(b.shape)));
  assert.ok(held.every((b) => !fitKeys.has(key(b.shape))));
  assert.is(new Set([...fit, ...held].map((b) => b.name)).size, 40);
  // Another held-out seed, other batches.
  assert.not.equal(heldOutBatches(mix, 3, 20, fit).map((b) => key(b.shape)), held.map((b) => key(b.shape)));
});

test("light-decode fit batches: after the serving ones, the mix's fewest decodes, their own stream", () => {
  const serving = fitBatches(mix, DEFAULT_FIT_SEED, DEFAULT_FIT_BATCHES);
  const fit = fitBatches(mix, DEFAULT_FIT_SEED, DEFAULT_FIT_BATCHES, DEFAULT_LIGHT_DECODE_BATCHES);
  assert.equal(fit.slice(0, DEFAULT_FIT_BATCHES), serving, "the serving batches keep their names and lengths");
  const light = fit.slice(DEFAULT_FIT_BATCHES);
  assert.is(light.length, DEFAULT_LIGHT_DECODE_BATCHES);
  assert.equal(light.map((b) => b.name), light.map((_, i) => `fit-light-s1-${i}`));
  assert.ok(light.every((b) => b.set === "fit" && b.shape.decodes.length >= mix.decodes.min && b.shape.decodes.length <= 3 * mix.decodes.min));
  assert.equal(lightDecodeMix(mix), { ...mix, decodes: { min: mix.decodes.min, max: 3 * mix.decodes.min } });
  // Not the serving batches' draws with fewer decodes: another stream of the same seed.
  assert.not.equal(light.map((b) => key(b.shape.prefills)), serving.slice(0, light.length).map((b) => key(b.shape.prefills)));
  // The held-out set is drawn apart from all of them.
  const fitKeys = new Set(fit.map((b) => key(b.shape)));
  assert.ok(heldOutBatches(mix, DEFAULT_HELDOUT_SEED, 20, fit).every((b) => !fitKeys.has(key(b.shape))));
});

test("held-out batches never repeat a fitted batch's lengths: such a batch is skipped, the rest keep their names", () => {
  const held = heldOutBatches(mix, DEFAULT_HELDOUT_SEED, 5, []);
  const fitted = [{ ...held[1]!, name: "x", set: "fit" as const }];
  const apart = heldOutBatches(mix, DEFAULT_HELDOUT_SEED, 5, fitted);
  assert.equal(apart.map((b) => b.name), [held[0]!.name, held[2]!.name, held[3]!.name, held[4]!.name, "heldout-s2-5"]);
  assert.ok(apart.every((b) => key(b.shape) !== key(held[1]!.shape)));
});

test("the serving mix follows the family's model shape; the plan-time batch is 4 chunks + 252 decodes, fixed", () => {
  assert.is(servingMixFor(family.members[0]!), "llama3_8b");
  const shape = planTimeShape();
  assert.is(shape.prefills.length + shape.decodes.length, 256);
  assert.is(shape.prefills.length, 4);
  assert.equal(planTimeShape(), shape);
  assert.ok(shape.decodes.every((kv) => kv >= 1 && kv <= 16384) && new Set(shape.decodes).size > 200);
});

test("paper-style batches: the paper's (1024, 4096) chunk and 8 decodes of 4096 per query head of a KV group, the paper's balance", () => {
  const decodesOf = (name: string) => paperStyleBatch(presetByName(name)!).shape.decodes.length;
  assert.equal(
    ["llama3_8b", "llama2_7b", "yi_6b", "llama3_70b_tp8", "qwen2_0_5b", "gpt_oss_20b"].map(decodesOf),
    [32, 8, 64, 64, 56, 64],
    "group 4, 1, 8, 8, 7, 8",
  );
  const b = paperStyleBatch(presetByName("qwen2_0_5b")!);
  assert.equal([b.name, b.set, b.shape.prefills], ["paper-style p1024x4096+d56x4096", "paper", [{ qLen: 1024, kvLen: 4096 }]]);
  assert.ok(b.shape.decodes.every((kv) => kv === 4096));
  // Llama-3-8B's is the paper's own first batch.
  const paper = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/paper.json")).find((w) => w.name === "p1024x4096+d32x4096")!;
  assert.ok(sameLengths(paperStyleBatch(presetByName("llama3_8b")!).shape, paper.shape));
  assert.not.ok(sameLengths(b.shape, paper.shape));
});

test("a serving mix for every preset family's model shape, each batch within its token budget", () => {
  for (const f of FAMILY_PRESETS) {
    const name = servingMixFor(f.members[0]!);
    assert.ok(name, `${f.name}: no serving mix`);
    const m = SERVING_MIXES[name!];
    for (const b of fitBatches(m, 1, 10)) {
      const tokens = b.shape.prefills.reduce((s, p) => s + p.qLen, 0) + b.shape.decodes.length;
      assert.ok(tokens <= m.tokenBudget, `${f.name} ${b.name}: ${tokens} tokens`);
      assert.ok(b.shape.decodes.every((kv) => kv >= 1 && kv <= m.maxKv) && b.shape.prefills.every((p) => p.kvLen <= m.maxKv));
    }
  }
  assert.is(servingMixFor(presetByName("mistral_7b")!), "llama3_8b", "the same heads, page and dtype");
});

test("PyTorch's workloads of a family carry its window (its baselines then attend to the same keys); none without one", () => {
  const batches = [paperStyleBatch(presetByName("mistral_7b")!)];
  const windowOf = (name: string) => resolvedWorkloads(torchWorkloads(batches, FAMILY_PRESETS.find((f) => f.name === name)!.members[0]!)).workloads[0]!.window;
  assert.equal([windowOf("mistral_7b_auto"), windowOf("gpt_oss_20b_auto"), windowOf("llama3_8b_auto")], [4096, 128, null]);
});

// ---------------------------------------------------------------------------------------------
// The interleaved timing's rounds

test("interleaved rounds: every launch once a round, in the given order (the candidates, then auto), each step on the next input copy", () => {
  const launches = [0, 1, 2, 3, 4];
  const rounds = interleavedRounds(launches, 3, 2);
  assert.equal(rounds.map((r) => r.map((s) => s.launch)), [launches, launches, launches]);
  assert.equal(rounds.flat().map((s) => s.copy), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
  // Across rounds as within them: any `copies` consecutive launches read `copies` different copies,
  // so the launch before one read another copy and the L2 holds none of the copy it reads.
  for (const copies of [2, 3, 5, 8]) {
    const steps = interleavedRounds(launches, 4, copies, 7).flat();
    for (let n = 0; n + copies <= steps.length; n++) assert.is(new Set(steps.slice(n, n + copies).map((s) => s.copy)).size, copies, `${copies} copies, step ${n}`);
  }
  assert.equal(interleavedRounds(launches, 0, 2), []);
});

test("interleaved rounds after the check round: the launches that passed it, the copy count going on from it", () => {
  const check = interleavedRounds([0, 1, 2, 3, 4], 1, 3)[0]!;
  assert.equal(check.map((s) => s.copy), [0, 1, 2, 0, 1]);
  // Launch 1 failed its check: the other four, in their order, from step 5 on.
  const rest = interleavedRounds([0, 2, 3, 4], 2, 3, check.length);
  assert.equal(rest.map((r) => r.map((s) => s.launch)), [[0, 2, 3, 4], [0, 2, 3, 4]]);
  assert.equal(rest.flat().map((s) => s.copy), [2, 0, 1, 2, 0, 1, 2, 0]);
});

// ---------------------------------------------------------------------------------------------
// The report

const members = ["preset", "wide"];
const timing = (member: string, mode: "fused" | "serial", us: number | null, error?: string): CandidateTiming => ({
  member, mode, features: [1, 2, 3, 4, 5], predictedUs: us === null ? null : us + 10, us, ...(error ? { error } : {}),
});
const batch = { name: "b", set: "heldout" as const, shape: { prefills: [{ qLen: 512, kvLen: 4096 }], decodes: [4096, 100] } };
/** PyTorch's entry of the batch: its best serial, or (null) no decode backend. */
const torchOf = (serialMs: number | null): TorchWorkload => {
  const prefill = { name: "b", prefill: { flash_varlen: 0.2 }, decode: {}, errors: {}, best_prefill: { backend: "flash_varlen", ms: 0.2 } };
  if (serialMs === null) return prefill;
  return { ...prefill, decode: { flash_varlen: 0.1 }, best_decode: { backend: "flash_varlen", ms: 0.1 }, best_serial_ms: serialMs, best_serial_backends: ["flash_varlen", "flash_varlen"] };
};

test("a batch's row: the preset is member 0 fused, our serial member 0 serial, the best the fastest timed; speedups over both serials", () => {
  const cands = [timing("preset", "fused", 400), timing("preset", "serial", 600), timing("wide", "fused", 300), timing("wide", "serial", null, "launch failed")];
  const auto = { member: "wide", mode: "fused" as const, reason: "cost-model" as const, predictedUs: 290, us: 310 };
  const r = familyBatchResult(batch, cands, auto, torchOf(0.9), members);
  assert.is(r.presetUs, 400);
  assert.is(r.ownSerialUs, 600);
  assert.equal(r.best, { member: "wide", mode: "fused", us: 300 });
  assert.is(r.torchSerialUs, 900);
  assert.equal(r.speedup.auto, { vsOwnSerial: 600 / 310, vsTorch: 900 / 310 });
  assert.equal(r.speedup.preset, { vsOwnSerial: 1.5, vsTorch: 2.25 });
  assert.equal(r.speedup.best, { vsOwnSerial: 2, vsTorch: 3 });
  assert.is(r.autoOverBest, 310 / 300);
  assert.equal(r.errors, ["wide serial: launch failed"]);
  assert.equal(r.prefills, [[512, 4096]]);
  // PyTorch without a decode backend: no serial of its own, and no speedup over it.
  const noDecode = familyBatchResult(batch, cands, auto, torchOf(null), members);
  assert.is(noDecode.torchSerialUs, null);
  assert.equal(noDecode.torchSerialMissing, ["decode"]);
  assert.is(noDecode.speedup.auto.vsTorch, null);
  // Our serial failed: no speedups over it.
  const noSerial = familyBatchResult(batch, [timing("preset", "fused", 400), timing("preset", "serial", null, "x")], auto, null, members);
  assert.is(noSerial.speedup.auto.vsOwnSerial, null);
  assert.is(noSerial.best?.member, "preset");
});

const autoOf = (member: string, mode: "fused" | "serial", us: number | null, sameLaunchAsCandidate?: boolean): AutoTiming => ({
  member, mode, reason: "cost-model", predictedUs: 290, us, ...(sameLaunchAsCandidate === undefined ? {} : { sameLaunchAsCandidate }),
});

test("auto on equal footing: where its launch is a candidate's, it is judged by that candidate's time; its own time is kept beside it", () => {
  const cands = [timing("preset", "fused", 400), timing("preset", "serial", 600), timing("wide", "fused", 300), timing("wide", "serial", 650)];
  // Auto ran the fastest candidate's launch, its own timing 7% slower: judged by the candidate's
  // 300 µs, auto / best is exactly 1 and its speedups are the best's.
  const fastest = familyBatchResult(batch, cands, autoOf("wide", "fused", 321, true), torchOf(0.9), members);
  assert.is(fastest.autoUs, 300);
  assert.is(fastest.autoOverBest, 1);
  assert.equal(fastest.speedup.auto, fastest.speedup.best);
  assert.is(fastest.auto.us, 321, "auto's own time stays in the report");
  assert.is(fastest.autoOwnOverCandidate, 321 / 300);
  // Another candidate's launch: auto / best is the ratio of the two candidates' times, from the same rounds.
  const slower = familyBatchResult(batch, cands, autoOf("preset", "fused", 390, true), torchOf(0.9), members);
  assert.equal([slower.autoUs, slower.autoOverBest, slower.autoOwnOverCandidate], [400, 400 / 300, 390 / 400]);
  assert.equal(slower.speedup.auto, slower.speedup.preset);
  // Not the same launch, or a report from before the check: auto's own time, not paired.
  for (const same of [false, undefined]) {
    const own = familyBatchResult(batch, cands, autoOf("wide", "fused", 321, same), torchOf(0.9), members);
    assert.equal([own.autoUs, own.autoOverBest, own.autoOwnOverCandidate], [321, 321 / 300, null], String(same));
  }
  // The candidate failed: auto's own time. Auto's own launch failed: no figure, and the error says so.
  const noTwin = familyBatchResult(batch, [cands[0]!, cands[1]!, timing("wide", "fused", null, "launch failed")], autoOf("wide", "fused", 321, true), null, members);
  assert.equal([noTwin.autoUs, noTwin.autoOwnOverCandidate], [321, null]);
  const failed = familyBatchResult(batch, cands, { ...autoOf("wide", "fused", null, true), error: "launch failed" }, null, members);
  assert.equal([failed.autoUs, failed.autoOverBest, failed.autoOwnOverCandidate], [null, null, null]);
  assert.equal(failed.errors, ["auto (wide fused): launch failed"]);
});

test("a set's summary and table: auto's figure, its own launch beside it, and the spread of own / candidate over the paired batches", () => {
  const cands = (us: number) => [timing("preset", "fused", us), timing("preset", "serial", 2 * us), timing("wide", "fused", us + 50)];
  const rows = [
    familyBatchResult({ ...batch, name: "b0" }, cands(1000), autoOf("preset", "fused", 1070, true), null, members),
    familyBatchResult({ ...batch, name: "b1" }, cands(500), autoOf("wide", "fused", 540, true), null, members),
    familyBatchResult({ ...batch, name: "b2" }, cands(200), autoOf("preset", "fused", 190, true), null, members),
    familyBatchResult({ ...batch, name: "b3" }, cands(300), autoOf("preset", "fused", 310, false), null, members),
  ];
  const s = summarizeSet(rows);
  const ratios = [1070 / 1000, 540 / 550, 190 / 200];
  assert.equal(s.autoOwnOverCandidate, { batches: 3, median: upperMedian(ratios)!, min: 190 / 200, max: 1070 / 1000 });
  assert.is(s.autoChoseFastest, 3);
  assert.is(summarizeSet(rows.slice(3)).autoOwnOverCandidate, null);
  const report: FamilyBenchReport = { ...readFamilyBenchReport(FIXTURE), batches: rows, summary: { paper: summarizeSet([]), heldout: s } };
  const lines = formatFamilyTable(report).split("\n");
  assert.match(lines.find((l) => l.startsWith("b0 "))!, /^b0\s+1000\.0\s+1070\.0 \(\+7\.0%\)\s+preset fused \(model\)/);
  assert.match(lines.find((l) => l.startsWith("b2 "))!, /^b2\s+200\.0\s+190\.0 \(-5\.0%\)\s+preset fused/);
  assert.match(lines.find((l) => l.startsWith("b3 "))!, /^b3\s+310\.0\s+310\.0\s+preset fused/, "not paired: its own time, twice");
  assert.ok(lines.includes(`  auto's own launch against the same launch timed as a candidate: median -1.8%, -5.0%..+7.0% over 3 batches (noise: auto is judged by the candidate's time)`));
  assert.match(lines[0]!, /µs are medians of 40 interleaved rounds \(every candidate, then auto\) after 5 warm-up rounds$/);
});

test("a report from before interleaved timing reads as it was judged, by auto's own time; paired, its worst held-out batch is auto's best choice", () => {
  const old = readFamilyBenchReport(join(PACKAGE_ROOT, "bench/results/2026-12-06-h100-family-bench-auto-s18.json"));
  assert.is(old.timing, undefined);
  assert.ok(old.batches.every((b) => b.autoUs === b.auto.us && b.autoOwnOverCandidate === null));
  assert.is(old.summary.heldout.autoOwnOverCandidate, null);
  const lines = formatFamilyTable(old).split("\n");
  assert.match(lines[0]!, /µs are medians of 40 iterations after 5 warm-up, each launch timed apart$/);
  assert.not.ok(lines.some((l) => l.startsWith("  auto's own launch")));
  // heldout-s2-1: auto ran preset fused, the fastest candidate, but timed apart from it, 7% slower.
  const b = old.batches.find((x) => x.name === "heldout-s2-1")!;
  assert.equal([b.auto.member, b.auto.mode, b.best?.member, b.best?.mode], ["preset", "fused", "preset", "fused"]);
  assert.ok(b.autoOverBest! > 1.05);
  const shape = { prefills: b.prefills.map(([qLen, kvLen]) => ({ qLen, kvLen })), decodes: b.decodes };
  const paired = familyBatchResult({ name: b.name, set: b.set, shape }, b.candidates, { ...b.auto, sameLaunchAsCandidate: true }, b.torch, family.memberNames);
  assert.is(paired.autoOverBest, 1);
  assert.is(paired.autoOwnOverCandidate, b.auto.us! / b.best!.us);
});

test("a set's summary: geomeans of the batches that have each figure, how often auto chose the fastest, its prediction error", () => {
  const auto = (member: string, us: number, predictedUs: number | null) => ({ member, mode: "fused" as const, reason: "cost-model" as const, predictedUs, us });
  const rows = [
    familyBatchResult(batch, [timing("preset", "fused", 400), timing("preset", "serial", 800), timing("wide", "fused", 200)], auto("wide", 200, 220), torchOf(1.0), members),
    familyBatchResult(batch, [timing("preset", "fused", 100), timing("preset", "serial", 200), timing("wide", "fused", 150)], auto("wide", 150, 135), torchOf(null), members),
  ];
  const s = summarizeSet(rows);
  assert.is(s.batches, 2);
  assert.is(s.autoChoseFastest, 1);
  assert.ok(Math.abs(s.autoOverBest! - Math.sqrt(1 * 1.5)) < 1e-12);
  assert.ok(Math.abs(s.speedup.auto.vsOwnSerial! - Math.sqrt(4 * (200 / 150))) < 1e-12);
  assert.ok(Math.abs(s.speedup.auto.vsTorch! - 5) < 1e-12, "only the batch PyTorch ran both ops of");
  assert.is(s.autoMedianPredictionError, 0.1);
  assert.is(geomean([]), null);
  assert.is(summarizeSet([]).autoOverBest, null);
});

test("a recorded report: it reads through the schema, and the table leads with auto, then the preset, then the best of the family", () => {
  const report = readFamilyBenchReport(FIXTURE);
  const lines = formatFamilyTable(report).split("\n");
  const header = lines.find((l) => l.startsWith("batch "))!.split(/\s{2,}/);
  assert.equal(header.slice(0, 14), ["batch", "auto µs", "own launch µs", "auto chose", "predicted µs", "x serial", "x torch", "preset µs", "x serial", "x torch", "best µs", "best of family", "x serial", "x torch"]);
  // Held-out batches apart, with their own geomean lines, computed here from the rows.
  const held = report.batches.filter((b) => b.set === "heldout");
  const heldTitle = lines.findIndex((l) => l.startsWith("held-out batches"));
  assert.ok(heldTitle > lines.findIndex((l) => l.startsWith("paper batches")));
  for (const b of held) assert.ok(lines.slice(heldTitle).some((l) => l.startsWith(b.name)), b.name);
  const ratio = geomean(held.map((b) => b.autoUs! / b.best!.us))!;
  const serial = geomean(held.map((b) => b.ownSerialUs! / b.autoUs!))!;
  const torch = geomean(held.filter((b) => b.torchSerialUs !== null).map((b) => b.torchSerialUs! / b.autoUs!))!;
  const summary = lines.find((l) => l.startsWith("held-out: "))!;
  assert.ok(summary.includes(`auto / best-of-family ${ratio.toFixed(3)}`), summary);
  const speedups = lines[lines.indexOf(summary) + 1]!;
  assert.ok(speedups.includes(`auto ${serial.toFixed(2)}x our serial, ${torch.toFixed(2)}x PyTorch`), speedups);
  // A missing PyTorch serial says which op it lacked.
  assert.ok(lines.some((l) => l.startsWith("heldout-s2-0") && l.endsWith("no decode")));
  // The plan time: the planner alone and through the binding, named as such.
  assert.match(lines.find((l) => l.startsWith("host plan time"))!, /256 requests \(4 prefill chunks \+ 252 decodes\).*12\.50 µs per plan in C \(the planner alone.*48\.25 µs through FamilyLibrary\.plan/);
});

test("a report's paper-style line and each set's worst batch against the best of the family and our serial", () => {
  const report = { ...readFamilyBenchReport(FIXTURE), paperStyle: "p2048x8192+d64x4096" };
  const lines = formatFamilyTable(report).split("\n");
  const style = lines.find((l) => l.startsWith("paper-style batch "))!;
  assert.match(style, /^paper-style batch p2048x8192\+d64x4096: auto 725\.0 µs \(\S+ \S+\), 1\.38x our serial, 1\.79x PyTorch; preset .*; best-of-family /);
  // heldout-s2-1: auto's launch is wide fused's, 1900 against the best's 1850; heldout-s2-2: 420 / 380 over our serial.
  const worst = lines.filter((l) => l.startsWith("  worst batch: "));
  assert.equal(worst.length, 2);
  assert.is(worst[1], `  worst batch: auto ${(1850 / 1900).toFixed(2)}x (heldout-s2-1) the speed of the best of the family, ${(420 / 380).toFixed(2)}x (heldout-s2-2) our serial's`);
  // Reports before it (and a --filter that left it out) have no paper-style line.
  assert.not.ok(formatFamilyTable(readFamilyBenchReport(FIXTURE)).includes("paper-style batch"));
  assert.not.ok(formatFamilyTable({ ...report, paperStyle: null }).includes("paper-style batch"));
});

test("the schemas: a report field out of place is named; timings whose features or members disagree with the file are rejected", () => {
  const report = JSON.parse(readFileSync(FIXTURE, "utf8")) as FamilyBenchReport;
  assert.ok(familyBenchReportSchema.safeParse(report).success);
  const bad = structuredClone(report) as unknown as { batches: { auto: { mode: string } }[] };
  bad.batches[0]!.auto.mode = "both";
  const r = familyBenchReportSchema.safeParse(bad);
  assert.not.ok(r.success);
  assert.equal(r.error!.issues[0]!.path, ["batches", 0, "auto", "mode"]);
  const t = timingsOf(4);
  assert.ok(familyTimingsSchema.safeParse(t).success);
  t.batches[1]!.candidates[2]!.features.pop();
  t.batches[2]!.candidates[0]!.member = "nope";
  const issues = familyTimingsSchema.safeParse(t).error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.equal(issues, ["batches.1.candidates.2.features: has 5 values; the file names 6 features", 'batches.2.candidates.0.member: "nope" is not one of the file\'s members (preset, paper_shape, wide, roles)']);
});

test("the results index reads a family report's kind and summary from its fields", () => {
  writeFileSync(join(work, "2026-12-07-h100-family.json"), readFileSync(FIXTURE));
  const [row] = buildResultsIndex(work).files;
  assert.is(row!.kind, "family-bench");
  const s = readFamilyBenchReport(FIXTURE).summary.heldout;
  assert.is(row!.summary, `llama3_8b_auto: 3 held-out batches, auto ${s.speedup.auto.vsOwnSerial!.toFixed(2)}× our serial, ${s.speedup.auto.vsTorch!.toFixed(2)}× PyTorch, auto / best-of-family ${s.autoOverBest!.toFixed(3)} (geomeans)`);
  rmSync(join(work, "2026-12-07-h100-family.json"));
});

// ---------------------------------------------------------------------------------------------
// The fit from recorded times

/** Times of llama3_8b_auto's candidates on `n` batches, from a known linear model per candidate. */
const truth = (m: number, mode: number) => [20 + 5 * m + 10 * mode, 3 - 0.2 * m, 400 + 30 * mode, 15 - m, 2 + mode, 0.01 * (1 + m)];
function timingsOf(n: number): FamilyTimings {
  const rng = new Rng(5);
  return {
    kind: "family-timings", version: 1, family: family.name, familyHash: family.hash, buildKey: "b0", timingKey: "k0", gpu: "FAKE GPU", driver: "0", sms: 132,
    commit: "0000000", date: "2026-12-07T00:00:00.000Z", iters: 10, warmup: 3, fitSet: { mix: "llama3_8b", seed: 1, count: n },
    features: [...COST_FEATURES], members: [...family.memberNames],
    batches: Array.from({ length: n }, (_, b) => ({
      name: `fit-s1-${b}`, set: "fit" as const, prefills: [[512, 4096]] as [number, number][], decodes: [4096],
      candidates: family.memberNames.flatMap((member, m) =>
        (["fused", "serial"] as const).map((mode, k) => {
          const features = randomFeatures(rng);
          return { member, mode, features, predictedUs: null, us: truth(m, k).reduce((s, c, i) => s + c * features[i]!, 0) };
        }),
      ),
    })),
  };
}

test("the fit of recorded times recovers the model they were made with, records how the batches were drawn, and reports its picks", () => {
  const t = timingsOf(12);
  t.batches[0]!.candidates[0] = { ...t.batches[0]!.candidates[0]!, us: null, error: "launch failed" };
  assert.is(timingRecords(t).length, 12 * 8 - 1);
  const model = fitFamilyTimings(t, "2026-12-07");
  family.memberNames.forEach((member, m) =>
    (["fused", "serial"] as const).forEach((mode, k) =>
      model.members[member]![mode]!.forEach((c, i) => assert.ok(Math.abs(c - truth(m, k)[i]!) < 1e-6 * Math.abs(truth(m, k)[i]!), `${member} ${mode} c${i} = ${c}`)),
    ),
  );
  assert.equal(model.fit.fitSet, { mix: "llama3_8b", seed: 1, count: 12 });
  assert.is(model.timingKey, "k0", "stored under the timed build's timing key");
  assert.is((model.fit.onFitSet as { geomeanRegret: number }).geomeanRegret, 1);
  // Times recorded before timing keys fit no model: no build could be matched with it.
  const { timingKey: _, ...old } = t;
  assert.throws(() => fitFamilyTimings(old), /have no timingKey: recorded before timing keys/);
  const text = formatFit(t, model);
  assert.match(text, /llama3_8b_auto on FAKE GPU \(build b0, timing key k0\): 12 batches x 8 candidates, 95 timed/);
  assert.match(text, /failed: fit-s1-0: preset fused: launch failed/);
  assert.match(text, /geomean pick \/ fastest 1\.000/);
  // How the times were taken: files before interleaving timed each candidate apart.
  assert.match(text, /medians of 10 iterations, each candidate timed apart, after 3 warm-up/);
  assert.match(formatFit({ ...t, timing: "interleaved" }, model), /medians of 10 interleaved rounds after 3 warm-up/);
});

// ---------------------------------------------------------------------------------------------
// The commands without a GPU

const podgen = (args: string[]) =>
  execa(process.execPath, [join(PACKAGE_ROOT, "bin", "podgen.mjs"), ...args], {
    cwd: work,
    reject: false,
    env: { PODGEN_LIBCUDA: join(work, "no-such-libcuda.so.1"), PODGEN_CACHE_DIR: join(work, "cache") },
  });

test("podgen tune --family --dry-run: the candidates and the fit batches (paper + generated), no GPU", async () => {
  const r = await podgen(["tune", "--family", "llama3_8b_auto", "--dry-run", "--json"]);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.candidates.length, 2 * family.members.length);
  const paper = out.batches.filter((b: { set: string }) => b.set === "paper");
  const fit = out.batches.filter((b: { set: string }) => b.set === "fit");
  assert.ok(paper.length >= 5 && paper.some((b: { name: string }) => b.name === "p1024x4096+d32x4096"));
  assert.equal(fit.map((b: { name: string }) => b.name), fitBatches(mix, 1, 20, DEFAULT_LIGHT_DECODE_BATCHES).map((b) => b.name));
  assert.is(out.timings, out.batches.length * out.candidates.length);
  assert.is(out.launches, out.timings * 13, "10 iterations after 3 warm-up");
  const text = await podgen(["tune", "--family", "llama3_8b_auto", "--dry-run", "--fit-batches", "3", "--fit-light", "1", "--filter", "p1024x4096"]);
  assert.match(text.stdout, /llama3_8b_auto: 8 candidates \(4 members x fused, serial\) on 5 batches \(1 paper, 4 fit\)/);
  assert.match(text.stdout, /fit-s1-2\s+fit\s+prefills/);
  assert.match(text.stdout, /fit-light-s1-0\s+fit\s+prefills/);
  const bad = await podgen(["tune", "--family", "llama3_8b_auto", "--dry-run", "--fit-light", "-1"]);
  assert.is(bad.exitCode, 2, bad.stderr);
  assert.match(bad.stderr, /--fit-light = -1: must be a non-negative integer/);
});

test("podgen bench --family --dry-run: paper and held-out batches, none of them a fit batch", async () => {
  const r = await podgen(["bench", "--family", "llama3_8b_auto", "--dry-run", "--json"]);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const held = out.batches.filter((b: { set: string }) => b.set === "heldout");
  assert.is(held.length, 20);
  const fitKeys = new Set(fitBatches(mix, 1, 20, DEFAULT_LIGHT_DECODE_BATCHES).map((b) => key({ prefills: b.shape.prefills.map((p) => [p.qLen, p.kvLen]), decodes: b.shape.decodes })));
  assert.ok(held.every((b: { prefills: unknown; decodes: unknown }) => !fitKeys.has(key({ prefills: b.prefills, decodes: b.decodes }))));
  assert.is(out.timings, out.batches.length * (out.candidates.length + 1), "auto is timed besides every candidate");
});

test("tune and bench --family --dry-run for every preset family: its paper batches (with its paper-style one), fit and held-out batches of its mix", async () => {
  const runs = await Promise.all(
    FAMILY_PRESETS.map(async (f) => ({
      f,
      tune: await podgen(["tune", "--family", f.name, "--dry-run", "--json", "--fit-batches", "2", "--fit-light", "0"]),
      bench: await podgen(["bench", "--family", f.name, "--dry-run", "--json", "--heldout", "2"]),
    })),
  );
  for (const { f, tune, bench } of runs) {
    assert.is(tune.exitCode, 0, `${f.name}: ${tune.stderr}`);
    assert.is(bench.exitCode, 0, `${f.name}: ${bench.stderr}`);
    const t = JSON.parse(tune.stdout);
    const b = JSON.parse(bench.stdout);
    assert.is(t.candidates.length, 2 * f.members.length, f.name);
    const style = paperStyleBatch(f.members[0]!);
    const lengths = (x: { prefills: [number, number][]; decodes: number[] }) => key({ prefills: x.prefills, decodes: x.decodes });
    const styleKey = lengths({ prefills: style.shape.prefills.map((p) => [p.qLen, p.kvLen]), decodes: style.shape.decodes });
    for (const out of [t, b]) {
      const paper = out.batches.filter((x: { set: string }) => x.set === "paper");
      assert.is(paper.filter((x: { prefills: [number, number][]; decodes: number[] }) => lengths(x) === styleKey).length, 1, `${f.name}: one paper batch of the paper-style lengths`);
    }
    assert.equal(t.batches.filter((x: { set: string }) => x.set === "fit").length, 2);
    assert.equal(b.batches.filter((x: { set: string }) => x.set === "heldout").length, 2);
  }
  // Where the workload file has the paper-style lengths, its batch is the one (no second copy).
  const llama = JSON.parse(runs.find((r) => r.f.name === "llama3_8b_auto")!.tune.stdout);
  assert.not.ok(llama.batches.some((x: { name: string }) => x.name.startsWith("paper-style")));
  const yi = JSON.parse(runs.find((r) => r.f.name === "yi_6b_auto")!.bench.stdout);
  assert.equal(yi.batches.filter((x: { set: string }) => x.set === "paper").map((x: { name: string }) => x.name), ["paper-style p1024x4096+d64x4096"]);
});

test("podgen tune --family --from: refits recorded times without a GPU and stores the model under their GPU and build", async () => {
  const t = timingsOf(8);
  writeFileSync(join(work, "timings.json"), JSON.stringify(t));
  const models = join(work, "models.json");
  const r = await podgen(["tune", "--family", "llama3_8b_auto", "--from", join(work, "timings.json"), "--models", models]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /fit: median \|error\| 0\.0%/);
  const [stored] = readCostModels(models).models;
  assert.is(stored!.gpu, "FAKE GPU");
  assert.is(stored!.timingKey, "k0");
  assert.ok(Math.abs(stored!.members.roles!.serial![2]! - truth(3, 1)[2]!) < 1e-6 * 430);
  // Times of another family, or not timings at all: exit 2, naming the file.
  writeFileSync(join(work, "other.json"), JSON.stringify({ ...t, family: "other" }));
  const other = await podgen(["tune", "--family", "llama3_8b_auto", "--from", join(work, "other.json"), "--models", models]);
  assert.is(other.exitCode, 2);
  assert.match(other.stderr, /--from .*other\.json: times other \(members preset, paper_shape, wide, roles\), not llama3_8b_auto/);
  writeFileSync(join(work, "bad.json"), JSON.stringify({ ...t, iters: "ten" }));
  const bad = await podgen(["tune", "--family", "llama3_8b_auto", "--from", join(work, "bad.json"), "--models", models]);
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, /family timings .*bad\.json.*iters/);
});

test("tune and bench --family: bad arguments exit 2 naming them; without a GPU exit 1 before building", async () => {
  const cases: [string[], RegExp][] = [
    [["tune", "--family", "nope", "--dry-run"], /--family nope: not a config family \(preset families: llama3_8b_auto/],
    [["tune", "--family", "llama3_8b_auto", "--space", "x.json"], /--family fits a family's cost model; --space is for a spec's search/],
    [["tune", "--preset", "llama3_8b", "--fit-seed", "3", "--dry-run"], /--fit-seed is for --family/],
    [["tune", "--family", "llama3_8b_auto", "--fit-batches", "0", "--dry-run"], /--fit-batches = 0: must be a positive integer/],
    [["tune", "--family", "llama3_8b_auto", "--mix", "gpt", "--dry-run"], /--mix gpt: one of llama3_8b, llama3_70b_tp8/],
    [["bench", "--family", "llama3_8b_auto", "--heldout-seed", "1", "--dry-run"], /--heldout-seed 1: .* come from seed 1; held-out batches need another/],
    [["bench", "--family", "llama3_8b_auto", "--standalone-variants"], /--family: --standalone-variants is for the spec variants' bench/],
    [["bench", "--family", "llama3_8b_auto", "--no-variants"], /--family: --no-variants is for the spec variants' bench/],
    [["bench", "--heldout", "5"], /--heldout is for --family/],
    // A family's tuned choice is its cost model, keyed by its build key (a stale one is not used); --tuned is for specs.
    [["build", "--tuned", "yi_6b_auto"], /build families on their own \(without --tuned and without kernel specs\): yi_6b_auto/],
  ];
  for (const [args, message] of cases) {
    const r = await podgen(args);
    assert.is(r.exitCode, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  for (const command of ["tune", "bench"]) {
    const r = await podgen([command, "--family", "llama3_8b_auto"]);
    assert.is(r.exitCode, 1);
    assert.match(r.stderr, new RegExp(`podgen ${command} --family needs a GPU: no CUDA driver`));
    assert.not.match(r.stderr, /building/);
  }
});

test("podgen bench --from prints a family report's table", async () => {
  const r = await podgen(["bench", "--from", FIXTURE]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout.trimEnd(), formatFamilyTable(readFamilyBenchReport(FIXTURE)));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
