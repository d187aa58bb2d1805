// The GPU suite's harness: named cases registered with gpuCase() / hostCase(), run in order,
// reported as passed / failed / skipped (never "passed" without having run), written to
// $OUT/gpu-suite.json and summarized by a last line "N passed, N failed, N skipped".
//
// A case passes when its function returns (a returned string becomes its detail), fails when it
// throws, and is skipped when it throws Skip (skip("why")) or, for a gpuCase, when no CUDA
// device is usable.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cudaAvailable, Device, type CudaAvailability } from "../../runtime/index.ts";

export type CaseStatus = "passed" | "failed" | "skipped";

export interface CaseResult {
  name: string;
  status: CaseStatus;
  detail: string;
  ms: number;
}

export class Skip extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "Skip";
  }
}

/** Throws Skip: the case did not run, for `reason`. */
export function skip(reason: string): never {
  throw new Skip(reason);
}

export interface SuiteContext {
  /** What cudaAvailable() said. */
  cuda: CudaAvailability;
  /** Device 0, opened (primary context current). Only in gpuCase functions. */
  device: Device;
  /** Folder of bundled artifacts (kernel libraries, cubins). */
  artifactsDir: string;
  /** Folder the suite writes its results to. */
  outDir: string;
  /** Path of a bundled artifact; skips the case if it is missing. */
  artifact(name: string): string;
  /** Prints a line under the case's name. */
  log(...parts: unknown[]): void;
}

type CaseFn = (ctx: SuiteContext) => unknown;

interface CaseDef {
  name: string;
  fn: CaseFn;
  needsGpu: boolean;
}

const registry: CaseDef[] = [];

/** Registers a case that needs a CUDA device (skipped without one). */
export function gpuCase(name: string, fn: CaseFn): void {
  register(name, fn, true);
}

/** Registers a case that runs with or without a GPU (e.g. the planner through the C ABI). */
export function hostCase(name: string, fn: CaseFn): void {
  register(name, fn, false);
}

function register(name: string, fn: CaseFn, needsGpu: boolean): void {
  if (registry.some((c) => c.name === name)) throw new Error(`GPU suite case "${name}" registered twice`);
  registry.push({ name, fn, needsGpu });
}

export interface SuiteOptions {
  outDir: string;
  artifactsDir: string;
  commit: string;
  /** Only cases whose name contains one of these. */
  filters?: string[];
  /** Extra fields for the JSON report. */
  extra?: Record<string, unknown>;
  /** Print nothing (the caller reports the results, as test/gpu.test.ts does). */
  quiet?: boolean;
}

export interface SuiteReport {
  commit: string;
  gpu: string | null;
  driver: string | null;
  sms: number | null;
  cuda: unknown;
  cases: CaseResult[];
  passed: number;
  failed: number;
  skipped: number;
  [key: string]: unknown;
}

function errorDetail(err: unknown): string {
  if (err instanceof Error) {
    const frames = (err.stack ?? "").split("\n").slice(1, 4).map((l) => l.trim()).join(" | ");
    return frames ? `${err.message} (${frames})` : err.message;
  }
  return String(err);
}

/** Runs the registered cases and writes `<outDir>/gpu-suite.json`. */
export async function runSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const print = opts.quiet ? () => {} : (line: string) => console.log(line);
  const startedAt = new Date().toISOString();
  const avail = cudaAvailable();
  let device: Device | undefined;
  let noGpuReason = avail.ok ? "" : avail.reason;
  if (avail.ok) {
    try {
      device = Device.open(0);
    } catch (err) {
      noGpuReason = `Device.open failed: ${errorDetail(err)}`;
    }
  }
  if (avail.ok) {
    const d = avail.device;
    print(`GPU: ${d.name} (${d.arch}, ${d.sms} SMs, ${(Number(d.totalMemoryBytes) / 2 ** 30).toFixed(1)} GiB, ` +
      `L2 ${(d.l2Bytes / 2 ** 20).toFixed(0)} MiB, smem/block ${d.maxSharedMemoryPerBlockOptin} B), ` +
      `driver ${d.driverVersion || "?"} (CUDA ${d.cudaVersion})`);
  } else {
    print(`GPU: none — ${avail.reason}`);
  }

  const cases = registry.filter((c) => !opts.filters?.length || opts.filters.some((f) => c.name.includes(f)));
  const results: CaseResult[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    let status: CaseStatus;
    let detail = "";
    if (c.needsGpu && !device) {
      status = "skipped";
      detail = noGpuReason;
    } else {
      const lines: string[] = [];
      const ctx: SuiteContext = {
        cuda: avail,
        get device(): Device {
          if (!device) throw new Skip(noGpuReason);
          return device;
        },
        artifactsDir: opts.artifactsDir,
        outDir: opts.outDir,
        artifact(name: string): string {
          const p = join(opts.artifactsDir, name);
          if (!existsSync(p)) throw new Skip(`artifact ${name} is not in ${opts.artifactsDir}`);
          return p;
        },
        log(...parts: unknown[]): void {
          const line = parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p, bigintReplacer))).join(" ");
          lines.push(line);
          print(`    ${line}`);
        },
      };
      try {
        device?.makeCurrent();
        const r = await c.fn(ctx);
        status = "passed";
        detail = typeof r === "string" ? r : lines.join("; ");
      } catch (err) {
        if (err instanceof Skip) {
          status = "skipped";
          detail = err.message;
        } else {
          status = "failed";
          detail = errorDetail(err);
        }
      }
    }
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    results.push({ name: c.name, status, detail, ms });
    const mark = status === "passed" ? "ok  " : status === "failed" ? "FAIL" : "skip";
    print(`${mark} ${c.name}${detail ? ` — ${detail}` : ""} (${ms} ms)`);
  }

  const count = (s: CaseStatus) => results.filter((r) => r.status === s).length;
  const d = avail.ok ? avail.device : undefined;
  const report: SuiteReport = {
    commit: opts.commit,
    gpu: d?.name ?? null,
    driver: d ? `${d.driverVersion || "unknown"} (CUDA ${d.cudaVersion})` : null,
    sms: d?.sms ?? null,
    cuda: avail.ok ? { ok: true, ...avail.device, totalMemoryBytes: Number(avail.device.totalMemoryBytes) } : avail,
    node: process.version,
    startedAt,
    ...opts.extra,
    cases: results,
    passed: count("passed"),
    failed: count("failed"),
    skipped: count("skipped"),
  };
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, "gpu-suite.json"), JSON.stringify(report, bigintReplacer, 2) + "\n");
  return report;
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
