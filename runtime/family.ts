// The C ABI of a built config family (templates/pod_family.h.hbs), through koffi: plan chooses a
// member and a mode per batch (templates/family/select.h) and records why; run launches the choice.
//
// Like KernelLibrary, FamilyLibrary only dlopens the library: plan() needs no GPU. Each member is
// also a KernelLibrary under its own prefix (member()), for the standalone baselines and tests.
import type { TypeObject } from "koffi";
import { z } from "zod";
import { abiTypes, fromCKernelInfo, KernelLibrary, PodgenError, PodPlan, PODGEN_STATUS, toCBatch, toCBuffers, toCPlanOptions, type DevPtrLike, type KernelInfo, type PlanOptions, type PodBatch, type PodBuffers, type ReferenceArgs, toCReferenceArgs } from "./abi.ts";
import { loadKoffi, type Koffi } from "./cuda.ts";
import { streamHandle, type StreamLike } from "./device.ts";

/** pod_family.h's version these mirrors follow (codegen/paths.ts FAMILY_ABI_VERSION). */
export const PODGEN_FAMILY_ABI_VERSION_SUPPORTED = 2;
/** PODGEN_FAMILY_MAX_MEMBERS and PODGEN_COST_FEATURES of pod_family.h (test/family.test.ts reads them off the header). */
export const FAMILY_MAX_MEMBERS = 8;
export const COST_FEATURE_COUNT = 6;

export const MODES = ["fused", "serial"] as const;
export type Mode = (typeof MODES)[number];
/** Why a plan chose what it chose (podgen_choice_reason). */
export const CHOICE_REASONS = ["cost-model", "static-rule", "forced", "serial-margin"] as const;
export type ChoiceReason = (typeof CHOICE_REASONS)[number];

const errorBoundSchema = z.tuple([z.number().gt(-1), z.number().gt(-1)]);

/** Coefficients of the cost model (µs per unit of each feature), per member and mode; null: not fitted. */
export const costModelSchema = z.strictObject({
  version: z.literal(1),
  /** The GPU it was fitted on (DeviceInfo.name), the family, and the timing key of the build it timed (codegen/family.ts). */
  gpu: z.string(),
  family: z.string(),
  timingKey: z.string(),
  features: z.array(z.string()),
  members: z.record(z.string(), z.strictObject({ fused: z.array(z.number()).nullable(), serial: z.array(z.number()).nullable() })),
  /** How the fit went: records used, the date; from `podgen tune --family` also the fit set and the error and choice on it. */
  fit: z.looseObject({ records: z.number().int(), date: z.string() }),
  /**
   * The planner's serial margin (templates/family/select.h): per member and mode, [low, high], the
   * (1 - quantile) and quantile points of (measured - predicted) / predicted over the records it was
   * fitted on; null where it has no coefficients. Absent in a model fitted before the margin: none.
   */
  errorBounds: z
    .strictObject({
      quantile: z.number().min(0.5).lt(1),
      members: z.record(z.string(), z.strictObject({ fused: errorBoundSchema.nullable(), serial: errorBoundSchema.nullable() })),
    })
    .optional(),
});
export type CostModel = z.infer<typeof costModelSchema>;

export interface FamilyTypes {
  podgen_family_options: TypeObject;
  podgen_candidate: TypeObject;
  podgen_family_plan: TypeObject;
}

let typesCache: FamilyTypes | undefined;

export function familyTypes(): FamilyTypes {
  if (typesCache) return typesCache;
  const k: Koffi = loadKoffi();
  const base = abiTypes();
  const candidate = k.struct("podgen_candidate", {
    member: "int32_t",
    mode: "int32_t",
    predicted_us: "double",
    features: k.array("double", COST_FEATURE_COUNT),
  });
  typesCache = {
    podgen_family_options: k.struct("podgen_family_options", {
      plan: base.podgen_plan_options,
      force_member: "int32_t",
      force_mode: "int32_t",
      cost_model: "const double *",
      cost_model_len: "int32_t",
      error_bounds_len: "int32_t",
      error_bounds: "const double *",
    }),
    podgen_candidate: candidate,
    podgen_family_plan: k.struct("podgen_family_plan", {
      abi_version: "uint32_t",
      member: "int32_t",
      mode: "int32_t",
      reason: "int32_t",
      num_candidates: "int32_t",
      reserved: "int32_t",
      candidates: k.array(candidate, 2 * FAMILY_MAX_MEMBERS),
      plan: base.podgen_plan,
    }),
  };
  return typesCache;
}

