// Search spaces for `podgen tune`, written in the DSL: choices over a spec's tunable fields.
//
//   pod.space({
//     prefill: { tile: { q: [64, 128], kv: [32, 64] }, stages: [1, 2, 3] },
//     decode: { tile: { kv: [32, 64] }, virtualCtas: [1, 2] },
//     ctasPerSm: [2, 4],
//     schedule: [pod.fiftyFifty(), pod.proportional()],
//   })
//
// A space is the cross product of its choices over a base spec (a preset or the author's spec);
// fields the space leaves out keep the base's value. decode.warps follows prefill.warps (one fused
// kernel, one CTA shape), except with ctasPerSm 1, where the decode role is one warpgroup.
// Enumeration runs every point through checkSpec, so the resource model prunes infeasible points
// before anything is compiled, each with its reasons.
import { createHash } from "node:crypto";
import { formatIssue, type SpecIssue } from "./errors.ts";
import type { FieldPaths, Schedule, SpecFieldPath, SplitLimit } from "./schema.ts";
import { mergeOverrides, type SpecOverrides } from "./overrides.ts";
import { resourceModel } from "./resources.ts";
import { canonicalJson, checkSpec, ROLES_DECODE_WARPS, specFields, type KernelSpec } from "./spec.ts";

type Warps = 1 | 2 | 4 | 8;

/** What an author writes: a list of choices per field (every list non-empty). */
export interface SpaceInput {
  prefill?: {
    tile?: { q?: number[]; kv?: number[] };
    warps?: Warps[];
    stages?: number[];
    maxSplits?: SplitLimit[];
  };
  decode?: {
    tile?: { kv?: number[] };
    stages?: number[];
    virtualCtas?: (1 | 2 | 4)[];
    maxSplits?: number[];
  };
  ctasPerSm?: (1 | 2 | 4)[];
  schedule?: Schedule[];
}

/**
 * The fields a space may vary, as dotted paths into a spec: exactly SpaceInput's fields (checked
 * below, so that one cannot gain a field the other lacks), each a field of the spec.
 */
export const SPACE_FIELDS = [
  "prefill.tile.q",
  "prefill.tile.kv",
  "prefill.warps",
  "prefill.stages",
  "prefill.maxSplits",
  "decode.tile.kv",
  "decode.stages",
  "decode.virtualCtas",
  "decode.maxSplits",
  "ctasPerSm",
  "schedule",
] as const satisfies readonly (FieldPaths<SpaceInput> & SpecFieldPath)[];
export type SpaceField = (typeof SPACE_FIELDS)[number];
true satisfies [Exclude<FieldPaths<SpaceInput>, SpaceField>] extends [never] ? true : { missingFromSpaceFields: Exclude<FieldPaths<SpaceInput>, SpaceField> };

export interface SpaceDim {
  path: SpaceField;
  values: readonly unknown[];
}

/** A validated space: its dimensions in SPACE_FIELDS order (so enumeration order is stable). */
export interface SearchSpace {
  readonly kind: "space";
  readonly dims: readonly SpaceDim[];
}

/** One point of a space: a value per dimension, by dotted path. */
export type SpacePoint = Readonly<Record<string, unknown>>;

export interface Candidate {
  /** `${base.name}_t${tag}`: the tag hashes the point's resolved tunable fields, so the same kernel gets the same name. */
  name: string;
  spec: KernelSpec;
  point: SpacePoint;
  /** True for the base spec itself (always a candidate, so a tune never ranks below it). */
  isBase: boolean;
}

export interface PrunedPoint {
  point: SpacePoint;
  issues: SpecIssue[];
  /** The issues as one line each (`path = value: must be limit — reason`). */
  reasons: string[];
}

