// Config families: several fused configs of one model shape, built into one library whose planner
// picks a member (and fused or serial) per batch (templates/family/select.h).
//
//   pod.family({
//     name: "llama3_8b_auto",
//     base: presetByName("llama3_8b_2cta")!,       // the shared model shape and every default
//     members: [{ name: "preset" }, { name: "roles", ctasPerSm: 1, prefill: { warps: 8 } }],
//   })
//
// Each member is the base with its overrides merged (dsl/overrides.ts), named
// `<family>__<member>`: its C ABI prefix `pod_<family>__<member>` can never equal one of the
// family's own functions (`pod_<family>_<function>`, a letter after one underscore). The model
// shape (FAMILY_SHAPE_FIELDS) is the family's: a member that overrides it is rejected, since one
// batch (one query and KV-cache layout) must suit every member. Member 0 is what the static rule
// picks when no cost model is fitted.
import { createHash } from "node:crypto";
import { z } from "zod";
import { SpecError, type SpecIssue } from "./errors.ts";
import { checkOverrides, type SpecOverrides } from "./overrides.ts";
import { canonicalJson, checkSpec, type KernelInput, type KernelSpec } from "./spec.ts";

/** The fields every member shares: what a batch's tensors and the KV cache look like. */
export const FAMILY_SHAPE_FIELDS = ["target", "dtype", "heads", "headDim", "kvCache", "kvDtype", "kvScale"] as const;

/** At most this many members (PODGEN_FAMILY_MAX_MEMBERS of the generated pod_family.h). */
export const MAX_FAMILY_MEMBERS = 8;

export type FamilyMemberInput = { name: string } & Omit<SpecOverrides, (typeof FAMILY_SHAPE_FIELDS)[number]>;

export interface FamilyInput {
  name: string;
  /** The model shape and the defaults of every member: a spec (a preset) or what pod.kernel takes. */
  base: KernelSpec | KernelInput;
  members: FamilyMemberInput[];
}

export interface FamilySpec {
  readonly kind: "family";
  readonly name: string;
  /** The members' short names, in order (member 0 is the static rule's default). */
  readonly memberNames: readonly string[];
  /** The members' specs, named `<family>__<member>`. */
  readonly members: readonly KernelSpec[];
  /** Hashes the family's name and its members' names and spec hashes. */
  readonly hash: string;
}

const familyNameSchema = z.string().regex(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, "lower_snake_case without a double underscore");
const memberNameSchema = z.string().regex(/^[a-z][a-z0-9_]*$/, "lower_snake_case, starting with a letter");

export const isFamilySpec = (v: unknown): v is FamilySpec => typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "family";

/** The spec name of a member: `<family>__<member>`. */
export const memberSpecName = (family: string, member: string) => `${family}__${member}`;

/** Validate a family: every problem of every member at once (SpecError), each field prefixed `members.<i>`. */
export function normalizeFamily(input: FamilyInput): FamilySpec {
  const raw = input as unknown as Record<string, unknown>;
  const name = typeof raw.name === "string" ? raw.name : "(unnamed family)";
  const issues: SpecIssue[] = [];
  const nameCheck = familyNameSchema.safeParse(raw.name);
  if (!nameCheck.success) issues.push({ path: "name", value: raw.name, limit: "lower_snake_case without a double underscore", reason: "it prefixes the family's C ABI; `__` separates it from a member's name" });
  for (const key of Object.keys(raw)) {
    if (!["name", "base", "members"].includes(key)) issues.push({ path: key, value: raw[key], limit: "absent", reason: "a family has a name, a base and members (check the spelling)" });
  }
  const baseCheck = checkSpec({ ...(raw.base as object), name: "base" });
  if (!baseCheck.ok) issues.push(...baseCheck.issues.map((i) => ({ ...i, path: `base.${i.path}` })));
  const members = Array.isArray(raw.members) ? (raw.members as unknown[]) : null;
  if (!members || members.length < 1 || members.length > MAX_FAMILY_MEMBERS) {
    issues.push({ path: "members", value: members ? `${members.length} members` : raw.members, limit: `an array of 1 to ${MAX_FAMILY_MEMBERS} members`, reason: "the members the planner chooses from" });
  }
  if (issues.length > 0 || !baseCheck.ok || !members) throw new SpecError(name, issues);

  const specs: KernelSpec[] = [];
  const seen = new Set<string>();
  members.forEach((m, i) => {
    const at = `members.${i}`;
    const { name: memberName, ...overrides } = (typeof m === "object" && m !== null ? m : {}) as Record<string, unknown>;
    if (!memberNameSchema.safeParse(memberName).success) {
      return void issues.push({ path: `${at}.name`, value: memberName, limit: "lower_snake_case, starting with a letter", reason: "it suffixes the member's C ABI prefix" });
    }
    const member = memberName as string;
    if (seen.has(member)) issues.push({ path: `${at}.name`, value: member, limit: "unique in the family", reason: "it names the member's symbols" });
    seen.add(member);
    for (const field of FAMILY_SHAPE_FIELDS) {
      if (field in overrides) issues.push({ path: `${at}.${field}`, value: overrides[field], limit: "absent (the base's)", reason: "every member of a family reads the same batch, so the model shape is the family's" });
    }
    const checked = checkOverrides(baseCheck.spec, overrides as SpecOverrides, { name: memberSpecName(nameCheck.data!, member) });
    if (!checked.ok) issues.push(...checked.issues.map((issue) => ({ ...issue, path: `${at}.${issue.path}` })));
    else specs.push(checked.spec);
  });
  if (issues.length > 0) throw new SpecError(name, issues);
  const memberNames = members.map((m) => (m as { name: string }).name);
  const hash = createHash("sha256")
    .update(canonicalJson({ name: input.name, members: specs.map((s, i) => [memberNames[i], s.hash]) }))
    .digest("hex")
    .slice(0, 16);
  return Object.freeze({ kind: "family", name: input.name, memberNames: Object.freeze(memberNames), members: Object.freeze(specs), hash });
}
