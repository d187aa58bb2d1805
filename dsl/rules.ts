// Rules that relate several fields of a spec. Each returns issues instead of throwing so that an
// author sees every problem of a spec at once.
import type { SpecIssue } from "./errors.ts";
import { REGISTER_HEADROOM, resourceModel, wgmmaHeadDim } from "./resources.ts";
import type { SpecFields } from "./schema.ts";
import { SUPPORTED_HEAD_DIMS } from "./schema.ts";

const kib = (bytes: number) => `${+(bytes / 1024).toFixed(1)} KiB`;

export function checkRules(spec: SpecFields): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const add = (path: string, value: unknown, limit: string, reason: string) =>
    issues.push({ path, value, limit, reason });
  const { heads, headDim, prefill, decode, ctasPerSm, target } = spec;
  const model = resourceModel(spec);

  const headDimSupported = (SUPPORTED_HEAD_DIMS as readonly number[]).includes(headDim);
  if (!headDimSupported) {
    add(
      "headDim",
      headDim,
      `one of ${SUPPORTED_HEAD_DIMS.join(", ")}`,
      "the tile loops are instantiated for these head dimensions",
    );
  }
  if (heads.q % heads.kv !== 0) {
    add("heads.q", heads.q, `a multiple of heads.kv=${heads.kv}`, "each KV head serves a whole group of query heads (GQA)");
  }
  if (prefill.tile.q % (16 * prefill.warps) !== 0) {
    add(
      "prefill.tile.q",
      prefill.tile.q,
      `a multiple of ${16 * prefill.warps} (16 rows × prefill.warps=${prefill.warps})`,
      "each warp owns whole 16-row MMA tiles of the query tile",
    );
  }
  if (prefill.tile.kv % 16 !== 0) {
    add("prefill.tile.kv", prefill.tile.kv, "a multiple of 16", "keys enter the MMA in steps of 16");
  }
  if (decode.tile.q !== 16) {
    add("decode.tile.q", decode.tile.q, "16", "decode tiles have QSL = 16: one MMA row tile holds the query heads of a KV group");
  }
  if (!model.roles && decode.warps !== prefill.warps) {
    add(
      "decode.warps",
      decode.warps,
      `equal to prefill.warps=${prefill.warps}`,
      "prefill and decode tiles run in CTAs of one fused kernel, so both describe the same CTA (with ctasPerSm=1 a CTA has a prefill and a decode role, and they may differ)",
    );
  } else if (decode.warps % decode.virtualCtas !== 0) {
    add(
      "decode.virtualCtas",
      decode.virtualCtas,
      `a divisor of decode.warps=${decode.warps}`,
      "each virtual decode CTA gets an equal share of the CTA's warps",
    );
  }
  if (model.roles && spec.schedule.kind !== "fifty-fifty") {
    add(
      "schedule",
      spec.schedule.kind,
      "fifty-fifty",
      "with ctasPerSm=1 every SM runs its prefill and decode roles side by side, so there is no ratio of CTAs to choose",
    );
  }
  const engine = model.prefillEngine;
  const limits = model.limits;
  if (engine !== "mma" && !limits.wgmma) {
    add("prefill.engine", engine, "mma", `${target} (${limits.gpu}) has no warpgroup MMA (wgmma is sm_90a)`);
  } else if (engine !== "mma" && prefill.warps % 4 !== 0) {
    add("prefill.warps", prefill.warps, "4 or 8", `the ${engine} engine runs on whole warpgroups of 4 warps`);
  }
  if (engine !== "mma" && limits.wgmma && headDimSupported && !wgmmaHeadDim(headDim)) {
    add(
      "prefill.engine",
      engine,
      "mma",
      `headDim=${headDim} is not a whole number of 64-column blocks: the ${engine} engine's operands are 128-byte-swizzled 64-column blocks, and P V reads V column-major a whole block at a time (leave prefill.engine out to get mma)`,
    );
  }
  if (engine === "warp-specialized" && limits.wgmma) {
    if (prefill.warps % 4 === 0 && prefill.tile.q !== 16 * prefill.warps) {
      add(
        "prefill.tile.q",
        prefill.tile.q,
        `${16 * prefill.warps} (64 rows × ${prefill.warps / 4} consumer warpgroups)`,
        "each consumer warpgroup of the warp-specialized engine owns one 64-row block of the tile",
      );
    }
    if (prefill.stages < 2) {
      add("prefill.stages", prefill.stages, "at least 2", "the producer fills one stage while the consumers read another");
    }
    if (!model.roles) {
      add(
        "ctasPerSm",
        ctasPerSm,
        "1",
        "the warp-specialized prefill CTA (a producer and consumer warpgroups with most of the register file) fills an SM; the fused kernel runs it as the prefill role beside a decode role",
      );
    } else if (decode.warps % 4 !== 0) {
      add("decode.warps", decode.warps, "4 or 8", "setmaxnreg moves registers between whole warpgroups");
    }
  }
  const standalone = prefill.standalone;
  if (standalone !== undefined && engine !== "warp-specialized") {
    add("prefill.standalone", standalone, "absent", `only the warp-specialized engine's prefill-only kernel has its own tile; this spec's prefill engine is ${engine}`);
  } else if (standalone !== undefined) {
    if (standalone.tileKv % prefill.tile.kv !== 0) {
      add(
        "prefill.standalone.tileKv",
        standalone.tileKv,
        `a multiple of prefill.tile.kv (${prefill.tile.kv})`,
        "the prefill-only kernel runs the fused kernel's plan, whose items start at multiples of prefill.tile.kv, and copies whole pages of them",
      );
    } else if (headDimSupported && model.prefillAlone.smem > model.smem.aloneLimit) {
      add(
        "prefill.standalone",
        standalone,
        `at most ${kib(model.smem.aloneLimit)} of shared memory`,
        `the prefill-only kernel's q=${prefill.tile.q} × kv=${standalone.tileKv} with ${standalone.stages} stages at D=${headDim} needs ${kib(model.prefillAlone.smem)}; one CTA on ${target} (${limits.gpu}) may use ${kib(model.smem.aloneLimit)}`,
      );
    }
  }
  if (spec.kvDtype !== undefined && spec.kvDtype !== "e4m3") {
    add("kvDtype", spec.kvDtype, `"${spec.dtype}" (the dtype) or "e4m3"`, "a 16-bit KV cache has the queries' dtype: the tensor cores multiply like types");
  }
  if (spec.kvDtype === "e4m3") {
    if (!limits.fp8) {
      add("kvDtype", spec.kvDtype, "a 16-bit dtype on this target", `${target} (${limits.gpu}) cannot convert fp8 (e4m3) to 16-bit floats in hardware; fp8 KV needs sm_89 or sm_90a`);
    }
    if (engine === "warp-specialized") {
      add(
        "prefill.engine",
        engine,
        '"wgmma" or "mma" with kvDtype "e4m3"',
        "the warp-specialized engine's bulk copies land K/V straight in the tensor cores' tiles and it has no dequantization step yet; the mma and wgmma engines dequantize fp8 tiles in shared memory",
      );
    }
    if (headDim !== 64 && headDim !== 128) {
      add("headDim", headDim, '64 or 128 with kvDtype "e4m3"', "the fp8 staging tiles hold unpadded rows of D bytes; the padded (D = 96) and D = 256 tiles have no fp8 path yet");
    }
  } else if (spec.kvScale !== undefined) {
    add("kvScale", spec.kvScale, "absent", `scales dequantize an fp8 KV cache; this spec's KV cache is ${spec.kvDtype ?? spec.dtype}`);
  }
  const keysPerStep = 16 * model.decodeWarpsPerVirtualCta;
  if (decode.tile.kv % keysPerStep !== 0) {
    add(
      "decode.tile.kv",
      decode.tile.kv,
      `a multiple of ${keysPerStep} (16 keys × ${model.decodeWarpsPerVirtualCta} warps per virtual CTA)`,
      "the warps of a virtual decode CTA split each KV tile into 16-key slices",
    );
  }
  // Registers: the fp32 accumulators of a thread's tile rows (O: D/2 per 16-row fragment) and one
  // step's scores, plus headroom, within what the role's threads get. Wide heads hit this first.
  const { accumulators, budgets } = model.registers;
  if (headDimSupported && accumulators.prefill + REGISTER_HEADROOM > budgets.prefill) {
    const rowTiles = model.prefillFragmentsPerWarp;
    add(
      rowTiles > 1 ? "prefill.tile.q" : "prefill.warps",
      rowTiles > 1 ? prefill.tile.q : prefill.warps,
      `at most ${budgets.prefill - REGISTER_HEADROOM} accumulator registers per thread (${budgets.prefill} less ${REGISTER_HEADROOM} of headroom)`,
      `${rowTiles} 16-row fragment(s) per warp (tile.q=${prefill.tile.q} / ${prefill.warps} warps) at D=${headDim} hold ${accumulators.prefill} fp32 accumulator registers (O and ${model.prefillSubBlockKeys} keys of scores); ${registerSource(model, ctasPerSm, "prefill")}`,
    );
  }
  if (headDimSupported && accumulators.decode + REGISTER_HEADROOM > budgets.decode) {
    add(
      model.roles ? "ctasPerSm" : "decode.warps",
      model.roles ? ctasPerSm : decode.warps,
      `at most ${budgets.decode - REGISTER_HEADROOM} accumulator registers per thread (${budgets.decode} less ${REGISTER_HEADROOM} of headroom)`,
      `a decode warp at D=${headDim} holds ${accumulators.decode} fp32 accumulator registers (O of 16 rows and its keys' scores); ${registerSource(model, ctasPerSm, "decode")}`,
    );
  }
  // Shared memory for an unsupported head dimension means nothing; that issue is reported above.
  if (headDimSupported && model.smem.perCta > model.smem.perCtaLimit) {
    const atHeadDim =
      model.smemHeadDim === headDim ? `D=${headDim}` : `D=${headDim} (rows padded to ${model.smemHeadDim} columns)`;
    const decodeStages = model.kvStaging.decode > 0 ? `${decode.stages} fp8 stages` : `${decode.stages} stages`;
    const decodeWhat = `${decode.virtualCtas} virtual CTAs × (q=${decode.tile.q} + ${decodeStages} × kv=${decode.tile.kv})`;
    const part = model.roles
      ? {
          path: "prefill.tile",
          value: prefill.tile,
          what: `with ctasPerSm=1 the CTA holds both roles' tiles: prefill q=${prefill.tile.q} × kv=${prefill.tile.kv} with ${prefill.stages} stages (${kib(model.smem.prefillTile)}) and decode ${decodeWhat} (${kib(model.smem.decodeTiles)}) at ${atHeadDim}`,
        }
      : model.smem.prefillTile >= model.smem.decodeTiles
        ? {
            path: "prefill.tile",
            value: prefill.tile,
            what: `q=${prefill.tile.q} × kv=${prefill.tile.kv} with ${prefill.stages} stages${model.kvStaging.prefill > 0 ? ` and ${model.kvStaging.prefill} fp8 staging` : ""} at ${atHeadDim}`,
          }
        : {
            path: "decode.tile",
            value: decode.tile,
            what: `${decodeWhat} at ${atHeadDim}`,
          };
    add(
      part.path,
      part.value,
      `at most ${kib(model.smem.perCtaLimit)} of shared memory per CTA`,
      `${part.what} needs ${kib(model.smem.perCta)} per CTA; ctasPerSm=${ctasPerSm} on ${target} (${model.limits.gpu}) allows ${kib(model.smem.perCtaLimit)}`,
    );
  }
  return issues;
}

/** Why a role's threads have the registers they have, for the register rule's messages. */
function registerSource(model: ReturnType<typeof resourceModel>, ctasPerSm: number, role: "prefill" | "decode"): string {
  const perSm = `${model.limits.registersPerSm} registers per SM`;
  return model.registers.roles
    ? `with ctasPerSm=1 the ${role} role's threads get ${model.registers.budgets[role]} by setmaxnreg (${model.threads} threads share ${perSm})`
    : `${ctasPerSm} CTA(s) of ${model.threads} threads get ${model.registers.budgetPerThread} a thread of ${perSm}`;
}
