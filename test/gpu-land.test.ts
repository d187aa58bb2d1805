// scripts/gpu-land.sh (the bundle's land.sh) without a GPU: stand-ins for nvidia-smi, the bundle's
// podgen launcher and run.sh record what it calls, so the order of the steps, the families it
// re-tunes, the card check and the failure summary are checked here; the GPU run is the device's.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { readCostModels } from "../bench/tune/cost-model.ts";

const shipped = readCostModels().models;
/** The families the shipped store has models of on `gpu`, sorted: what land.sh re-tunes there. */
const familiesOn = (gpu: string) => [...new Set(shipped.filter((m) => m.gpu === gpu).map((m) => m.family))].sort();
/** The run.sh calls of the sanitize step, in order. */
const sanitizerCalls = ["memcheck", "racecheck", "synccheck"].map((tool) => `run.sh compute-sanitizer --tool ${tool} --error-exitcode 9 --filter sanitize:`);
/** land.sh's summary: its last line of output. */
const lastLine = (r: { stdout: string }) => r.stdout.trim().split("\n").at(-1)!;

/** A repository root with the shipped store, .gpu/land.sh and stand-ins; returns how to run it. */
function fakeTree(card: string, opts: { failTune?: string } = {}) {
  const root = mkdtempSync(join(tmpdir(), "podgen-land-"));
  mkdirSync(join(root, ".gpu"));
  mkdirSync(join(root, "bench", "tuning"), { recursive: true });
  mkdirSync(join(root, "bin"));
  copyFileSync(join(PACKAGE_ROOT, "bench", "tuning", "cost-models.json"), join(root, "bench", "tuning", "cost-models.json"));
  copyFileSync(join(PACKAGE_ROOT, "scripts", "gpu-land.sh"), join(root, ".gpu", "land.sh"));
  const calls = join(root, "calls.txt");
  const script = (path: string, body: string) => {
    writeFileSync(path, `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(path, 0o755);
  };
  script(join(root, "bin", "nvidia-smi"), `echo "${card}"`);
  // run.sh: the suite, or a sanitizer pass (PODGEN_WRAP set), each writing gpu-suite.json to $OUT.
  script(join(root, ".gpu", "run.sh"), `echo "run.sh \${PODGEN_WRAP:-suite} $*" >> "${calls}"; mkdir -p "$OUT"; echo '{}' > "$OUT/gpu-suite.json"; echo "3 passed, 0 failed, 1 skipped"`);
  script(
    join(root, ".gpu", "podgen"),
    `echo "podgen $*" >> "${calls}"\n` +
      (opts.failTune ? `[ "$1 $3" = "tune ${opts.failTune}" ] && { echo "tune failed" >&2; exit 1; }\n` : "") +
      `[ "$1" = tune ] && echo "fit: 28 records"\nexit 0`,
  );
  const run = (args: string[] = [], env: Record<string, string> = {}) =>
    execa("bash", [join(root, ".gpu", "land.sh"), ...args], {
      reject: false,
      env: { PATH: `${join(root, "bin")}:${process.env.PATH}`, OUT: join(root, "out"), ...env },
      extendEnv: false,
    });
  const log = () => readFileSync(calls, "utf8").trim().split("\n");
  return { root, run, log, done: () => rmSync(root, { recursive: true, force: true }) };
}

test("land.sh --list: each GPU of the shipped store with the families it has models of", async () => {
  const t = fakeTree("NVIDIA H100 80GB HBM3");
  try {
    const r = await t.run(["--list"]);
    assert.is(r.exitCode, 0, r.stderr);
    const gpus = [...new Set(shipped.map((m) => m.gpu))].sort();
    assert.equal(r.stdout.trim().split("\n").map((l) => l.split(": ")[0]), gpus);
    for (const g of gpus) {
      const line = r.stdout.split("\n").find((l) => l.startsWith(`${g}: `))!;
      assert.equal(line.slice(g.length + 2).trim().split(" "), familiesOn(g));
    }
  } finally {
    t.done();
  }
});

test("land.sh on the models' card: suite, a build and a tune of every family, three sanitizers, in that order", async () => {
  const gpu = shipped[0]!.gpu;
  const families = familiesOn(gpu);
  const t = fakeTree(gpu);
  try {
    const r = await t.run();
    assert.is(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(lastLine(r), new RegExp(`^land: suite, ${families.length} re-tunes and 3 sanitizers passed on ${gpu}`));
    const calls = t.log();
    // The build runs beside the suite, so only its presence is fixed; the rest is in order.
    assert.ok(calls.includes(`podgen build ${families.join(" ")} -j 12`), calls.join("\n"));
    const ordered = calls.filter((c) => !c.startsWith("podgen build"));
    assert.equal(ordered, [
      "run.sh suite ",
      ...families.map((f) => `podgen tune --family ${f} --out ${join(t.root, "out", `tune-family-${f.replace(/_auto$/, "")}.json`)}`),
      ...sanitizerCalls,
    ]);
    for (const f of ["gpu-suite.json", "cost-models.json", "sanitizers-memcheck.json", "sanitizers-racecheck.json", "sanitizers-synccheck.json"])
      assert.ok(readFileSync(join(t.root, "out", f), "utf8").length > 0, f);
  } finally {
    t.done();
  }
});

test("land.sh on a card without models stops before any step, naming the card and the store's, unless families are named; a failed tune fails the run", async () => {
  const other = fakeTree("NVIDIA H200");
  try {
    const r = await other.run();
    assert.is(r.exitCode, 3);
    assert.match(r.stderr, /no models for this GPU \('NVIDIA H200'; it has: NVIDIA H100 80GB HBM3;\)/);
    assert.throws(() => other.log(), /ENOENT/, "nothing ran");
    // Named families are fitted for that card.
    const named = await other.run([], { PODGEN_LAND_FAMILIES: "llama3_8b_auto" });
    assert.is(named.exitCode, 0, named.stdout + named.stderr);
    assert.ok(other.log().some((c) => c.startsWith("podgen tune --family llama3_8b_auto ")), other.log().join("\n"));
    assert.match(named.stdout, /land: suite, 1 re-tunes and 3 sanitizers passed on NVIDIA H200/);
    // Without the tune no models are needed: the suite and sanitizers check a change on any card.
    const before = other.log().length;
    const check = await other.run(["--only", "suite,sanitize"]);
    assert.is(check.exitCode, 0, check.stdout + check.stderr);
    assert.match(lastLine(check), /^land: suite and 3 sanitizers passed on NVIDIA H200$/);
    assert.not.ok(other.log().slice(before).some((c) => c.startsWith("podgen ")), other.log().join("\n"));
  } finally {
    other.done();
  }
  const gpu = shipped[0]!.gpu;
  const family = shipped[0]!.family;
  const failing = fakeTree(gpu, { failTune: family });
  try {
    const r = await failing.run();
    assert.is(r.exitCode, 1);
    assert.match(r.stdout, new RegExp(`land: FAILED: tune ${family} \\(logs in `));
  } finally {
    failing.done();
  }
});

test("land.sh --only splits the steps over calls: suite and tunes, then the sanitizers; an unknown step is named", async () => {
  const gpu = shipped[0]!.gpu;
  const families = familiesOn(gpu);
  const t = fakeTree(gpu);
  try {
    const first = await t.run(["--only", "suite,tune"]);
    assert.is(first.exitCode, 0, first.stdout + first.stderr);
    assert.match(lastLine(first), new RegExp(`^land: suite, ${families.length} re-tunes passed on ${gpu}; copy `));
    assert.ok(t.log().includes(`podgen build ${families.join(" ")} -j 12`), t.log().join("\n"));
    assert.not.ok(t.log().some((c) => c.includes("compute-sanitizer")), t.log().join("\n"));
    const before = t.log().length;
    const second = await t.run(["--only", "sanitize"]);
    assert.is(second.exitCode, 0, second.stdout + second.stderr);
    assert.match(lastLine(second), new RegExp(`^land: 3 sanitizers passed on ${gpu}$`));
    assert.equal(t.log().slice(before), sanitizerCalls);
    const bad = await t.run(["--only", "suite,bench"]);
    assert.is(bad.exitCode, 2);
    assert.match(bad.stderr, /--only: unknown step 'bench' \(the steps: suite, tune, sanitize\)/);
  } finally {
    t.done();
  }
});

test.run();
