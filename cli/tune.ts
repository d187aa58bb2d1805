// `podgen tune`: search a space of kernel specs (dsl/space.ts) for the fastest on a workload mix,
// on the GPU in hand, and keep every measurement in the tuning database (bench/tune/db.ts).
//
//   enumerate  the space over the base spec; checkSpec prunes infeasible points (with reasons)
//   compile    every candidate, nvcc jobs = cores, through the content-hash build cache
//   verify     each candidate on one batch against the fp32 reference; wrong ones are never timed
//   search     exhaustive or successive halving (bench/tune/strategy.ts), timing with the bench
//              harness; every timing is written to the DB as it completes, so a re-run resumes
//   report     the top-k table (`--report`, no GPU needed), optionally an SVG
//
// Register with registerTuneCommand(program). `tunedSpecs` is what `podgen build --tuned` uses.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import { SingleBar, Presets as BarStyles } from "cli-progress";
import {
  defaultSpace,
  describePoint,
  enumerateSpace,
  presetByName,
  PRESETS,
  space as toSpace,
  spaceSize,
  type Candidate,
  type KernelSpec,
  type SearchSpace,
} from "../dsl/index.ts";
import { buildKeyFor, nvccVersion } from "../codegen/build.ts";
import { cudaAvailable, type DeviceInfo } from "../runtime/index.ts";
import { loadWorkloads, type Workload } from "../bench/workloads.ts";
import {
  DEFAULT_DB,
  entryKey,
  findEntries,
  gpuKey,
  newEntry,
  readDb,
  shapeKey,
  tunedSpec,
  TuningStore,
  workloadMix,
  type GpuId,
} from "../bench/tune/db.ts";
import { planRungs, type StrategyName } from "../bench/tune/strategy.ts";
import { checkTarget, tuneOnDevice } from "../bench/tune/gpu.ts";
import { plotEntries, reportEntries, type SpacePruning } from "../bench/tune/report.ts";
import { compileCandidates } from "../bench/tune/compile.ts";
import { workloadFileError } from "./bench.ts";
import { importDefault, loadSpecs } from "./load-spec.ts";
import { table } from "../bench/table.ts";
import { givenFlags, openGpu, packageFile, positiveArg, shownPath } from "./args.ts";
import { DEFAULT_COST_MODELS } from "../bench/tune/cost-model.ts";
import { UsageError } from "./usage-error.ts";
import { DEFAULT_FIT_BATCHES, DEFAULT_FIT_SEED, DEFAULT_LIGHT_DECODE_BATCHES, SERVING_MIX_NAMES } from "../bench/family-batches.ts";


export interface TuneOpts {
  family?: string;
  preset?: string;
  spec?: string;
  workloads: string;
  filter: string[];
  space?: string;
  strategy: string;
  eta: string;
  budget?: string;
  minutes?: string;
  iters?: string;
  warmup?: string;
  jobs: string;
  db: string;
  fresh?: boolean;
  dryRun?: boolean;
  report?: boolean;
  top: string;
  gpu?: string;
  plot?: string | boolean;
  json?: boolean;
  fitBatches: string;
  fitLight: string;
  fitSeed: string;
  mix?: string;
  out?: string;
  models: string;
  from?: string;
}

async function baseSpec(opts: TuneOpts): Promise<KernelSpec> {
  if (!!opts.preset === !!opts.spec) throw new UsageError("name the spec to tune: --preset NAME or --spec FILE (one of them), or a config family: --family NAME");
  if (opts.preset) {
    const p = presetByName(opts.preset);
    if (!p) throw new UsageError(`--preset ${opts.preset}: not a preset (${PRESETS.map((x) => x.name).join(", ")})`);
    return p;
  }
  const specs = await loadSpecs([opts.spec!]);
  if (specs.length !== 1) throw new UsageError(`--spec ${opts.spec}: holds ${specs.length} specs; tune one at a time`);
  return specs[0]!;
}

/** A space file: .json (the object pod.space takes) or .ts/.js with `export default pod.space({...})`. */
export async function loadSpace(path: string): Promise<SearchSpace> {
  const full = resolve(path);
  if (!existsSync(full)) throw new UsageError(`--space ${path}: no such file`);
  let value: unknown;
  try {
    value = full.endsWith(".json") ? JSON.parse(readFileSync(full, "utf8")) : await importDefault(full, (v) => "kind" in v);
  } catch (e) {
    throw new UsageError(`--space ${path}: ${(e as Error).message}`);
  }
  try {
    return toSpace(value);
  } catch (e) {
    throw new UsageError(`--space ${path}: ${(e as Error).message}`);
  }
}

