// `podgen bench`: times paper-style hybrid batches (bench/workloads/*.json) on the GPU with the
// harness in bench/run.ts — prefill-only, decode-only, serial, two streams and the fused kernel
// (each configured variant) — plus the PyTorch baselines (bench/torch_baselines.py) in the same
// run and the "Hopper serial" figure built from both (cuDNN's non-causal prefill + the fastest
// decode of the run), and writes a JSON report (bench/results/). Register it with
// registerBenchCommand(program).
import { gitCommit } from "../codegen/commit.ts";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { defaultCacheDir } from "../codegen/build.ts";
import { Device } from "../runtime/index.ts";
import { isFamilyBenchReport, readBenchReport, readFamilyBenchReport } from "../bench/schemas.ts";
import { formatFamilyTable } from "../bench/family-report.ts";
import { DEFAULT_HELDOUT_BATCHES, DEFAULT_HELDOUT_SEED, SERVING_MIX_NAMES } from "../bench/family-batches.ts";
import { formatTable } from "../bench/report.ts";
import { runAll } from "../bench/run.ts";
import { torchRunner } from "../bench/torch.ts";
import { selectWorkloads, specsOf, type Workload } from "../bench/workloads.ts";
import { JsonInputError } from "../codegen/json.ts";
import { SpecError } from "../dsl/index.ts";
import { buildAll } from "./build-all.ts";
import { givenFlags, packageFile, positiveArg, shownPath } from "./args.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { DEFAULT_COST_MODELS } from "../bench/tune/cost-model.ts";
import { UsageError } from "./usage-error.ts";


interface BenchOpts {
  family?: string;
  heldout: string;
  heldoutSeed: string;
  mix?: string;
  models: string;
  planIters: string;
  dryRun?: boolean;
  json?: boolean;
  workloads: string;
  out: string;
  iters: string;
  warmup: string;
  filter: string[];
  torch: boolean;
  python: string;
  jobs: string;
  plot?: string | boolean;
  from?: string;
  standaloneVariants?: boolean;
  variants: boolean;
}

/** An error reading a workload file (or matching --filter) as bad input: exit code 2, naming the file. */
export function workloadFileError(e: unknown, path: string): Error {
  if (e instanceof JsonInputError || e instanceof SpecError || e instanceof UsageError) return e;
  if (e instanceof SyntaxError) return new UsageError(`--workloads ${path}: not valid JSON (${e.message})`);
  return new UsageError(e instanceof Error ? e.message : String(e));
}

/** Options of one kind of bench only: the spec variants' (the default) or a config family's (--family). */
const SPECS_ONLY = ["standaloneVariants", "variants", "plot", "jobs"];
const FAMILY_ONLY = ["heldout", "heldoutSeed", "mix", "models", "planIters", "dryRun", "json"];

