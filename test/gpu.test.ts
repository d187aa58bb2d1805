// The GPU suite's cases inside `npm test`: with a CUDA device, the suite's kernels are built and
// every case runs here; without one, each GPU case is reported as skipped (never as passed).
// On machines without Node.js the same cases run from the bundle (.gpu/run.sh).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { cudaAvailable } from "../runtime/index.ts";
import { buildSuiteKernels } from "./gpu/artifacts.ts";
import { runSuite } from "./gpu/harness.ts";
import "./gpu/cases/runtime.ts";
import "./gpu/cases/interop.ts";
import { sanitizerMissing } from "./gpu/cases/kernels.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-gpu-test-"));
const artifactsDir = join(work, "artifacts");
if (cudaAvailable().ok) {
  const { mkdirSync } = await import("node:fs");
  mkdirSync(artifactsDir, { recursive: true });
  for (const lib of await buildSuiteKernels()) copyFileSync(lib, join(artifactsDir, basename(lib)));
}
const report = await runSuite({ outDir: join(work, "out"), artifactsDir, commit: "working tree", quiet: true });
rmSync(work, { recursive: true, force: true });

for (const c of report.cases) {
  if (c.status === "skipped") {
    test.skip(`gpu: ${c.name} (${c.detail})`);
  } else {
    test(`gpu: ${c.name}`, () => {
      if (c.status === "failed") throw new Error(c.detail);
    });
  }
}
test("sanitize: cases run only under compute-sanitizer with --error-exitcode (else they report skipped, not passed)", () => {
  assert.match(sanitizerMissing("")!, /no sanitizer wraps this run \(PODGEN_WRAP unset\)/);
  assert.match(sanitizerMissing("nsys profile")!, /no sanitizer wraps this run/);
  assert.match(sanitizerMissing("compute-sanitizer --tool racecheck")!, /has no --error-exitcode/);
  assert.is(sanitizerMissing("compute-sanitizer --tool racecheck --error-exitcode 1"), undefined);
  assert.is(sanitizerMissing("/usr/local/cuda/bin/compute-sanitizer --error-exitcode=3 --tool memcheck"), undefined);
  // This run (npm test) has no sanitizer around it: with or without a GPU, none of them passed.
  if (sanitizerMissing()) for (const c of report.cases.filter((x) => x.name.startsWith("sanitize:"))) assert.is(c.status, "skipped", c.name);
});

test.run();
