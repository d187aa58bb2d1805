// The benchmark harness behind `podgen bench` (cli/bench.ts) and `podgen tune` (bench/tune/gpu.ts):
// paper-style hybrid batches (bench/workloads/*.json), each timed in one run as
//
//   prefill      runPrefill on a prefill-only plan
//   decode       runDecode on a decode-only plan
//   serial       the two back to back on one stream
//   two_streams  the two on two streams, forked from and joined back into the timing stream by events
//   fused        run (the POD kernel) on the hybrid plan, for the default spec and each variant
//
// and, where the PyTorch baselines timed cuDNN's non-causal prefill, every variant's decode-only
// kernel: "Hopper serial" is that prefill plus the fastest decode of any kernel in the run.
//
// CUDA events around every iteration (all iterations enqueued before one synchronize, so launch
// gaps stay out), warm-up first, median of `iters`. Every timed operation rotates among enough
// device copies of its inputs (≥ 2, ≥ 160 MiB apart) that the 50 MB L2 holds nothing of the
// copy it reads. Every copy's q, k and v are drawn on the GPU (DeviceBatch.upload), the whole
// cache included.
//
// PyTorch baselines (bench/torch_baselines.py, run by bench/torch.ts) are merged from the JSON that
// script writes. The workloads come from bench/workloads.ts; the report and its table are bench/report.ts.
import { overlapEfficiency, type BenchReport, type Timing, type WorkloadResult } from "./report.ts";
import { geomean } from "./stats.ts";
import { hopperSerial, torchBestSerial, type TorchReport } from "./torch.ts";
import { decodeKvBytes, prefillFlops, selectWorkloads, specsOf, type Workload } from "./workloads.ts";
import { symbolPrefix, type KernelSpec } from "../dsl/index.ts";
import {
  DeviceBatch,
  DeviceBuffer,
  Event,
  CU_EVENT_DISABLE_TIMING,
  KernelLibraries,
  makeHostBatch,
  type KernelLibrary,
  median,
  Stream,
  type BatchShape,
  type Device,
  type Dtype16,
  type HostBatch,
  kvElementBytes,
  type KernelInfo,
  type PodBuffers,
  type PodPlan,
  type RandomSource,
} from "../runtime/index.ts";

/** Bytes a batch's kernel touches at least once (q, o, its own K/V pages). */
export function workingSetBytes(host: HostBatch): number {
  const { numHeadsQ: hq, numHeadsKv: hkv, headDim: d, pageSize, paged } = host.dims;
  const rows = host.batch.kvLens.reduce((s, kv) => s + (paged ? Math.ceil(kv / pageSize) * pageSize : kv), 0);
  const tokens = host.totalPrefillTokens + host.shape.decodes.length;
  return tokens * hq * d * 2 * 2 + rows * hkv * d * kvElementBytes(host.dims) * 2;
}

const L2_FLUSH_BYTES = 160 * 2 ** 20;
const MAX_COPIES = 8;

export function copiesFor(bytesPerCopy: number): number {
  return Math.max(2, Math.min(MAX_COPIES, Math.ceil(L2_FLUSH_BYTES / Math.max(bytesPerCopy, 1)) + 1));
}

// ---------------------------------------------------------------------------------------------
// Device side

/** `count` device copies of one batch (the same data: the inputs drawn from the batch's seed). */
export function deviceCopies(host: HostBatch, count: number, lib: RandomSource): DeviceBatch[] {
  const copies: DeviceBatch[] = [];
  try {
    for (let i = 0; i < count; i++) copies.push(DeviceBatch.forBatch(host, lib));
  } catch (e) {
    for (const c of copies) c.free();
    throw e;
  }
  return copies;
}

/** A plan with its workspace, uploaded once. */
interface Planned {
  lib: KernelLibrary;
  plan: PodPlan;
  workspace: DeviceBuffer;
  buffers: PodBuffers[];
}

