// The benchmark harness's host side (bench/workloads.ts, report.ts, torch.ts, run.ts, plot.ts): work counts, the workload file,
// the variants' kernels (the same specs, and so the same bundled libraries, as the GPU suite's
// cases), the table and the SVG of a recorded report. Timing itself needs a GPU (`podgen bench`).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { normalizeSpec, presetByName, resourceModel, specFields, type KernelSpec } from "../dsl/index.ts";
import { formatTable, type BenchReport } from "../bench/report.ts";
import { copiesFor } from "../bench/run.ts";
import { hopperSerial, torchBestSerial, type TorchWorkload } from "../bench/torch.ts";
import { decodeKvBytes, loadWorkloads, parseWorkloads, prefillFlops, resolvedWorkloads, selectWorkloads } from "../bench/workloads.ts";
import { readBenchReport } from "../bench/schemas.ts";
import { renderSvg } from "../bench/plot.ts";

const PAPER = join(PACKAGE_ROOT, "bench/workloads/paper.json");
// A recorded report by its name, not latest.json: whichever run is newest, these tests read the same
// one (the --standalone-variants run of the preset with 64-deep decodes, Hopper serial fields absent).
const RECORDED = join(PACKAGE_ROOT, "bench/results/2026-11-23-h100-preset-decode64-run3.json");

test("causal prefill FLOPs: 4·D·Hq·Σ visible keys (bottom-right aligned)", () => {
  // One chunk of 2 tokens over 5 keys: the tokens see 4 and 5 keys.
  assert.is(prefillFlops({ prefills: [{ qLen: 2, kvLen: 5 }], decodes: [] }, 32, 128), 4 * 128 * 32 * 9);
  // A square chunk: q(q+1)/2.
  assert.is(prefillFlops({ prefills: [{ qLen: 1024, kvLen: 1024 }], decodes: [] }, 1, 1), 4 * 1024 * 1025 / 2);
  // A window of 3: the tokens see min(3, 4) and min(3, 5) keys; a window past the KV changes nothing.
  assert.is(prefillFlops({ prefills: [{ qLen: 2, kvLen: 5 }], decodes: [] }, 32, 128, 3), 4 * 128 * 32 * 6);
  assert.is(prefillFlops({ prefills: [{ qLen: 2, kvLen: 5 }], decodes: [] }, 32, 128, 5), 4 * 128 * 32 * 9);
});

test("decode bytes: K and V of every decode, read once", () => {
  assert.is(decodeKvBytes({ prefills: [], decodes: [4096, 100] }, 8, 128), (4096 + 100) * 8 * 128 * 2 * 2);
  // A sliding window reads only the last `window` keys of each decode.
  assert.is(decodeKvBytes({ prefills: [], decodes: [4096, 100] }, 8, 128, 2, 1000), (1000 + 100) * 8 * 128 * 2 * 2);
});

test("input copies: at least 2, enough to flush a 50 MB L2, at most 8", () => {
  assert.is(copiesFor(2 ** 30), 2);
  assert.is(copiesFor(40 * 2 ** 20), 5);
  assert.is(copiesFor(1), 8);
});

test("selectWorkloads: --filter keeps the matching workloads; --no-variants keeps each one's own spec only", () => {
  const all = selectWorkloads(PAPER, []);
  const some = selectWorkloads(PAPER, ["p1024x", "qwen"]);
  assert.equal(some.map((w) => w.name), all.filter((w) => w.name.includes("p1024x") || w.name.includes("qwen")).map((w) => w.name));
  assert.ok(all.some((w) => w.configs.length > 1), "paper.json has variants");
  const presets = selectWorkloads(PAPER, [], { variants: false });
  assert.equal(presets.map((w) => w.name), all.map((w) => w.name));
  assert.equal(presets.map((w) => w.configs.map((c) => c.label)), all.map(() => ["default"]));
  assert.equal(presets.map((w) => w.configs[0]!.spec.hash), all.map((w) => w.configs[0]!.spec.hash));
  assert.throws(() => selectWorkloads(PAPER, ["no such workload"]), /no workload of .* matches no such workload/);
});

