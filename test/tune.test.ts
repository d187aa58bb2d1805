// `podgen tune` without a GPU: the search space and its pruning, candidate names, the strategies
// driven by a fake timer, resuming from a partial database, the database's lookup and fallback,
// and the commands' behaviour where there is no CUDA (tune, build --tuned). Timing real kernels
// needs a GPU: `podgen tune --preset llama3_8b` on one.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import {
  candidateName,
  CTA_SHAPE_SPACE,
  defaultSpace,
  enumerateSpace,
  normalizeSpec,
  pod,
  presetByName,
  space,
  spaceSize,
  specFields,
  type Candidate,
  WARP_SPECIALIZED_SPACE,
  type KernelSpec,
} from "../dsl/index.ts";
import { Rng } from "../runtime/numerics.ts";
import {
  entryKey,
  newEntry,
  rankEntry,
  readDb,
  shapeKey,
  tunedSpec,
  TuningStore,
  workloadMix,
  writeDb,
  type GpuId,
  type TuningDb,
} from "../bench/tune/db.ts";
import { planRungs, runSummary, search, type TimeFn } from "../bench/tune/strategy.ts";
import { compileCandidates } from "../bench/tune/compile.ts";
import { applyBudget, tunedSpecs, tuneWorkloads } from "../cli/tune.ts";
import { buildKeyFor } from "../codegen/build.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-tune-"));
const llama = presetByName("llama3_8b")!;
// The paper's CTA shape (2 CTAs/SM): CTAs per SM, warps and the schedule are free to vary there.
const paperShape = presetByName("llama3_8b_2cta")!;
const H100: GpuId = { name: "NVIDIA H100 80GB HBM3", ccMajor: 9, ccMinor: 0 };
const PAPER = join(PACKAGE_ROOT, "bench/workloads/paper.json");

// ---------------------------------------------------------------------------------------------
// The space

test("pod.space: choices per field; unknown fields and empty lists are rejected with the field named", () => {
  const s = pod.space({ ctasPerSm: [2, 4], schedule: [pod.fiftyFifty(), pod.proportional()], prefill: { tile: { q: [64, 128, 64] } } });
  assert.equal(s.dims.map((d) => d.path), ["prefill.tile.q", "ctasPerSm", "schedule"]);
  assert.equal(s.dims[0]!.values, [64, 128], "repeated choices are dropped");
  assert.is(spaceSize(s), 8);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.dims[0]));
  assert.throws(() => space({ prefill: { tiles: { q: [64] } } }), /prefill\.tiles\.q: not a tunable field/);
  assert.throws(() => space({ ctasPerSm: [] }), /ctasPerSm = \[\]: must be a non-empty list/);
  assert.throws(() => space({ headDim: [64, 128] }), /headDim: not a tunable field/);
  assert.throws(() => space(42), /an object of choices/);
});

test("the default space over llama3_8b_2cta (the paper's CTA shape): 768 points, the resource model prunes 621 (each with its reasons), 147 candidates", () => {
  assert.is(defaultSpace(paperShape), CTA_SHAPE_SPACE);
  const e = enumerateSpace(paperShape, CTA_SHAPE_SPACE);
  assert.is(e.size, 768);
  assert.is(e.pruned.length, 621);
  assert.is(e.candidates.length, 147);
  assert.is(e.candidates[0]!.spec, paperShape, "the base spec comes first, as itself");
  assert.ok(e.candidates[0]!.isBase);
  for (const p of e.pruned) {
    assert.ok(p.reasons.length > 0 && p.reasons.length === p.issues.length);
    for (const r of p.reasons) assert.match(r, / = .*: must be .* — /);
  }
  const smem = e.pruned.find((p) => p.point["ctasPerSm"] === 4 && p.point["prefill.tile.q"] === 128)!;
  assert.match(smem.reasons.join("\n"), /shared memory per CTA — .* ctasPerSm=4 on sm_90a \(H100\) allows 56 KiB/);
  assert.ok(e.pruned.some((p) => p.reasons.some((r) => /decode\.tile\.kv = 32: must be a multiple of 64/.test(r))));
  // Every candidate is a valid, distinct kernel; none repeats the base.
  assert.is(new Set(e.candidates.map((c) => c.spec.hash)).size, 147);
  // 8-warp CTAs (two per SM) fit only with 1-stage decode tiles of 64 keys (two 4-warp virtual CTAs).
  const twoCtas = e.candidates.filter((c) => c.spec.ctasPerSm === 2 && c.spec.prefill.warps === 8);
  assert.ok(twoCtas.length > 0);
  for (const c of twoCtas) assert.equal([c.spec.decode.tile.kv, c.spec.decode.stages, c.spec.decode.virtualCtas], [64, 1, 2]);
  // Roles (one CTA per SM): a decode warpgroup beside 4 or 8 prefill warps, fifty-fifty only; the
  // proportional points are pruned with the rule's reason.
  const roles = e.candidates.filter((c) => c.spec.ctasPerSm === 1);
  assert.is(roles.length, 67);
  assert.ok(roles.some((c) => c.spec.prefill.warps === 8) && roles.some((c) => c.spec.prefill.warps === 4));
  for (const c of roles) assert.equal([c.spec.decode.warps, c.spec.schedule.kind], [4, "fifty-fifty"]);
  assert.ok(e.pruned.some((p) => p.point["ctasPerSm"] === 1 && p.reasons.some((r) => /^schedule = .*ctasPerSm=1/.test(r))));
  for (const c of e.candidates) assert.is(normalizeSpec(specFields(c.spec)).hash, c.spec.hash);
});

