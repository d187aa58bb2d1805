// Build-speed benchmark (not a test): generating a preset, a cached build, a cold build.
// Writes bench/results/build.json. Usage: npx tsx bench/build-speed.ts [preset]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { presetByName } from "../dsl/index.ts";
import { buildKernel, nvccVersion } from "../codegen/build.ts";
import { generateKernel } from "../codegen/generate.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { gitCommit } from "../codegen/commit.ts";

const name = process.argv[2] ?? "llama3_8b";
const spec = presetByName(name);
if (!spec) throw new Error(`no preset ${name}`);
const cacheDir = mkdtempSync(join(tmpdir(), "podgen-bench-"));
const time = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
};

try {
  await generateKernel(spec); // first call loads ts-morph and prettier; a CLI run pays it once
  const generateSeconds = await time(() => generateKernel(spec));
  const cold = await buildKernel(spec, { cacheDir });
  const cachedSeconds = await time(() => buildKernel(spec, { cacheDir }));
  // The same through the CLI, as a user runs it (Node start, tsx, module loading included).
  const cli = (...args: string[]) =>
    time(async () =>
      execFileSync(process.execPath, [join(PACKAGE_ROOT, "bin", "podgen.mjs"), ...args], {
        env: { ...process.env, PODGEN_CACHE_DIR: cacheDir },
        cwd: cacheDir,
        stdio: "ignore",
      }),
    );
  const cliGenerate = await cli("generate", name, "--out", join(cacheDir, "gen"));
  const cliCachedBuild = await cli("build", name);
  const result = {
    commit: gitCommit(PACKAGE_ROOT),
    preset: name,
    specHash: spec.hash,
    nvcc: await nvccVersion(),
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown" },
    seconds: { generate: generateSeconds, coldBuild: cold.seconds, cachedBuild: cachedSeconds },
    cliSeconds: { generate: cliGenerate, cachedBuild: cliCachedBuild },
    targets: { generate: 1, coldBuild: 90, cachedBuild: 0.5 },
  };
  writeFileSync(join(PACKAGE_ROOT, "bench", "results", "build.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(`generate ${generateSeconds.toFixed(3)} s (target < 1), cached build ${cachedSeconds.toFixed(3)} s (< 0.5), cold build ${cold.seconds.toFixed(1)} s (< 90) on ${result.machine.cores} cores`);
  console.log(`CLI end to end: podgen generate ${cliGenerate.toFixed(2)} s, cached podgen build ${cliCachedBuild.toFixed(2)} s`);
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