test("paper.json: the five paper workloads, variants on llama3_8b, kernels the GPU suite bundles", () => {
  const ws = loadWorkloads(PAPER);
  const shape = (n: number) => {
    const w = ws[n]!;
    return [w.shape.prefills[0]!.qLen, w.shape.prefills[0]!.kvLen, w.shape.decodes.length, w.shape.decodes[0]];
  };
  assert.equal([0, 1, 2, 3, 4].map(shape), [
    [1024, 4096, 32, 4096],
    [512, 8192, 64, 8192],
    [2048, 2048, 16, 16384],
    [1024, 16384, 128, 2048],
    [2048, 8192, 64, 4096],
  ]);
  const [preset, before, beforeFifty, fourCtas] = ws[0]!.configs;
  assert.equal(
    [preset!.label, fourCtas!.label, beforeFifty!.label],
    ["default", "4 CTAs/SM", "fifty-fifty, decode 2x(16x32)"],
  );
  assert.is(fourCtas!.spec.ctasPerSm, 4);
  // The preset is examples/llama3_8b_ws.json under its own name; its decode shape and schedule, and
  // the variants that keep the paper-shaped preset's old ones.
  const fieldsOf = (s: KernelSpec) => {
    const { name: _, ...fields } = specFields(s);
    return fields;
  };
  const wsExample = normalizeSpec(JSON.parse(readFileSync(join(PACKAGE_ROOT, "examples/llama3_8b_ws.json"), "utf8")));
  assert.equal(fieldsOf(preset!.spec), fieldsOf(wsExample));
  const decodeOf = (s: KernelSpec) => [s.decode.tile.kv, s.decode.virtualCtas, s.decode.warps, s.schedule.kind];
  assert.equal(decodeOf(preset!.spec), [64, 1, 4, "fifty-fifty"]);
  assert.ok(before!.label.startsWith("proportional, decode 2x(16x32)"), before!.label);
  assert.equal(decodeOf(before!.spec), [32, 2, 4, "proportional"]);
  assert.equal(decodeOf(beforeFifty!.spec), [32, 2, 4, "fifty-fifty"]);
  // The tune winners (bench/tuning/db.json) as variants: each changes what its name says.
  const tuned = ws[0]!.configs.filter((c) => c.label.startsWith("tuned: "));
  assert.is(tuned.length, 3);
  const oneStage = tuned.find((c) => c.label === "tuned: decode 64-key 1-stage tiles")!.spec;
  assert.equal([oneStage.decode.tile.kv, oneStage.decode.stages, oneStage.decode.virtualCtas, oneStage.schedule.kind], [64, 1, 2, "fifty-fifty"]);
  // Two-warpgroup CTAs: 8 warps for both ops, decode split into the named virtual CTAs.
  const eight = ws[0]!.configs.filter((c) => c.label.startsWith("8 warps: "));
  assert.is(eight.length, 6);
  for (const { label, spec } of eight) {
    const [, q, kv, vctas, dkv] = /prefill (\d+)x(\d+) .*decode (\d)x\(16x(\d+)\)/.exec(label)!.map(Number);
    assert.equal(
      [spec.prefill.warps, spec.decode.warps, spec.prefill.tile.q, spec.prefill.tile.kv, spec.decode.virtualCtas, spec.decode.tile.kv],
      [8, 8, q, kv, vctas, dkv],
      label,
    );
  }
  // The README's example spec is the first of them under another name.
  const example = normalizeSpec(JSON.parse(readFileSync(join(PACKAGE_ROOT, "examples/llama3_8b_two_warpgroups.json"), "utf8")));
  assert.equal(fieldsOf(eight[0]!.spec), fieldsOf(example));
  // The roles: variants (one CTA per SM) each state their tiles in their label; the example roles
  // spec is the first of them.
  const roles = ws[0]!.configs.filter((c) => c.label.startsWith("roles:"));
  assert.is(roles.length, 3);
  for (const { label, spec } of roles) {
    const [, q, kv, st, vctas, dkv, dst] = /prefill (\d+)x(\d+) (\d)-stage, decode (\d)x\(16x(\d+)\) (\d)-stage/.exec(label)!.map(Number);
    assert.equal(
      [spec.ctasPerSm, spec.prefill.warps, spec.decode.warps, spec.prefill.tile.q, spec.prefill.tile.kv, spec.prefill.stages, spec.decode.virtualCtas, spec.decode.tile.kv, spec.decode.stages],
      [1, 8, 4, q, kv, st, vctas, dkv, dst],
      label,
    );
  }
  const rolesExample = normalizeSpec(JSON.parse(readFileSync(join(PACKAGE_ROOT, "examples/llama3_8b_roles.json"), "utf8")));
  assert.equal(fieldsOf(roles[0]!.spec), fieldsOf(rolesExample));
  // The paper's CTA shape is the llama3_8b_2cta preset as it is, whatever it becomes.
  const paperShape = ws[0]!.configs.filter((c) => c.label.startsWith("the paper's CTA shape"));
  assert.is(paperShape.length, 1);
  assert.equal(fieldsOf(paperShape[0]!.spec), fieldsOf(presetByName("llama3_8b_2cta")!));
  // The warp-specialized: variant states its tiles too (the preset is the other tiling).
  const specialized = ws[0]!.configs.filter((c) => c.label.startsWith("warp-specialized:"));
  assert.is(specialized.length, 1);
  for (const { label, spec } of specialized) {
    const [, q, kv, st, vctas, dkv, dst] = /prefill (\d+)x(\d+) (\d)-stage, decode (\d)x\(16x(\d+)\) (\d)-stage/.exec(label)!.map(Number);
    assert.equal(
      [spec.prefill.engine, spec.ctasPerSm, spec.prefill.tile.q, spec.prefill.tile.kv, spec.prefill.stages, spec.decode.virtualCtas, spec.decode.tile.kv, spec.decode.stages],
      ["warp-specialized", 1, q, kv, st, vctas, dkv, dst],
      label,
    );
  }
  assert.is(new Set(ws[0]!.configs.map((c) => c.spec.hash)).size, ws[0]!.configs.length, "no variant repeats another");
  // Workloads on other models run their preset only.
  for (const w of ws.filter((w) => w.configs[0]!.spec.name !== "llama3_8b")) assert.is(w.configs.length, 1);
  const r = resolvedWorkloads(ws).workloads.find((w) => w.name.startsWith("D64"))!;
  assert.equal([r.heads_q, r.heads_kv, r.head_dim, r.dtype], [14, 2, 64, "bf16"]);
});

