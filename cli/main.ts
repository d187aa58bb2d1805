// The podgen command line: generate, build, inspect, presets.
import { availableParallelism } from "node:os";
import { Command } from "commander";
import { DEFAULT_PRESET, FAMILY_PRESETS, PRESETS, REGISTER_HEADROOM, resourceModel, type KernelSpec, type ResourceModel } from "../dsl/index.ts";
import { findCachedBuild } from "../codegen/build.ts";
import { buildFamily, findCachedFamilyBuild } from "../codegen/family.ts";
import type { FamilySpec } from "../dsl/index.ts";
import { generateKernel, staleKernelFiles, writeKernelFiles } from "../codegen/generate.ts";
import { spillReasons } from "../codegen/manifest.ts";
import { describeError, EXIT, exitCodeFor, UsageError } from "./errors.ts";
import { positiveArg, shownPath } from "./args.ts";
import { buildAll } from "./build-all.ts";
import { memberTiles } from "./family-options.ts";
import { loadFamily, loadSpecs } from "./load-spec.ts";
import { parseCaseFile } from "./verify-cases.ts";
import { verifyCases, type VerifyFormat } from "./verify.ts";
import { registerBenchCommand } from "./bench.ts";
import { registerExportCommand } from "./export.ts";
import { registerTuneCommand } from "./tune.ts";
import { Device, KernelLibraries, makeHostBatch } from "../runtime/index.ts";
import { verifyBatch } from "../runtime/verify.ts";
import { table } from "../bench/table.ts";

// `podgen presets | head` closes our stdout early; that is the reader's choice, not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const program = new Command("podgen")
  .description("Generate, build and inspect POD-Attention (fused prefill + decode) CUDA kernels.")
  .option("--debug", "print stack traces on errors")
  .showHelpAfterError()
  .addHelpText(
    "after",
    `
Examples:
  podgen presets                       list the built-in kernel specs
  podgen build llama3_8b               generate and compile a preset, print the artifact
  podgen generate my-spec.ts --out gen write the CUDA, C header and TS binding of a spec
  podgen inspect llama3_8b --json      resource model and build manifest as JSON
  podgen verify --cases cases.json     check kernels against the fp32 reference on a GPU

Exit codes: 0 success, 1 build or runtime failure, 2 invalid input (a spec, a space, arguments,
or a case, workload, report or tuning database file).`,
  );

/** Specs named on the command line, or every preset when none is named. */
async function specsOrPresets(args: string[]): Promise<KernelSpec[]> {
  return args.length > 0 ? loadSpecs(args) : [...PRESETS];
}


program
  .command("presets")
  .description("list the built-in kernel specs")
  .option("--json", "machine-readable output")
  .action((opts: { json?: boolean }) => {
    if (opts.json) return void console.log(JSON.stringify(PRESETS, null, 2));
    const rows = PRESETS.map((p) => [
      p.name,
      p.target,
      p.dtype,
      `${p.heads.q}/${p.heads.kv}`,
      p.headDim,
      p.kvCache.kind === "paged" ? `paged ${p.kvCache.pageSize}` : "contiguous",
      `${p.prefill.tile.q}x${p.prefill.tile.kv}`,
      `${p.decode.tile.q}x${p.decode.tile.kv} x${p.decode.virtualCtas}`,
      p.ctasPerSm,
      p.schedule.kind,
      p.hash,
    ]);
    console.log(
      table(["name", "target", "dtype", "heads q/kv", "D", "kv cache", "prefill tile", "decode tile", "CTAs/SM", "schedule", "hash"], rows),
    );
  });

program
  .command("generate")
  .description("write the generated sources of specs (default: every preset)")
  .argument("[specs...]", "preset names or spec files (.ts, .js, .json)")
  .option("--out <dir>", "output folder", "generated")
  .option("--check", "fail (exit 1) if the folder differs from what the generator makes now")
  .action(async (args: string[], opts: { out: string; check?: boolean }) => {
    const specs = await specsOrPresets(args);
    const stale: string[] = [];
    for (const spec of specs) {
      const files = await generateKernel(spec);
      if (opts.check) stale.push(...staleKernelFiles(opts.out, spec.name, files));
      else writeKernelFiles(opts.out, spec.name, files);
    }
    if (opts.check) {
      if (stale.length > 0) {
        console.error(`${stale.length} generated file(s) are stale; run \`podgen generate\`:\n  ${stale.join("\n  ")}`);
        process.exitCode = EXIT.failure;
      } else console.log(`generated/ is up to date (${specs.length} kernels)`);
      return;
    }
    console.log(`wrote ${specs.length} kernel(s) to ${shownPath(opts.out)}/: ${specs.map((s) => s.name).join(", ")}`);
  });

