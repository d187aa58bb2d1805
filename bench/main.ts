// Standalone entry of the benchmark harness (bench/run.ts): scripts/gpu-bundle.ts bundles it into
// .gpu/bench.mjs, which .gpu/run-bench.sh runs on the GPU machine; `npx tsx bench/main.ts` runs it
// from source (kernel libraries from --artifacts).
//
//   bench [--workloads FILE] [--artifacts DIR] [--out DIR] [--iters N] [--warmup N] [--filter TEXT]...
//         [--python CMD] [--torch-script FILE] [--no-torch]
//
// Writes DIR/bench.json (and DIR/torch.json, DIR/resolved-workloads.json from the torch step) and
// prints the table last. Exit code: 0 when every measurement ran, 1 when some failed, 2 bad
// arguments, 3 no usable CUDA device.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Device } from "../runtime/index.ts";
import { formatTable, runAll, torchRunner } from "./run.ts";
import { gitCommit } from "../codegen/commit.ts";
import { libraryFileName } from "../dsl/index.ts";

const here = dirname(fileURLToPath(import.meta.url));
/** Beside the bundle (workloads/, torch_baselines.py, artifacts/), else the repository's bench/. */
const beside = (p: string, fallback: string) => (existsSync(join(here, p)) ? join(here, p) : join(here, fallback));

function usage(error?: string): never {
  if (error) console.error(`bench: ${error}`);
  console.error(
    "usage: bench [--workloads FILE] [--artifacts DIR] [--out DIR] [--iters N] [--warmup N] [--filter TEXT]... [--python CMD] [--torch-script FILE] [--no-torch]",
  );
  process.exit(error ? 2 : 0);
}

function parseArguments() {
  try {
    const { values } = parseArgs({
      options: {
        workloads: { type: "string" },
        artifacts: { type: "string" },
        out: { type: "string" },
        iters: { type: "string", default: "40" },
        warmup: { type: "string", default: "5" },
        filter: { type: "string", multiple: true, default: [] },
        python: { type: "string", default: "python3" },
        "torch-script": { type: "string" },
        "no-torch": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) usage();
    const positive = (name: string, v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) usage(`--${name} = ${v}: must be a positive integer`);
      return n;
    };
    return {
      workloads: values.workloads ? resolve(values.workloads) : beside("workloads/paper.json", "workloads/paper.json"),
      artifacts: values.artifacts ? resolve(values.artifacts) : join(here, "artifacts"),
      out: values.out ? resolve(values.out) : process.env.OUT || join(process.cwd(), "bench-out"),
      iters: positive("iters", values.iters),
      warmup: positive("warmup", values.warmup),
      filters: values.filter,
      python: values.python,
      torchScript: values["torch-script"] ? resolve(values["torch-script"]) : beside("torch_baselines.py", "torch_baselines.py"),
      torch: !values["no-torch"],
    };
  } catch (e) {
    return usage((e as Error).message);
  }
}
const args = parseArguments();

function commitOf(): string {
  const stamp = join(here, "bundle.json");
  if (existsSync(stamp)) return (JSON.parse(readFileSync(stamp, "utf8")) as { commit?: string }).commit ?? "unknown";
  return gitCommit(here);
}

mkdirSync(args.out, { recursive: true });
const log = (line: string) => console.log(line);
let device: Device;
const report = runAll({
  workloadsPath: args.workloads,
  filters: args.filters,
  iters: args.iters,
  warmup: args.warmup,
  library: (spec) => join(args.artifacts, libraryFileName(spec)),
  commit: commitOf(),
  torch: args.torch ? torchRunner(args.python, args.torchScript, args.out, args.iters, args.warmup, log) : undefined,
  openDevice: () => {
    try {
      device = Device.open(0);
      return device;
    } catch (e) {
      console.error(`bench: no usable CUDA device: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(3);
    }
  },
  log,
});
const file = join(args.out, "bench.json");
writeFileSync(file, JSON.stringify(report, null, 1) + "\n");
const errors = report.workloads.flatMap((w) => w.errors.map((e) => `${w.name}: ${e}`));
for (const e of errors) console.log(`error: ${e}`);
console.log(`wrote ${file}`);
console.log(formatTable(report));
if (errors.length > 0) process.exitCode = 1;