test("mixed-decodes.json: every workload's decodes have different KV lengths, passed to the PyTorch baselines as they are", () => {
  const ws = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/mixed-decodes.json"));
  assert.is(ws.length, 2);
  for (const [w, r] of ws.map((w, i) => [w, resolvedWorkloads(ws).workloads[i]!] as const)) {
    assert.ok(new Set(w.shape.decodes).size > 1, w.name);
    assert.equal(r.decodes, w.shape.decodes);
  }
});

test("head-dims.json: a workload per new preset; the PyTorch baselines learn each spec's variants (and skip Gemma's soft-capped ones)", () => {
  const ws = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/head-dims.json"));
  assert.equal(ws.map((w) => w.specName), ["phi3_mini", "gemma2_9b", "gemma2_9b_local"]);
  const resolved = resolvedWorkloads(ws).workloads;
  assert.equal(resolved.map((r) => [r.head_dim, r.window, r.logits_soft_cap, r.sinks]), [[96, null, 0, false], [256, null, 50, false], [256, 4096, 50, false]]);
  // Gemma's workloads also time the other engines D=256 allows, on the same model and pages.
  for (const w of ws.slice(1)) {
    assert.equal(w.configs.map((c) => resourceModel(c.spec).prefillEngine), ["wgmma", "warp-specialized", "mma"], w.name);
    for (const c of w.configs) assert.equal([c.spec.headDim, c.spec.logitsSoftCap, c.spec.window], [256, 50, w.configs[0]!.spec.window]);
  }
  assert.is(ws[0]!.configs.length, 1);
});

