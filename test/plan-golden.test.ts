// The planner's output is pinned: seeded random batches (split and ragged forms, CSR and block
// tables, graph-mode buckets, split caps, 256-request serving steps, the llama3_8b_auto family's
// choice) must plan to the same bytes as test/fixtures/plan-golden.txt records. A faster planner
// passes unchanged; a planner meant to plan differently regenerates the file (test/plan-golden.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { goldenPlans } from "./plan-golden.ts";
import { PLAN_GOLDEN_FILE } from "../codegen/paths.ts";

test("plans of seeded random batches hash as recorded (test/fixtures/plan-golden.txt)", async () => {
  const expected = readFileSync(PLAN_GOLDEN_FILE, "utf8");
  const actual = await goldenPlans();
  const lines = (s: string) => s.trimEnd().split("\n");
  assert.ok(lines(expected).length > 40, "the golden file lists every shape and kind");
  const differ = lines(actual).filter((l, i) => l !== lines(expected)[i]);
  assert.is(lines(actual).length, lines(expected).length, "shapes and kinds of batches");
  assert.equal(differ, [], `groups whose plans changed (node --import tsx test/plan-golden.ts --each prints each plan's hash, to find the first):\n${differ.join("\n")}`);
});

test.run();
