// `podgen verify`'s loop (cli/verify.ts) with a stand-in for the GPU run: it says which case it
// is on before running it and prints each row (or JSON line) as soon as that case is done.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { casesFrom } from "../cli/verify-cases.ts";
import { verifyCases, type VerifyFormat } from "../cli/verify.ts";
import type { VerifyResult } from "../runtime/verify.ts";

const CASES = casesFrom({
  cases: [
    { name: "first", seed: 1, prefills: [[5, 9]], decodes: [1, 2] },
    { name: "second, with a longer name", seed: 2, decodes: [3], spec: "llama2_7b" },
  ],
});

/** A result as verifyBatch returns it; the second case fails. */
function fakeResult(pass: boolean): VerifyResult {
  const errors = { oPrefill: 2.3e-3, oDecode: 1.5e-3, lsePrefill: 1e-7, lseDecode: 2e-7 };
  return {
    pass,
    plan: {} as VerifyResult["plan"],
    runs: [
      { mode: "fused", errors, tiles: { executed: [1, 1], planned: [1, 1] }, countersReset: true, problems: pass ? [] : ["oDecode: 3 elements not written or not finite"] },
      { mode: "standalone", errors, tiles: { executed: [1, 1], planned: [1, 1] }, countersReset: null, problems: [] },
    ],
    worst: { o: 2.3e-3, lse: 2e-7 },
    hostMs: pass ? 314 : 1999,
  };
}

function run(format: VerifyFormat) {
  const events: string[] = [];
  const results = verifyCases(CASES, {
    gpu: "Fake GPU",
    format,
    out: (line) => events.push(`out ${line}`),
    err: (line) => events.push(`err ${line}`),
    verify: (c) => {
      events.push(`run ${c.name}`);
      return fakeResult(c.name === "first");
    },
  });
  return { events, results };
}

test("table: the header first, then per case a progress line, the run, and its row at once", () => {
  const { events, results } = run("table");
  const kinds = events.map((e) => e.split(" ")[0]);
  assert.equal(kinds, ["out", "err", "run", "out", "err", "run", "out", "err"]);
  assert.match(events[0]!, /^out case\s+spec\s+fused o prefill/);
  assert.is(events[1], "err [1/2] first [llama3_8b]: 1 prefills, 2 decodes");
  assert.match(events[3]!, /^out first\s+llama3_8b\s+2\.3e-3\s+1\.5e-3\s+2\.3e-3\s+1\.5e-3\s+2\.0e-7\s+0\.31\s+PASS$/);
  assert.match(events[6]!, /\s2\.00\s+FAIL$/);
  assert.is(events[7], "err   second, with a longer name (fused): oDecode: 3 elements not written or not finite");
  // The columns line up although the rows were printed apart.
  const rows = [events[0]!, events[3]!, events[6]!].map((e) => e.slice(4));
  assert.is(rows[1]!.indexOf("llama3_8b"), rows[0]!.indexOf("spec"));
  assert.is(rows[2]!.indexOf("llama2_7b"), rows[0]!.indexOf("spec"));
  assert.equal(results.map((r) => [r.name, r.spec, r.pass]), [["first", "llama3_8b", true], ["second, with a longer name", "llama2_7b", false]]);
});

test("--ndjson: one JSON line per case as it completes; --json: the whole report once, at the end", () => {
  const nd = run("ndjson").events;
  assert.equal(nd.map((e) => e.split(" ")[0]), ["err", "run", "out", "err", "run", "out"]);
  const line = JSON.parse(nd[2]!.slice(4));
  assert.equal([line.gpu, line.name, line.spec, line.pass, line.worst.o, line.hostMs], ["Fake GPU", "first", "llama3_8b", true, 2.3e-3, 314]);
  const json = run("json").events;
  assert.equal(json.map((e) => e.split(" ")[0]), ["err", "run", "err", "run", "out"]);
  const report = JSON.parse(json[4]!.slice(4));
  assert.equal(Object.keys(report), ["gpu", "results"]);
  assert.equal(report.results.map((r: { name: string; pass: boolean }) => [r.name, r.pass]), [["first", true], ["second, with a longer name", false]]);
});

test.run();
