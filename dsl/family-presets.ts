// Config families of the presets: ordinary families, like the presets are ordinary specs.
import { normalizeFamily, type FamilyMemberInput, type FamilySpec } from "./family.ts";
import { checkOverrides } from "./overrides.ts";
import { presetByName } from "./presets.ts";

/**
 * The fused shapes that won some of the paper's batches on the H100 (bench/HISTORY.md), as
 * members beside a preset: the warp-specialized prefill beside a decode warpgroup (one CTA per
 * SM), CTAs of two warpgroups, and wgmma roles. `kv` is the prefill tile's KV width.
 */
const ANALOGUES: Readonly<Record<string, (kv: number) => Omit<FamilyMemberInput, "name">>> = {
  warp_specialized: (kv) => ({
    ctasPerSm: 1,
    // Its prefill-only kernel, alone on the SM, takes twice the keys a tile, up to 128 (as llama3_8b's).
    prefill: { engine: "warp-specialized", tile: { q: 128, kv }, warps: 8, stages: 2, ...(kv < 128 && { standalone: { tileKv: Math.min(128, 2 * kv), stages: 2 } }) },
    decode: { tile: { q: 16, kv: 64 }, warps: 4, virtualCtas: 1, stages: 2 },
    schedule: { kind: "fifty-fifty" },
  }),
  wide: (kv) => ({
    prefill: { tile: { q: 128, kv }, warps: 8, stages: 2 },
    decode: { tile: { q: 16, kv: 64 }, warps: 8, virtualCtas: 2, stages: 1 },
  }),
  roles: (kv) => ({
    ctasPerSm: 1,
    prefill: { tile: { q: 128, kv }, warps: 8, stages: 2 },
    decode: { tile: { q: 16, kv: 32 }, warps: 4, virtualCtas: 2, stages: 2 },
    schedule: { kind: "fifty-fifty" },
  }),
};

/**
 * Elements of one K (or V) row block of a prefill stage in the Llama-3-8B members (64 keys at
 * D=128): an analogue's KV tile keeps them, 8192 / D keys, so that a D=64 model loads as many bytes
 * per pipeline step; the resource model then halves it until the member fits its target.
 */
const STAGE_ELEMENTS = 64 * 128;

/** The analogue's overrides with the widest KV tile (from STAGE_ELEMENTS / D down) the resource model accepts for the preset. */
export function fittedAnalogue(presetName: string, analogue: string): Omit<FamilyMemberInput, "name"> {
  const preset = presetByName(presetName);
  const shape = ANALOGUES[analogue];
  if (!preset || !shape) throw new RangeError(`fittedAnalogue: no preset "${presetName}" or analogue "${analogue}"`);
  let kv = STAGE_ELEMENTS / preset.headDim;
  while (kv > 16 && !checkOverrides(preset, shape(kv)).ok) kv /= 2;
  return shape(kv); // if even 16 keys do not fit, normalizeFamily names the field and the limit
}

/**
 * `<preset>_auto`: the preset as member 0 (what the static rule picks, and what `podgen build
 * <preset>` gives), then each analogue fitted to the preset's shape by the resource model.
 */
function presetFamily(presetName: string): FamilySpec {
  const preset = presetByName(presetName)!;
  return normalizeFamily({
    name: `${presetName}_auto`,
    base: preset,
    members: [{ name: "preset" }, ...Object.keys(ANALOGUES).map((name) => ({ name, ...fittedAnalogue(presetName, name) }))],
  });
}

/**
 * Config families of presets (`podgen build llama3_8b_auto`).
 *
 * llama3_8b_auto: the llama3_8b preset (its first member, what the static rule picks) and the fused
 * specs that won some of the paper's batches on the H100 before it: the paper's CTA shape (the
 * llama3_8b_2cta preset, the family's base), two warpgroups per CTA
 * (examples/llama3_8b_two_warpgroups.json) and wgmma roles (examples/llama3_8b_roles.json). Its
 * members are spelled out: its shipped cost model was fitted on exactly these.
 *
 * The other presets' families (presetFamily): the preset, then the warp-specialized, wide and roles
 * analogues, each fitted to the preset's shape.
 */
export const FAMILY_PRESETS: readonly FamilySpec[] = Object.freeze([
  normalizeFamily({
    name: "llama3_8b_auto",
    base: presetByName("llama3_8b_2cta")!,
    members: [
      {
        name: "preset",
        ctasPerSm: 1,
        prefill: { engine: "warp-specialized", tile: { q: 128, kv: 64 }, warps: 8, stages: 2, standalone: { tileKv: 128, stages: 2 } },
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
  ...["llama2_7b", "yi_6b", "llama3_70b_tp8", "qwen2_0_5b", "mistral_7b", "gpt_oss_20b"].map(presetFamily),
]);

export function familyPresetByName(name: string): FamilySpec | undefined {
  return FAMILY_PRESETS.find((f) => f.name === name);
}
