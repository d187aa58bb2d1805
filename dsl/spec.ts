// From what an author writes to one frozen, validated KernelSpec with a stable content hash.
import { createHash } from "node:crypto";
import type { ZodError } from "zod";
import { SpecError, type SpecIssue } from "./errors.ts";
import { checkRules } from "./rules.ts";
import {
  specSchema,
  type DType,
  type HeadDim,
  type KvCache,
  type KvDType,
  type KvScale,
  type PrefillEngine,
  type Schedule,
  type SpecFieldPath,
  type SpecFields,
  type SplitLimit,
} from "./schema.ts";
import type { Target } from "./targets.ts";

type Warps = 1 | 2 | 4 | 8;

/** What an author writes: everything but name, heads and headDim has a default. */
export interface KernelInput {
  name: string;
  target?: Target;
  dtype?: DType;
  heads: { q: number; kv: number };
  headDim: HeadDim;
  kvCache?: KvCache;
  prefill?: {
    /**
     * The tile loop: "mma" (mma.sync, sm_80+), "wgmma" (sm_90a), or "warp-specialized" (sm_90a,
     * ctasPerSm 1: a producer warpgroup feeds consumer warpgroups through an mbarrier ring).
     * Absent: wgmma on sm_90a with whole warpgroups, else mma.
     */
    engine?: PrefillEngine;
    tile?: { q?: number; kv?: number };
    warps?: Warps;
    stages?: number;
    /** KV splits per prefill tile: a number, or `pod.waves(n)` to fill at most n full waves. */
    maxSplits?: SplitLimit;
    /**
     * The prefill-only kernel's KV tile and stages (warp-specialized engine only): alone on the SM
     * it may take wider tiles than the fused kernel's prefill role. Absent: tile.kv and stages.
     */
    standalone?: { tileKv: number; stages: number };
  };
  decode?: {
    /** Rows of a decode tile (QSL; 16) and keys per KV tile. */
    tile?: { q?: number; kv?: number };
    /** Warps of the physical CTA (equal to prefill.warps); virtual CTAs share them. */
    warps?: Warps;
    stages?: number;
    virtualCtas?: 1 | 2 | 4;
    maxSplits?: number;
  };
  ctasPerSm?: 1 | 2 | 4;
  schedule?: Schedule;
  /**
   * Sliding-window attention: a query at absolute position p sees the keys (p - window, p], itself
   * included (Mistral: 4096). Absent: every earlier key (causal).
   */
  window?: number;
  /**
   * Logit soft-capping: each scaled logit x = scale * q.k becomes cap * tanh(x / cap) before the
   * softmax (Gemma 2: 50). Absent: off.
   */
  logitsSoftCap?: number;
  /**
   * Attention sinks (gpt-oss): a learned logit per query head that joins the softmax denominator
   * and nothing else; the logits are a run-time input, one fp32 per query head.
   */
  sinks?: boolean;
  /**
   * The KV cache's element type: the dtype (default), or "e4m3" (fp8, sm_89 and sm_90a), which the
   * tile loops dequantize to the dtype with run-time fp32 scales (k = scale * k8, likewise v).
   */
  kvDtype?: KvDType;
  /** fp8 KV: one scale for each of K and V ("tensor", the default), or one per KV head ("head"). */
  kvScale?: KvScale;
}

/** A validated spec. Deeply frozen; `hash` names its builds and keys every cache. */
export type KernelSpec = Readonly<SpecFields> & { readonly hash: string };

/** Warps of the decode role with ctasPerSm 1 (roles), unless the spec says otherwise: one warpgroup. */
export const ROLES_DECODE_WARPS = 4;

export const DEFAULTS = {
  target: "sm_90a",
  dtype: "bf16",
  kvCache: { kind: "paged", pageSize: 16 },
  prefill: { tile: { q: 128, kv: 64 }, warps: 4, stages: 2, maxSplits: { kind: "waves", waves: 2 } },
  decode: { tile: { q: 16, kv: 32 }, stages: 2, virtualCtas: 2, maxSplits: 16 },
  ctasPerSm: 2,
  schedule: { kind: "proportional" },
} as const;