/** The workloads of the file that run the base spec's model shape (and match --filter). */
export function tuneWorkloads(path: string, base: KernelSpec, filters: readonly string[]): Workload[] {
  const { chosen, all } = workloadsOfShape(path, base, filters);
  if (chosen.length === 0) {
    throw new UsageError(
      `no workload of ${shownPath(path)} runs ${shapeKey(base)}${filters.length ? ` and matches ${filters.join(", ")}` : ""} (workloads: ${all.map((w) => `${w.name} [${w.specName}]`).join(", ")})`,
    );
  }
  return chosen;
}

/** The workloads of `path` that run the base's model shape and match a filter (any, without filters); `all` of them too. */
export function workloadsOfShape(path: string, base: KernelSpec, filters: readonly string[]): { chosen: Workload[]; all: Workload[] } {
  if (!existsSync(path)) throw new UsageError(`--workloads ${shownPath(path)}: no such file`);
  let all: Workload[];
  try {
    all = loadWorkloads(path);
  } catch (e) {
    throw workloadFileError(e, shownPath(path));
  }
  const chosen = all.filter((w) => shapeKey(w.configs[0]!.spec) === shapeKey(base) && (filters.length === 0 || filters.some((f) => w.name.includes(f))));
  return { chosen, all };
}

/** At most `budget` candidates: the base and a hash-ordered (stable, spread-out) sample of the rest. */
export function applyBudget(cands: readonly Candidate[], budget: number | undefined): Candidate[] {
  if (budget === undefined || cands.length <= budget) return [...cands];
  const h = (s: string) => createHash("sha256").update(s).digest("hex");
  const rest = cands.filter((c) => !c.isBase).sort((a, b) => h(a.name).localeCompare(h(b.name)));
  return [...cands.filter((c) => c.isBase), ...rest].slice(0, Math.max(1, budget));
}

const gpuIdOf = (info: DeviceInfo): GpuId => ({ name: info.name, ccMajor: info.ccMajor, ccMinor: info.ccMinor });

/**
 * What `podgen build --tuned` builds: each spec's tuned variant for this GPU, or the spec with a
 * message (stderr). Candidates measured on other kernels than the current templates and nvcc build
 * (their recorded build key differs from buildKeyFor's) are ignored, and the message counts them.
 */
export async function tunedSpecs(specs: readonly KernelSpec[], opts: { dbPath?: string; log?: (line: string) => void; gpu?: GpuId | null; nvcc?: string } = {}): Promise<KernelSpec[]> {
  const log = opts.log ?? ((l: string) => console.error(l));
  let gpu = opts.gpu;
  let noGpu = "";
  if (gpu === undefined) {
    const avail = cudaAvailable();
    gpu = avail.ok ? gpuIdOf(avail.device) : null;
    if (!avail.ok) noGpu = ` (${avail.reason})`;
  }
  if (!gpu) {
    for (const s of specs) log(`${s.name}: no GPU to look up tuning results for${noGpu}; using ${s.name} as is`);
    return [...specs];
  }
  const dbPath = opts.dbPath ?? process.env.PODGEN_TUNING_DB ?? DEFAULT_DB;
  // The build that follows needs nvcc too: without it, this fails the same way, before any lookup.
  const nvcc = opts.nvcc ?? (await nvccVersion());
  // podgen tune compiles its candidates without extra flags, as podgen build does.
  const buildKey = (spec: KernelSpec) => buildKeyFor(spec, nvcc);
  return specs.map((s) => {
    const r = tunedSpec(s, gpu, { dbPath, buildKey });
    log(`${s.name}: ${r.message}`);
    return r.spec;
  });
}

// ---------------------------------------------------------------------------------------------