test("variants.json: each variant preset beside its plain twin (the same spec without window, soft-cap and sinks) on the same batch; the PyTorch baselines get each window and the sinks flag", () => {
  const ws = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/variants.json"));
  assert.equal([...new Set(ws.map((w) => w.specName))], ["mistral_7b", "gpt_oss_20b", "gemma2_9b", "gpt_oss_20b_global"]);
  const paper = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/paper.json")).slice(0, 5).map((w) => w.shape);
  for (const spec of ["gemma2_9b", "gpt_oss_20b_global"]) assert.equal(ws.filter((w) => w.specName === spec).map((w) => w.shape), paper, spec);
  const resolved = resolvedWorkloads(ws).workloads;
  assert.equal(resolved.slice(0, 3).map((r) => [r.heads_q, r.heads_kv, r.head_dim, r.window, r.logits_soft_cap, r.sinks]), [
    [32, 8, 128, 4096, 0, false],
    [64, 8, 64, 128, 0, true],
    [16, 8, 256, null, 50, false],
  ]);
  // Each cost is read off two times of one workload: the pair must differ in the variant's fields alone.
  const variantFields = { name: "", hash: "", window: undefined, logitsSoftCap: undefined, sinks: undefined };
  for (const w of ws) {
    assert.equal(w.configs.length, 2, w.name);
    const [spec, twin] = w.configs.map((c) => c.spec);
    assert.equal([twin!.window, twin!.logitsSoftCap, twin!.sinks], [undefined, undefined, undefined], w.name);
    assert.equal({ ...spec!, ...variantFields }, { ...twin!, ...variantFields }, w.name);
  }
  // mistral_7b's twin is the full-causal kernel of llama3_8b_2cta.
  assert.equal({ ...ws[0]!.configs[1]!.spec, name: "", hash: "" }, { ...presetByName("llama3_8b_2cta")!, name: "", hash: "" });
});

test("fp8-kv.json: each fp8 batch again on the bf16 preset of the same CTA shape, for the decode-only ratio of one run", () => {
  const ws = loadWorkloads(join(PACKAGE_ROOT, "bench/workloads/fp8-kv.json"));
  const fp8 = ws.filter((w) => w.specName === "llama3_8b_fp8");
  const bf16 = ws.filter((w) => w.specName === "llama3_8b_2cta");
  assert.is(fp8.length, 5);
  assert.equal(bf16.map((w) => [w.name, w.shape]), fp8.map((w) => [`bf16 ${w.name}`, w.shape]));
  const shapeOf = (s: KernelSpec) => ({ heads: s.heads, headDim: s.headDim, ctasPerSm: s.ctasPerSm, prefill: s.prefill, decodeTile: s.decode.tile, kvCache: s.kvCache });
  assert.equal(shapeOf(fp8[0]!.configs[0]!.spec), shapeOf(bf16[0]!.configs[0]!.spec));
  assert.equal([fp8[0]!.configs[0]!.spec.kvDtype, bf16[0]!.configs[0]!.spec.kvDtype], ["e4m3", undefined]);
});

test("a variant may drop its workload's sinks (the batch keeps them for the others) but not add them", () => {
  const file = (sinks: boolean | null, spec: string) => ({ variants: [{ name: "v", kernel: { sinks } }], workloads: [{ name: "w", spec, prefills: [[8, 64]], decodes: [64], variants: true }] });
  assert.is(parseWorkloads(file(null, "gpt_oss_20b_global"), "f.json")[0]!.configs[1]!.spec.sinks, undefined);
  assert.throws(() => parseWorkloads(file(true, "llama3_8b_2cta"), "f.json"), /f\.json: workloads\.0 \(w\): variant "v": sinks = true but the workload spec has none/);
});

