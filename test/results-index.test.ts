// bench/results/index.json (bench/results-index.ts): every recorded result is listed, and the rows
// are what the files say now. No GPU.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildResultsIndex, checkResultsIndex, formatResultsIndex, INDEX_FILE, readResultsIndex, RESULTS_DIR } from "../bench/results-index.ts";

test("the committed index lists every result in bench/results and is up to date (else: npx tsx bench/results-index.ts)", () => {
  assert.equal(checkResultsIndex(), []);
  const index = readResultsIndex();
  const byFile = new Map(index.files.map((r) => [r.file, r]));
  assert.ok(!byFile.has(INDEX_FILE), "the index does not list itself");
  const run3 = byFile.get("2026-11-23-h100-preset-decode64-run3.json")!;
  assert.equal([run3.kind, run3.gpu, run3.commit, run3.date], ["bench", "NVIDIA H100 80GB HBM3", "37a0dbb51ccf5dc5a15e0d018cd3c6d3532fd2bc", "2026-11-24T00:24:54.029Z"]);
  assert.match(run3.summary, /^10 workloads, fused 1\.21× serial, 1\.32× PyTorch \(geomeans\)$/);
  assert.is(byFile.get("latest.json")!.summary, "the same bytes as 2026-12-07-h100-paper-s25.json");
  assert.is(byFile.get("2026-11-23-h100-gpu-suite.json")!.kind, "gpu-suite");
  assert.is(byFile.get("2026-11-23-h100-sanitizers-wgmma.json")!.kind, "sanitizers");
  assert.is(byFile.get("2026-11-23-h100-ncu.json")!.kind, "ncu");
  assert.is(byFile.get("2026-11-23-h100-tune.json")!.kind, "tune");
  assert.is(byFile.get("build.json")!.kind, "other");
});

test("the check names a result missing from the index, a stale row and a row without a file", () => {
  const dir = mkdtempSync(join(tmpdir(), "podgen-results-"));
  try {
    for (const f of ["2026-11-23-h100-run1.json", "2026-11-23-h100-gpu-suite.json"]) copyFileSync(join(RESULTS_DIR, f), join(dir, f));
    writeFileSync(join(dir, INDEX_FILE), formatResultsIndex(buildResultsIndex(dir)));
    assert.equal(checkResultsIndex(dir), []);
    writeFileSync(join(dir, "2026-12-07-h100-new.json"), JSON.stringify({ gpu: "NVIDIA H100 80GB HBM3", note: "a new run" }));
    assert.equal(checkResultsIndex(dir), ["2026-12-07-h100-new.json: not in the index"]);
    writeFileSync(join(dir, INDEX_FILE), formatResultsIndex(buildResultsIndex(dir)));
    writeFileSync(join(dir, "2026-12-07-h100-new.json"), JSON.stringify({ gpu: "NVIDIA H100 80GB HBM3", note: "a rewritten run" }));
    assert.equal(checkResultsIndex(dir), ["2026-12-07-h100-new.json: stale row"]);
    rmSync(join(dir, "2026-12-07-h100-new.json"));
    assert.equal(checkResultsIndex(dir), ["2026-12-07-h100-new.json: in the index, but no such file"]);
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ files: [{ file: "x.json", kind: "mystery" }] }));
    assert.match(checkResultsIndex(dir).join("\n"), /results index .*index\.json: \d+ problems:[^]*generatedBy[^]*files\.0\.kind/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
