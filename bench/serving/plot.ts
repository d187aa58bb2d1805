// Renders a serving benchmark report (bench/serving/run.py --out) as an SVG with Vega-Lite, headless
// (bench/plot.ts's renderer), and prints the fused kernel's gains per arrival rate:
//   output tokens/s, TTFT p50, TBT p99 and the attention share of step time, per rate and backend.
//
//   npx tsx bench/serving/plot.ts REPORT.json [OUT.svg]     (default: the JSON's path with .svg)
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { TopLevelSpec } from "vega-lite";
import { z } from "zod";
import { readJsonFile } from "../../codegen/json.ts";
import { vegaLiteToSvg } from "../plot.ts";

const BACKENDS = ["podgen_fused", "podgen_serial", "torch_flash"] as const;
const quantiles = z.looseObject({ p50: z.number(), p99: z.number() });

const runSchema = z.looseObject({
  backend: z.enum(BACKENDS),
  rate: z.number().positive(),
  requests: z.number().int(),
  makespan_s: z.number(),
  output_tokens_per_s: z.number(),
  total_tokens_per_s: z.number(),
  requests_per_s: z.number(),
  ttft_ms: quantiles,
  tbt_ms: quantiles,
  attention_share: z.number().min(0).max(1),
  steps: z.number().int(),
});

/** What run.py writes; fields this reader does not use are kept, not checked. */
export const servingReportSchema = z.looseObject({
  kind: z.literal("serving-bench"),
  version: z.literal(1),
  date: z.string(),
  commit: z.string(),
  gpu: z.string(),
  driver: z.string().nullable(),
  torch: z.string(),
  export: z.looseObject({ name: z.string(), spec_hash: z.string(), page_size: z.number().int() }),
  config: z.looseObject({ budget: z.number().int(), requests: z.number().int(), layers: z.number().int(), seed: z.number().int() }),
  check: z.looseObject({ torch_kv_access: z.enum(["in_place", "gather"]).optional() }),
  runs: z.array(runSchema),
});
export type ServingReport = z.output<typeof servingReportSchema>;
type Run = ServingReport["runs"][number];

export function readServingReport(path: string): ServingReport {
  return readJsonFile(servingReportSchema, path, `serving report ${path}`);
}

/** Per rate: podgen fused against the other two (throughput ratios, TBT p99 ratio to torch). */
export interface FusedGains {
  rate: number;
  throughputVsTorch: number | null;
  throughputVsSerial: number | null;
  tbtP99VsTorch: number | null;
}

export function fusedGains(report: ServingReport): FusedGains[] {
  const rates = [...new Set(report.runs.map((r) => r.rate))];
  return rates.map((rate) => {
    const at = (backend: Run["backend"]) => report.runs.find((r) => r.rate === rate && r.backend === backend);
    const fused = at("podgen_fused");
    const serial = at("podgen_serial");
    const torch = at("torch_flash");
    const ratio = (a: number | undefined, b: number | undefined) => (a != null && b != null ? a / b : null);
    return {
      rate,
      throughputVsTorch: ratio(fused?.output_tokens_per_s, torch?.output_tokens_per_s),
      throughputVsSerial: ratio(fused?.output_tokens_per_s, serial?.output_tokens_per_s),
      tbtP99VsTorch: ratio(fused?.tbt_ms.p99, torch?.tbt_ms.p99),
    };
  });
}

export function formatGains(report: ServingReport): string {
  const x = (v: number | null) => (v == null ? "-" : `${v.toFixed(3)}x`);
  return fusedGains(report)
    .map((g) => `rate ${g.rate}/s: podgen fused throughput ${x(g.throughputVsTorch)} torch_flash, ${x(g.throughputVsSerial)} podgen_serial; TBT p99 ${x(g.tbtP99VsTorch)} torch_flash's`)
    .join("\n");
}

const PANELS: [string, (r: Run) => number, string][] = [
  ["output tokens/s", (r) => r.output_tokens_per_s, "output tokens/s (higher is better)"],
  ["TTFT p50 (ms)", (r) => r.ttft_ms.p50, "TTFT p50, ms"],
  ["TBT p99 (ms)", (r) => r.tbt_ms.p99, "TBT p99, ms"],
  ["attention share", (r) => r.attention_share, "attention / step time"],
];

export function servingPlotSpec(report: ServingReport): TopLevelSpec {
  const rateLabel = (rate: number) => `${rate} req/s`;
  const rates = [...new Set(report.runs.map((r) => r.rate))].map(rateLabel);
  const panel = ([title, value, axis]: (typeof PANELS)[number]) => ({
    title,
    width: 260,
    height: 200,
    data: { values: report.runs.map((r) => ({ rate: rateLabel(r.rate), backend: r.backend, value: value(r) })) },
    mark: { type: "bar" },
    encoding: {
      x: { field: "rate", type: "nominal", sort: rates, axis: { labelAngle: 0, title: "arrival rate" } },
      xOffset: { field: "backend", sort: [...BACKENDS] },
      y: { field: "value", type: "quantitative", title: axis },
      color: { field: "backend", sort: [...BACKENDS], title: null, scale: { scheme: "tableau10" }, legend: { orient: "top" } },
      tooltip: [{ field: "rate" }, { field: "backend" }, { field: "value", format: ".4~g" }],
    },
  });
  const c = report.config;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `podgen serving benchmark — ${report.gpu}`,
      subtitle: [
        `${c.layers}-layer Llama-3-8B shape, token budget ${c.budget}, ${c.requests} requests (seed ${c.seed}); kernel ${report.export.name} (${report.export.spec_hash}), page ${report.export.page_size}`,
        `commit ${report.commit.slice(0, 12)}, driver ${report.driver ?? "?"}, torch ${report.torch}; torch_flash reads K/V ${report.check.torch_kv_access ?? "?"}; ${report.date.slice(0, 10)}`,
      ],
    },
    config: { font: "sans-serif", view: { stroke: null } },
    hconcat: PANELS.map(panel),
  } as TopLevelSpec;
}

export async function plotServingFile(jsonPath: string, svgPath = jsonPath.replace(/\.json$/, "") + ".svg"): Promise<{ svgPath: string; gains: string }> {
  const report = readServingReport(jsonPath);
  writeFileSync(svgPath, await vegaLiteToSvg(servingPlotSpec(report)));
  return { svgPath, gains: formatGains(report) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [json, svg] = process.argv.slice(2);
  if (!json) {
    console.error("usage: npx tsx bench/serving/plot.ts REPORT.json [OUT.svg]");
    process.exit(2);
  }
  const { svgPath, gains } = await plotServingFile(json, svg);
  console.log(`${gains}\nwrote ${svgPath}`);
}