/** fp8 KV caches: the scale granularity when the spec names none (vLLM's default). */
const DEFAULT_KV_SCALE: KvScale = "tensor";

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Fill defaults without trusting the input's shape (the schema judges it afterwards). */
function withDefaults(raw: unknown): unknown {
  if (!isPlainObject(raw)) return raw;
  // A KernelSpec may be normalized again: its hash is recomputed, never trusted.
  const { hash: _hash, ...input } = raw;
  const section = (value: unknown, defaults: Record<string, unknown>) => {
    if (value === undefined) return structuredClone(defaults);
    if (!isPlainObject(value)) return value;
    const tile = value.tile === undefined || isPlainObject(value.tile)
      ? { ...(defaults.tile as object), ...((value.tile as object) ?? {}) }
      : value.tile;
    return { ...structuredClone(defaults), ...value, tile };
  };
  const prefill = section(input.prefill, DEFAULTS.prefill);
  const prefillWarps = isPlainObject(prefill) ? prefill.warps : undefined;
  // One CTA per SM (roles): the decode role defaults to one warpgroup, and both roles always run
  // side by side (fifty-fifty is the only schedule that applies).
  const roles = input.ctasPerSm === 1;
  // A KV dtype equal to dtype is the default, stored absent (one spec, one hash); fp8 scales
  // default to one per tensor.
  const { kvDtype, kvScale, ...rest } = input;
  const kv = {
    ...(kvDtype !== undefined && kvDtype !== (input.dtype ?? DEFAULTS.dtype) && { kvDtype }),
    ...((kvScale !== undefined || kvDtype === "e4m3") && { kvScale: kvScale ?? DEFAULT_KV_SCALE }),
  };
  return {
    ...rest,
    ...kv,
    target: input.target ?? DEFAULTS.target,
    dtype: input.dtype ?? DEFAULTS.dtype,
    kvCache: input.kvCache ?? DEFAULTS.kvCache,
    prefill,
    decode: section(input.decode, { ...DEFAULTS.decode, warps: roles ? ROLES_DECODE_WARPS : prefillWarps }),
    ctasPerSm: input.ctasPerSm ?? DEFAULTS.ctasPerSm,
    schedule: input.schedule ?? (roles ? { kind: "fifty-fifty" } : DEFAULTS.schedule),
  };
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) v = isPlainObject(v) ? v[key as string] : undefined;
  return v;
}

/**
 * Why each field is limited, for messages about single fields (rules.ts explains the rest). Every
 * field of the schema has an entry: a field added without one fails typecheck.
 */
const FIELD_REASONS = {
  name: "it names the generated symbols and files",
  target: "podgen generates code for these architectures",
  dtype: "q, k, v and o are 16-bit floating point",
  "heads.q": "query heads per GPU",
  "heads.kv": "KV heads per GPU",
  headDim: "the head dimension",
  kvCache: "use pod.paged({ pageSize }) or pod.contiguous()",
  "kvCache.pageSize": "tokens per KV page",
  "prefill.engine": "the prefill tile loop: mma (sm_80+), wgmma or warp-specialized (sm_90a)",
  "prefill.tile.q": "query rows (tokens × grouped heads) of one prefill tile",
  "prefill.tile.kv": "keys per KV tile of the prefill loop",
  "prefill.warps": "warps per CTA",
  "prefill.stages": "depth of the cp.async K/V pipeline",
  "prefill.maxSplits": "use a number or pod.waves(n)",
  "prefill.standalone.tileKv": "keys per KV tile of the prefill-only kernel (warp-specialized engine)",
  "prefill.standalone.stages": "depth of the prefill-only kernel's K/V ring",
  "decode.tile.q": "decode tiles have QSL = 16",
  "decode.tile.kv": "keys per KV tile of the decode loop",
  "decode.warps": "warps per CTA",
  "decode.stages": "depth of the cp.async K/V pipeline",
  "decode.virtualCtas": "decode tiles hosted by one physical CTA",
  "decode.maxSplits": "KV splits per decode tile",
  ctasPerSm: "POD-Attention co-schedules 2 or 4 CTAs per SM; 1 is one CTA per SM with a prefill and a decode role",
  schedule: "use pod.fiftyFifty() or pod.proportional()",
  window: "keys a query sees, itself included (sliding-window attention)",
  logitsSoftCap: "the cap of cap * tanh(logit / cap), applied to the scaled logits",
  sinks: "true: a run-time fp32 sink logit per query head joins each softmax denominator",
  kvDtype: "the KV cache's element type: the dtype, or e4m3 (fp8) with run-time fp32 scales",
  kvScale: "fp8 KV scales: one per tensor, or one per KV head",
} satisfies Record<SpecFieldPath | "kvCache.pageSize", string>;

