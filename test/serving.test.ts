// The end-to-end serving benchmark (bench/serving/) without a GPU: its Python trace generator and
// scheduler tests (python3 -m unittest) and run.py's flag errors and --estimate, where python3
// exists (else reported skipped); the report's schema, the fused kernel's gains and the SVG plot.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { fusedGains, plotServingFile, readServingReport, servingPlotSpec } from "../bench/serving/plot.ts";
import { vegaLiteToSvg } from "../bench/plot.ts";

const SERVING = join(PACKAGE_ROOT, "bench/serving");
const FIXTURE = join(PACKAGE_ROOT, "test/fixtures/serving-report.json");
const python = await execa("python3", ["--version"], { reject: false });
const hasPython = (python as { code?: string }).code !== "ENOENT" && python.exitCode === 0;
const pyTest = hasPython ? test : (name: string) => test.skip(`${name} (python3 not found)`);
const runPy = (...args: string[]) => execa("python3", [join(SERVING, "run.py"), ...args], { reject: false, all: true });

pyTest("python: trace and scheduler unit tests (budget, FCFS, every request finishes, seeded)", async () => {
  const r = await execa("python3", ["-m", "unittest", "discover", "-s", SERVING, "-p", "test_*.py"], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
  assert.match(r.all ?? "", /Ran \d+ tests/);
});

pyTest("python: every bench/serving module byte-compiles (the torch ones cannot be imported here)", async () => {
  const r = await execa("python3", ["-m", "py_compile", ...["attention", "benchmark", "cost_model", "model", "model_shape", "run", "scheduler", "synthetic_trace"].map((m) => join(SERVING, `${m}.py`))], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
});

pyTest("python: run.py rejects bad flags naming the flag, the value and the limit", async () => {
  const cases: [string[], RegExp][] = [
    [["--estimate", "--budget", "0"], /--budget=0 must be in \[1, 65536\]/],
    [["--estimate", "--rates", "2,-1"], /-1\.0 must be > 0 and finite/],
    [["--estimate", "--max-running", "2048"], /--max-running=2048 must be at most --budget=1024/],
    [["--estimate", "--backends", "podgen_fused,vllm"], /unknown \['vllm'\]/],
    [["--out", "x.json"], /--export and --out are required/],
  ];
  for (const [args, message] of cases) {
    const r = await runPy(...args);
    assert.is(r.exitCode, 2, `${args.join(" ")}: ${r.all}`);
    assert.match(r.all ?? "", message);
  }
});

pyTest("python: --estimate (no GPU) predicts the default run within its 6-minute budget and --quick within 90 s", async () => {
  const seconds = async (...args: string[]) => {
    const r = await runPy("--estimate", ...args);
    assert.is(r.exitCode, 0, r.all);
    return Number(/about (\d+) s of steps/.exec(r.stdout)?.[1]);
  };
  const full = await seconds();
  const quick = await seconds("--quick");
  // The model's floor (no Python overhead beyond launches): leave room under the budgets for start-up.
  assert.ok(full > 30 && full < 300, `default: ${full} s`);
  assert.ok(quick > 1 && quick < 60, `--quick: ${quick} s`);
  assert.ok(quick < full / 3);
});

test("plot: the report parses, the fused kernel's gains are ratios of its runs, and the SVG names every backend and rate", async () => {
  const report = readServingReport(FIXTURE);
  const gains = fusedGains(report);
  assert.equal(gains.map((g) => g.rate), [...new Set(report.runs.map((r) => r.rate))]);
  for (const g of gains) {
    const at = (b: string) => report.runs.find((r) => r.rate === g.rate && r.backend === b)!;
    assert.is(g.throughputVsTorch, at("podgen_fused").output_tokens_per_s / at("torch_flash").output_tokens_per_s);
    assert.is(g.throughputVsSerial, at("podgen_fused").output_tokens_per_s / at("podgen_serial").output_tokens_per_s);
    assert.is(g.tbtP99VsTorch, at("podgen_fused").tbt_ms.p99 / at("torch_flash").tbt_ms.p99);
  }
  // A rate without a torch run has no ratio to it, rather than a wrong one.
  const partial = { ...report, runs: report.runs.filter((r) => r.backend !== "torch_flash") };
  assert.ok(fusedGains(partial).every((g) => g.throughputVsTorch === null && g.throughputVsSerial !== null));
  const svg = await vegaLiteToSvg(servingPlotSpec(report));
  assert.ok(svg.startsWith("<svg"));
  for (const name of ["podgen_fused", "podgen_serial", "torch_flash", "4 req/s", "1000 req/s", report.gpu]) assert.ok(svg.includes(name), name);
});

test("plot: a file that is not a serving report fails naming the field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "podgen-serving-"));
  try {
    const report = JSON.parse(readFileSync(FIXTURE, "utf8"));
    report.runs[0].backend = "vllm";
    delete report.config.budget;
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify(report));
    assert.throws(() => readServingReport(bad), (e: Error) => /config\.budget/.test(e.message) && /runs\.0\.backend/.test(e.message));
    const { svgPath, gains } = await plotServingFile(FIXTURE, join(dir, "plot.svg"));
    assert.match(readFileSync(svgPath, "utf8"), /^<svg/);
    assert.match(gains, /^rate 4\/s: podgen fused throughput \d\.\d{3}x torch_flash/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
