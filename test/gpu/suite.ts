// Entry point of the GPU suite. scripts/gpu-bundle.ts bundles it into .gpu/suite.mjs, which
// .gpu/run.sh runs on the GPU machine; `npx tsx test/gpu/suite.ts` runs it from source.
//
//   suite [--out DIR] [--artifacts DIR] [--filter TEXT]... [--require-gpu]
//
// Writes DIR/gpu-suite.json ({commit, gpu, driver, sms, cases: [{name, status, detail}]}) and
// ends with "N passed, N failed, N skipped". Exit code: 0 no failures, 1 a case failed,
// 2 bad arguments, 3 --require-gpu and no usable CUDA device.
//
// Add cases by importing a module that calls gpuCase()/hostCase() (see cases/runtime.ts).
import { existsSync, readFileSync } from "node:fs";
import { gitCommit } from "../../codegen/commit.ts";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { runSuite } from "./harness.ts";
import "./cases/runtime.ts";
import "./cases/interop.ts";
import "./cases/kernels.ts";
import "./cases/family.ts";

const here = dirname(fileURLToPath(import.meta.url));

interface Args {
  out: string;
  artifacts: string;
  filters: string[];
  requireGpu: boolean;
}

function parseArguments(argv: string[]): Args {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        out: { type: "string" },
        artifacts: { type: "string" },
        filter: { type: "string", multiple: true, default: [] },
        "require-gpu": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) usage();
    return {
      out: values.out ? resolve(values.out) : process.env.OUT || join(process.cwd(), "gpu-suite-out"),
      artifacts: values.artifacts ? resolve(values.artifacts) : join(here, "artifacts"),
      filters: values.filter,
      requireGpu: values["require-gpu"],
    };
  } catch (e) {
    return usage((e as Error).message);
  }
}

function usage(error?: string): never {
  if (error) console.error(`suite: ${error}`);
  console.error("usage: suite [--out DIR] [--artifacts DIR] [--filter TEXT]... [--require-gpu]\n" +
    "example: node suite.mjs --out \"$OUT\" --filter runtime:");
  process.exit(error ? 2 : 0);
}

/** The commit: from bundle.json beside the bundle, else from git, else "unknown". */
function commitOf(): { commit: string; bundle?: unknown } {
  const stamp = join(here, "bundle.json");
  if (existsSync(stamp)) {
    const b = JSON.parse(readFileSync(stamp, "utf8")) as { commit?: string };
    return { commit: b.commit ?? "unknown", bundle: b };
  }
  return { commit: gitCommit(here) };
}

const args = parseArguments(process.argv.slice(2));
const { commit, bundle } = commitOf();
const report = await runSuite({
  outDir: args.out,
  artifactsDir: args.artifacts,
  commit,
  filters: args.filters,
  extra: bundle ? { bundle } : {},
});
console.log(`wrote ${join(args.out, "gpu-suite.json")}`);
console.log(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`);
if (report.failed > 0) process.exitCode = 1;
else if (args.requireGpu && report.gpu === null) process.exitCode = 3;
