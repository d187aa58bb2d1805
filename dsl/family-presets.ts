// Config families of the presets: ordinary families, like the presets are ordinary specs.
import { normalizeFamily, type FamilySpec } from "./family.ts";
import { presetByName } from "./presets.ts";

/**
 * Config families of presets (`podgen build llama3_8b_auto`): the preset and the fused specs that
 * beat it on some of the paper's batches on the H100 (README, "Measured"): two warpgroups per CTA
 * (examples/llama3_8b_two_warpgroups.json), roles (examples/llama3_8b_roles.json) and the
 * warp-specialized prefill beside a decode warpgroup (examples/llama3_8b_ws.json).
 */
export const FAMILY_PRESETS: readonly FamilySpec[] = Object.freeze([
  normalizeFamily({
    name: "llama3_8b_auto",
    base: presetByName("llama3_8b")!,
    members: [
      { name: "preset" },
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
      {
        name: "ws",
        ctasPerSm: 1,
        prefill: { engine: "warp-specialized", tile: { q: 128, kv: 64 }, warps: 8, stages: 2 },
        decode: { tile: { q: 16, kv: 64 }, warps: 4, virtualCtas: 1, stages: 2 },
      },
    ],
  }),
]);

export function familyPresetByName(name: string): FamilySpec | undefined {
  return FAMILY_PRESETS.find((f) => f.name === name);
}