export interface Candidate {
  member: number;
  memberName: string;
  mode: Mode;
  /** null without a cost model (or with no coefficients for this candidate). */
  predictedUs: number | null;
  /** By feature name (FamilyLibrary.featureNames). */
  features: Record<string, number>;
}

/** What a family's plan decided, and the member plan to upload and run. */
export class FamilyPlan {
  readonly member: number;
  readonly memberName: string;
  readonly mode: Mode;
  readonly reason: ChoiceReason;
  readonly candidates: readonly Candidate[];
  readonly plan: PodPlan;

  constructor(readonly c: Readonly<Record<string, unknown>>, memberNames: readonly string[], featureNames: readonly string[]) {
    const mode = (v: unknown) => MODES[Number(v) - 1]!;
    this.member = Number(c.member);
    this.memberName = memberNames[this.member]!;
    this.mode = mode(c.mode);
    this.reason = CHOICE_REASONS[Number(c.reason)]!;
    const raw = (c.candidates as Record<string, unknown>[]).slice(0, Number(c.num_candidates));
    this.candidates = Object.freeze(
      raw.map((x) => {
        const predicted = Number(x.predicted_us);
        const f = x.features as ArrayLike<number>;
        return Object.freeze({
          member: Number(x.member),
          memberName: memberNames[Number(x.member)]!,
          mode: mode(x.mode),
          predictedUs: Number.isFinite(predicted) ? predicted : null,
          features: Object.freeze(Object.fromEntries(featureNames.map((n, i) => [n, Number(f[i])]))),
        });
      }),
    );
    this.plan = new PodPlan(c.plan as Record<string, unknown>);
    Object.freeze(this);
  }

  /** `preset fused (cost model)`: what runs and why, for tables. */
  describe(): string {
    return `${this.memberName} ${this.mode} (${this.reason})`;
  }

  toJSON(): Record<string, unknown> {
    return { member: this.memberName, mode: this.mode, reason: this.reason, candidates: this.candidates, plan: this.plan.toJSON() };
  }
}

export interface FamilyPlanOptions extends PlanOptions {
  /** Run this member (by name) instead of choosing one. */
  member?: string;
  /** Run fused or serial instead of choosing. */
  mode?: Mode;
  /** The fitted model (costModelSchema); without one the static rule decides (templates/family/select.h). */
  costModel?: CostModel;
}

type Fn = (...args: unknown[]) => unknown;

/** A built config family (`podgen build <family>`): one library, one planner choosing per batch. */
export class FamilyLibrary {
  private lib: ReturnType<Koffi["load"]> | undefined;
  private readonly fns: Record<"num_members" | "member_name" | "feature_name" | "member_info" | "info" | "plan" | "plan_benchmark" | "upload_plan" | "run" | "run_reference" | "status_name" | "last_error", Fn>;
  readonly memberNames: readonly string[];
  readonly featureNames: readonly string[];
  /** The last cost model seen, flattened for C (kept alive across calls). */
  private flattened: { model: CostModel; coefficients: Float64Array; errorBounds: Float64Array | null } | undefined;