function zodIssues(error: ZodError, input: unknown): SpecIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join(".") || "(spec)";
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.join(", ");
      return {
        path: path === "(spec)" ? keys : `${path}.${keys}`,
        value: valueAt(input, [...issue.path, issue.keys[0]!]),
        limit: "absent",
        reason: `unknown field${issue.keys.length > 1 ? "s" : ""} (check the spelling)`,
      };
    }
    const generic = path.replace(/\.\d+/g, "");
    return { path, value: valueAt(input, issue.path), limit: zodLimit(issue), reason: (FIELD_REASONS as Record<string, string | undefined>)[generic] ?? "see the spec reference in the README" };
  });
}

function zodLimit(issue: ZodError["issues"][number]): string {
  switch (issue.code) {
    case "too_big":
      return `${issue.inclusive === false ? "less than" : "at most"} ${issue.maximum}`;
    case "too_small":
      return `${issue.inclusive === false ? "more than" : "at least"} ${issue.minimum}`;
    case "invalid_type":
      return issue.expected === "int" ? "an integer" : `${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}`;
    case "invalid_value":
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union": {
      const options = issue.errors.flat().flatMap((e) => (e.code === "invalid_value" ? e.values : []));
      return options.length > 0 ? `one of ${options.map((v) => JSON.stringify(v)).join(", ")}` : "one of the documented forms";
    }
    default:
      return issue.message;
  }
}

export type CheckResult = { ok: true; spec: KernelSpec } | { ok: false; issues: SpecIssue[]; name: string };

/** Validate without throwing: every problem of the spec at once. */
export function checkSpec(input: unknown): CheckResult {
  const filled = withDefaults(input);
  const name = isPlainObject(input) && typeof input.name === "string" ? input.name : "(unnamed)";
  const parsed = specSchema.safeParse(filled);
  if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error, filled), name };
  const issues = checkRules(parsed.data);
  if (issues.length > 0) return { ok: false, issues, name };
  return { ok: true, spec: freezeSpec(parsed.data) };
}

/** Validate and normalize; throws SpecError naming every bad field. */
export function normalizeSpec(input: KernelInput | unknown): KernelSpec {
  const result = checkSpec(input);
  if (!result.ok) throw new SpecError(result.name, result.issues);
  return result.spec;
}

/** The symbol prefix of a kernel's C ABI, e.g. `pod_llama3_8b` (every exported function starts with it). */
export const symbolPrefix = (spec: { name: string }) => `pod_${spec.name}`;

/** The shared library `podgen build` makes for a kernel, e.g. `libpod_llama3_8b.so`. */
export const libraryFileName = (spec: { name: string }) => `lib${symbolPrefix(spec)}.so`;

/** JSON with sorted keys: the same spec always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function specFields(spec: KernelSpec): SpecFields {
  const { hash: _hash, ...fields } = spec;
  return fields;
}

function deepFreeze<T>(value: T): T {
  if (isPlainObject(value)) for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}

function freezeSpec(fields: SpecFields): KernelSpec {
  const hash = createHash("sha256").update(canonicalJson(fields)).digest("hex").slice(0, 16);
  return deepFreeze({ ...structuredClone(fields), hash });
}
