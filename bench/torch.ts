// The PyTorch baselines of `podgen bench`: what bench/torch_baselines.py reports, running it, and
// the serial figures taken from it (PyTorch's best serial; "Hopper serial" with our decodes).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torchReportSchema } from "./schemas.ts";
import { resolvedWorkloads, type Workload } from "./workloads.ts";
import { readJsonFile } from "../codegen/json.ts";
import type { BatchShape } from "../runtime/index.ts";

export interface TorchWorkload {
  name: string;
  prefill: Record<string, number>;
  decode: Record<string, number>;
  errors: Record<string, string>;
  best_prefill?: { backend: string; ms: number };
  best_decode?: { backend: string; ms: number };
  /** Only where every op the workload has got a backend (reports before that could lack one). */
  best_serial_ms?: number;
  best_serial_backends?: (string | null)[];
  /** SDPA forced to cuDNN, is_causal=False, on every prefill chunk's full q×kv, all chunks in one timed closure. */
  prefill_cudnn_noncausal_ms?: number;
  /** How the GQA heads reached cuDNN: SDPA's enable_gqa, or K/V expanded to Hq heads beforehand. */
  prefill_cudnn_noncausal_gqa?: "enable_gqa" | "repeat_interleave";
}

export interface TorchReport {
  torch: string;
  cuda: string | null;
  cudnn: number | null;
  gpu: string;
  iters: number;
  warmup: number;
  workloads: TorchWorkload[];
  error?: string;
}

export type TorchPart = "prefill" | "decode";

/**
 * PyTorch's best serial time, only where it covers every op the batch has: a serial figure without
 * the decodes (say) is a prefill time, and the fused kernel's time over it no speedup. `missing`
 * names the ops PyTorch has no backend for; empty (and ms null) where PyTorch did not run at all.
 */
export function torchBestSerial(torch: TorchWorkload | null, shape: BatchShape): { ms: number | null; missing: TorchPart[] } {
  if (!torch) return { ms: null, missing: [] };
  const missing: TorchPart[] = [];
  if (shape.prefills.length > 0 && !torch.best_prefill) missing.push("prefill");
  if (shape.decodes.length > 0 && !torch.best_decode) missing.push("decode");
  return { ms: missing.length === 0 ? (torch.best_serial_ms ?? null) : null, missing };
}

/**
 * The "Hopper serial" baseline: PyTorch's cuDNN non-causal prefill plus the fastest decode of any
 * kernel timed in the run, PyTorch's backends and our decode-only kernels (`podgenDecodeMs`, per
 * config; null where one failed). null without the cuDNN prefill or any decode time.
 */
export function hopperSerial(torch: TorchWorkload | null, podgenDecodeMs: Record<string, number | null>): HopperSerial | null {
  const prefill = torch?.prefill_cudnn_noncausal_ms;
  if (prefill === undefined || prefill === null) return null;
  const decodes: [string, number][] = [
    ...Object.entries(torch?.decode ?? {}).map(([backend, t]): [string, number] => [`torch ${backend}`, t]),
    ...Object.entries(podgenDecodeMs).flatMap(([config, t]): [string, number][] => (t === null ? [] : [[`podgen ${config}`, t]])),
  ];
  if (decodes.length === 0) return null;
  const [kernel, decode] = decodes.reduce((a, b) => (b[1] < a[1] ? b : a));
  return { ms: prefill + decode, prefill_ms: prefill, decode_ms: decode, decode_kernel: kernel };
}

/** PyTorch's cuDNN non-causal prefill, then the fastest decode-only kernel the run timed, PyTorch's or ours. */
export interface HopperSerial {
  ms: number;
  prefill_ms: number;
  decode_ms: number;
  /** "torch <backend>" or "podgen <config>". */
  decode_kernel: string;
}

/**
 * Runs bench/torch_baselines.py (`script`) with `python` on the workloads, writing
 * resolved-workloads.json and torch.json into `outDir`; null (and a logged reason) when it fails.
 */
export function torchRunner(python: string, script: string, outDir: string, iters: number, warmup: number, log: (line: string) => void, timeoutS = 240) {
  return (workloads: Workload[]): TorchReport | null => {
    const resolved = join(outDir, "resolved-workloads.json");
    const out = join(outDir, "torch.json");
    writeFileSync(resolved, JSON.stringify(resolvedWorkloads(workloads), null, 1));
    log(`torch baselines: ${python} ${script}`);
    const r = spawnSync(python, [script, resolved, out, "--iters", String(iters), "--warmup", String(warmup)], {
      stdio: ["ignore", "inherit", "inherit"],
      timeout: timeoutS * 1000,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    if (r.error || r.status !== 0) log(`torch baselines: exited ${r.status ?? ""} ${r.signal ?? ""} ${r.error?.message ?? ""}`.trim());
    if (!existsSync(out)) return null;
    try {
      return readJsonFile(torchReportSchema, out, "PyTorch baselines");
    } catch (e) {
      log(`torch baselines: unreadable ${out}: ${(e as Error).message}`);
      return null;
    }
  };
}
