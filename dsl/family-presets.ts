// Config families of the presets: ordinary families, like the presets are ordinary specs.
import { normalizeFamily, type FamilySpec } from "./family.ts";
import { presetByName } from "./presets.ts";

/**
 * Config families of presets (`podgen build llama3_8b_auto`): the llama3_8b preset (its first member,
 * what the static rule picks) and the fused specs that won some of the paper's batches on the H100
 * before it (README, "Measured"): the paper's CTA shape (the llama3_8b_2cta preset, the family's
 * base), two warpgroups per CTA (examples/llama3_8b_two_warpgroups.json) and wgmma roles
 * (examples/llama3_8b_roles.json).
 */
export const FAMILY_PRESETS: readonly FamilySpec[] = Object.freeze([
  normalizeFamily({
    name: "llama3_8b_auto",
    base: presetByName("llama3_8b_2cta")!,
    members: [
      {
        name: "preset",
        ctasPerSm: 1,
        prefill: { engine: "warp-specialized", tile: { q: 128, kv: 64 }, warps: 8, stages: 2 },
        decode: { tile: { q: 16, kv: 64 }, warps: 4, virtualCtas: 1, stages: 2 },
        schedule: { kind: "fifty-fifty" },
      },
      { name: "paper_shape" },
      {
        name: "wide",
        prefill: { tile: { q: 128, kv: 64 }, warps: 8, stages: 2 },
        decode: { tile: { q: 16, kv: 64 }, warps: 8, virtualCtas: 2, stages: 1 },
      },
      {
        name: "roles",
        ctasPerSm: 1,
        prefill: { tile: { q: 128, kv: 64 }, warps: 8, stages: 2 },
        decode: { tile: { q: 16, kv: 32 }, warps: 4, virtualCtas: 2, stages: 2 },
      },
    ],
  }),
]);

export function familyPresetByName(name: string): FamilySpec | undefined {
  return FAMILY_PRESETS.find((f) => f.name === name);
}