test("a variant with another KV layout than its workload's spec is refused when the file is read, naming it", () => {
  const file = (pageSize: number | "contiguous") => ({ variants: [{ name: "other pages", pageSize }], workloads: [{ name: "w", prefills: [[8, 64]], decodes: [64], variants: true }] });
  assert.throws(() => parseWorkloads(file(64), "f.json"), /f\.json: workloads\.0 \(w\): variant "other pages": kvCache = .*"pageSize":64.* must equal .*"pageSize":16/);
  assert.throws(() => parseWorkloads(file("contiguous"), "f.json"), /kvCache = \{"kind":"contiguous"\}/);
  assert.is(parseWorkloads(file(16), "f.json")[0]!.configs.length, 2);
});

test("a workload's pageSize sets the KV layout of its batch for its spec and every variant", () => {
  const file = (pageSize: number | "contiguous") => ({
    variants: [{ name: "wide", kernel: { prefill: { tile: { q: 128, kv: 128 } }, decode: { stages: 1 } } }],
    workloads: [{ name: "w", pageSize, prefills: [[8, 64]], decodes: [64], variants: true }],
  });
  for (const [pageSize, kvCache] of [
    ["contiguous", { kind: "contiguous" }],
    [64, { kind: "paged", pageSize: 64 }],
  ] as const) {
    const [w] = parseWorkloads(file(pageSize), "f.json");
    assert.equal(w!.configs.map((c) => c.spec.kvCache), [kvCache, kvCache]);
    assert.equal(w!.configs[1]!.spec.prefill.tile, { q: 128, kv: 128 });
  }
  assert.throws(() => parseWorkloads(file(0), "f.json"), /pageSize/);
});

test("variants that no workload asks for are refused, naming them and the field that runs them", () => {
  const file = (variants?: boolean) => ({ variants: [{ name: "three stages", kernel: { prefill: { stages: 3 } } }], workloads: [{ name: "w", prefills: [[8, 64]], decodes: [64], variants }] });
  assert.throws(() => parseWorkloads(file(), "f.json"), /f\.json: variants: 1 defined \("three stages"\) but no workload sets "variants": true/);
  assert.throws(() => parseWorkloads(file(false), "f.json"), /no workload sets "variants": true/);
  assert.is(parseWorkloads(file(true), "f.json")[0]!.configs[1]!.label, "three stages");
});

test("a workload's shufflePages orders its batch's pages (shuffled unless false)", () => {
  const file = (shufflePages?: unknown) => ({ workloads: [{ name: "w", shufflePages, prefills: [[8, 64]], decodes: [64] }] });
  assert.equal(parseWorkloads(file(), "f.json")[0]!.shufflePages, true);
  assert.equal(parseWorkloads(file(false), "f.json")[0]!.shufflePages, false);
  assert.throws(() => parseWorkloads(file("no"), "f.json"), /f\.json: workloads\.0\.shufflePages/);
});

test("workload file errors name the workload", () => {
  assert.throws(() => parseWorkloads({ workloads: [{ name: "x", prefills: [[10, 5]], decodes: [1] }] }), /x.*qLen ≤ kvLen/);
  assert.throws(() => parseWorkloads({ workloads: [{ name: "x", prefills: [[1, "2"]], decodes: [1] }] }, "w.json"), /^w\.json: workloads\.0\.prefills\.0\.1: Invalid input: expected number/);
  assert.throws(() => parseWorkloads({ workload: [] }, "w.json"), /w\.json: 2 problems:[^]*- workload: unknown field/);
  assert.throws(() => parseWorkloads({ workloads: [{ name: "y", spec: "nope", prefills: [[1, 1]], decodes: [1] }] }), /"nope" is not a preset/);
});

