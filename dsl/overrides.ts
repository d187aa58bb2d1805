// Spec overrides: a base spec with some of its fields changed. Verify case files
// (cli/verify-cases.ts), bench workload variants (bench/workloads.ts) and the tune space's points
// (space.ts) all merge through here, so one override always gives one kernel, whoever asks.
//
//   withOverrides(presetByName("llama3_8b")!, { decode: { tile: { kv: 32 }, virtualCtas: 2 } })
//
// prefill and decode merge field by field, and so do their tiles; every other field (heads,
// kvCache, schedule, maxSplits, ...) is replaced whole, and `null` removes an optional one, in a
// section too (a variant of gemma2_9b without its soft-cap: { logitsSoftCap: null }; of llama3_8b
// whose prefill-only kernel runs the fused tile: { prefill: { standalone: null } }). Nothing is
// re-derived: a field the overrides leave out keeps the base's value (decode.warps too, so an
// override of prefill.warps states decode.warps as well; the rules say so when it does not). The merged
// fields are judged by checkSpec like any spec, so a bad override is reported by field, value,
// limit and reason.
import { createHash } from "node:crypto";
import { z } from "zod";
import { SpecError } from "./errors.ts";
import { DEFAULT_PRESET, presetByName, PRESETS } from "./presets.ts";
import { specSchema } from "./schema.ts";
import { canonicalJson, checkSpec, specFields, type CheckResult, type KernelInput, type KernelSpec } from "./spec.ts";

/**
 * What an override may change: any field but the name, as pod.kernel takes it (every part
 * optional); `null` removes a field the base has (the schema then judges the spec without it).
 */
export type SpecOverrides = { [K in keyof Omit<KernelInput, "name">]?: Nullable<KernelInput[K]> | null };
/** A section's optional fields may be null too (removed). */
type Nullable<T> = T extends object ? { [K in keyof T]?: T[K] | null } : T;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Sections whose fields merge one by one (and their `tile`s too); every other field is replaced. */
const SECTIONS: ReadonlySet<string> = new Set(["prefill", "decode"]);

function mergeSection(base: unknown, value: unknown): unknown {
  // Not an object: replaced as is, for the schema to reject with the field named.
  if (!isPlainObject(base) || !isPlainObject(value)) return structuredClone(value);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    out[k] = k === "tile" && isPlainObject(v) && isPlainObject(base.tile) ? { ...base.tile, ...v } : structuredClone(v);
  }
  return out;
}

/** The base's fields with the overrides merged in, not yet validated (checkSpec judges them). */
export function mergeOverrides(base: KernelSpec, overrides: SpecOverrides): Record<string, unknown> {
  const fields = structuredClone(specFields(base)) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (value === null) {
      delete fields[key];
      continue;
    }
    fields[key] = SECTIONS.has(key) ? mergeSection(fields[key], value) : structuredClone(value);
  }
  return fields;
}

const isEmpty = (overrides: SpecOverrides) => Object.values(overrides).every((v) => v === undefined);

/** `${base.name}_${tag}`: the tag hashes the overrides, so the same overrides give the same name. */
export function overriddenName(base: KernelSpec, overrides: SpecOverrides): string {
  const tag = createHash("sha256").update(canonicalJson(overrides)).digest("hex").slice(0, 8);
  return `${base.name}_${tag}`;
}

/**
 * Validate without throwing: the base itself when there is nothing to override, else the merged
 * spec, named `options.name` or after the base and the overrides.
 */
export function checkOverrides(base: KernelSpec, overrides: SpecOverrides, options: { name?: string } = {}): CheckResult {
  if ("name" in overrides) {
    // Untyped input (JSON) only: the type has no name. A name would not reach the kernel either way.
    const issue = { path: "name", value: (overrides as { name?: unknown }).name, limit: "absent", reason: "an overridden spec is named after its base and its overrides (or options.name)" };
    return { ok: false, issues: [issue], name: base.name };
  }
  if (isEmpty(overrides) && options.name === undefined) return { ok: true, spec: base };
  return checkSpec({ ...mergeOverrides(base, overrides), name: options.name ?? overriddenName(base, overrides) });
}

/** The base spec with the overrides applied and validated; throws SpecError naming every bad field. */
export function withOverrides(base: KernelSpec, overrides: SpecOverrides, options: { name?: string } = {}): KernelSpec {
  const result = checkOverrides(base, overrides, options);
  if (!result.ok) throw new SpecError(result.name, result.issues);
  return result.spec;
}

// ---------------------------------------------------------------------------------------------
// Kernel fields: the JSON form of a preset and its overrides, shared by verify case files and
// bench workload variants (README, "Verifying kernels on a GPU: case files").

export const kernelFieldsShape = {
  /** Preset the overrides apply to (default: defaults.spec in a case file, else DEFAULT_PRESET). */
  spec: z.string().optional(),
  heads: z.strictObject({ q: z.number().int(), kv: z.number().int() }).optional(),
  headDim: z.number().int().optional(),
  dtype: specSchema.shape.dtype.optional(),
  /** A page size, or "contiguous". */
  pageSize: z.union([z.number().int(), z.literal("contiguous")]).optional(),
  policy: z.enum(["proportional", "fifty-fifty"]).optional(),
  ctasPerSm: z.number().int().optional(),
  virtualCtas: z.number().int().optional(),
  /** Any other spec fields (tiles, stages, ...), as in pod.kernel({...}). */
  kernel: z.record(z.string(), z.unknown()).optional(),
};
export const kernelFieldsSchema = z.strictObject(kernelFieldsShape);
export type KernelFields = z.infer<typeof kernelFieldsSchema>;

/** Kernel fields as spec overrides: the shorthands become the spec fields they stand for. */
export function kernelFieldsOverrides(fields: KernelFields): SpecOverrides {
  // `kernel` is any object here; checkSpec judges every field of it once merged.
  const overrides: Record<string, unknown> = { ...(fields.kernel ?? {}) };
  if (fields.heads) overrides.heads = fields.heads;
  if (fields.headDim !== undefined) overrides.headDim = fields.headDim;
  if (fields.dtype) overrides.dtype = fields.dtype;
  if (fields.pageSize !== undefined) {
    overrides.kvCache = fields.pageSize === "contiguous" ? { kind: "contiguous" } : { kind: "paged", pageSize: fields.pageSize };
  }
  if (fields.policy) overrides.schedule = { kind: fields.policy };
  if (fields.ctasPerSm !== undefined) overrides.ctasPerSm = fields.ctasPerSm;
  if (fields.virtualCtas !== undefined) {
    overrides.decode = { ...(isPlainObject(overrides.decode) ? overrides.decode : {}), virtualCtas: fields.virtualCtas };
  }
  return overrides as SpecOverrides;
}

/** The spec kernel fields describe: their preset with their overrides (throws SpecError). */
export function kernelFieldsSpec(fields: KernelFields): KernelSpec {
  const baseName = fields.spec ?? DEFAULT_PRESET;
  const base = presetByName(baseName);
  if (!base) {
    const limit = `one of ${PRESETS.map((p) => JSON.stringify(p.name)).join(", ")}`;
    throw new SpecError(baseName, [{ path: "spec", value: baseName, limit, reason: "the preset the overrides apply to" }]);
  }
  return withOverrides(base, kernelFieldsOverrides(fields));
}
