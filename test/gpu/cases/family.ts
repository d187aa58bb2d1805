// GPU-suite cases for config families: every member of every preset family (llama3_8b_auto and
// the <preset>_auto of the other presets), reached through the family library under its own
// prefix, runs a hybrid batch fused and standalone (each candidate the family's planner can
// choose) against the fp32 reference, with poisoned outputs and exactly-once tile counts
// (runtime/verify.ts); and the timer of `podgen tune --family` and `podgen bench --family` on the
// llama3_8b_auto library.
import { FAMILY_PRESETS, libraryFileName, symbolPrefix } from "../../../dsl/index.ts";
import { FamilyLibrary, makeHostBatch, type CostModel } from "../../../runtime/index.ts";
import { FamilyTimer } from "../../../bench/family-timing.ts";
import { familyBatchResult } from "../../../bench/family-report.ts";
import { verifyBatch } from "../../../runtime/verify.ts";
import { gpuCase } from "../harness.ts";

for (const family of FAMILY_PRESETS) {
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
}

const family = FAMILY_PRESETS.find((f) => f.name === "llama3_8b_auto")!;

/** A cost model row that predicts `us` for every batch: the constant term alone, one coefficient a feature. */
const bias = (lib: FamilyLibrary, us: number) => lib.featureNames.map((_, i) => (i === 0 ? us : 0));

// What `podgen tune --family` and `podgen bench --family` time (bench/family-timing.ts): every
// candidate through the family library, each with the unforced plan's features, and auto as the
// planner chooses it under a cost model that makes one candidate the cheapest by far, all in
// interleaved rounds; auto's launch is that candidate's, byte for byte, so the report judges auto
// by the candidate's time and keeps its own beside it.
gpuCase(`family ${family.name}: every candidate timed through the family library, and auto runs the cost model's choice`, (ctx) => {
  const lib = new FamilyLibrary(ctx.artifact(libraryFileName(family)), symbolPrefix(family));
  const [cheap, cheapMode] = [family.memberNames.at(-1)!, "serial" as const];
  const costModel: CostModel = {
    version: 1, gpu: ctx.device.name, family: family.name, timingKey: "test", features: [...lib.featureNames],
    members: Object.fromEntries(family.memberNames.map((m) => [m, { fused: bias(lib, 1000), serial: bias(lib, m === cheap ? 10 : 1000) }])),
    fit: { records: 0, date: "test" },
  };
  const timer = new FamilyTimer(ctx.device, lib, { iters: 3, warmup: 1, costModel });
  try {
    const shape = { prefills: [{ qLen: 700, kvLen: 3000 }, { qLen: 129, kvLen: 129 }], decodes: [1, 900, 4097, 16000] };
    const t = timer.timeBatch({ name: "small", set: "fit", shape }, { auto: true });
    const { plan } = lib.plan(makeHostBatch(lib.info(), shape, { seed: 1 }).batch, { numSms: ctx.device.sms });
    if (t.candidates.length !== 2 * family.members.length) throw new Error(`${t.candidates.length} candidates timed`);
    t.candidates.forEach((c, i) => {
      if (c.us === null || !(c.us > 0)) throw new Error(`${c.member} ${c.mode}: ${c.error ?? "no time"}`);
      const want = plan.candidates[i]!;
      if (c.member !== want.memberName || c.mode !== want.mode || c.features.join() !== lib.featureNames.map((f) => want.features[f]).join()) {
        throw new Error(`candidate ${i}: ${c.member} ${c.mode} [${c.features.join()}], the plan has ${want.memberName} ${want.mode}`);
      }
    });
    const auto = t.auto!;
    if (auto.member !== cheap || auto.mode !== cheapMode || auto.reason !== "cost-model" || auto.predictedUs !== 10 || auto.us === null || auto.sameLaunchAsCandidate !== true) {
      throw new Error(`auto: ${JSON.stringify(auto)}`);
    }
    const row = familyBatchResult({ name: "small", set: "heldout", shape }, t.candidates, auto, null, family.memberNames);
    const twin = t.candidates.find((c) => c.member === cheap && c.mode === cheapMode)!;
    if (row.autoUs !== twin.us || row.autoOwnOverCandidate !== auto.us / twin.us!) throw new Error(`report row: autoUs ${row.autoUs}, own / candidate ${row.autoOwnOverCandidate}; candidate ${twin.us}, auto ${auto.us}`);
    ctx.log(t.candidates.map((c) => `${c.member} ${c.mode} ${c.us!.toFixed(1)} µs`).join(", "), `| auto ${auto.member} ${auto.mode} ${auto.us.toFixed(1)} µs (own / candidate ${row.autoOwnOverCandidate!.toFixed(3)})`);
    return { candidates: t.candidates.map(({ member, mode, us }) => ({ member, mode, us })), auto, autoOwnOverCandidate: row.autoOwnOverCandidate };
  } finally {
    timer.destroy();
    lib.close();
  }
});

// The serial margin as `podgen bench --family` meets it: a model whose fused pick is predicted 10%
// faster than the best serial, with error bounds wider than that, so auto runs that serial.
gpuCase(`family ${family.name}: the serial margin runs the best serial where the fused pick is within the model's error bounds`, (ctx) => {
  const lib = new FamilyLibrary(ctx.artifact(libraryFileName(family)), symbolPrefix(family));
  const [fusedPick, serialPick] = [family.memberNames[0]!, family.memberNames[1]!];
  const rows = (m: string) => ({ fused: bias(lib, m === fusedPick ? 90 : 1000), serial: bias(lib, m === serialPick ? 100 : 1000) });
  const costModel: CostModel = {
    version: 1, gpu: ctx.device.name, family: family.name, timingKey: "test", features: [...lib.featureNames],
    members: Object.fromEntries(family.memberNames.map((m) => [m, rows(m)])),
    fit: { records: 0, date: "test" },
    errorBounds: { quantile: 0.9, members: Object.fromEntries(family.memberNames.map((m) => [m, { fused: [-0.08, 0.08], serial: [-0.08, 0.08] }])) },
  };
  const timer = new FamilyTimer(ctx.device, lib, { iters: 2, warmup: 1, costModel });
  try {
    const shape = { prefills: [{ qLen: 700, kvLen: 3000 }], decodes: [1, 900, 4097] };
    const auto = timer.timeBatch({ name: "margin", set: "fit", shape }, { auto: true }).auto!;
    if (auto.member !== serialPick || auto.mode !== "serial" || auto.reason !== "serial-margin" || auto.predictedUs !== 100 || auto.us === null) {
      throw new Error(`auto: ${JSON.stringify(auto)}`);
    }
    ctx.log(`auto ${auto.member} ${auto.mode} (${auto.reason}) ${auto.us.toFixed(1)} µs`);
    return { auto };
  } finally {
    timer.destroy();
    lib.close();
  }
});
