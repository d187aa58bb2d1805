// The podgen command as a user runs it: exit codes, messages without stack traces, --check.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
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
  assert.is(json.resources.smem.perCta, 98304);
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

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
