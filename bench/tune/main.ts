// `podgen tune` for a GPU machine without node's toolchain or podgen's sources: reads candidates
// compiled elsewhere (`podgen tune --preset NAME --prepare DIR` writes DIR/candidates.json and the
// libraries), verifies and times them there, and writes the tuning database. Bundle it like
// bench/main.ts (esbuild, node20, koffi external) and run it with the bundle's node:
//
//   node tune.mjs --artifacts DIR --workloads paper.json --db "$OUT/db.json" [--filter TEXT]...
//                 [--strategy auto|exhaustive|halving] [--eta 3] [--iters 40] [--warmup 5]
//                 [--fresh] [--minutes M] [--top 10]
//
// Exit codes: 0 done, 1 failure, 2 bad arguments, 3 no usable CUDA device, 130 stopped (resume by
// running it again with the same --db).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import { parseArgs } from "node:util";
import { checkSpec, type Candidate } from "../../dsl/index.ts";
import { Device } from "../../runtime/index.ts";
import { loadWorkloads } from "../run.ts";
import { entryKey, gpuKey, newEntry, shapeKey, TuningStore, workloadMix } from "./db.ts";
import { checkTarget, tuneOnDevice } from "./gpu.ts";
import { reportEntries } from "./report.ts";
import type { StrategyName } from "./strategy.ts";
import type { ArtifactIndex } from "./compile.ts";

function usage(message?: string): never {
  if (message) console.error(`tune: ${message}`);
  console.error("usage: node tune.mjs --artifacts DIR --workloads FILE --db FILE [--filter TEXT]... [--strategy auto|exhaustive|halving] [--eta N] [--iters N] [--warmup N] [--fresh] [--minutes M] [--seed-db FILE] [--top K]");
  process.exit(message ? 2 : 0);
}

const { values: a } = (() => {
  try {
    return parseArgs({
      options: {
        artifacts: { type: "string" },
        workloads: { type: "string" },
        db: { type: "string" },
        "seed-db": { type: "string" },
        filter: { type: "string", multiple: true, default: [] },
        strategy: { type: "string", default: "auto" },
        eta: { type: "string", default: "3" },
        iters: { type: "string", default: "40" },
        warmup: { type: "string", default: "5" },
        minutes: { type: "string" },
        top: { type: "string", default: "10" },
        fresh: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
})();
if (a.help) usage();
if (!a.artifacts || !a.workloads || !a.db) usage("--artifacts, --workloads and --db are required");
const int = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} = ${v}: must be a positive integer`);
  return n;
};
const iters = int("iters", a.iters!);
const warmup = int("warmup", a.warmup!);
const eta = int("eta", a.eta!);
const top = int("top", a.top!);
const minutes = a.minutes !== undefined ? Number(a.minutes) : undefined;
if (minutes !== undefined && !(minutes > 0)) usage(`--minutes = ${a.minutes}: must be positive`);
if (!["auto", "exhaustive", "halving"].includes(a.strategy!)) usage(`--strategy ${a.strategy}: one of auto, exhaustive, halving`);

const artifacts = resolve(a.artifacts!);
const indexPath = join(artifacts, "candidates.json");
if (!existsSync(indexPath)) usage(`${indexPath} does not exist: compile the candidates first (podgen tune --preset NAME --prepare ${artifacts})`);
let index: ArtifactIndex;
try {
  index = JSON.parse(readFileSync(indexPath, "utf8")) as ArtifactIndex;
} catch (e) {
  usage(`${indexPath}: ${(e as Error).message}`);
}
const cands: Candidate[] = index.candidates.map((c) => {
  const r = checkSpec(c.fields);
  if (!r.ok || r.spec.hash !== c.hash) usage(`candidates.json: ${c.name} does not validate to the kernel that was built (hash ${c.hash}); prepare the artifacts with this commit`);
  return { name: c.name, spec: r.spec, point: c.point, isBase: c.isBase };
});
const base = cands.find((c) => c.isBase)?.spec ?? (() => {
  const r = checkSpec(index.base.fields);
  if (!r.ok) usage(`candidates.json: the base spec ${index.base.name} does not validate`);
  return r.spec;
})();
// Libraries arrive brotli-compressed (.so.br); unpack them into a temporary folder.
const unpacked = mkdtempSync(join(tmpdir(), "podgen-tune-"));
process.on("exit", () => rmSync(unpacked, { recursive: true, force: true }));
const libraries = new Map(
  index.candidates.map((c) => {
    const src = join(artifacts, c.library);
    if (!c.library.endsWith(".br")) return [c.name, src];
    const dst = join(unpacked, c.library.slice(0, -3));
    writeFileSync(dst, brotliDecompressSync(readFileSync(src)));
    return [c.name, dst];
  }),
);

const workloadsPath = resolve(a.workloads!);
const filters = a.filter as string[];
const workloads = loadWorkloads(workloadsPath).filter((w) => shapeKey(w.configs[0]!.spec) === shapeKey(base) && (filters.length === 0 || filters.some((f) => w.name.includes(f))));
if (workloads.length === 0) usage(`no workload of ${workloadsPath} runs ${shapeKey(base)}${filters.length ? ` and matches ${filters.join(", ")}` : ""}`);
const mix = workloadMix(workloadsPath, workloads, filters.length > 0);
const strategy: StrategyName = a.strategy === "auto" ? (cands.length > 16 ? "halving" : "exhaustive") : (a.strategy as StrategyName);

let device: Device;
try {
  device = Device.open(0);
} catch (e) {
  console.error(`tune: no usable CUDA device: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(3);
}
checkTarget(device, base);
const dbPath = resolve(a.db!);
// A carried database (e.g. bench/tuning/db.json) seeds a fresh --db, so earlier runs are resumed.
if (a["seed-db"] && !existsSync(dbPath) && existsSync(a["seed-db"])) copyFileSync(a["seed-db"], dbPath);
const gpu = { name: device.info.name, ccMajor: device.info.ccMajor, ccMinor: device.info.ccMinor };
const key = entryKey(gpu, shapeKey(base), mix);
const store = new TuningStore(dbPath, key, () => newEntry(key, gpu, base, mix));
for (const c of cands) store.candidate(c);
store.entry.pruned = index.pruned;
store.save();
console.log(`tuning ${base.name} on ${gpuKey(gpu)}: ${cands.length} candidates, ${workloads.length} workload(s), strategy ${strategy}; db ${dbPath}`);

const started = Date.now();
const deadline = minutes !== undefined ? started + minutes * 60_000 : undefined;
let lastLine = 0;
const r = await tuneOnDevice({
  device,
  store,
  cands,
  libraries,
  workloads,
  strategy,
  iters,
  warmup,
  eta,
  fresh: a.fresh,
  shouldStop: () => (deadline !== undefined && Date.now() > deadline ? `--minutes ${minutes} reached` : undefined),
  onVerified: (c, pass, done, total) => {
    if (!pass) console.log(`wrong: ${c.name}: ${store.candidate(c).verify!.problems.slice(0, 2).join("; ")} — discarded`);
    if (done === total) console.log(`verified ${total} candidates in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  },
  onProgress: (p) => {
    if (Date.now() - lastLine < 5000 && p.done < p.total) return;
    lastLine = Date.now();
    console.log(`[${p.done}/${p.total}] rung ${p.rung + 1}/${p.rungs}, best ${p.best ? `${p.best.name} ${p.best.ms.toFixed(4)} ms` : "-"}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  },
});
reportEntries([store.entry], top, false);
console.log(JSON.stringify({ summary: r.summary, seconds: (Date.now() - started) / 1000 }));
if (r.result.stopped) process.exitCode = 130;
