// GPU-suite cases for config families: every member of the llama3_8b_auto preset family, reached
// through the family library under its own prefix, runs a hybrid batch fused and standalone
// (each candidate the family's planner can choose) against the fp32 reference, with poisoned
// outputs and exactly-once tile counts (runtime/verify.ts).
import { FAMILY_PRESETS, libraryFileName, symbolPrefix } from "../../../dsl/index.ts";
import { FamilyLibrary, makeHostBatch } from "../../../runtime/index.ts";
import { verifyBatch } from "../../../runtime/verify.ts";
import { gpuCase } from "../harness.ts";

const family = FAMILY_PRESETS.find((f) => f.name === "llama3_8b_auto")!;

for (const member of family.memberNames) {
  gpuCase(`family ${family.name}: member ${member}, fused and serial vs the reference`, (ctx) => {
    const lib = new FamilyLibrary(ctx.artifact(libraryFileName(family)), symbolPrefix(family));
    const memberLib = lib.member(member);
    try {
      const host = makeHostBatch(lib.info(), { prefills: [{ qLen: 300, kvLen: 1013 }, { qLen: 77, kvLen: 77 }], decodes: [1, 17, 300, 4099] }, { seed: 0xfa, shufflePages: true });
      const r = verifyBatch(ctx.device, memberLib, host);
      if (!r.pass) throw new Error(r.runs.flatMap((run) => run.problems.map((p) => `${run.mode}: ${p}`)).join("; "));
      ctx.log(`o ≤ ${r.worst.o.toExponential(1)}, lse ≤ ${r.worst.lse.toExponential(1)}`);
      return { errors: r.runs.map((x) => ({ mode: x.mode, ...x.errors })) };
    } finally {
      memberLib.close();
      lib.close();
    }
  });
}
