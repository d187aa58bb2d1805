// The loop of `podgen verify` over a case file's cases, printing as it goes: a progress line per
// case on stderr before it runs, then its table row (or, with --ndjson, its JSON line) on stdout
// as soon as it is done, so a long file shows where it is and what failed so far. With --json the
// whole report prints once, at the end, as before.
import { columns } from "../bench/table.ts";
import type { VerifyResult } from "../runtime/verify.ts";
import type { VerifyCase } from "./verify-cases.ts";

export type VerifyFormat = "table" | "json" | "ndjson";

export interface CaseResult extends VerifyResult {
  name: string;
  spec: string;
}

export interface VerifyLoop {
  /** The GPU's name, for the JSON reports. */
  gpu: string;
  /** Runs one case (build, batch, verifyBatch). */
  verify: (c: VerifyCase) => VerifyResult;
  format: VerifyFormat;
  /** stdout and stderr, one line each call. */
  out: (line: string) => void;
  err: (line: string) => void;
}

const HEADER = ["case", "spec", "fused o prefill", "fused o decode", "standalone prefill", "standalone decode", "lse", "host s", "result"];
/** Widest error cell: "1.2e-10"; "Infinity" and "NaN" fit too. */
const ERROR_WIDTH = 8;
/** Host seconds before the case's first launch, e.g. "0.31". */
const HOST_WIDTH = 6;

function row(c: VerifyCase, r: VerifyResult): string[] {
  const err = (mode: string, key: "oPrefill" | "oDecode") => r.runs.find((x) => x.mode === mode)?.errors[key]?.toExponential(1) ?? "-";
  return [c.name, c.spec.name, err("fused", "oPrefill"), err("fused", "oDecode"), err("standalone", "oPrefill"), err("standalone", "oDecode"), r.worst.lse.toExponential(1), (r.hostMs / 1000).toFixed(2), r.pass ? "PASS" : "FAIL"];
}

/** Runs every case in order, printing as each completes; returns the results (JSON's `results`). */
export function verifyCases(cases: readonly VerifyCase[], o: VerifyLoop): CaseResult[] {
  const longest = (f: (c: VerifyCase) => string) => Math.max(0, ...cases.map((c) => f(c).length));
  const cols = columns(HEADER, [longest((c) => c.name), longest((c) => c.spec.name), ...Array(5).fill(ERROR_WIDTH), HOST_WIDTH, 4]);
  if (o.format === "table") o.out(cols.head);
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    o.err(`[${i + 1}/${cases.length}] ${c.name} [${c.spec.name}]: ${c.shape.prefills.length} prefills, ${c.shape.decodes.length} decodes`);
    const r = o.verify(c);
    const result: CaseResult = { name: c.name, spec: c.spec.name, ...r };
    results.push(result);
    if (o.format === "ndjson") o.out(JSON.stringify({ gpu: o.gpu, ...result }));
    if (o.format === "table") {
      o.out(cols.row(row(c, r)));
      if (!r.pass) for (const run of r.runs) for (const p of run.problems) o.err(`  ${c.name} (${run.mode}): ${p}`);
    }
  }
  if (o.format === "json") o.out(JSON.stringify({ gpu: o.gpu, results }, null, 2));
  return results;
}