export function registerBenchCommand(program: Command): Command {
  return program
    .command("bench")
    .description("time hybrid prefill+decode batches: standalone, serial, two streams, fused, and PyTorch baselines; or what a config family's planner chooses (needs a GPU)")
    .option("--family <name>", "bench a config family: per batch auto (the planner's choice), the preset, the best of every member fused and serial, our serial and PyTorch's; paper and held-out batches")
    .option("--workloads <file>", "workload file (JSON)", packageFile("bench/workloads/paper.json"))
    .option("--out <file>", "JSON report to write (default: the build cache, outside the source tree; see below)", shownPath(join(defaultCacheDir(), "bench/latest.json")))
    .option("--iters <n>", "timed iterations per measurement (median)", "40")
    .option("--warmup <n>", "warm-up iterations per measurement", "5")
    .option("--filter <text>", "only workloads whose name contains TEXT (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--no-torch", "skip the PyTorch baselines")
    .option("--standalone-variants", "also time every variant's prefill-only and decode-only kernels (report: standalone)")
    .option("--no-variants", "time each workload's own spec only, not the file's variants (what a user of the preset gets; faster)")
    .option("--python <cmd>", "python with torch for the baselines", "python3")
    .option("-j, --jobs <n>", "parallel nvcc jobs for kernels not yet built", String(Math.min(4, availableParallelism())))
    .option("--plot [svg]", "also render the report as an SVG (default: the report's path with .svg)")
    .option("--from <json>", "run nothing: print the table of (and --plot) an existing report (a family report too)")
    .option("--heldout <n>", "--family: serving-like batches from the held-out seed", String(DEFAULT_HELDOUT_BATCHES))
    .option("--heldout-seed <n>", "--family: their seed (not the cost model's fit seed)", String(DEFAULT_HELDOUT_SEED))
    .option("--mix <name>", `--family: their serving mix (${SERVING_MIX_NAMES.join(", ")}; default: the family's model)`)
    .option("--models <file>", "--family: the cost model store auto reads", shownPath(DEFAULT_COST_MODELS))
    .option("--plan-iters <n>", "--family: plans timed for the host plan time", "2000")
    .option("--dry-run", "--family: list the batches and candidates; no GPU")
    .option("--json", "--family: print the report as JSON instead of the table")
    .addHelpText(
      "after",
      `
Examples:
  podgen bench                                         every workload of bench/workloads/paper.json -> $PODGEN_CACHE_DIR/bench/latest.json
  podgen bench --family llama3_8b_auto                 auto vs preset vs best of family, paper + 20 held-out batches -> $PODGEN_CACHE_DIR/bench/llama3_8b_auto.json
  podgen bench --family llama3_8b_auto --dry-run       the batches and candidates it times (no GPU)
  podgen bench --filter p1024 --iters 100 --no-torch   some workloads, more iterations, no PyTorch baselines
  podgen bench --no-variants                           the presets alone (with PyTorch's baselines), no other configs
  podgen bench --workloads bench/workloads/mixed-decodes.json   decodes of mixed KV lengths
  podgen bench --out bench/results/2026-12-06-h100-what.json   record a run in the repository (bench/results/README.md)
  podgen bench --from bench/results/latest.json --plot table and SVG of a recorded report (no GPU needed)

A run measures the machine it ran on, so by default its report goes next to the builds it timed
($PODGEN_CACHE_DIR, else ./.cache/podgen): a plain run never rewrites the repository's recorded
results (or an installed package). To keep one, name it with --out.`,
    )
    .action(async (opts: BenchOpts, command: Command) => {
      if (opts.family) {
        const wrong = givenFlags(command, ["from", ...SPECS_ONLY]);
        if (wrong.length > 0) throw new UsageError(`--family: ${wrong.join(", ")} ${wrong.length > 1 ? "are" : "is"} for the spec variants' bench (a family's report prints with --from alone)`);
        const { benchFamily } = await import("./bench-family.ts");
        return benchFamily({ ...opts, family: opts.family, out: command.getOptionValueSource("out") === "cli" ? opts.out : undefined });
      }
      const wrong = givenFlags(command, FAMILY_ONLY);
      if (wrong.length > 0) throw new UsageError(`${wrong.join(", ")} ${wrong.length > 1 ? "are" : "is"} for --family`);
      const plot = async (report: string) => {
        if (!opts.plot) return;
        let plotFile: typeof import("../bench/plot.ts").plotFile;
        try {
          ({ plotFile } = await import("../bench/plot.ts"));
        } catch (e) {
          throw new Error(`--plot needs the packages vega and vega-lite (npm install vega vega-lite): ${(e as Error).message}`);
        }
        console.log(`wrote ${shownPath(await plotFile(report, typeof opts.plot === "string" ? opts.plot : undefined))}`);
      };
      if (opts.from) {
        if (isFamilyBenchReport(opts.from)) {
          if (opts.plot) throw new UsageError(`--plot: ${opts.from} is a family report, which has its table only`);
          return void console.log(formatFamilyTable(readFamilyBenchReport(opts.from)));
        }
        console.log(formatTable(readBenchReport(opts.from)));
        return void (await plot(opts.from));
      }
      const iters = positiveArg("--iters", opts.iters);
      const warmup = positiveArg("--warmup", opts.warmup);
      const jobs = positiveArg("--jobs", opts.jobs);
      if (!existsSync(opts.workloads)) throw new UsageError(`--workloads ${opts.workloads}: no such file`);
      let workloads: Workload[];
      try {
        workloads = selectWorkloads(resolve(opts.workloads), opts.filter, { variants: opts.variants });
      } catch (e) {
        throw workloadFileError(e, opts.workloads);
      }
      const builds = await buildAll(specsOf(workloads), { jobs, quiet: false });
      const libraries = new Map(builds.map((b) => [b.manifest.specHash, b.library]));
      const scratch = mkdtempSync(join(tmpdir(), "podgen-bench-"));
      const log = (line: string) => console.error(line);
      const report = runAll({
        workloadsPath: resolve(opts.workloads),
        filters: opts.filter,
        iters,
        warmup,
        library: (spec) => libraries.get(spec.hash)!,
        commit: gitCommit(PACKAGE_ROOT),
        torch: opts.torch ? torchRunner(opts.python, join(PACKAGE_ROOT, "bench/torch_baselines.py"), scratch, iters, warmup, log) : undefined,
        openDevice: () => Device.open(0),
        log,
        standaloneVariants: !!opts.standaloneVariants,
        variants: opts.variants,
      });
      mkdirSync(dirname(resolve(opts.out)), { recursive: true });
      writeFileSync(resolve(opts.out), JSON.stringify(report, null, 1) + "\n");
      for (const w of report.workloads) for (const e of w.errors) console.error(`error: ${w.name}: ${e}`);
      console.log(`wrote ${opts.out}`);
      await plot(resolve(opts.out));
      console.log(formatTable(report));
      if (report.workloads.some((w) => w.errors.length > 0)) process.exitCode = 1;
    });
}