test("the default space over the warp-specialized llama3_8b: one CTA per SM and fifty-fifty kept, 192 points, 35 candidates, the H100's best fused and best prefill-alone tilings among them", () => {
  assert.is(defaultSpace(llama), WARP_SPECIALIZED_SPACE);
  const e = enumerateSpace(llama, WARP_SPECIALIZED_SPACE);
  assert.is(e.size, 192);
  assert.is(e.candidates.length, 35);
  assert.is(e.candidates[0]!.spec, llama, "the base spec comes first, as itself");
  for (const c of e.candidates) {
    assert.equal([c.spec.prefill.engine, c.spec.ctasPerSm, c.spec.schedule.kind, c.spec.decode.warps], ["warp-specialized", 1, "fifty-fifty", 4], c.name);
    assert.is(c.spec.prefill.tile.q, 16 * c.spec.prefill.warps, `${c.name}: a 64-row block per consumer warpgroup`);
  }
  assert.ok(e.candidates.some((c) => c.spec.prefill.warps === 4) && e.candidates.some((c) => c.spec.prefill.warps === 8));
  // Rows that do not match the consumer warpgroups: pruned with the engine's rule, half the space.
  const mismatched = e.pruned.filter((p) => p.point["prefill.tile.q"] !== 16 * (p.point["prefill.warps"] as number));
  assert.is(mismatched.length, 96);
  for (const p of mismatched) assert.ok(p.reasons.some((r) => /^prefill\.tile\.q = \d+: must be \d+ \(64 rows × \d consumer warpgroups?\) — /.test(r)), p.reasons.join("\n"));
  // The widest tiles fit beside the decode role's tiles only so far (shared memory), with the reason.
  const wide = e.pruned.find((p) => p.point["prefill.tile.kv"] === 128 && p.point["prefill.stages"] === 3 && p.point["prefill.warps"] === 8 && p.point["prefill.tile.q"] === 128)!;
  assert.match(wide.reasons.join("\n"), /with ctasPerSm=1 the CTA holds both roles' tiles: .* allows 227 KiB/);
  // The fastest prefill alone on the H100 (a paper.json variant: 128x128, 2 stages, beside a 1-stage 16x64 decode).
  const tiling = (c: { spec: KernelSpec }) => [c.spec.prefill.tile.q, c.spec.prefill.tile.kv, c.spec.prefill.stages, c.spec.decode.tile.kv, c.spec.decode.stages, c.spec.decode.virtualCtas];
  assert.ok(e.candidates.some((c) => tiling(c).join() === "128,128,2,64,1,1"));
  assert.equal(tiling(e.candidates[0]!), [128, 64, 2, 64, 2, 1], "the best fused: the preset");
});

test("decode.warps follows prefill.warps (roles: one warpgroup); fields the space leaves out keep the base's values", () => {
  // (2 warps take 64-row tiles: with 128 their O accumulators alone would be 256 registers a thread)
  const e = enumerateSpace(paperShape, space({ prefill: { warps: [2, 4], tile: { q: [64, 128] } }, decode: { tile: { kv: [32, 64] } } }));
  for (const c of e.candidates) {
    assert.is(c.spec.decode.warps, c.spec.prefill.warps);
    assert.equal(c.spec.heads, paperShape.heads);
    assert.is(c.spec.schedule.kind, paperShape.schedule.kind);
  }
  assert.ok(e.candidates.some((c) => c.spec.prefill.warps === 2));
  const roles = enumerateSpace(paperShape, space({ ctasPerSm: [1], prefill: { warps: [4, 8] } })).candidates.filter((c) => !c.isBase);
  assert.equal(roles.map((c) => [c.spec.prefill.warps, c.spec.decode.warps]), [[4, 4], [8, 4]]);
});

test("candidate names and hashes are deterministic and name what was tuned, not the order of the space", () => {
  const a = enumerateSpace(paperShape, CTA_SHAPE_SPACE);
  const b = enumerateSpace(paperShape, space({ schedule: [pod.proportional(), pod.fiftyFifty()], ctasPerSm: [4, 1, 2], decode: { virtualCtas: [2, 1], stages: [2, 1], tile: { kv: [64, 32] } }, prefill: { stages: [3, 2], warps: [8, 4], tile: { kv: [64, 32], q: [128, 64] } } }));
  const names = (e: typeof a) => e.candidates.map((c) => `${c.name} ${c.spec.hash}`).sort();
  assert.equal(names(a), names(b));
  for (const c of a.candidates.slice(1)) {
    assert.match(c.name, /^llama3_8b_2cta_t[0-9a-f]{8}$/);
    assert.is(c.name, candidateName(paperShape, Object.fromEntries(Object.entries({ ...flat(c.spec) }))));
  }
  // Stable across runs: pin one.
  const pinned = a.candidates[5]!;
  assert.is(pinned.name, candidateName(paperShape, flat(pinned.spec)));
  assert.is(enumerateSpace(paperShape, CTA_SHAPE_SPACE).candidates.find((c) => c.name === pinned.name)!.spec.hash, pinned.spec.hash);
});

function flat(spec: KernelSpec): Record<string, unknown> {
  const f = specFields(spec);
  return {
    "prefill.tile.q": f.prefill.tile.q,
    "prefill.tile.kv": f.prefill.tile.kv,
    "prefill.warps": f.prefill.warps,
    "prefill.stages": f.prefill.stages,
    "prefill.maxSplits": f.prefill.maxSplits,
    "decode.tile.kv": f.decode.tile.kv,
    "decode.stages": f.decode.stages,
    "decode.virtualCtas": f.decode.virtualCtas,
    "decode.maxSplits": f.decode.maxSplits,
    ctasPerSm: f.ctasPerSm,
    schedule: f.schedule,
    "decode.warps": f.decode.warps,
    "decode.tile.q": f.decode.tile.q,
  };
}

test("--budget keeps the base and a stable sample", () => {
  const { candidates } = enumerateSpace(llama, defaultSpace(llama));
  const a = applyBudget(candidates, 10);
  assert.is(a.length, 10);
  assert.ok(a[0]!.isBase);
  assert.equal(applyBudget(candidates, 10).map((c) => c.name), a.map((c) => c.name));
  assert.is(applyBudget(candidates, 1000).length, candidates.length);
});

test("tune workloads: only those of the spec's model shape, and --filter", () => {
  assert.is(tuneWorkloads(PAPER, llama, []).length, 8);
  assert.equal(tuneWorkloads(PAPER, presetByName("qwen2_0_5b")!, []).map((w) => w.name), ["D64 qwen2_0_5b p1024x4096+d64x4096"]);
  assert.is(tuneWorkloads(PAPER, llama, ["p1024x4096"]).length, 1);
  assert.throws(() => tuneWorkloads(PAPER, presetByName("yi_6b")!, []), /no workload of .* runs bf16 heads 32\/4 D128 page 16/);
});

// ---------------------------------------------------------------------------------------------
// Strategies with a fake timer: a pure function of the spec, with noise that shrinks with iterations

const BIG_SPACE = space({
  prefill: { tile: { q: [64, 128], kv: [16, 32, 48, 64] }, stages: [1, 2, 3] },
  decode: { tile: { kv: [32, 64, 128] }, virtualCtas: [1, 2] },
  ctasPerSm: [2, 4],
  schedule: [pod.fiftyFifty(), pod.proportional()],
});

const WORKLOADS = ["w0", "w1", "w2", "w3", "w4"];
const SCALE: Record<string, number> = { w0: 0.3, w1: 0.5, w2: 0.4, w3: 0.8, w4: 0.6 };

/** Noiseless cost: a smooth bowl over the fields, with one best point among the feasible ones. */
function trueMs(spec: KernelSpec, w: string): number {
  const p =
    (spec.prefill.tile.q === 128 ? 0 : 0.08) +
    ((spec.prefill.tile.kv - 48) ** 2 / 1024) * 0.1 +
    Math.abs(spec.prefill.stages - 2) * 0.05 +
    ({ 32: 0.04, 64: 0, 128: 0.06 } as Record<number, number>)[spec.decode.tile.kv]! +
    (spec.decode.virtualCtas === 2 ? 0 : 0.03) +
    (spec.ctasPerSm === 2 ? 0 : 0.05) +
    (spec.schedule.kind === "fifty-fifty" ? 0 : 0.06) +
    // workload-dependent preference, so the mix matters
    (w === "w3" && spec.prefill.tile.kv === 32 ? -0.01 : 0);
  return SCALE[w]! * (1 + p);
}

function fakeTimer(noise = 0.02) {
  let calls = 0;
  let launches = 0;
  const time: TimeFn = async (cands, w, iters) => {
    calls++;
    const out = new Map<string, { ms: number | null }>();
    for (const c of cands) {
      launches += iters;
      const seed = parseInt(createHash("sha256").update(`${c.name}/${w}/${iters}/${calls}`).digest("hex").slice(0, 8), 16);
      const sigma = noise / Math.sqrt(iters / 5);
      out.set(c.name, { ms: trueMs(c.spec, w) * (1 + sigma * new Rng(seed).normal()) });
    }
    return out;
  };
  return { time, calls: () => calls, launches: () => launches };
}

const mixTotal = (spec: KernelSpec) => WORKLOADS.reduce((s, w) => s + trueMs(spec, w), 0);

function memStore(key = "test") {
  const mix = { label: "fake", hash: "0", names: WORKLOADS };
  return new TuningStore(join(work, "unused.json"), key, () => newEntry(key, H100, llama, mix), false);
}

test("rung plans: exhaustive is one full rung; halving keeps 1/eta and ends with a full rung", () => {
  assert.equal(planRungs("exhaustive", 28, WORKLOADS, 40), [{ fidelity: 1, workloads: WORKLOADS, iters: 40, size: 28 }]);
  const h = planRungs("halving", 92, WORKLOADS, 40, 3, 5);
  assert.equal(h.map((r) => r.size), [92, 31, 11, 4, 2]);
  assert.equal(h.map((r) => r.workloads.length), [1, 1, 1, 2, 5]);
  assert.equal(h.map((r) => r.iters), [5, 7, 22, 33, 40]);
  assert.equal(planRungs("halving", 3, WORKLOADS, 40, 3).length, 1, "too few candidates to halve");
});

test("halving finds the fake optimum with ≤ 30% of exhaustive's evaluations; exhaustive finds it too", async () => {
  const { candidates } = enumerateSpace(paperShape, BIG_SPACE);
  assert.is(candidates.length, 92);
  const truth = [...candidates].sort((a, b) => mixTotal(a.spec) - mixTotal(b.spec));
  assert.ok(mixTotal(truth[1]!.spec) / mixTotal(truth[0]!.spec) > 1.004, "the fake has one best point");

  const ex = fakeTimer();
  const exStore = memStore();
  const exhaustive = await search(candidates, exStore, ex.time, { strategy: "exhaustive", workloads: WORKLOADS, iters: 40 });
  assert.is(exhaustive.best!.name, truth[0]!.name);
  assert.is(exhaustive.cost, 92 * 5 * 40);
  assert.is(exhaustive.fullEvaluations, 92);

  const hv = fakeTimer();
  const hvStore = memStore();
  const progress: number[] = [];
  const halving = await search(candidates, hvStore, hv.time, { strategy: "halving", workloads: WORKLOADS, iters: 40, eta: 3, onProgress: (p) => progress.push(p.done) });
  assert.is(halving.best!.name, truth[0]!.name);
  const fraction = halving.cost / exhaustive.cost;
  assert.ok(fraction <= 0.3, `halving used ${(fraction * 100).toFixed(1)}% of exhaustive's launches`);
  assert.is(halving.cost, hv.launches());
  // The base rides to the last rung, so every run reports tuned vs default.
  assert.ok(halving.ranking.some((r) => r.name === paperShape.name));
  assert.ok(progress.every((d, i) => i === 0 || d >= progress[i - 1]!), "progress only moves forward");
  // The run summary: evaluations used and the gap to the best fully measured candidate.
  for (const r of Object.values(hvStore.entry.candidates)) r.verify = { pass: true, worstO: 0, worstLse: 0, problems: [] };
  const summary = runSummary(hvStore, halving, candidates.length, 40);
  assert.ok(summary.fullEvaluations <= 0.3 * 92);
  assert.is(summary.gapToBest, 0);
  assert.is(summary.base!.name, "llama3_8b_2cta");
});

test("one workload: halving spends iterations, not workloads, and stays within 3% of exhaustive's best", async () => {
  const { candidates } = enumerateSpace(paperShape, BIG_SPACE);
  const one = ["w3"];
  const ex = await search(candidates, memStore(), fakeTimer().time, { strategy: "exhaustive", workloads: one, iters: 40 });
  const hv = await search(candidates, memStore(), fakeTimer().time, { strategy: "halving", workloads: one, iters: 40 });
  const byName = new Map(candidates.map((c) => [c.name, c.spec]));
  const gap = trueMs(byName.get(hv.best!.name)!, "w3") / trueMs(byName.get(ex.best!.name)!, "w3") - 1;
  assert.ok(gap <= 0.03, `gap ${gap}`);
  assert.ok(hv.cost / ex.cost <= 0.3, `${hv.cost / ex.cost}`);
});

test("a failed candidate (null timing) drops out and is never best", async () => {
  const { candidates } = enumerateSpace(llama, defaultSpace(llama));
  const fastest = candidates[5]!;
  const time: TimeFn = async (cands) => new Map(cands.map((c) => [c.name, c === fastest ? { ms: null, error: "launch failed" } : { ms: 1 + Number.parseInt(c.spec.hash.slice(0, 4), 16) / 1e6 }]));
  const store = memStore();
  const r = await search(candidates, store, time, { strategy: "halving", workloads: ["w0"], iters: 10, minIters: 2 });
  assert.ok(r.best && r.best.name !== fastest.name);
  assert.is(store.entry.candidates[fastest.spec.hash]!.timings["w0"]!.error, "launch failed");
});

// ---------------------------------------------------------------------------------------------
test("a candidate whose kernel changed (new build key) loses its verdict and timings; an unchanged one keeps them", async () => {
  const store = memStore("rebuild");
  const [base] = enumerateSpace(llama, defaultSpace(llama)).candidates;
  const rec = store.candidate(base!);
  const measured = () => {
    rec.verify = { pass: true, worstO: 1e-3, worstLse: 1e-6, problems: [] };
    rec.timings = { w: { ms: 1, iters: 40, date: "then" } };
  };
  measured();
  rec.build = { ok: true, key: "built-from-older-templates" };
  const env = process.env.PODGEN_CACHE_DIR;
  process.env.PODGEN_CACHE_DIR = join(PACKAGE_ROOT, ".cache", "podgen"); // the preset is usually built there
  try {
    const first = await compileCandidates([base!], store, { jobs: 1 });
    const key = first.built.get(base!.name)!.manifest.buildKey;
    assert.is(rec.build.key, key);
    assert.is(rec.verify, undefined, "verified again");
    assert.equal(rec.timings, {}, "timed again");
    measured();
    await compileCandidates([base!], store, { jobs: 1 });
    assert.is(rec.verify?.pass, true, "same build: the verdict stands");
    assert.is(rec.timings["w"]?.ms, 1, "same build: the timing stands");
  } finally {
    if (env === undefined) delete process.env.PODGEN_CACHE_DIR;
    else process.env.PODGEN_CACHE_DIR = env;
  }
});

// Resume

test("an interrupted tune resumes from the database: measured candidates are not timed again", async () => {
  const dbPath = join(work, "resume", "db.json");
  const { candidates } = enumerateSpace(llama, defaultSpace(llama));
  const mix = { label: "fake", hash: "abc", names: WORKLOADS };
  const key = entryKey(H100, shapeKey(llama), mix);
  const open = () => {
    const s = new TuningStore(dbPath, key, () => newEntry(key, H100, llama, mix));
    for (const c of candidates) s.candidate(c);
    return s;
  };
  // First run: stopped (as by Ctrl-C or --minutes) after 7 `time` calls.
  const first = fakeTimer(0);
  const s1 = open();
  const r1 = await search(candidates, s1, first.time, { strategy: "exhaustive", workloads: WORKLOADS, iters: 20, chunk: 4, shouldStop: () => (first.calls() >= 7 ? "interrupted" : undefined) });
  assert.is(r1.stopped, "interrupted");
  assert.is(r1.best, null);
  const recorded = Object.values(readDb(dbPath).entries[key]!.candidates).reduce((n, c) => n + Object.keys(c.timings).length, 0);
  assert.is(recorded, 7 * 4, "every completed chunk is on disk");
  assert.equal(readdirSync(join(work, "resume")), ["db.json"], "no temp files left behind");

  // Second run, a new process's view of the file: only the rest is timed.
  const second = fakeTimer(0);
  const s2 = open();
  const r2 = await search(candidates, s2, second.time, { strategy: "exhaustive", workloads: WORKLOADS, iters: 20, chunk: 4 });
  assert.is(second.launches(), (candidates.length * WORKLOADS.length - recorded) * 20);
  const truth = [...candidates].sort((a, b) => mixTotal(a.spec) - mixTotal(b.spec))[0]!;
  assert.is(r2.best!.name, truth.name);
  // --fresh times everything again.
  const third = fakeTimer(0);
  await search(candidates, open(), third.time, { strategy: "exhaustive", workloads: WORKLOADS, iters: 20, fresh: true });
  assert.is(third.launches(), candidates.length * WORKLOADS.length * 20);
});

// ---------------------------------------------------------------------------------------------
// The database and the runtime loader

function dbWith(fastestWrong: boolean): { db: TuningDb; best: Candidate; base: Candidate; a: Candidate } {
  const { candidates } = enumerateSpace(llama, defaultSpace(llama));
  const mix = workloadMix(PAPER, tuneWorkloads(PAPER, llama, ["p1024x4096"]), true);
  const key = entryKey(H100, shapeKey(llama), mix);
  const db: TuningDb = { version: 1, entries: { [key]: newEntry(key, H100, llama, mix) } };
  const entry = db.entries[key]!;
  const [base, a, b, wrong] = [candidates[0]!, candidates[3]!, candidates[7]!, candidates[9]!];
  const put = (c: Candidate, ms: number, pass = true) => {
    entry.candidates[c.spec.hash] = {
      name: c.name, specHash: c.spec.hash, point: c.point, isBase: c.isBase, fields: specFields(c.spec) as never,
      verify: { pass, worstO: pass ? 4e-3 : 0.5, worstLse: 0, problems: pass ? [] : ["fused: oDecode: relative L2 error 5.00e-1 > 0.01"] },
      timings: { [mix.names[0]!]: { ms, iters: 40, date: "2026-11-23T00:00:00.000Z" } },
    };
  };
  put(base, 0.34);
  put(a, 0.30);
  put(b, 0.28);
  if (fastestWrong) put(wrong, 0.1, false);
  return { db, best: b, base, a };
}

test("the database round-trips through an atomic, deterministic write", () => {
  const { db } = dbWith(true);
  const path = join(work, "db1", "db.json");
  writeDb(db, path);
  const bytes = readFileSync(path, "utf8");
  assert.equal(readDb(path), JSON.parse(bytes));
  writeDb(readDb(path), path);
  assert.is(readFileSync(path, "utf8"), bytes, "same DB, same bytes");
  assert.equal(readdirSync(join(work, "db1")), ["db.json"]);
  assert.equal(readDb(join(work, "db1", "missing.json")), { version: 1, entries: {} });
  writeFileSync(join(work, "db1", "bad.json"), "{");
  assert.throws(() => readDb(join(work, "db1", "bad.json")), /not valid JSON/);
});

test("ranking: verified, fully measured candidates only; a wrong candidate is never selected", () => {
  const { db, best } = dbWith(true);
  const entry = Object.values(db.entries)[0]!;
  const ranked = rankEntry(entry);
  assert.equal(ranked.map((r) => r.totalMs), [0.28, 0.3, 0.34]);
  assert.is(ranked[0]!.record.name, best.name);
  const r = tunedSpec(llama, H100, { db });
  assert.ok(r.tuned);
  assert.is(r.spec.hash, best.spec.hash);
  assert.match(r.message, new RegExp(`tuned: ${best.name} for NVIDIA H100 80GB HBM3 \\(cc 9\\.0\\), workloads paper\\.json \\[p1024x4096\\+d32x4096\\]: 0\\.280 ms \\(21\\.4% faster than llama3_8b on the mix\\)`));
});

test("lookup falls back to the base spec, saying why", () => {
  const { db } = dbWith(false);
  const none = tunedSpec(llama, null, { db });
  assert.is(none.spec, llama);
  assert.not.ok(none.tuned);
  assert.match(none.message, /no GPU to look up tuning results for; using llama3_8b as is/);
  const a100 = tunedSpec(llama, { name: "NVIDIA A100-SXM4-80GB", ccMajor: 8, ccMinor: 0 }, { db });
  assert.is(a100.spec, llama);
  assert.match(a100.message, /no tuning results for bf16 heads 32\/8 D128 page 16 on NVIDIA A100-SXM4-80GB \(cc 8\.0\) in the tuning database \(run `podgen tune`\); using llama3_8b as is/);
  const other = tunedSpec(presetByName("yi_6b")!, H100, { db });
  assert.not.ok(other.tuned);
  assert.not.ok(tunedSpec(llama, H100, { db, mixHash: "000000000000" }).tuned);
  // A record whose fields no longer give the measured kernel (podgen changed): ignored, and counted.
  const entry = Object.values(db.entries)[0]!;
  const ranked = rankEntry(entry);
  ranked[0]!.record.specHash = "0000000000000000";
  const next = tunedSpec(llama, H100, { db });
  assert.ok(next.tuned);
  assert.is(next.best!.record.name, ranked[1]!.record.name);
  assert.equal(next.ignored, { stale: 0, invalid: 1 });
  assert.match(next.message, /; ignored 1 candidate whose fields no longer give the measured spec$/);
  for (const r of ranked) r.record.specHash = "0000000000000000";
  const allInvalid = tunedSpec(llama, H100, { db });
  assert.not.ok(allInvalid.tuned);
  assert.is(allInvalid.spec, llama);
  assert.match(allInvalid.message, /^no measured candidate for bf16 heads 32\/8 D128 page 16 on NVIDIA H100 80GB HBM3 \(cc 9\.0\) is the kernel podgen builds now \(3 candidates whose fields no longer give the measured spec\); re-run `podgen tune`; using llama3_8b as is$/);
});

// What podgen build --tuned passes as `buildKey`: here a stand-in for buildKeyFor with the nvcc in hand.
const keyOf = (keys: Map<string, string>) => (spec: KernelSpec) => keys.get(spec.hash) ?? "current";
const built = (db: TuningDb, c: Candidate, key: string) => (Object.values(db.entries)[0]!.candidates[c.spec.hash]!.build = { ok: true, key });

test("build keys: candidates measured on other kernels are ignored and counted; the fastest fresh one is ranked first", () => {
  const { db, best, base, a } = dbWith(false);
  for (const c of [base, a, best]) built(db, c, "current");
  const fresh = tunedSpec(llama, H100, { db, buildKey: keyOf(new Map()) });
  assert.equal([fresh.tuned, fresh.spec.hash, fresh.ignored], [true, best.spec.hash, { stale: 0, invalid: 0 }]);
  assert.not.match(fresh.message, /ignored/);
  // The fastest was built from older templates: the next fresh one, and the message says how many were left out.
  built(db, best, "old-templates");
  const r = tunedSpec(llama, H100, { db, buildKey: keyOf(new Map()) });
  assert.ok(r.tuned);
  assert.is(r.spec.hash, a.spec.hash);
  assert.equal(r.ignored, { stale: 1, invalid: 0 });
  assert.match(r.message, new RegExp(`^tuned: ${a.name} for NVIDIA H100 80GB HBM3 \\(cc 9\\.0\\), .*: 0\\.300 ms \\(13\\.3% faster than llama3_8b on the mix\\); ignored 1 stale candidate \\(measured on a build whose key differs from the one the current templates and nvcc give\\)$`));
  // A record without a build key (or a failed build) is not known to be of the current kernels.
  delete Object.values(db.entries)[0]!.candidates[a.spec.hash]!.build;
  const r2 = tunedSpec(llama, H100, { db, buildKey: keyOf(new Map()) });
  assert.equal([r2.spec.hash, r2.ignored.stale], [base.spec.hash, 2]);
  // Without buildKey (no nvcc to ask), keys are not checked.
  assert.is(tunedSpec(llama, H100, { db }).spec.hash, best.spec.hash);
});

test("build keys: with no fresh candidate the lookup falls back to the preset, saying how many were stale", () => {
  const { db, best, base, a } = dbWith(true);
  for (const c of [base, a, best]) built(db, c, "old-templates");
  const r = tunedSpec(llama, H100, { db, buildKey: keyOf(new Map()) });
  assert.not.ok(r.tuned);
  assert.is(r.spec, llama);
  assert.equal(r.ignored, { stale: 3, invalid: 0 }, "the wrong candidate is never ranked, so not counted");
  assert.is(
    r.message,
    "no measured candidate for bf16 heads 32/8 D128 page 16 on NVIDIA H100 80GB HBM3 (cc 9.0) is the kernel podgen builds now (3 stale candidates (measured on a build whose key differs from the one the current templates and nvcc give)); re-run `podgen tune`; using llama3_8b as is",
  );
});

test("podgen build --tuned's lookup compares recorded build keys with buildKeyFor's for the nvcc in hand", async () => {
  const { db, best, base, a } = dbWith(false);
  const nvcc = "13.0.88";
  for (const c of [base, a]) built(db, c, buildKeyFor(c.spec, nvcc));
  built(db, best, buildKeyFor(best.spec, "12.4.131"));
  assert.is.not(buildKeyFor(best.spec, nvcc), buildKeyFor(best.spec, "12.4.131"), "the nvcc version is part of the key");
  assert.is(buildKeyFor(a.spec, nvcc), buildKeyFor(a.spec, nvcc), "the key of a spec is stable");
  const path = join(work, "tuned-specs", "db.json");
  writeDb(db, path);
  const lines: string[] = [];
  const specs = await tunedSpecs([llama], { dbPath: path, gpu: H100, nvcc, log: (l) => lines.push(l) });
  assert.is(specs[0]!.hash, a.spec.hash);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, new RegExp(`^llama3_8b: tuned: ${a.name} .*; ignored 1 stale candidate`));
  const none = await tunedSpecs([llama], { dbPath: path, gpu: null, log: (l) => lines.push(l) });
  assert.is(none[0], llama);
  assert.is(lines[1], "llama3_8b: no GPU to look up tuning results for; using llama3_8b as is");
});