function planned(lib: KernelLibrary, host: HostBatch, copies: DeviceBatch[], numSms: number): Planned {
  const { plan, staging } = lib.plan(host.batch, { numSms });
  const workspace = DeviceBuffer.alloc(Math.max(Number(plan.workspaceBytes), 16), "workspace");
  lib.uploadPlan(plan, staging, workspace, workspace.bytes);
  // A workload's configs share its batch, whose sink logits follow the workload's spec: a config
  // without sinks (a plain twin, bench/workloads/variants.json) is passed none.
  const takesSinks = lib.info().sinks;
  const buffers = copies.map((c) => (takesSinks ? c.podBuffers(workspace) : { ...c.podBuffers(workspace), sinks: null }));
  return { lib, plan, workspace, buffers };
}

export class Timer {
  private readonly starts: Event[];
  private readonly ends: Event[];

  constructor(
    readonly stream: Stream,
    readonly iters: number,
    readonly warmup: number,
  ) {
    this.starts = Array.from({ length: iters }, () => Event.create());
    this.ends = Array.from({ length: iters }, () => Event.create());
  }

  /** Times `body(i)` (i counts every call, warm-up included; use it to pick the input copy). */
  time(copies: number, body: (i: number) => void): Timing {
    for (let i = 0; i < this.warmup; i++) body(i);
    for (let i = 0; i < this.iters; i++) {
      this.starts[i]!.record(this.stream);
      body(this.warmup + i);
      this.ends[i]!.record(this.stream);
    }
    this.stream.synchronize();
    const ms = this.ends.map((e, i) => e.elapsedMs(this.starts[i]!)).sort((a, b) => a - b);
    const q = (f: number) => ms[Math.min(ms.length - 1, Math.floor(f * ms.length))]!;
    return { ms: median(ms), p10: q(0.1), p90: q(0.9), copies };
  }