  constructor(readonly path: string, readonly prefix: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) throw new Error(`family library prefix "${prefix}" is not a C identifier`);
    const k = loadKoffi();
    familyTypes();
    try {
      this.lib = k.load(path);
    } catch (err) {
      throw new Error(`cannot load family library ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const p = prefix;
    const decl = (proto: string): Fn => {
      try {
        const f = this.lib!.func(proto) as Fn;
        return (...args: unknown[]) => {
          if (!this.lib) throw new Error(`family library ${path} was closed`);
          return f(...args);
        };
      } catch (err) {
        throw new Error(`${path} does not export the podgen family ABI with prefix "${p}": ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    this.fns = {
      num_members: decl(`int32_t ${p}_num_members()`),
      member_name: decl(`const char *${p}_member_name(int32_t member)`),
      feature_name: decl(`const char *${p}_feature_name(int32_t feature)`),
      member_info: decl(`int ${p}_member_info(int32_t member, _Out_ podgen_kernel_info *out)`),
      info: decl(`void ${p}_info(_Out_ podgen_kernel_info *out)`),
      plan: decl(`int ${p}_plan(const podgen_batch *batch, const podgen_family_options *options, void *host_staging, uint64_t host_staging_bytes, _Out_ podgen_family_plan *plan)`),
      plan_benchmark: decl(`int ${p}_plan_benchmark(const podgen_batch *batch, const podgen_family_options *options, int32_t iters, _Out_ double *ns_per_plan)`),
      upload_plan: decl(`int ${p}_upload_plan(const podgen_family_plan *plan, const void *host_staging, void *workspace, uint64_t workspace_bytes, void *stream)`),
      run: decl(`int ${p}_run(const podgen_family_plan *plan, const podgen_buffers *buffers, void *stream)`),
      run_reference: decl(`int ${p}_run_reference(const podgen_reference_args *args, void *stream)`),
      status_name: decl(`const char *${p}_status_name(int status)`),
      last_error: decl(`const char *${p}_last_error()`),
    };
    const n = Number(this.fns.num_members());
    this.memberNames = Object.freeze(Array.from({ length: n }, (_, i) => this.fns.member_name(i) as string));
    this.featureNames = Object.freeze(Array.from({ length: COST_FEATURE_COUNT }, (_, i) => this.fns.feature_name(i) as string));
  }

  private check(fn: string, status: unknown): void {
    const s = Number(status);
    if (s === 0) return;
    const name = (this.fns.status_name(s) as string | null) ?? (PODGEN_STATUS as Record<number, string | undefined>)[s] ?? `PODGEN_STATUS_${s}`;
    throw new PodgenError(`${this.prefix}_${fn}`, s, name, (this.fns.last_error() as string | null) ?? "");
  }

  /** The shape every member shares (member 0's info). */
  info(): KernelInfo {
    const out: Record<string, unknown> = {};
    this.fns.info(out);
    return fromCKernelInfo(out);
  }

  memberInfo(member: number): KernelInfo {
    const out: Record<string, unknown> = {};
    this.check("member_info", this.fns.member_info(member, out));
    return fromCKernelInfo(out);
  }

  /** One member as a kernel library of its own (its own prefix in the same shared object). */
  member(name: string): KernelLibrary {
    this.memberIndex(name);
    return new KernelLibrary(this.path, `${this.prefix}__${name}`);
  }

  private memberIndex(name: string): number {
    const i = this.memberNames.indexOf(name);
    if (i < 0) throw new RangeError(`options.member = "${name}": the family ${this.prefix} has members ${this.memberNames.map((m) => `"${m}"`).join(", ")}`);
    return i;
  }

  /**
   * The model as C reads it: coefficients [member][mode][feature], NaN where it has none; error
   * bounds [member][mode][low, high], 0 (no margin) where it has none, null without errorBounds.
   */
  flatten(model: CostModel): NonNullable<FamilyLibrary["flattened"]> {
    if (this.flattened?.model === model) return this.flattened;
    if (model.features.join() !== this.featureNames.join()) {
      throw new RangeError(`costModel.features = ${JSON.stringify(model.features)}: this library's features are ${JSON.stringify(this.featureNames)}`);
    }
    for (const name of [...Object.keys(model.members), ...Object.keys(model.errorBounds?.members ?? {})]) this.memberIndex(name);
    const coefficients = new Float64Array(this.memberNames.length * MODES.length * COST_FEATURE_COUNT).fill(NaN);
    const errorBounds = model.errorBounds ? new Float64Array(this.memberNames.length * MODES.length * 2) : null;
    this.memberNames.forEach((name, m) =>
      MODES.forEach((mode, i) => {
        const candidate = m * MODES.length + i;
        const bound = model.errorBounds?.members[name]?.[mode];
        if (bound) errorBounds!.set(bound, candidate * 2);
        const row = model.members[name]?.[mode];
        if (!row) return;
        if (row.length !== COST_FEATURE_COUNT) throw new RangeError(`costModel.members.${name}.${mode} has ${row.length} coefficients; ${COST_FEATURE_COUNT} needed`);
        coefficients.set(row, candidate * COST_FEATURE_COUNT);
      }),
    );
    this.flattened = { model, coefficients, errorBounds };
    return this.flattened;
  }

  private cOptions(options: FamilyPlanOptions): Record<string, unknown> {
    const { member, mode, costModel, ...plan } = options;
    const model = costModel ? this.flatten(costModel) : null;
    if (mode !== undefined && !MODES.includes(mode)) throw new RangeError(`options.mode = ${JSON.stringify(mode)}: must be one of ${MODES.map((m) => `"${m}"`).join(", ")}`);
    return {
      plan: toCPlanOptions(plan),
      force_member: member === undefined ? 0 : this.memberIndex(member) + 1,
      force_mode: mode === undefined ? 0 : MODES.indexOf(mode) + 1,
      cost_model: model?.coefficients ?? null,
      cost_model_len: model?.coefficients.length ?? 0,
      error_bounds_len: model?.errorBounds?.length ?? 0,
      error_bounds: model?.errorBounds ?? null,
    };
  }

  /** Chooses and plans on the host (no GPU): sizes first, then the staging bytes (reused when large enough). */
  plan(batch: PodBatch, options: FamilyPlanOptions = {}, staging?: Buffer): { plan: FamilyPlan; staging: Buffer } {
    const cBatch = toCBatch(batch);
    const cOptions = this.cOptions(options);
    const sizes: Record<string, unknown> = {};
    this.check("plan", this.fns.plan(cBatch, cOptions, null, 0, sizes));
    const hostBytes = Number((sizes.plan as Record<string, unknown>).host_bytes);
    const buf = staging && staging.length >= hostBytes ? staging : Buffer.alloc(hostBytes);
    const out: Record<string, unknown> = {};
    this.check("plan", this.fns.plan(cBatch, cOptions, buf, buf.length, out));
    // The library stamps its plans with its family ABI version: the struct mirrors above follow one.
    if (Number(out.abi_version) !== PODGEN_FAMILY_ABI_VERSION_SUPPORTED) {
      throw new Error(`family library ${this.path} has family ABI version ${out.abi_version}; this runtime mirrors version ${PODGEN_FAMILY_ABI_VERSION_SUPPORTED} (rebuild it with this podgen)`);
    }
    return { plan: new FamilyPlan(out, this.memberNames, this.featureNames), staging: buf };
  }

  /**
   * The planner's own host time in ns per plan: `iters` plans of the batch timed inside the
   * library (one staging buffer), so without the marshalling that each plan() call here adds.
   */
  planBenchmark(batch: PodBatch, options: FamilyPlanOptions = {}, iters = 1000): number {
    if (!Number.isInteger(iters) || iters < 1) throw new RangeError(`iters = ${iters}: must be a positive integer`);
    const out = [0];
    this.check("plan_benchmark", this.fns.plan_benchmark(toCBatch(batch), this.cOptions(options), iters, out));
    return out[0]!;
  }

  uploadPlan(plan: FamilyPlan, staging: Buffer, workspace: DevPtrLike, workspaceBytes: number | bigint, stream?: StreamLike): void {
    if (BigInt(staging.length) < plan.plan.hostBytes) throw new RangeError(`uploadPlan: the staging buffer holds ${staging.length} bytes; the plan needs ${plan.plan.hostBytes}`);
    const ptr = workspace === null || workspace === undefined ? 0n : typeof workspace === "bigint" ? workspace : workspace.ptr;
    this.check("upload_plan", this.fns.upload_plan(plan.c, staging, ptr, BigInt(workspaceBytes), streamHandle(stream)));
  }

  /** The chosen launch (fused, or the member's prefill-only then decode-only kernels); graph-capturable. */
  run(plan: FamilyPlan, buffers: PodBuffers, stream?: StreamLike): void {
    this.check("run", this.fns.run(plan.c, toCBuffers(buffers), streamHandle(stream)));
  }

  runReference(args: ReferenceArgs, stream?: StreamLike): void {
    this.check("run_reference", this.fns.run_reference(toCReferenceArgs(args), streamHandle(stream)));
  }

  close(): void {
    this.lib?.unload();
    this.lib = undefined;
  }
}