test("the database keeps no pruned points: an older file's are dropped on read, and the committed one has none", () => {
  const { db } = dbWith(false);
  const clean = join(work, "pruned", "clean.json");
  const path = join(work, "pruned", "db.json");
  writeDb(db, clean);
  const old = JSON.parse(readFileSync(clean, "utf8"));
  for (const e of Object.values(old.entries) as Record<string, unknown>[]) e.pruned = [{ point: { ctasPerSm: 4 }, reasons: ["too much shared memory"] }];
  writeFileSync(path, JSON.stringify(old));
  const read = readDb(path);
  for (const e of Object.values(read.entries)) assert.not.ok("pruned" in e);
  assert.equal(read, readDb(clean), "the rest is kept");
  const committed = JSON.parse(readFileSync(join(PACKAGE_ROOT, "bench/tuning/db.json"), "utf8"));
  for (const e of Object.values(committed.entries) as Record<string, unknown>[]) assert.not.ok("pruned" in e);
});

// ---------------------------------------------------------------------------------------------
// The commands without a GPU

const TSX = ["--import", "tsx"];
const tuneCli = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [...TSX, join(PACKAGE_ROOT, "test/fixtures/tune-cli.ts"), "tune", ...args], {
    // tsx resolves from the package; paths in the arguments are absolute.
    cwd: PACKAGE_ROOT,
    reject: false,
    env: { PODGEN_LIBCUDA: join(work, "no-such-libcuda.so.1"), ...env },
  });

