// Verification of a built kernel against its fp32 reference kernel on one batch: the fused run
// (twice, so the second proves the kernel reset its own counters), the standalone prefill-only +
// decode-only runs, output coverage (outputs are poisoned first), relative L2 error of o and lse,
// and the exactly-once tile counts. Used by `podgen verify` and the GPU suite.
import type { KernelLibrary, PlanOptions, PodPlan } from "./abi.ts";
import { DeviceBatch, type HostBatch } from "./batch.ts";
import { DeviceBuffer, type Device } from "./device.ts";
import { compare, toFloat32, type Dtype16 } from "./numerics.ts";

/**
 * bf16 attention lands near 4e-3; fp16 near 3e-4. An fp8 KV cache is compared with the reference of
 * the dequantized cache (the quantization itself is not an error here), with issue #19's limit.
 */
export const TOLERANCE = { bf16: 1e-2, fp16: 5e-3, fp8Kv: 2e-2, lse: 1e-3 } as const;

/** The limit of o's relative L2 error for a batch's kernel. */
export const outputTolerance = (dims: Pick<HostBatch["dims"], "dtype" | "kvDtype">) =>
  dims.kvDtype === "e4m3" ? TOLERANCE.fp8Kv : TOLERANCE[dims.dtype];

/** PodDeviceHeader (templates/pod/contract.h) as int32 indices. */
const HEADER = { ints: 24 + 256, ticket: 16, ctasDone: 18, tilesDone: 19, smSlot: 24 } as const;

export interface RunCheck {
  mode: "fused" | "fused-again" | "standalone";
  /** Relative L2 error per output (absent when the batch has none of that part). */
  errors: { oPrefill?: number; oDecode?: number; lsePrefill?: number; lseDecode?: number };
  /** Tiles executed per op vs planned (debug counters). */
  tiles: { executed: [number, number]; planned: [number, number] };
  /** Fused runs: tickets, done counter and per-SM slots back at zero after the launch. */
  countersReset: boolean | null;
  problems: string[];
}

export interface VerifyResult {
  pass: boolean;
  plan: ReturnType<PodPlan["toJSON"]>;
  runs: RunCheck[];
  /** Largest error over every run and output, for tables. */
  worst: { o: number; lse: number };
  /**
   * Host milliseconds from `startedAt` until the batch's inputs were enqueued on the GPU (their
   * fill kernels and the output poisoning): an upper bound of the host's time before the first launch.
   */
  hostMs: number;
}

export interface VerifyOptions {
  plan?: PlanOptions;
  /** performance.now() when the caller began the case (default: the call). */
  startedAt?: number;
}

function readHeader(workspace: DeviceBuffer): Int32Array {
  return workspace.download(new Int32Array(HEADER.ints));
}

/** Tiles the kernels executed per op since the last plan upload (plans made with debugCountTiles). */
export function tilesExecuted(workspace: DeviceBuffer): [number, number] {
  const header = workspace.download(new Int32Array(HEADER.tilesDone + 2));
  return [header[HEADER.tilesDone]!, header[HEADER.tilesDone + 1]!];
}

/** Runs every mode on `host` (its inputs drawn on the device) and compares with the reference kernel. */
export function verifyBatch(device: Device, lib: KernelLibrary, host: HostBatch, options: VerifyOptions = {}): VerifyResult {
  const startedAt = options.startedAt ?? performance.now();
  const dtype = host.dims.dtype as Dtype16;
  const { plan, staging } = lib.plan(host.batch, { numSms: device.info.sms, ...options.plan, debugCountTiles: true });
  const dev = DeviceBatch.forBatch(host, lib);
  const hostMs = performance.now() - startedAt;
  const runs: RunCheck[] = [];
  let workspace: DeviceBuffer | undefined;
  try {
    lib.runReference(dev.referenceArgs());
    device.synchronize();
    const ws = (workspace = DeviceBuffer.alloc(Math.max(Number(plan.workspaceBytes), 16), "workspace"));
    const launch = (mode: RunCheck["mode"]) => {
      dev.poisonOutputs();
      if (mode !== "fused-again") lib.uploadPlan(plan, staging, ws, ws.bytes);
      const buffers = dev.podBuffers(ws);
      if (mode === "standalone") {
        lib.runPrefill(plan, buffers);
        lib.runDecode(plan, buffers);
      } else lib.run(plan, buffers);
      device.synchronize();
      runs.push(check(mode, plan, dev, readHeader(ws), dtype, outputTolerance(host.dims), mode === "fused-again" ? 2 : 1));
    };
    launch("fused");
    launch("fused-again");
    launch("standalone");
  } finally {
    workspace?.free();
    dev.free();
  }
  const all = runs.flatMap((r) => Object.entries(r.errors));
  return {
    pass: runs.every((r) => r.problems.length === 0),
    plan: plan.toJSON(),
    runs,
    worst: {
      o: Math.max(0, ...all.filter(([k]) => k.startsWith("o")).map(([, v]) => v!)),
      lse: Math.max(0, ...all.filter(([k]) => k.startsWith("lse")).map(([, v]) => v!)),
    },
    hostMs,
  };
}

function check(mode: RunCheck["mode"], plan: PodPlan, dev: DeviceBatch, header: Int32Array, dtype: Dtype16, limit: number, launches: number): RunCheck {
  const out = dev.readOutputs();
  const problems: string[] = [];
  const errors: RunCheck["errors"] = {};
  const part = (name: keyof RunCheck["errors"], got: ArrayLike<number>, ref: Float32Array, tol: number) => {
    if (ref.length === 0) return;
    const r = compare(got, ref);
    errors[name] = r.relativeL2;
    if (r.nonFinite > 0) problems.push(`${name}: ${r.nonFinite} elements not written or not finite`);
    else if (!(r.relativeL2 <= tol)) problems.push(`${name}: relative L2 error ${r.relativeL2.toExponential(2)} > ${tol}`);
  };
  part("oPrefill", toFloat32(out.oPrefill, dtype), out.refPrefill, limit);
  part("oDecode", toFloat32(out.oDecode, dtype), out.refDecode, limit);
  part("lsePrefill", out.lsePrefill, out.refLsePrefill, TOLERANCE.lse);
  part("lseDecode", out.lseDecode, out.refLseDecode, TOLERANCE.lse);

  const executed: [number, number] = [header[HEADER.tilesDone]!, header[HEADER.tilesDone + 1]!];
  const planned: [number, number] = [plan.numItems[0] * launches, plan.numItems[1] * launches];
  if (executed[0] !== planned[0] || executed[1] !== planned[1]) {
    problems.push(`tiles executed ${executed.join("/")} != planned ${planned.join("/")} (prefill/decode)`);
  }
  let countersReset: boolean | null = null;
  if (mode !== "standalone") {
    const leftovers = [header[HEADER.ticket]!, header[HEADER.ticket + 1]!, header[HEADER.ctasDone]!, ...header.subarray(HEADER.smSlot)];
    countersReset = leftovers.every((x) => x === 0);
    if (!countersReset) problems.push("fused kernel left non-zero tickets, done counter or SM slots");
  }
  return { mode, errors, tiles: { executed, planned }, countersReset, problems };
}
