// What `podgen bench` reports: per workload its timings, rates, speedups and overlap; the run's
// summary; and the table printed from a report (also `podgen bench --from`).
import { table } from "./table.ts";
import type { HopperSerial, TorchPart, TorchReport, TorchWorkload } from "./torch.ts";

export interface Timing {
  /** Median ms. */
  ms: number;
  p10: number;
  p90: number;
  copies: number;
}

/** The fastest prefill-only and decode-only kernel among a workload's configs. */
export interface StandaloneBest {
  prefill: { config: string; ms: number; tflops: number } | null;
  decode: { config: string; ms: number; tbps: number } | null;
}

export interface WorkloadResult {
  name: string;
  spec: string;
  prefill_chunk: number;
  prefill_kv: number;
  decode_batch: number;
  decode_kv: number;
  prefills: [number, number][];
  ms: {
    prefill: number | null;
    decode: number | null;
    serial: number | null;
    two_streams: number | null;
    fused_best: number | null;
    /** null where PyTorch lacked one of the workload's ops (torch_serial_missing). */
    torch_best_serial: number | null;
    cudnn_noncausal_prefill: number | null;
    hopper_serial: number | null;
  };
  fused_ms: Record<string, number | null>;
  fused_best_config: string | null;
  prefill_tflops: number | null;
  decode_tbps: number | null;
  fused_tflops_equivalent: number | null;
  speedup_vs_serial: number | null;
  speedup_vs_two_streams: number | null;
  speedup_vs_torch: number | null;
  /** The ops PyTorch ran no backend for: then it has no serial figure, and no speedup is taken against one. */
  torch_serial_missing: TorchPart[];
  hopper_serial: HopperSerial | null;
  /** Hopper serial / fused, for the best config and for the preset ("default"). */
  speedup_vs_hopper_serial: number | null;
  preset_speedup_vs_hopper_serial: number | null;
  overlap_efficiency: number | null;
  /** With standaloneVariants: prefill-only and decode-only ms of every config, and the fastest. */
  standalone?: { ms: Record<string, { prefill: number | null; decode: number | null }>; best: StandaloneBest };
  timings: Record<string, Timing>;
  /** Fused outputs of copy 0 that were not written (poisoned NaN) or not finite, per config. */
  nonfinite_outputs: Record<string, number>;
  plans: Record<string, unknown>;
  torch: TorchWorkload | null;
  errors: string[];
}

export interface BenchReport {
  commit: string;
  gpu: string;
  driver: string;
  cuda: string;
  sms: number;
  date: string;
  iters: number;
  warmup: number;
  specs: Record<string, string>;
  torch: Omit<TorchReport, "workloads"> | null;
  workloads: WorkloadResult[];
  summary: Record<string, number | null>;
}

export function overlapEfficiency(tp: number | null, td: number | null, fused: number | null): number | null {
  return tp !== null && td !== null && fused !== null ? (tp + td - fused) / Math.min(tp, td) : null;
}

/** The table printed last. */
export function formatTable(report: BenchReport): string {
  const f = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? "-" : x.toFixed(digits));
  const header = [
    "workload", "prefill", "decode", "serial", "2 streams", "fused", "best config", "torch", "hopper",
    "TFLOP/s", "TB/s", "x serial", "x torch", "x hopper", "preset x hopper", "overlap",
  ];
  // Reports recorded before torch_serial_missing and the Hopper serial figure lack those fields: "-".
  const rows = report.workloads.map((r) => [
    r.name,
    f(r.ms.prefill),
    f(r.ms.decode),
    f(r.ms.serial),
    f(r.ms.two_streams),
    f(r.ms.fused_best),
    r.fused_best_config ?? "-",
    r.torch_serial_missing?.length ? `no ${r.torch_serial_missing.join("+")}` : f(r.ms.torch_best_serial),
    f(r.ms.hopper_serial),
    f(r.prefill_tflops, 0),
    f(r.decode_tbps, 2),
    f(r.speedup_vs_serial, 2),
    f(r.speedup_vs_torch, 2),
    f(r.speedup_vs_hopper_serial, 2),
    f(r.preset_speedup_vs_hopper_serial, 2),
    f(r.overlap_efficiency, 2),
  ]);
  const s = report.summary;
  return [
    `${report.gpu} (driver ${report.driver}, ${report.sms} SMs), commit ${report.commit}; ms are medians of ${report.iters} after ${report.warmup} warm-up`,
    table(header, rows, (column) => column > 0 && column !== 6), // numbers right-aligned; names and config left
    `geomean fused speedup: ${f(s.geomean_speedup_vs_serial, 2)}x vs our serial, ${f(s.geomean_speedup_vs_torch, 2)}x vs torch best serial, ` +
      `${f(s.geomean_speedup_vs_hopper_serial, 2)}x vs Hopper serial (preset ${f(s.geomean_preset_speedup_vs_hopper_serial, 2)}x); ` +
      `mean overlap efficiency ${f(s.mean_overlap_efficiency, 2)}; min decode ${f(s.min_decode_tbps, 2)} TB/s; min prefill ${f(s.min_prefill_tflops, 0)} TFLOP/s`,
    // What the hopper column adds up, where a workload has it.
    ...(report.workloads.some((r) => r.hopper_serial)
      ? ["hopper = PyTorch SDPA on cuDNN, non-causal, over each prefill chunk's q x kv + the fastest decode-only kernel of the run (PyTorch's or ours)"]
      : []),
    // The overlap column measures the fused time against the preset's own prefill and decode
    // kernels; against the fastest of every variant's it is stricter.
    ...report.workloads.flatMap(({ name, standalone, ms }) => {
      const b = standalone?.best;
      if (!b) return [];
      const part = (x: { config: string; ms: number } | null, rate: string) => (x ? `${x.ms.toFixed(3)} ms, ${rate} (${x.config})` : "-");
      const strict = overlapEfficiency(b.prefill?.ms ?? null, b.decode?.ms ?? null, ms.fused_best);
      return [
        `fastest standalone, ${name}: prefill ${part(b.prefill, `${f(b.prefill?.tflops ?? null, 0)} TFLOP/s`)}; ` +
          `decode ${part(b.decode, `${f(b.decode?.tbps ?? null, 2)} TB/s`)}; overlap against these ${f(strict, 2)}`,
      ];
    }),
  ].join("\n");
}
