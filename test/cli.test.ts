// The podgen command as a user runs it: exit codes, messages without stack traces, --check.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { GENERATED_DIR, PACKAGE_ROOT } from "../codegen/paths.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-cli-"));
const podgen = (...args: string[]) =>
  execa(process.execPath, [join(PACKAGE_ROOT, "bin", "podgen.mjs"), ...args], {
    cwd: work,
    reject: false,
    env: { PODGEN_CACHE_DIR: join(work, "cache") },
  });

test("an invalid spec file: exit 2, every bad field named, no stack trace", async () => {
  writeFileSync(join(work, "bad.json"), JSON.stringify({ name: "bad", heads: { q: 32, kv: 6 }, headDim: 128, ctasPerSm: 4 }));
  const r = await podgen("build", "bad.json");
  assert.is(r.exitCode, 2);
  assert.match(r.stderr, /invalid kernel spec "bad"/);
  assert.match(r.stderr, /heads\.q = 32: must be a multiple of heads\.kv=6/);
  assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
});

test("a spec written in TypeScript with pod.kernel generates its files", async () => {
  writeFileSync(
    join(work, "spec.ts"),
    `import { pod } from "${join(PACKAGE_ROOT, "dsl", "index.ts")}";\nexport default pod.kernel({ name: "mine", heads: { q: 16, kv: 4 }, headDim: 64 });\n`,
  );
  const r = await podgen("generate", "spec.ts", "--out", "gen");
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /wrote 1 kernel\(s\) to gen\/: mine/);
  const check = await podgen("generate", "spec.ts", "--out", "gen", "--check");
  assert.is(check.exitCode, 0, check.stderr);
});

test("generate --check fails on an edited generated file", async () => {
  cpSync(GENERATED_DIR, join(work, "generated"), { recursive: true });
  assert.is((await podgen("generate", "--check")).exitCode, 0);
  appendFileSync(join(work, "generated", "llama3_8b", "kernel.cu"), "// hand edit\n");
  const r = await podgen("generate", "--check");
  assert.is(r.exitCode, 1);
  assert.match(r.stderr, /llama3_8b\/kernel\.cu/);
});