test("podgen tune --dry-run: candidates, pruning reasons and the rung plan, no GPU needed", async () => {
  const r = await tuneCli(["--preset", "llama3_8b", "--dry-run", "--json"]);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  // The warp-specialized preset's default space.
  assert.equal([out.spaceSize, out.candidates.length, out.pruned.length], [192, 35, 157]);
  assert.is(out.strategy, "halving");
  const text = await tuneCli(["--preset", "llama3_8b", "--dry-run", "--strategy", "exhaustive", "--filter", "p1024x4096"]);
  assert.match(text.stdout, /llama3_8b: 192 points, 157 pruned by the resource model, 35 candidates/);
  assert.match(text.stdout, /exhaustive: 35 × 1 workload\(s\) × 40 iters/);
  // The paper-shaped preset gets the space of CTA shapes.
  const paper = JSON.parse((await tuneCli(["--preset", "llama3_8b_2cta", "--dry-run", "--json"])).stdout);
  assert.equal([paper.spaceSize, paper.candidates.length, paper.pruned.length], [768, 147, 621]);
});

test("podgen tune with a space file in the DSL", async () => {
  writeFileSync(
    join(work, "space.ts"),
    `import { pod } from "${join(PACKAGE_ROOT, "dsl", "index.ts")}";\nexport default pod.space({ ctasPerSm: [2, 4], schedule: [pod.fiftyFifty(), pod.proportional()] });\n`,
  );
  const r = await tuneCli(["--preset", "llama3_8b", "--space", join(work, "space.ts"), "--dry-run", "--json"]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).spaceSize, 4);
  writeFileSync(join(work, "bad-space.json"), JSON.stringify({ ctasPerSm: [] }));
  const bad = await tuneCli(["--preset", "llama3_8b", "--space", join(work, "bad-space.json"), "--dry-run"]);
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, /ctasPerSm = \[\]: must be a non-empty list/);
});