program
  .command("build")
  .description("compile specs with nvcc into shared libraries + manifests (cached by content hash)")
  .argument("[specs...]", `preset names, preset families (${FAMILY_PRESETS.map((f) => f.name).join(", ")}) or spec files (default: ${DEFAULT_PRESET})`)
  .option("--force", "rebuild even when cached")
  .option("-j, --jobs <n>", "parallel nvcc jobs", String(availableParallelism()))
  .option("--json", "print the build results as JSON")
  .option("--tuned", "build each spec's fastest tuned variant for this GPU from bench/tuning/db.json (`podgen tune`), else the spec, saying why")
  .action(async (args: string[], opts: { force?: boolean; jobs: string; json?: boolean; tuned?: boolean }) => {
    const named = args.length > 0 ? args : [DEFAULT_PRESET];
    const families: FamilySpec[] = [];
    const specArgs: string[] = [];
    for (const arg of named) {
      const family = await loadFamily(arg);
      if (family) families.push(family);
      else specArgs.push(arg);
    }
    if (families.length > 0) {
      if (specArgs.length > 0 || opts.tuned) throw new UsageError(`build families on their own (without --tuned and without kernel specs): ${families.map((f) => f.name).join(", ")}`);
      return buildFamilies(families, { force: opts.force, json: opts.json });
    }
    let specs = await loadSpecs(specArgs);
    if (opts.tuned) specs = await (await import("./tune.ts")).tunedSpecs(specs);
    const jobs = positiveArg("--jobs", opts.jobs);
    const results = await buildAll(specs, { force: opts.force, jobs, quiet: !!opts.json });
    if (opts.json) return void console.log(JSON.stringify(results.map(({ library, dir, cached, seconds, manifest }) => ({ library, dir, cached, seconds, manifest })), null, 2));
    for (const r of results) {
      console.log(`${r.manifest.name}: ${r.cached ? "cached" : `built in ${r.seconds.toFixed(1)} s`}`);
      console.log(`  library:  ${shownPath(r.library)}`);
      console.log(`  manifest: ${shownPath(r.dir)}/manifest.json`);
      for (const w of r.manifest.warnings) console.log(`  warning:  ${w}`);
    }
  });

/** `podgen build <family>`: one library per family, its members' warnings listed under it. */
async function buildFamilies(families: FamilySpec[], opts: { force?: boolean; json?: boolean }): Promise<void> {
  const results = [];
  for (const family of families) {
    if (!opts.json) console.error(`${family.name}: building ${family.members.length} members (${family.memberNames.join(", ")})...`);
    results.push(await buildFamily(family, { force: opts.force }));
  }
  if (opts.json) return void console.log(JSON.stringify(results, null, 2));
  for (const r of results) {
    console.log(`${r.manifest.name}: ${r.cached ? "cached" : `built in ${r.seconds.toFixed(1)} s`} (${r.manifest.memberNames.length} members, C ABI prefix ${r.manifest.symbolPrefix})`);
    console.log(`  library:  ${shownPath(r.library)}`);
    console.log(`  manifest: ${shownPath(r.dir)}/manifest.json`);
    r.manifest.members.forEach((m, i) => {
      for (const w of m.warnings) console.log(`  warning:  ${r.manifest.memberNames[i]}: ${w}`);
    });
  }
}

