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
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Device } from "../runtime/index.ts";
import { formatTable, runAll, torchRunner } from "./run.ts";

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

const args = {
  workloads: beside("workloads/paper.json", "workloads/paper.json"),
  artifacts: join(here, "artifacts"),
  out: process.env.OUT || join(process.cwd(), "bench-out"),
  iters: 40,
  warmup: 5,
  filters: [] as string[],
  python: "python3",
  torchScript: beside("torch_baselines.py", "torch_baselines.py"),
  torch: true,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => {
    const v = argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  const int = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) usage(`${a} = ${v}: must be a positive integer`);
    return n;
  };
  if (a === "--workloads") args.workloads = resolve(value());
  else if (a === "--artifacts") args.artifacts = resolve(value());
  else if (a === "--out") args.out = resolve(value());
  else if (a === "--iters") args.iters = int(value());
  else if (a === "--warmup") args.warmup = int(value());
  else if (a === "--filter") args.filters.push(value());
  else if (a === "--python") args.python = value();
  else if (a === "--torch-script") args.torchScript = resolve(value());
  else if (a === "--no-torch") args.torch = false;
  else if (a === "--help" || a === "-h") usage();
  else usage(`unknown argument ${a}`);
}

function commitOf(): string {
  const stamp = join(here, "bundle.json");
  if (existsSync(stamp)) return (JSON.parse(readFileSync(stamp, "utf8")) as { commit?: string }).commit ?? "unknown";
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: here, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: here, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return "unknown";
  }
}

mkdirSync(args.out, { recursive: true });
const log = (line: string) => console.log(line);
let device: Device;
const report = runAll({
  workloadsPath: args.workloads,
  filters: args.filters,
  iters: args.iters,
  warmup: args.warmup,
  library: (spec) => join(args.artifacts, `libpod_${spec.name}.so`),
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