test("every recorded bench report reads back through the report schema", () => {
  const dir = join(PACKAGE_ROOT, "bench/results");
  let reports = 0;
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const json = JSON.parse(readFileSync(join(dir, f), "utf8"));
    // Other results (GPU suite, ncu, tune summaries) have workloads of another shape or none.
    if (!Array.isArray(json.workloads) || typeof json.workloads[0] !== "object" || !("fused_ms" in json.workloads[0])) continue;
    readBenchReport(join(dir, f));
    reports++;
  }
  assert.ok(reports >= 10, `${reports} reports`);
});

test("a recorded report: table and SVG", async () => {
  const report = readBenchReport(RECORDED);
  for (const key of ["commit", "gpu", "driver", "workloads"]) assert.ok(key in report, key);
  const w = report.workloads[0]!;
  for (const key of ["name", "prefill_chunk", "prefill_kv", "decode_batch", "decode_kv", "ms", "fused_best_config", "prefill_tflops", "decode_tbps", "speedup_vs_serial", "speedup_vs_torch", "overlap_efficiency"]) {
    assert.ok(key in w, key);
  }
  const table = formatTable(report).split("\n");
  const standaloneLines = report.workloads.filter((x) => x.standalone?.best).length;
  assert.is(table.length, report.workloads.length + 4 + standaloneLines); // title, header, rule, rows, summary, fastest standalone
  const svg = await renderSvg(report);
  assert.ok(svg.startsWith("<svg") && svg.includes(w.name), "an SVG naming the workloads");
});

test("--standalone-variants: the table names each workload's fastest prefill-only and decode-only config, and the overlap against them", () => {
  const report = readBenchReport(RECORDED);
  for (const x of report.workloads) delete x.standalone;
  const w = report.workloads[1]!;
  w.ms.fused_best = 0.75;
  w.standalone = {
    ms: { default: { prefill: 0.25, decode: 0.7 }, "decode 64": { prefill: null, decode: 0.69 } },
    best: { prefill: { config: "default", ms: 0.25, tflops: 123.4 }, decode: { config: "decode 64", ms: 0.69, tbps: 3.11 } },
  };
  const lines = formatTable(report).split("\n");
  assert.is(lines.length, report.workloads.length + 5);
  assert.is(lines.at(-1), `fastest standalone, ${w.name}: prefill 0.250 ms, 123 TFLOP/s (default); decode 0.690 ms, 3.11 TB/s (decode 64); overlap against these 0.76`);
});

const torchEntry = (fields: Partial<TorchWorkload>): TorchWorkload => ({ name: "w", prefill: {}, decode: {}, errors: {}, ...fields });
const hybrid = { prefills: [{ qLen: 1024, kvLen: 4096 }], decodes: [4096, 300, 17] };

test("torch best serial: a figure only where PyTorch ran every op of the batch, else the ops it lacks", () => {
  const both = torchEntry({
    best_prefill: { backend: "flash_varlen", ms: 0.2 },
    best_decode: { backend: "flash_varlen", ms: 0.1 },
    best_serial_ms: 0.31,
    best_serial_backends: ["flash_varlen", "flash_varlen"],
  });
  assert.equal(torchBestSerial(both, hybrid), { ms: 0.31, missing: [] });
  // What torch_baselines.py wrote for mixed decode lengths before varlen flash decoded them: a
  // "serial" of the prefill alone. The fused time over it is no speedup.
  const prefillOnly = torchEntry({ best_prefill: { backend: "flash_varlen", ms: 0.2 }, best_serial_ms: 0.2, best_serial_backends: ["flash_varlen", null] });
  assert.equal(torchBestSerial(prefillOnly, hybrid), { ms: null, missing: ["decode"] });
  assert.equal(torchBestSerial(torchEntry({ errors: { workload: "OOM" } }), hybrid), { ms: null, missing: ["prefill", "decode"] });
  // An op the batch does not have is not missing; no PyTorch run at all is no figure, and nothing missing.
  assert.equal(torchBestSerial(prefillOnly, { prefills: hybrid.prefills, decodes: [] }), { ms: 0.2, missing: [] });
  assert.equal(torchBestSerial(null, hybrid), { ms: null, missing: [] });
});