/** `podgen inspect <family>`: its members, each with the shape that sets it apart, and the build if there is one. */
async function inspectFamily(family: FamilySpec, json: boolean): Promise<void> {
  const build = await findCachedFamilyBuild(family);
  const rows = family.members.map((spec, i) => {
    const model = resourceModel(spec);
    const tiles = memberTiles(spec);
    return {
      index: i,
      member: family.memberNames[i]!,
      spec: spec.name,
      hash: spec.hash,
      engine: model.prefillEngine,
      prefillTile: tiles.prefill,
      decodeTile: tiles.decode,
      ctasPerSm: spec.ctasPerSm,
      schedule: spec.schedule.kind,
      smemKiB: Number((model.smem.perCta / 1024).toFixed(1)),
    };
  });
  if (json) return void console.log(JSON.stringify({ family: family.name, hash: family.hash, members: rows, manifest: build?.manifest ?? null }, null, 2));
  const first = family.members[0]!;
  console.log(`${family.name} (family hash ${family.hash}): ${first.dtype}, heads ${first.heads.q}/${first.heads.kv}, D=${first.headDim}, ${first.target}; member 0 is the static rule's choice\n`);
  console.log(table(["#", "member", "prefill engine", "prefill tile", "decode tile", "CTAs/SM", "schedule", "smem KiB", "spec hash"], rows.map((r) => [r.index, r.member, r.engine, r.prefillTile, r.decodeTile, r.ctasPerSm, r.schedule, r.smemKiB, r.hash])));
  console.log(build ? `\nbuilt: ${shownPath(build.library)}` : `\nnot built yet: run \`podgen build ${family.name}\``);
}

