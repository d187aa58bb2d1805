// The kernel libraries the GPU suite needs: every spec of its case files (and the llama3_8b and
// llama3_8b_2cta presets, which its graph, ragged and sanitize cases name) and the preset
// families, built (or taken from the build cache) two nvcc jobs at a time. Used by
// scripts/gpu-bundle.ts and test/gpu.test.ts.
import kernelCases from "./kernel-cases.json" with { type: "json" };
import exampleCases from "../../examples/verify.json" with { type: "json" };
import { casesFrom } from "../../cli/verify-cases.ts";
import { buildMany, type BuildResult } from "../../codegen/build.ts";
import { FAMILY_PRESETS, presetByName } from "../../dsl/index.ts";
import { buildFamily } from "../../codegen/family.ts";

export async function buildSuiteKernels(onBuilt: (r: BuildResult) => void = () => {}): Promise<string[]> {
  const specs = [presetByName("llama3_8b")!, presetByName("llama3_8b_2cta")!, ...[...casesFrom(kernelCases), ...casesFrom(exampleCases)].map((c) => c.spec)];
  const unique = [...new Map(specs.map((s) => [s.hash, s])).values()];
  const outcomes = await buildMany(unique, {
    jobs: 2,
    onDone: (_spec, r) => {
      if (!(r instanceof Error)) onBuilt(r);
    },
  });
  const failed = outcomes.find((o): o is Error => o instanceof Error);
  if (failed) throw failed;
  // The preset families (test/gpu/cases/family.ts), one library each.
  const families = [];
  for (const f of FAMILY_PRESETS) families.push((await buildFamily(f)).library);
  return [...outcomes.map((r) => (r as BuildResult).library), ...families].sort();
}