test("unknown preset or file: exit 2 with the list of presets", async () => {
  const r = await podgen("inspect", "llama9");
  assert.is(r.exitCode, 2);
  assert.match(r.stderr, /neither a preset \(llama3_8b, /);
});

test("inspect --json gives the resource model; presets lists every preset", async () => {
  const r = await podgen("inspect", "llama3_8b", "--json");
  assert.is(r.exitCode, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  // The preset's one CTA per SM holds the warp-specialized prefill role (Q, two stages of K and V,
  // the mbarrier ring: 97 KiB) and the decode role (Q, two stages of K and V: 68 KiB), and the claim slots.
  assert.equal([json.resources.prefillEngine, json.resources.roles, json.resources.smem.perCta], ["warp-specialized", true, 168976]);
  assert.is(json.manifest, null);
  const p = await podgen("presets", "--json");
  assert.ok(JSON.parse(p.stdout).some((s: { name: string }) => s.name === "qwen2_0_5b"));
});

test("verify without a GPU fails cleanly", async () => {
  writeFileSync(join(work, "cases.json"), JSON.stringify({ cases: [{ seed: 1, prefills: [[9, 5]] }] }));
  const bad = await podgen("verify", "--cases", "cases.json");
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, /cases\.0\.prefills\.0 = \[9, 5\]: kvLen must be ≥ qLen/);
});

test("verify without a GPU fails before compiling anything (exit 1)", async () => {
  writeFileSync(join(work, "ok.json"), JSON.stringify({ cases: [{ seed: 1, decodes: [1], spec: "llama3_8b_2cta", policy: "proportional" }] }));
  const cache = join(work, "verify-cache");
  const r = await execa(process.execPath, [join(PACKAGE_ROOT, "bin", "podgen.mjs"), "verify", "--cases", "ok.json"], {
    cwd: work,
    reject: false,
    env: { PODGEN_CACHE_DIR: cache, PODGEN_LIBCUDA: join(work, "no-such-libcuda.so.1") },
  });
  assert.is(r.exitCode, 1, r.stderr);
  assert.match(r.stderr, /no CUDA driver/);
  assert.not.ok(existsSync(cache), "nothing was built");
  assert.is((await podgen("verify", "--cases", "ok.json", "--json", "--ndjson")).exitCode, 2);
});

test("bad input files exit 2, naming the file and the field: workloads, reports, case files, the tuning database", async () => {
  writeFileSync(join(work, "typo.json"), JSON.stringify({ workloads: [{ name: "w", prefils: [[1, 1]], decodes: [1] }] }));
  const typo = await podgen("bench", "--workloads", "typo.json", "--no-torch");
  assert.is(typo.exitCode, 2, typo.stderr);
  assert.match(typo.stderr, /typo\.json: workloads\.0\.prefils: unknown field/);
  writeFileSync(join(work, "order.json"), JSON.stringify({ workloads: [{ name: "w", prefills: [[10, 5]], decodes: [1] }] }));
  const order = await podgen("bench", "--workloads", "order.json", "--no-torch");
  assert.is(order.exitCode, 2, order.stderr);
  assert.match(order.stderr, /order\.json: workloads\.0 \(w\): prefill \[10, 5\] needs 1 ≤ qLen ≤ kvLen/);
  writeFileSync(join(work, "variant.json"), JSON.stringify({ variants: [{ name: "v", policy: "greedy" }], workloads: [{ name: "w", prefills: [[1, 1]], decodes: [1], variants: true }] }));
  const variant = await podgen("bench", "--workloads", "variant.json", "--no-torch");
  assert.is(variant.exitCode, 2, variant.stderr);
  assert.match(variant.stderr, /variant "v": policy: Invalid option/);
  assert.is((await podgen("bench", "--workloads", "missing.json")).exitCode, 2);

  writeFileSync(join(work, "report.json"), JSON.stringify({ commit: "x", gpu: "g", driver: "d", cuda: "c", sms: 1, date: "t", iters: 1, warmup: 1, specs: {}, torch: null, workloads: [{ name: "w" }], summary: {} }));
  const report = await podgen("bench", "--from", "report.json");
  assert.is(report.exitCode, 2, report.stderr);
  assert.match(report.stderr, /^bench report report\.json: \d+ problems:\n\s+- workloads\.0\.spec: Invalid input: expected string, received undefined/);
  assert.not.match(report.stderr, /\n\s+at /, "no stack trace");

  writeFileSync(join(work, "wide.json"), JSON.stringify({ cases: [{ name: "wide", seed: 1, decodes: [1], kernel: { prefill: { tile: { q: 96, kv: 64 } } } }] }));
  const wide = await podgen("verify", "--cases", "wide.json");
  assert.is(wide.exitCode, 2, wide.stderr);
  // Both rules the preset's 8-warp warp-specialized prefill sets on the tile's rows.
  assert.match(
    wide.stderr,
    /wide\.json: cases\.0 \(wide\): invalid kernel spec "llama3_8b_[0-9a-f]{8}" \(2 problems\):\n\s+- prefill\.tile\.q = 96: must be a multiple of 128 .*\n\s+- prefill\.tile\.q = 96: must be 128 \(64 rows × 2 consumer warpgroups\)/,
  );

  writeFileSync(join(work, "db.json"), JSON.stringify({ version: 1, entries: { e: { key: "e", gpu: { name: "g", ccMajor: 9, ccMinor: "0" } } } }));
  const db = await podgen("tune", "--preset", "llama3_8b", "--report", "--db", "db.json");
  assert.is(db.exitCode, 2, db.stderr);
  assert.match(db.stderr, /tuning database .*db\.json: \d+ problems:\n\s+- entries\.e\.gpu\.ccMinor: Invalid input: expected number, received string/);
  writeFileSync(join(work, "db2.json"), JSON.stringify({ version: 2, entries: {} }));
  const db2 = await podgen("tune", "--preset", "llama3_8b", "--report", "--db", "db2.json");
  assert.is(db2.exitCode, 2, db2.stderr);
  assert.match(db2.stderr, /db2\.json: version = 2: this podgen reads version 1/);
});

test("a bad search space exits 2, naming the field", async () => {
  writeFileSync(join(work, "space.json"), JSON.stringify({ headDim: [64] }));
  const r = await podgen("tune", "--preset", "llama3_8b", "--dry-run", "--space", "space.json");
  assert.is(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /headDim: not a tunable field/);
});

test("the bundled CLI (.gpu/podgen.mjs) starts and runs from another folder", async () => {
  // It must sit one folder below the repository (it finds templates/ and bench/ from there), as
  // .gpu/ does; .scratch/ is ignored by git.
  const out = join(PACKAGE_ROOT, ".scratch");
  const name = `podgen-cli-test-${process.pid}.mjs`;
  const { bundleCli } = await import("../scripts/gpu-bundle.ts");
  await bundleCli(out, name);
  try {
    const bundled = (...args: string[]) => execa(process.execPath, [join(out, name), ...args], { cwd: work, reject: false, env: { PODGEN_CACHE_DIR: join(work, "cache") } });
    const presets = await bundled("presets");
    assert.is(presets.exitCode, 0, presets.stderr);
    assert.match(presets.stdout, /^name\s+target/);
    const tune = await bundled("tune", "--preset", "llama3_8b", "--dry-run");
    assert.is(tune.exitCode, 0, tune.stderr);
    assert.match(tune.stdout, /candidates \(base included\)/);
  } finally {
    rmSync(join(out, name), { force: true });
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