function printEnumeration(base: KernelSpec, s: SearchSpace, cands: Candidate[], pruned: ReturnType<typeof enumerateSpace>["pruned"], json: boolean, strategy: StrategyName, workloads: Workload[], iters: number, eta: number) {
  const rungs = planRungs(strategy, cands.length, workloads.map((w) => w.name), iters, eta);
  if (json) {
    console.log(JSON.stringify({ base: base.name, spaceSize: spaceSize(s), candidates: cands.map((c) => ({ name: c.name, hash: c.spec.hash, point: c.point, isBase: c.isBase })), pruned, strategy, rungs }, null, 1));
    return;
  }
  console.log(`${base.name}: ${spaceSize(s)} points, ${pruned.length} pruned by the resource model, ${cands.length} candidates (base included)\n`);
  console.log(table(["candidate", "point"], cands.map((c) => [c.name, c.isBase ? "(base spec)" : describePoint(c.point)])));
  if (pruned.length > 0) {
    console.log(`\npruned:`);
    for (const p of pruned) console.log(`  ${describePoint(p.point)}\n    ${p.reasons.join("\n    ")}`);
  }
  console.log(`\n${strategy}: ${rungs.map((r) => `${r.size} × ${r.workloads.length} workload(s) × ${r.iters} iters`).join(" → ")}`);
}

// ---------------------------------------------------------------------------------------------

