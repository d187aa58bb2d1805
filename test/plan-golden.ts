// The golden plans of test/native/plan_golden.cpp: compiles it with g++ against the templates
// (the planner and family choice that every built library compiles) and runs it.
//   node --import tsx test/plan-golden.ts --write   regenerates test/fixtures/plan-golden.txt
//   node --import tsx test/plan-golden.ts --each    prints a line per plan (to find the first that changed)
// Regenerate only on a commit whose plans are meant to change, and say so in its message.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { pod, presetByName } from "../dsl/index.ts";
import { renderHeader } from "../codegen/render.ts";
import { generateFamilySources } from "../codegen/family.ts";
import { writeGeneratedFiles } from "../codegen/generate.ts";
import { PLAN_GOLDEN_FILE, TEMPLATES_DIR } from "../codegen/paths.ts";

const here = dirname(fileURLToPath(import.meta.url));

/** The harness's output: "<shape>\t<kind>\t<plans>\t<hash>" lines (`each`: one line per plan). */
export async function goldenPlans(each = false): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), "podgen-plan-golden-"));
  try {
    // pod_test_* and pod_golden_* headers: any kernel and family of these names render them.
    writeFileSync(join(work, "pod_attention.h"), renderHeader(pod.kernel({ name: "test", heads: { q: 32, kv: 8 }, headDim: 128 })));
    const family = pod.family({ name: "golden", base: presetByName("llama3_8b_2cta")!, members: [{ name: "a" }] });
    writeGeneratedFiles(work, generateFamilySources(family).filter((s) => s.path.endsWith(".h")));
    const exe = join(work, "plan_golden");
    await execa("g++", ["-std=c++17", "-O2", "-Wall", "-Wextra", `-I${work}`, `-I${TEMPLATES_DIR}`, join(here, "native", "plan_golden.cpp"), "-o", exe]);
    return (await execa(exe, each ? ["--each"] : [])).stdout + "\n";
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--write")) {
    writeFileSync(PLAN_GOLDEN_FILE, await goldenPlans());
    console.log(`wrote ${PLAN_GOLDEN_FILE}`);
  } else if (process.argv.includes("--each")) process.stdout.write(await goldenPlans(true));
}
