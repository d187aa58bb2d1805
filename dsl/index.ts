// podgen's public DSL: `pod.kernel({...})` turns a typed spec into a validated KernelSpec.
import type { KvCache, Schedule } from "./schema.ts";
import { normalizeSpec, type KernelInput, type KernelSpec } from "./spec.ts";
import { space, type SearchSpace, type SpaceInput } from "./space.ts";
import { normalizeFamily, type FamilyInput, type FamilySpec } from "./family.ts";

export const pod = {
  /** Validate a spec now (throws SpecError naming every bad field) and freeze it. */
  kernel: (input: KernelInput): KernelSpec => normalizeSpec(input),
  /** A paged KV cache `[numPages, pageSize, Hkv, D]` addressed through a per-request page list. */
  paged: ({ pageSize }: { pageSize: number }): KvCache => ({ kind: "paged", pageSize }),
  /** One contiguous `[rows, Hkv, D]` KV buffer; request r starts at row `pageIndptr[r]`. */
  contiguous: (): KvCache => ({ kind: "contiguous" }),
  /** Limit prefill KV splits so prefill tiles fill at most `n` full waves of the GPU. */
  waves: (n: number) => ({ kind: "waves", waves: n }) as const,
  /** Alternate prefill and decode CTAs on each SM. */
  fiftyFifty: (): Schedule => ({ kind: "fifty-fifty" }),
  /** Give each SM prefill and decode CTAs in the planned ratio of their tile counts. */
  proportional: (): Schedule => ({ kind: "proportional" }),
  /** A search space for `podgen tune`: lists of choices over a spec's tunable fields. */
  space: (input: SpaceInput): SearchSpace => space(input),
  /** A config family: members of one model shape built into one library that picks one per batch. */
  family: (input: FamilyInput): FamilySpec => normalizeFamily(input),
};
export { normalizeFamily, isFamilySpec, memberSpecName, FAMILY_SHAPE_FIELDS, MAX_FAMILY_MEMBERS, type FamilyInput, type FamilySpec, type FamilyMemberInput } from "./family.ts";

export { checkSpec, normalizeSpec, canonicalJson, specFields, symbolPrefix, libraryFileName, DEFAULTS } from "./spec.ts";
export type { KernelInput, KernelSpec, CheckResult } from "./spec.ts";
export { SpecError, formatIssue, type SpecIssue } from "./errors.ts";
export { REGISTER_HEADROOM, resourceModel, type ResourceModel } from "./resources.ts";
export { TARGETS, TARGET_LIMITS, type Target, type TargetLimits } from "./targets.ts";
export type { SpecFields, KvCache, Schedule, SplitLimit, DType, PrefillEngine } from "./schema.ts";
export { PREFILL_ENGINES } from "./schema.ts";
export { PRESETS, DEFAULT_PRESET, presetByName } from "./presets.ts";
export { FAMILY_PRESETS, familyPresetByName } from "./family-presets.ts";
export {
  withOverrides,
  checkOverrides,
  mergeOverrides,
  overriddenName,
  kernelFieldsShape,
  kernelFieldsSchema,
  kernelFieldsOverrides,
  kernelFieldsSpec,
  type SpecOverrides,
  type KernelFields,
} from "./overrides.ts";
export {
  space,
  enumerateSpace,
  candidateName,
  describePoint,
  spaceSize,
  spaceToJson,
  CTA_SHAPE_SPACE,
  WARP_SPECIALIZED_SPACE,
  defaultSpace,
  SPACE_FIELDS,
  SpaceError,
  type SearchSpace,
  type SpaceInput,
  type SpacePoint,
  type Candidate,
  type PrunedPoint,
  type Enumeration,
} from "./space.ts";