test("podgen tune without CUDA fails cleanly before compiling: no CUDA driver (exit 1, no stack)", async () => {
  const r = await tuneCli(["--preset", "llama3_8b", "--db", join(work, "nogpu.json")]);
  assert.is(r.exitCode, 1);
  assert.match(r.stderr, /podgen tune needs a GPU: no CUDA driver: libcuda\.so\.1 could not be loaded/);
  assert.not.match(r.stderr, /\n\s+at /);
  assert.not.ok(existsSync(join(work, "nogpu.json")), "nothing written");
  const usage = await tuneCli(["--preset", "llama3_8b", "--spec", join(work, "x.ts")]);
  assert.is(usage.exitCode, 2);
  assert.match(usage.stderr, /--preset NAME or --spec FILE \(one of them\)/);
});

const HAS_GCC = spawnSync("gcc", ["--version"]).status === 0;
(HAS_GCC ? test : test.skip)("podgen tune with a driver but no device: no CUDA device", async () => {
  const dir = join(work, "fake-cuda");
  mkdirSync(dir, { recursive: true });
  const lib = join(dir, "libcuda.so.1");
  const gcc = spawnSync("gcc", ["-Wall", "-shared", "-fPIC", "-o", lib, join(PACKAGE_ROOT, "test/fixtures/fake_libcuda.c")], { encoding: "utf8" });
  assert.is(gcc.status, 0, gcc.stderr);
  const r = await tuneCli(["--preset", "llama3_8b"], { PODGEN_LIBCUDA: lib, FAKE_CUDA: "nodevice" });
  assert.is(r.exitCode, 1);
  assert.match(r.stderr, /podgen tune needs a GPU: no CUDA device/);
});