export async function tune(opts: TuneOpts): Promise<void> {
  const base = await baseSpec(opts);
  const iters = positiveArg("--iters", opts.iters ?? "40");
  const warmup = positiveArg("--warmup", opts.warmup ?? "5");
  const eta = positiveArg("--eta", opts.eta);
  if (eta < 2) throw new UsageError(`--eta = ${opts.eta}: must be at least 2`);
  const top = positiveArg("--top", opts.top);
  const jobs = positiveArg("--jobs", opts.jobs);
  const budget = opts.budget !== undefined ? positiveArg("--budget", opts.budget) : undefined;
  const minutes = opts.minutes !== undefined ? positiveArg("--minutes", opts.minutes, false) : undefined;
  if (!["auto", "exhaustive", "halving"].includes(opts.strategy)) throw new UsageError(`--strategy ${opts.strategy}: one of auto, exhaustive, halving`);
  const workloadsPath = resolve(opts.workloads);
  const workloads = tuneWorkloads(workloadsPath, base, opts.filter);
  const mix = workloadMix(workloadsPath, workloads, opts.filter.length > 0);
  const dbPath = resolve(opts.db);

  const s = opts.space ? await loadSpace(opts.space) : defaultSpace(base);
  const { candidates: all, pruned } = enumerateSpace(base, s);
  const pruning: SpacePruning = { space: opts.space ?? "default", points: spaceSize(s), pruned: pruned.length };

  if (opts.report) {
    const db = readDb(dbPath);
    const entries = findEntries(db, base, { mixHash: mix.hash }).filter((e) => !opts.gpu || gpuKey(e.gpu).includes(opts.gpu));
    if (entries.length === 0) {
      const other = findEntries(db, base).map((e) => `  ${e.key}`);
      console.log(`no tuning results in ${shownPath(dbPath)} for ${shapeKey(base)}, workloads ${mix.label}${opts.gpu ? `, GPU ~ ${opts.gpu}` : ""}${other.length ? `\nentries for this model shape:\n${other.join("\n")}` : ""}`);
      return;
    }
    reportEntries(entries, top, !!opts.json, pruning);
    if (opts.plot) {
      const out = typeof opts.plot === "string" ? opts.plot : dbPath.replace(/\.json$/, "") + ".svg";
      console.log(`wrote ${shownPath(await plotEntries(entries, top, resolve(out)))}`);
    }
    return;
  }

  const cands = applyBudget(all, budget);
  const strategy: StrategyName = opts.strategy === "auto" ? (cands.length > 16 ? "halving" : "exhaustive") : (opts.strategy as StrategyName);
  if (opts.dryRun) return printEnumeration(base, s, cands, pruned, !!opts.json, strategy, workloads, iters, eta);

  const bar = (format: string) => (process.stderr.isTTY && !opts.json ? new SingleBar({ format, stream: process.stderr, etaBuffer: 20 }, BarStyles.shades_classic) : undefined);
  const log = (l: string) => console.error(l);
  const compile = async (store: TuningStore | undefined) => {
    const cbar = bar("compiling [{bar}] {value}/{total} | {duration_formatted} | ETA {eta_formatted}");
    cbar?.start(cands.length, 0);
    let compiled = 0;
    const out = await compileCandidates(cands, store, { jobs, onDone: () => cbar?.update(++compiled) });
    cbar?.stop();
    for (const f of out.failed) log(`build failed: ${f.name}: ${f.error.split("\n")[0]}`);
    return out;
  };

  const device = openGpu("podgen tune", "try --dry-run to see the candidates, --report for recorded results");
  checkTarget(device, base);
  const gpu = gpuIdOf(device.info);
  const key = entryKey(gpu, shapeKey(base), mix);
  const store = new TuningStore(dbPath, key, () => newEntry(key, gpu, base, mix));
  for (const c of cands) store.candidate(c);
  store.save();
  log(`tuning ${base.name} on ${gpuKey(gpu)}: ${cands.length} candidates (${pruned.length} points pruned), ${workloads.length} workload(s), strategy ${strategy}; results: ${shownPath(dbPath)}`);

  // Stop cleanly on the first Ctrl-C (the current chunk finishes and is saved) or at --minutes.
  let interrupted: string | undefined;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = "interrupted (Ctrl-C again to quit now); re-run the same command to resume";
    log(`\n${interrupted}`);
  };
  process.on("SIGINT", onSigint);
  const deadline = minutes !== undefined ? Date.now() + minutes * 60_000 : undefined;
  const shouldStop = () => interrupted ?? (deadline !== undefined && Date.now() > deadline ? `--minutes ${minutes} reached; re-run to resume` : undefined);
  try {
    const { built } = await compile(store);
    const vbar = bar("verifying [{bar}] {value}/{total} | wrong {wrong} | ETA {eta_formatted}");
    vbar?.start(built.size, 0, { wrong: 0 });
    const sbar = bar("timing [{bar}] {value}/{total} | rung {rung} | best {best} | ETA {eta_formatted}");
    let wrongCount = 0;
    let timing = false;
    const r = await tuneOnDevice({
      device,
      store,
      cands,
      libraries: new Map([...built].map(([name, b]) => [name, b.library])),
      workloads,
      strategy,
      iters,
      warmup,
      eta,
      fresh: opts.fresh,
      shouldStop,
      onVerified: (c, pass) => {
        if (!pass) {
          wrongCount++;
          log(`${vbar ? "\n" : ""}wrong: ${c.name} (${describePoint(c.point)}): ${store.candidate(c).verify!.problems.slice(0, 2).join("; ")} — discarded`);
        }
        vbar?.increment(1, { wrong: wrongCount });
      },
      onProgress: (p) => {
        if (!timing) {
          timing = true;
          vbar?.stop();
          sbar?.start(p.total, 0, { rung: "-", best: "-" });
        }
        sbar?.setTotal(p.total);
        sbar?.update(p.done, { rung: `${p.rung + 1}/${p.rungs}`, best: p.best ? `${p.best.name} ${p.best.ms.toFixed(3)} ms` : "-" });
      },
    });
    vbar?.stop();
    sbar?.stop();
    const { result, summary } = r;
    if (!r.verified.some((c) => c.isBase)) log(`note: the base spec ${base.name} is not among the verified candidates`);
    if (opts.json) {
      console.log(JSON.stringify({ key, summary, ranking: result.ranking }, null, 1));
    } else {
      reportEntries([store.entry], top, false, pruning);
      if (result.best && summary.base) {
        const gain = summary.base.totalMs / result.best.totalMs - 1;
        console.log(`best: ${result.best.name} ${result.best.totalMs.toFixed(4)} ms vs ${summary.base.name} ${summary.base.totalMs.toFixed(4)} ms (${(gain * 100).toFixed(1)}% faster); ${summary.fullEvaluations.toFixed(1)} full evaluations of ${r.verified.length}`);
      }
      if (result.stopped) console.log(`stopped: ${result.stopped}`);
      else console.log(`use it: podgen build --tuned ${opts.preset ?? opts.spec}`);
    }
    if (result.stopped) process.exitCode = 130;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

/** Options of one kind of tune only: a spec's search (--preset/--spec) or a family's cost model (--family). */
const SPEC_ONLY = ["preset", "spec", "space", "strategy", "eta", "budget", "minutes", "jobs", "db", "fresh", "report", "top", "gpu", "plot"];
const FAMILY_ONLY = ["fitBatches", "fitLight", "fitSeed", "mix", "out", "models", "from"];

export function registerTuneCommand(program: Command): Command {
  return program
    .command("tune")
    .description("search a space of kernel specs for the fastest on a workload mix, or fit a config family's cost model (needs a GPU; --report, --dry-run and --from do not)")
    .option("--family <name>", "fit the cost model of a config family (a preset family or a file exporting pod.family): time each member fused and serial")
    .option("--preset <name>", "tune a preset")
    .option("--spec <file>", "tune the spec of a file (.ts, .js, .json)")
    .option("--workloads <file>", "workload file (JSON, as for podgen bench); only workloads of the spec's model shape are used", packageFile("bench/workloads/paper.json"))
    .option("--filter <text>", "only workloads whose name contains TEXT (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--space <file>", "search space: .ts/.js exporting pod.space({...}), or its object as .json (default: defaultSpace in dsl/space.ts, by the base's prefill engine)")
    .option("--strategy <name>", "auto | exhaustive | halving (auto: halving above 16 candidates)", "auto")
    .option("--eta <n>", "halving: keep 1/eta of the candidates per rung", "3")
    .option("--budget <n>", "at most N candidates (the base and a stable sample of the rest)")
    .option("--minutes <m>", "stop starting measurements after M minutes (results are kept; re-run to resume)")
    .option("--iters <n>", "timed iterations of a full measurement (median; default 40, with --family 10)")
    .option("--warmup <n>", "warm-up iterations per measurement (default 5, with --family 3)")
    .option("-j, --jobs <n>", "parallel nvcc jobs", String(availableParallelism()))
    .option("--db <file>", "tuning database", process.env.PODGEN_TUNING_DB ?? shownPath(DEFAULT_DB))
    .option("--fresh", "time again instead of reusing the database's timings (to compare strategies)")
    .option("--dry-run", "enumerate and prune the space, print candidates and the rung plan; no GPU")
    .option("--report", "print the top-k table of recorded results; no GPU")
    .option("--top <k>", "rows of the report", "10")
    .option("--gpu <text>", "--report: only GPUs whose name contains TEXT")
    .option("--plot [svg]", "--report: also write an SVG bar chart (default: the database's path with .svg)")
    .option("--json", "machine-readable output")
    .option("--fit-batches <n>", "--family: serving-like batches generated for the fit (besides the workload file's)", String(DEFAULT_FIT_BATCHES))
    .option("--fit-light <n>", "--family: light-decode batches generated for the fit after those (the mix's fewest decodes: near the fused/serial boundary; 0: none)", String(DEFAULT_LIGHT_DECODE_BATCHES))
    .option("--fit-seed <n>", "--family: seed of the generated fit batches", String(DEFAULT_FIT_SEED))
    .option("--mix <name>", `--family: serving mix of the generated batches (${SERVING_MIX_NAMES.join(", ")}; default: the family's model)`)
    .option("--out <file>", "--family: the raw times (features and µs per candidate per batch), JSON (default: $PODGEN_CACHE_DIR/tune/<family>-timings.json)")
    .option("--models <file>", "--family: the cost model store", shownPath(DEFAULT_COST_MODELS))
    .option("--from <file>", "--family: refit the times of an --out file (no GPU) and store the model")
    .addHelpText(
      "after",
      `
Examples:
  podgen tune --family llama3_8b_auto --dry-run                 the batches and candidates a family's fit times
  podgen tune --family llama3_8b_auto --out timings.json        time them, fit the cost model, store it for this GPU
  podgen tune --family llama3_8b_auto --from timings.json       refit recorded times (no GPU)
  podgen tune --preset llama3_8b --dry-run                      the candidates and why the others were pruned
  podgen tune --preset llama3_8b                                tune on bench/workloads/paper.json's llama3_8b workloads
  podgen tune --preset llama3_8b --filter p1024x4096 --strategy exhaustive
  podgen tune --preset llama3_8b --filter p1024x4096 --strategy halving --fresh   compare with the exhaustive run above
  podgen tune --preset llama3_8b --report --plot                top-k table and SVG from bench/tuning/db.json
  podgen build --tuned llama3_8b                                build the winner for this GPU (or the preset, saying why)`,
    )
    .action(async (opts: TuneOpts, command: Command) => {
      if (opts.family) {
        const wrong = givenFlags(command, SPEC_ONLY);
        if (wrong.length > 0) throw new UsageError(`--family fits a family's cost model; ${wrong.join(", ")} ${wrong.length > 1 ? "are" : "is"} for a spec's search (--preset, --spec)`);
        const { tuneFamily } = await import("./tune-family.ts");
        return tuneFamily({ ...opts, family: opts.family, iters: opts.iters ?? "10", warmup: opts.warmup ?? "3" });
      }
      const wrong = givenFlags(command, FAMILY_ONLY);
      if (wrong.length > 0) throw new UsageError(`${wrong.join(", ")} ${wrong.length > 1 ? "are" : "is"} for --family`);
      return tune(opts);
    });
}