export interface Enumeration {
  /** The base spec first, then every feasible point in enumeration order (duplicates of the base dropped). */
  candidates: Candidate[];
  pruned: PrunedPoint[];
  /** Points in the space (feasible or not). */
  size: number;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function get(root: unknown, path: string): unknown {
  let v = root;
  for (const k of path.split(".")) v = isPlainObject(v) ? v[k] : undefined;
  return v;
}

function set(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = root;
  for (const k of keys.slice(0, -1)) {
    if (!isPlainObject(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = structuredClone(value);
}

/** Every leaf path of a space input (a leaf is an array), to reject unknown fields. */
function leaves(value: unknown, prefix = ""): [string, unknown][] {
  if (!isPlainObject(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => (Array.isArray(v) ? [[`${prefix}${k}`, v] as [string, unknown]] : leaves(v, `${prefix}${k}.`)));
}

export class SpaceError extends Error {
  override name = "SpaceError";
}

/** Validate a space (shape only: values are judged per point by checkSpec). */
export function space(input: SpaceInput | unknown): SearchSpace {
  if (isPlainObject(input) && input.kind === "space" && Array.isArray(input.dims)) return space(fromDims(input.dims as SpaceDim[]));
  if (!isPlainObject(input)) throw new SpaceError("a search space is an object of choices, e.g. { ctasPerSm: [2, 4] }");
  const found = new Map(leaves(input));
  const problems: string[] = [];
  for (const [path, values] of found) {
    if (!(SPACE_FIELDS as readonly string[]).includes(path)) problems.push(`${path}: not a tunable field (one of ${SPACE_FIELDS.join(", ")})`);
    else if (!Array.isArray(values) || values.length === 0) problems.push(`${path} = ${JSON.stringify(values)}: must be a non-empty list of choices`);
  }
  if (problems.length > 0) throw new SpaceError(`invalid search space:\n  - ${problems.join("\n  - ")}`);
  const dims = SPACE_FIELDS.filter((p) => found.has(p)).map((path) => {
    const values = found.get(path) as unknown[];
    // Drop repeated choices (by value) so a point is never enumerated twice.
    const unique = [...new Map(values.map((v) => [canonicalJson(v), v])).values()];
    return Object.freeze({ path, values: Object.freeze(unique.map((v) => structuredClone(v))) });
  });
  return Object.freeze({ kind: "space", dims: Object.freeze(dims) });
}

function fromDims(dims: readonly SpaceDim[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of dims) set(out, d.path, [...d.values]);
  return out;
}

/** The space as the nested object an author writes (for JSON files and reports). */
export function spaceToJson(s: SearchSpace): Record<string, unknown> {
  return fromDims(s.dims);
}

/** Points of a space (before pruning). */
export function spaceSize(s: SearchSpace): number {
  return s.dims.reduce((n, d) => n * d.values.length, 1);
}

/**
 * The default space over a base whose CTAs share an SM (the paper's shape, llama3_8b_2cta): tile
 * shapes, warps per CTA, pipeline depths, CTAs per SM, virtual decode CTAs and the schedule -- the
 * knobs the paper and our bench show to matter (bench/results/2026-11-23-h100-preset-decode64-run3.json:
 * fifty-fifty vs proportional moves a workload by up to 20%; with 4 warps a lone prefill CTA on an
 * SM runs at about half the SM's prefill rate, so 8-warp CTAs are in, and one CTA per SM with a
 * prefill and a decode role won three of the five paper workloads). 768 points; on llama3_8b_2cta /
 * sm_90a the resource model leaves 147 (67 of them roles), the preset among them.
 */
export const CTA_SHAPE_SPACE: SearchSpace = space({
  prefill: { tile: { q: [64, 128], kv: [32, 64] }, warps: [4, 8], stages: [2, 3] },
  decode: { tile: { kv: [32, 64] }, stages: [1, 2], virtualCtas: [1, 2] },
  ctasPerSm: [1, 2, 4],
  schedule: [{ kind: "fifty-fifty" }, { kind: "proportional" }],
});

/**
 * The default space over a warp-specialized base (the llama3_8b preset). Its prefill CTA fills an
 * SM, so CTAs per SM stay 1 and the schedule fifty-fifty (the base's); the space varies what the
 * engine leaves open: one or two consumer warpgroups (a 64- or 128-row tile: the rules prune the
 * rows that do not match the warps), 64- or 128-key tiles in 2 or 3 stages (on the H100 128x64
 * 2-stage was the best fused, 128x128 the best prefill alone: bench/results/2026-12-06-h100-prefill-engines-run2.json),
 * and the decode role's tile, depth and virtual CTAs. 192 points; on llama3_8b / sm_90a the
 * resource model leaves 35, the preset among them.
 */
export const WARP_SPECIALIZED_SPACE: SearchSpace = space({
  prefill: { tile: { q: [64, 128], kv: [64, 128] }, warps: [4, 8], stages: [2, 3] },
  decode: { tile: { kv: [32, 64, 128] }, stages: [1, 2], virtualCtas: [1, 2] },
});

/**
 * The space `podgen tune` searches when given none: the points are overrides on the base, which
 * keeps its prefill engine, so the space follows the engine (a warp-specialized prefill takes no
 * CTAs-per-SM choice). Pass a space file to search wider or narrower.
 */
export function defaultSpace(base: KernelSpec): SearchSpace {
  return resourceModel(base).prefillEngine === "warp-specialized" ? WARP_SPECIALIZED_SPACE : CTA_SHAPE_SPACE;
}

/** Every point of the space, in a fixed order (the last dimension varies fastest). */
export function* points(s: SearchSpace): Generator<SpacePoint> {
  const idx = s.dims.map(() => 0);
  if (s.dims.some((d) => d.values.length === 0)) return;
  for (;;) {
    yield Object.freeze(Object.fromEntries(s.dims.map((d, i) => [d.path, d.values[idx[i]!]])));
    let i = s.dims.length - 1;
    for (; i >= 0; i--) {
      if (++idx[i]! < s.dims[i]!.values.length) break;
      idx[i] = 0;
    }
    if (i < 0) return;
  }
}

/** The tunable fields of a spec (what a candidate's name hashes). */
export function tunableFields(spec: KernelSpec): Record<string, unknown> {
  const fields = specFields(spec);
  return Object.fromEntries([...SPACE_FIELDS, "decode.warps", "decode.tile.q"].map((p) => [p, get(fields, p)]));
}

/** Deterministic candidate name: the base's name and 8 hex digits of its tunable fields. */
export function candidateName(base: KernelSpec, fields: Record<string, unknown>): string {
  const tag = createHash("sha256").update(canonicalJson(fields)).digest("hex").slice(0, 8);
  return `${base.name.slice(0, 38)}_t${tag}`;
}

/** Apply a point to a base spec: the fields as checkSpec judges them (decode.warps as above). */
export function applyPoint(base: KernelSpec, point: SpacePoint): Record<string, unknown> {
  // The point as nested overrides, merged as verify cases and bench variants merge theirs.
  const overrides: Record<string, unknown> = {};
  for (const [path, value] of Object.entries(point)) set(overrides, path, value);
  const fields = mergeOverrides(base, overrides as SpecOverrides);
  // One CTA per SM (roles): the decode role is one warpgroup, whatever the prefill role's warps.
  set(fields, "decode.warps", get(fields, "ctasPerSm") === 1 ? ROLES_DECODE_WARPS : get(fields, "prefill.warps"));
  return fields;
}

/** Enumerate a space over a base spec; infeasible points are pruned (checkSpec) with their reasons. */
export function enumerateSpace(base: KernelSpec, s: SearchSpace): Enumeration {
  const baseTunable = canonicalJson(tunableFields(base));
  const candidates: Candidate[] = [{ name: base.name, spec: base, point: Object.freeze({}), isBase: true }];
  const seen = new Set<string>([baseTunable]);
  const pruned: PrunedPoint[] = [];
  let size = 0;
  for (const point of points(s)) {
    size++;
    const fields = applyPoint(base, point);
    const check = checkSpec(fields);
    if (!check.ok) {
      pruned.push({ point, issues: check.issues, reasons: check.issues.map(formatIssue) });
      continue;
    }
    const key = canonicalJson(tunableFields(check.spec));
    if (seen.has(key)) continue;
    seen.add(key);
    const spec = checkSpec({ ...fields, name: candidateName(base, tunableFields(check.spec)) });
    if (!spec.ok) throw new Error(`internal: renamed candidate failed validation: ${spec.issues.map(formatIssue).join("; ")}`);
    candidates.push({ name: spec.spec.name, spec: spec.spec, point, isBase: false });
  }
  return { candidates, pruned, size };
}

/** One line per point: `prefill.tile.q=64 ctasPerSm=4 schedule=fifty-fifty`. */
export function describePoint(point: SpacePoint): string {
  const parts = Object.entries(point).map(([k, v]) => `${k}=${isPlainObject(v) && typeof v.kind === "string" && Object.keys(v).length === 1 ? v.kind : canonicalJson(v)}`);
  return parts.length > 0 ? parts.join(" ") : "(base spec)";
}