test("the table: a torch serial that lacks an op says which instead of a time", () => {
  const report = JSON.parse(readFileSync(RECORDED, "utf8")) as BenchReport;
  const w = report.workloads[0]!;
  w.ms.torch_best_serial = null;
  w.speedup_vs_torch = null;
  w.torch_serial_missing = ["decode"];
  const row = formatTable(report).split("\n").find((l) => l.startsWith(w.name))!;
  assert.ok(row.includes("no decode"), row);
});

test("Hopper serial: cuDNN's non-causal prefill + the fastest decode of PyTorch's backends and our kernels", () => {
  // Times in 1/8 ms, so the sums are exact.
  const torch = torchEntry({ decode: { sdpa_cudnn: 0.375, flash_varlen: 0.5 }, prefill_cudnn_noncausal_ms: 0.5, prefill_cudnn_noncausal_gqa: "enable_gqa" });
  assert.equal(hopperSerial(torch, { default: 0.5, "roles: x": 0.25, broken: null }), { ms: 0.75, prefill_ms: 0.5, decode_ms: 0.25, decode_kernel: "podgen roles: x" });
  assert.equal(hopperSerial(torch, { default: 0.625 }), { ms: 0.875, prefill_ms: 0.5, decode_ms: 0.375, decode_kernel: "torch sdpa_cudnn" });
  // Ours alone where PyTorch decoded nothing; no figure without the cuDNN prefill or without any decode.
  assert.equal(hopperSerial(torchEntry({ prefill_cudnn_noncausal_ms: 0.5 }), { default: 0.3 })?.decode_kernel, "podgen default");
  assert.is(hopperSerial(torchEntry({ decode: { sdpa_cudnn: 0.35 } }), { default: 0.3 }), null);
  assert.is(hopperSerial(null, { default: 0.3 }), null);
  assert.is(hopperSerial(torchEntry({ prefill_cudnn_noncausal_ms: 0.5 }), { default: null }), null);
});

test("the table: the Hopper serial column, the fused speedups over it (best config, preset), their geomeans and a legend", () => {
  const report = JSON.parse(readFileSync(RECORDED, "utf8")) as BenchReport;
  for (const x of report.workloads) delete x.standalone;
  const w = report.workloads[1]!;
  w.ms.fused_best = 0.5;
  w.fused_ms.default = 0.6;
  w.hopper_serial = { ms: 1.0, prefill_ms: 0.65, decode_ms: 0.35, decode_kernel: "torch sdpa_cudnn" };
  w.ms.hopper_serial = 1.0;
  w.speedup_vs_hopper_serial = 2;
  w.preset_speedup_vs_hopper_serial = 1 / 0.6;
  report.summary.geomean_speedup_vs_hopper_serial = 2;
  report.summary.geomean_preset_speedup_vs_hopper_serial = 1 / 0.6;
  const lines = formatTable(report).split("\n");
  assert.is(lines.length, report.workloads.length + 5); // title, header, rule, rows, summary, legend
  // Columns are at least two spaces apart; names and headers have single spaces.
  const cells = (line: string) => line.split(/\s{2,}/).map((c) => c.trim());
  const header = cells(lines[1]!);
  const row = cells(lines.find((l) => l.startsWith(w.name))!);
  assert.is(row[header.indexOf("hopper")], "1.000");
  assert.equal([row[header.indexOf("x hopper")], row[header.indexOf("preset x hopper")]], ["2.00", "1.67"]);
  assert.ok(lines.at(-2)!.includes("2.00x vs Hopper serial (preset 1.67x)"), lines.at(-2));
  assert.ok(lines.at(-1)!.startsWith("hopper = PyTorch SDPA on cuDNN, non-causal"), lines.at(-1));
});

test.run();