program
  .command("inspect")
  .description("show a spec's resource model and, if built, its build manifest")
  .argument("<spec>", "preset name or spec file")
  .option("--json", "machine-readable output")
  .action(async (arg: string, opts: { json?: boolean }) => {
    const family = await loadFamily(arg);
    if (family) return inspectFamily(family, !!opts.json);
    const [spec] = await loadSpecs([arg]);
    const model = resourceModel(spec!);
    const build = await findCachedBuild(spec!);
    if (opts.json) {
      const { limits, ...rest } = model;
      const spills = build ? spillReasons(build.manifest.kernels) : null;
      return void console.log(JSON.stringify({ spec: spec, resources: { ...rest, gpu: limits.gpu }, manifest: build?.manifest ?? null, spills }, null, 2));
    }
    const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
    const fp8 = spec!.kvDtype === "e4m3"
      ? `, fp8 (e4m3) KV cache with scales per ${spec!.kvScale === "head" ? "KV head" : "tensor"} (fp8 stages: prefill staging ${model.kvStaging.prefill}, decode ${model.kvStaging.decode}, read as mma fragments)`
      : "";
    console.log(`${spec!.name} (spec hash ${spec!.hash}) for ${spec!.target} (${model.limits.gpu}), prefill engine ${model.prefillEngine}${fp8}\n`);
    console.log(
      table(
        ["resource", "value", "limit"],
        [
          ["threads per CTA", model.threads, ""],
          ["CTAs per SM", spec!.ctasPerSm, Math.min(model.limits.maxResidentCtas, Math.floor(model.limits.threadsPerSm / model.threads))],
          ["shared memory, prefill tile", kib(model.smem.prefillTile), kib(model.smem.perCtaLimit)],
          ["shared memory, decode tiles", kib(model.smem.decodeTiles), kib(model.smem.perCtaLimit)],
          ...(model.roles ? [["shared memory, the roles' CTA (both + claim slots)", kib(model.smem.perCta), kib(model.smem.perCtaLimit)]] : []),
          // Roles: the limits are what each role holds after setmaxnreg.
          ["registers per thread (estimate, prefill)", model.registers.prefillEstimate, model.registers.budgets.prefill],
          ["registers per thread (estimate, decode)", model.registers.decodeEstimate, model.registers.budgets.decode],
          // What the register rule checks (rules.ts): O and one step's scores, within the share less headroom.
          ["accumulator registers per thread, prefill", model.registers.accumulators.prefill, model.registers.budgets.prefill - REGISTER_HEADROOM],
          ["accumulator registers per thread, decode", model.registers.accumulators.decode, model.registers.budgets.decode - REGISTER_HEADROOM],
          ...warpSpecializedRows(model),
        ],
      ),
    );
    if (!build) return void console.log(`\nnot built yet: run \`podgen build ${arg}\` for the compiler's figures`);
    console.log(`\nbuild ${shownPath(build.dir)} (nvcc ${build.manifest.nvcc})\n`);
    console.log(
      table(
        ["kernel", "arch", "registers", "static smem", "stack", "spill st/ld"],
        build.manifest.kernels.map((k) => [k.name.replace(/\(.*$/, ""), k.arch, k.registers, k.staticSharedBytes, k.stackBytes, `${k.spillStoreBytes}/${k.spillLoadBytes}`]),
      ),
    );
    for (const w of build.manifest.warnings) console.log(`warning: ${w}`);
    for (const s of spillReasons(build.manifest.kernels)) console.log(`spill: ${s.kernel} (${s.arch}): ${s.reason}`);
  });

/**
 * The warp-specialized prefill's budget: how setmaxnreg splits the register file among the
 * producer, the consumers and (fused) the decode role, and the keys each consumer step takes.
 */
function warpSpecializedRows(model: ResourceModel): (string | number)[][] {
  const ws = model.registers.warpSpecialized;
  if (!ws) return [];
  const consumers = model.prefillThreads - 128;
  const rows: (string | number)[][] = [
    ["prefill-only CTA: registers at launch × threads", `${ws.atLaunch} × ${model.prefillThreads}`, model.limits.registersPerSm],
    ["prefill-only: producer / consumer registers (setmaxnreg)", `${ws.producer} / ${ws.consumers}`, `${128 * ws.producer + consumers * ws.consumers} in all`],
    ["prefill-only: KV tile × stages, shared memory", `${model.prefillAlone.tileKv} × ${model.prefillAlone.stages}, ${(model.prefillAlone.smem / 1024).toFixed(1)} KiB`, `${(model.smem.aloneLimit / 1024).toFixed(1)} KiB`],
    ["prefill-only: keys per consumer step (S = Q K^T)", model.prefillAlone.subBlockKeys, ""],
  ];
  if (model.registers.roles) {
    const { prefill, decode } = model.registers.roles;
    const decodeThreads = model.threads - model.prefillThreads;
    rows.push(
      ["fused: producer / consumer / decode registers", `${ws.producer} / ${prefill} / ${decode}`, `${128 * ws.producer + consumers * prefill + decodeThreads * decode} in all`],
      ["fused: keys per consumer step (S = Q K^T)", model.prefillSubBlockKeys, ""],
    );
  }
  return rows;
}

program
  .command("verify")
  .description("run batches from a case file through the fused and standalone kernels and compare with the fp32 reference (needs a GPU)")
  .requiredOption("--cases <file>", "case file (JSON; format in the README)")
  .option("--json", "print the results as one JSON report at the end")
  .option("--ndjson", "print each case's result as a JSON line as soon as it is done")
  .action(async (opts: { cases: string; json?: boolean; ndjson?: boolean }) => {
    if (opts.json && opts.ndjson) throw new UsageError("--json and --ndjson: choose one");
    const format: VerifyFormat = opts.json ? "json" : opts.ndjson ? "ndjson" : "table";
    const cases = parseCaseFile(opts.cases);
    // The GPU first: without one, fail before compiling anything.
    const device = Device.open(0);
    const specs = [...new Map(cases.map((c) => [c.spec.hash, c.spec])).values()];
    const builds = new Map((await buildAll(specs, { jobs: availableParallelism(), quiet: format !== "table" })).map((b) => [b.manifest.specHash, b]));
    const libs = new KernelLibraries();
    try {
      const results = verifyCases(cases, {
        gpu: device.name,
        format,
        out: (line) => console.log(line),
        err: (line) => console.error(line),
        verify: (c) => {
          // The host's part of a case, timed from here to its first launch (VerifyResult.hostMs).
          const startedAt = performance.now();
          const build = builds.get(c.spec.hash)!;
          const lib = libs.get(build.library, build.manifest.symbolPrefix);
          const host = makeHostBatch(lib.info(), c.shape, { seed: c.seed, shufflePages: c.shufflePages });
          return verifyBatch(device, lib, host, { startedAt });
        },
      });
      if (results.some((r) => !r.pass)) process.exitCode = EXIT.failure;
    } finally {
      libs.close();
    }
  });

registerBenchCommand(program);
registerExportCommand(program);
registerTuneCommand(program);

try {
  await program.parseAsync();
} catch (error) {
  const debug = program.opts<{ debug?: boolean }>().debug || !!process.env.PODGEN_DEBUG;
  console.error(describeError(error, debug));
  process.exitCode = exitCodeFor(error);
}
