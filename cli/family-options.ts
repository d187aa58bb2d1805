// What `podgen tune --family`, `podgen bench --family` and `podgen inspect <family>` share: the
// family named on the command line, the batches it is timed on (bench/family-batches.ts), how a
// member's tiles are shown and the listing of `--dry-run`.
import { FAMILY_PRESETS, resourceModel, type FamilySpec, type KernelSpec } from "../dsl/index.ts";
import { batchLengths, describeShape, paperStyleBatch, sameLengths, servingMixFor, SERVING_MIX_NAMES, type FamilyBatch, type ServingMixName } from "../bench/family-batches.ts";
import { SERVING_MIXES, type ServingMix } from "../bench/serving-batches.ts";
import { shapeKey } from "../bench/tune/db.ts";
import { table } from "../bench/table.ts";
import { MODES } from "../runtime/index.ts";
import { loadFamily } from "./load-spec.ts";
import { workloadsOfShape } from "./tune.ts";
import { UsageError } from "./usage-error.ts";

export async function familyArg(arg: string): Promise<FamilySpec> {
  const family = await loadFamily(arg);
  if (!family) throw new UsageError(`--family ${arg}: not a config family (preset families: ${FAMILY_PRESETS.map((f) => f.name).join(", ")}; or a file exporting pod.family)`);
  return family;
}

/** A member's prefill and decode tiles as tables show them: `128x64 8w 2st`, `16x64 x1 2st`. */
export function memberTiles(spec: KernelSpec): { prefill: string; decode: string } {
  return {
    prefill: `${spec.prefill.tile.q}x${spec.prefill.tile.kv} ${spec.prefill.warps}w ${spec.prefill.stages}st`,
    decode: `${spec.decode.tile.q}x${spec.decode.tile.kv} x${spec.decode.virtualCtas} ${spec.decode.stages}st`,
  };
}

/** The serving mix of the family's batches: --mix, else the one of the family's model shape. */
export function mixArg(name: string | undefined, family: FamilySpec): { name: ServingMixName; mix: ServingMix } {
  const chosen = name ?? servingMixFor(family.members[0]!);
  if (chosen === undefined) {
    throw new UsageError(`no serving mix has the model shape of ${family.name} (${shapeKey(family.members[0]!)}): name one with --mix (${SERVING_MIX_NAMES.join(", ")})`);
  }
  if (!(SERVING_MIX_NAMES as string[]).includes(chosen)) throw new UsageError(`--mix ${chosen}: one of ${SERVING_MIX_NAMES.join(", ")}`);
  return { name: chosen as ServingMixName, mix: SERVING_MIXES[chosen as ServingMixName] };
}

/**
 * The "paper" set: the workload file's batches of the family's model shape, and the paper-style
 * batch of its heads (bench/family-batches.ts) unless one of those has its lengths; with --filter,
 * those whose names match one.
 */
export function paperBatches(path: string, filters: readonly string[], family: FamilySpec): FamilyBatch[] {
  const spec = family.members[0]!;
  const ofShape = workloadsOfShape(path, spec, []).chosen;
  const matches = (name: string) => filters.length === 0 || filters.some((f) => name.includes(f));
  const style = paperStyleBatch(spec);
  const batches: FamilyBatch[] = [
    ...ofShape.map((w): FamilyBatch => ({ name: w.name, set: "paper", shape: w.shape })),
    ...(ofShape.some((w) => sameLengths(w.shape, style.shape)) ? [] : [style]),
  ];
  const chosen = batches.filter((b) => matches(b.name));
  if (chosen.length === 0) throw new UsageError(`--filter ${filters.join(", ")}: matches none of ${family.name}'s paper batches (${batches.map((b) => b.name).join(", ")})`);
  return chosen;
}

/** The name of the set's paper-style batch (or the file's batch of its lengths); null where --filter left it out. */
export function paperStyleName(batches: readonly FamilyBatch[], family: FamilySpec): string | null {
  const style = paperStyleBatch(family.members[0]!);
  return batches.find((b) => b.set === "paper" && sameLengths(b.shape, style.shape))?.name ?? null;
}

/** What `--dry-run` lists: the candidates (each member fused and serial) and the batches. */
export function printTimingPlan(family: FamilySpec, batches: readonly FamilyBatch[], o: { iters: number; warmup: number; json: boolean; extraTimings?: number }): void {
  const candidates = family.memberNames.flatMap((member) => MODES.map((mode) => ({ member, mode })));
  const perBatch = candidates.length + (o.extraTimings ?? 0);
  const timings = batches.length * perBatch;
  if (o.json) {
    const lengths = (b: FamilyBatch) => ({ name: b.name, set: b.set, ...batchLengths(b.shape) });
    console.log(JSON.stringify({ family: family.name, members: family.memberNames, candidates, batches: batches.map(lengths), timings, launches: timings * (o.iters + o.warmup) }, null, 1));
    return;
  }
  const counts = [...new Set(batches.map((b) => b.set))].map((set) => `${batches.filter((b) => b.set === set).length} ${set}`).join(", ");
  console.log(`${family.name}: ${candidates.length} candidates (${family.members.length} members x fused, serial) on ${batches.length} batches (${counts})`);
  console.log(`${timings} timings of ${o.warmup} warm-up + ${o.iters} iterations each\n`);
  console.log(
    table(
      ["member", "prefill engine", "prefill tile", "decode tile", "CTAs/SM"],
      family.members.map((spec, i) => {
        const tiles = memberTiles(spec);
        return [family.memberNames[i]!, resourceModel(spec).prefillEngine, tiles.prefill, tiles.decode, spec.ctasPerSm];
      }),
    ),
  );
  console.log();
  console.log(table(["batch", "set", "lengths"], batches.map((b) => [b.name, b.set, describeShape(b.shape)])));
}