test("podgen tune --report prints the top-k table from the database (no GPU)", async () => {
  const { db, best } = dbWith(true);
  const path = join(work, "report", "db.json");
  writeDb(db, path);
  const r = await tuneCli(["--preset", "llama3_8b", "--filter", "p1024x4096", "--report", "--db", path]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /NVIDIA H100 80GB HBM3 \(cc 9\.0\) \| bf16 heads 32\/8 D128 page 16 \| paper\.json \[p1024x4096\+d32x4096\]/);
  assert.match(r.stdout, new RegExp(`1\\s+${best.name}\\s+0\\.2800\\s+21\\.4%`));
  assert.match(r.stdout, /1 wrong \(discarded\)/);
  // The pruning figure is recomputed from the space, not read from the database.
  assert.match(r.stdout, /space \(default\): 192 points, 157 pruned by the resource model as it is now/);
  const json = await tuneCli(["--preset", "llama3_8b", "--filter", "p1024x4096", "--report", "--json", "--top", "2", "--db", path]);
  assert.equal(JSON.parse(json.stdout)[0].ranking.map((x: { totalMs: number }) => x.totalMs), [0.28, 0.3]);
  assert.equal(JSON.parse(json.stdout)[0].pruning, { space: "default", points: 192, pruned: 157 });
  const none = await tuneCli(["--preset", "llama3_8b", "--report", "--db", path]);
  assert.match(none.stdout, /no tuning results in .* for bf16 heads 32\/8 D128 page 16, workloads paper\.json\nentries for this model shape:/);
  const plot = await tuneCli(["--preset", "llama3_8b", "--filter", "p1024x4096", "--report", "--plot", join(work, "report", "top.svg"), "--db", path]);
  assert.is(plot.exitCode, 0, plot.stderr);
  assert.match(readFileSync(join(work, "report", "top.svg"), "utf8"), /^<svg/);
});

test("podgen build --tuned without a GPU builds the preset and says why", async () => {
  const r = await execa(process.execPath, [join(PACKAGE_ROOT, "bin", "podgen.mjs"), "build", "--tuned", "llama3_8b", "--json"], {
    cwd: work,
    reject: false,
    // The repository's build cache: the preset is usually built there already.
    env: { PODGEN_LIBCUDA: join(work, "no-such-libcuda.so.1"), PODGEN_CACHE_DIR: join(PACKAGE_ROOT, ".cache", "podgen") },
  });
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, /llama3_8b: no GPU to look up tuning results for \(no CUDA driver: .*\); using llama3_8b as is/);
  assert.is(JSON.parse(r.stdout)[0].manifest.specHash, llama.hash);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