  destroy(): void {
    for (const e of [...this.starts, ...this.ends]) e.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The run

export interface BenchOptions {
  iters: number;
  warmup: number;
  /** Kernel library path of a spec. */
  library: (spec: KernelSpec) => string;
  torch?: TorchReport | null;
  log?: (line: string) => void;
  /** Time the fused configs only (the tuner's timer): no prefill-only/decode-only/serial/two-stream runs. */
  fusedOnly?: boolean;
  /** Also time every variant's prefill-only and decode-only kernels (`standalone`). */
  standaloneVariants?: boolean;
}

/** The exponent bits of a 16-bit float: all set in NaN (the poison) and infinities. */
const EXPONENT_MASK: Record<Dtype16, number> = { bf16: 0x7f80, fp16: 0x7c00 };

/** Outputs (o) of the uploaded batch that were not written (still the poison, NaN) or are not finite. */
export function nonFinite(dev: DeviceBatch, dtype: Dtype16): number {
  const host = dev.current!;
  const { numHeadsQ: hq, headDim: d } = dev.dims;
  const mask = EXPONENT_MASK[dtype];
  let bad = 0;
  for (const [buffer, rows] of [[dev.oPrefill, host.totalPrefillTokens], [dev.oDecode, host.shape.decodes.length]] as const) {
    for (const bits of buffer.download(new Uint16Array(rows * hq * d))) if ((bits & mask) === mask) bad++;
  }
  return bad;
}

export function runWorkload(
  device: Device,
  w: Workload,
  opts: BenchOptions,
  timer: Timer,
  side: [Stream, Stream],
  libFor: (spec: KernelSpec) => KernelLibrary,
): WorkloadResult {
  const log = opts.log ?? (() => {});
  const base = w.configs[0]!.spec;
  const numSms = device.info.sms;
  const errors: string[] = [];
  const timings: Record<string, Timing> = {};
  const fused: Record<string, number | null> = {};
  const nonfinite: Record<string, number> = {};
  const plans: Record<string, unknown> = {};
  const toFree: { free(): void }[] = [];
  const hq = base.heads.q;
  const d = base.headDim;
  const torch = opts.torch?.workloads.find((t) => t.name === w.name) ?? null;
  try {
    const lib = libFor(base);
    const info: KernelInfo = lib.info();
    const dtype = info.dtype as Dtype16;
    const mk = (shape: BatchShape, seed: number) => makeHostBatch(info, shape, { seed, shufflePages: w.shufflePages });
    const hostH = mk(w.shape, 3);
    const copies = (h: HostBatch) => {
      const c = deviceCopies(h, copiesFor(workingSetBytes(h)), lib);
      toFree.push(...c);
      return c;
    };
    const devH = copies(hostH);
    const measure = (key: string, copiesN: number, body: (i: number) => void) => {
      try {
        timings[key] = timer.time(copiesN, body);
        log(`  ${key.padEnd(24)} ${timings[key]!.ms.toFixed(3)} ms (p10 ${timings[key]!.p10.toFixed(3)}, p90 ${timings[key]!.p90.toFixed(3)}, ${copiesN} copies)`);
      } catch (e) {
        errors.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
        log(`  ${key}: FAILED ${e instanceof Error ? e.message : String(e)}`);
        try {
          device.synchronize();
        } catch {
          // a sticky error: the next measurements fail too, and say so
        }
      }
    };
    const main = timer.stream;
    if (!opts.fusedOnly) {
      const hostP = mk({ prefills: w.shape.prefills, decodes: [] }, 1);
      const hostD = mk({ prefills: [], decodes: w.shape.decodes }, 2);
      const devP = copies(hostP);
      const devD = copies(hostD);
      const p = planned(lib, hostP, devP, numSms);
      const dd = planned(lib, hostD, devD, numSms);
      toFree.push(p.workspace, dd.workspace);
      plans.prefill_only = p.plan.toJSON();
      plans.decode_only = dd.plan.toJSON();
      const [s1, s2] = side;
      const fork = Event.create(CU_EVENT_DISABLE_TIMING);
      const join1 = Event.create(CU_EVENT_DISABLE_TIMING);
      const join2 = Event.create(CU_EVENT_DISABLE_TIMING);
      toFree.push({ free: () => [fork, join1, join2].forEach((e) => e.destroy()) });
      const nP = devP.length;
      const nD = devD.length;
      measure("prefill", nP, (i) => lib.runPrefill(p.plan, p.buffers[i % nP]!, main));
      measure("decode", nD, (i) => lib.runDecode(dd.plan, dd.buffers[i % nD]!, main));
      measure("serial", Math.max(nP, nD), (i) => {
        lib.runPrefill(p.plan, p.buffers[i % nP]!, main);
        lib.runDecode(dd.plan, dd.buffers[i % nD]!, main);
      });
      measure("two_streams", Math.max(nP, nD), (i) => {
        fork.record(main);
        s1.waitEvent(fork);
        s2.waitEvent(fork);
        lib.runPrefill(p.plan, p.buffers[i % nP]!, s1);
        lib.runDecode(dd.plan, dd.buffers[i % nD]!, s2);
        join1.record(s1);
        join2.record(s2);
        main.waitEvent(join1);
        main.waitEvent(join2);
      });
      // Hopper serial takes the fastest decode of any kernel, so every variant's decode-only kernel
      // is timed wherever PyTorch's cuDNN prefill gives that figure its other half.
      const variantDecodes = opts.standaloneVariants || torch?.prefill_cudnn_noncausal_ms !== undefined;
      if (variantDecodes) {
        for (const c of w.configs.slice(1)) {
          try {
            const cl = libFor(c.spec);
            if (opts.standaloneVariants) {
              const vp = planned(cl, hostP, devP, numSms);
              toFree.push(vp.workspace);
              measure(`prefill ${c.label}`, nP, (i) => cl.runPrefill(vp.plan, vp.buffers[i % nP]!, main));
            }
            const vd = planned(cl, hostD, devD, numSms);
            toFree.push(vd.workspace);
            measure(`decode ${c.label}`, nD, (i) => cl.runDecode(vd.plan, vd.buffers[i % nD]!, main));
          } catch (e) {
            errors.push(`standalone ${c.label}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    }
    const nH = devH.length;
    for (const c of w.configs) {
      const key = `fused ${c.label}`;
      try {
        const cl = libFor(c.spec);
        const h = planned(cl, hostH, devH, numSms);
        toFree.push(h.workspace);
        plans[key] = { spec: c.spec.name, hash: c.spec.hash, ...h.plan.toJSON() };
        for (const dev of devH) dev.poisonOutputs();
        device.synchronize();
        measure(key, nH, (i) => cl.run(h.plan, h.buffers[i % nH]!, main));
        fused[c.label] = timings[key]?.ms ?? null;
        nonfinite[c.label] = nonFinite(devH[0]!, dtype);
        if (nonfinite[c.label]! > 0) errors.push(`${key}: ${nonfinite[c.label]} outputs not written or not finite`);
      } catch (e) {
        fused[c.label] = null;
        errors.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
        log(`  ${key}: FAILED ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  } catch (e) {
    errors.push(`workload: ${e instanceof Error ? e.message : String(e)}`);
    log(`  FAILED ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    try {
      device.synchronize();
    } catch {
      // reported above
    }
    for (const f of toFree) f.free();
  }

  const ms = (k: string) => timings[k]?.ms ?? null;
  const okFused = Object.entries(fused).filter(([label, v]) => v !== null && (nonfinite[label] ?? 0) === 0) as [string, number][];
  const best = okFused.length ? okFused.reduce((a, b) => (b[1] < a[1] ? b : a)) : null;
  const tp = ms("prefill");
  const td = ms("decode");
  const serial = ms("serial");
  const torchSerial = torchBestSerial(torch, w.shape);
  const hopper = hopperSerial(torch, Object.fromEntries(w.configs.map((c, i) => [c.label, i === 0 ? td : ms(`decode ${c.label}`)])));
  const presetFused = okFused.find(([label]) => label === "default")?.[1] ?? null;
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
  const window = base.window ?? Infinity;
  const flops = prefillFlops(w.shape, hq, d, window);
  const kvBytes = decodeKvBytes(w.shape, base.heads.kv, d, kvElementBytes({ kvDtype: base.kvDtype ?? base.dtype }), window);
  let standalone: WorkloadResult["standalone"];
  if (opts.standaloneVariants && !opts.fusedOnly) {
    const perConfig = Object.fromEntries(
      w.configs.map((c, i) => [c.label, i === 0 ? { prefill: tp, decode: td } : { prefill: ms(`prefill ${c.label}`), decode: ms(`decode ${c.label}`) }]),
    );
    const fastest = (part: "prefill" | "decode") => {
      let winner: [string, number] | null = null;
      for (const [label, v] of Object.entries(perConfig)) {
        const t = v[part];
        if (t !== null && (winner === null || t < winner[1])) winner = [label, t];
      }
      return winner;
    };
    const bp = fastest("prefill");
    const bd = fastest("decode");
    standalone = {
      ms: perConfig,
      best: {
        prefill: bp && { config: bp[0], ms: bp[1], tflops: flops / (bp[1] * 1e-3) / 1e12 },
        decode: bd && { config: bd[0], ms: bd[1], tbps: kvBytes / (bd[1] * 1e-3) / 1e12 },
      },
    };
  }
  return {
    name: w.name,
    spec: w.specName,
    prefill_chunk: w.shape.prefills.reduce((s, x) => s + x.qLen, 0),
    prefill_kv: Math.max(...w.shape.prefills.map((x) => x.kvLen)),
    decode_batch: w.shape.decodes.length,
    decode_kv: Math.max(...w.shape.decodes),
    prefills: w.shape.prefills.map((x) => [x.qLen, x.kvLen]),
    ms: {
      prefill: tp,
      decode: td,
      serial,
      two_streams: ms("two_streams"),
      fused_best: best?.[1] ?? null,
      torch_best_serial: torchSerial.ms,
      cudnn_noncausal_prefill: torch?.prefill_cudnn_noncausal_ms ?? null,
      hopper_serial: hopper?.ms ?? null,
    },
    fused_ms: fused,
    fused_best_config: best?.[0] ?? null,
    prefill_tflops: tp ? flops / (tp * 1e-3) / 1e12 : null,
    decode_tbps: td ? kvBytes / (td * 1e-3) / 1e12 : null,
    fused_tflops_equivalent: best ? flops / (best[1] * 1e-3) / 1e12 : null,
    speedup_vs_serial: ratio(serial, best?.[1] ?? null),
    speedup_vs_two_streams: ratio(ms("two_streams"), best?.[1] ?? null),
    speedup_vs_torch: ratio(torchSerial.ms, best?.[1] ?? null),
    torch_serial_missing: torchSerial.missing,
    hopper_serial: hopper,
    speedup_vs_hopper_serial: ratio(hopper?.ms ?? null, best?.[1] ?? null),
    preset_speedup_vs_hopper_serial: ratio(hopper?.ms ?? null, presetFused),
    overlap_efficiency: overlapEfficiency(tp, td, best?.[1] ?? null),
    ...(standalone ? { standalone } : {}),
    timings,
    nonfinite_outputs: nonfinite,
    plans,
    torch,
    errors,
  };
}

export function runBench(device: Device, workloads: Workload[], opts: BenchOptions & { commit: string }): BenchReport {
  const log = opts.log ?? (() => {});
  const main = Stream.create();
  const side: [Stream, Stream] = [Stream.create(), Stream.create()];
  const timer = new Timer(main, opts.iters, opts.warmup);
  const results: WorkloadResult[] = [];
  const libs = new KernelLibraries();
  const libFor = (spec: KernelSpec) => libs.get(opts.library(spec), symbolPrefix(spec));
  try {
    for (const w of workloads) {
      log(`${w.name} (${w.specName}): prefills ${w.shape.prefills.map((p) => `${p.qLen}/${p.kvLen}`).join(" ")}, ${w.shape.decodes.length} decodes`);
      results.push(runWorkload(device, w, opts, timer, side, libFor));
    }
  } finally {
    timer.destroy();
    for (const s of [main, ...side]) s.destroy();
    libs.close();
  }
  const vals = (f: (r: WorkloadResult) => number | null) => results.map(f).filter((x): x is number => x !== null);
  const { workloads: _w, ...torchMeta } = opts.torch ?? { workloads: [] };
  return {
    commit: opts.commit,
    gpu: device.info.name,
    driver: device.info.driverVersion,
    cuda: device.info.cudaVersion,
    sms: device.info.sms,
    date: new Date().toISOString(),
    iters: opts.iters,
    warmup: opts.warmup,
    specs: Object.fromEntries(specsOf(workloads).map((s) => [s.name, s.hash])),
    torch: opts.torch ? (torchMeta as Omit<TorchReport, "workloads">) : null,
    workloads: results,
    summary: {
      geomean_speedup_vs_torch: geomean(vals((r) => r.speedup_vs_torch)),
      geomean_speedup_vs_serial: geomean(vals((r) => r.speedup_vs_serial)),
      geomean_speedup_vs_hopper_serial: geomean(vals((r) => r.speedup_vs_hopper_serial)),
      geomean_preset_speedup_vs_hopper_serial: geomean(vals((r) => r.preset_speedup_vs_hopper_serial)),
      mean_overlap_efficiency: vals((r) => r.overlap_efficiency).length
        ? vals((r) => r.overlap_efficiency).reduce((a, b) => a + b, 0) / vals((r) => r.overlap_efficiency).length
        : null,
      min_decode_tbps: vals((r) => r.decode_tbps).length ? Math.min(...vals((r) => r.decode_tbps)) : null,
      min_prefill_tflops: vals((r) => r.prefill_tflops).length ? Math.min(...vals((r) => r.prefill_tflops)) : null,
    },
  };
}

/** (Tp + Td - Tfused) / min(Tp, Td): 1 when the shorter op hides entirely under the longer one. */
// ---------------------------------------------------------------------------------------------
// The whole run, shared by the CLI and the bundle entry

export interface RunAllOptions {
  workloadsPath: string;
  filters: string[];
  iters: number;
  warmup: number;
  library: (spec: KernelSpec) => string;
  commit: string;
  /** Runs the torch baselines for a resolved-workloads file; returns their report or null. */
  torch?: (workloads: Workload[]) => TorchReport | null;
  openDevice: () => Device;
  log: (line: string) => void;
  standaloneVariants?: boolean;
  /** false: each workload's own spec only, not the file's variants (default true). */
  variants?: boolean;
}

export function runAll(o: RunAllOptions): BenchReport {
  const workloads = selectWorkloads(o.workloadsPath, o.filters, { variants: o.variants });
  // Torch first, in its own process, before this one holds any device memory.
  const torch = o.torch ? o.torch(workloads) : null;
  const device = o.openDevice();
  return runBench(device, workloads, {
    iters: o.iters,
    warmup: o.warmup,
    library: o.library,
    torch,
    commit: o.commit,
    log: o.log,
    standaloneVariants: o.standaloneVariants,
  });
}

