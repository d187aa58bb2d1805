// Renders a bench report (bench/results/*.json, written by bench/run.ts) as an SVG with Vega-Lite,
// headless in Node (no browser, no canvas):
//   top:    ms per workload — prefill-only, decode-only, serial, two streams, fused (best config), torch best serial,
//           Hopper serial (cuDNN non-causal prefill + the run's fastest decode)
//   bottom: fused speedup over our serial, over torch's best serial and over Hopper serial, and overlap efficiency
//
//   npx tsx bench/plot.ts bench/results/latest.json [out.svg]     (default: the JSON's path with .svg)
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { TopLevelSpec } from "vega-lite";
import { readBenchReport } from "./schemas.ts";
import type { BenchReport } from "./report.ts";

const SERIES: [keyof BenchReport["workloads"][number]["ms"], string][] = [
  ["prefill", "prefill only"],
  ["decode", "decode only"],
  ["serial", "serial (ours)"],
  ["two_streams", "two streams"],
  ["fused_best", "fused (best config)"],
  ["torch_best_serial", "torch best serial"],
  ["hopper_serial", "Hopper serial (cuDNN non-causal prefill + fastest decode)"],
];

export function plotSpec(report: BenchReport): TopLevelSpec {
  const order = report.workloads.map((w) => w.name);
  const times = report.workloads.flatMap((w) =>
    // != null: reports recorded before a series existed lack its key.
    SERIES.filter(([k]) => w.ms[k] != null).map(([k, label]) => ({ workload: w.name, series: label, ms: w.ms[k] })),
  );
  const ratios = report.workloads.flatMap((w) =>
    (
      [
        ["fused speedup vs our serial", w.speedup_vs_serial],
        ["fused speedup vs torch best serial", w.speedup_vs_torch],
        ["fused speedup vs Hopper serial", w.speedup_vs_hopper_serial],
        ["overlap efficiency", w.overlap_efficiency],
      ] as const
    )
      .filter(([, v]) => v != null)
      .map(([metric, value]) => ({ workload: w.name, metric, value })),
  );
  const x = { field: "workload", type: "nominal", sort: order, axis: { labelAngle: -25, labelLimit: 400, title: null } } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `podgen bench — ${report.gpu}`,
      subtitle: `commit ${report.commit.slice(0, 12)}, driver ${report.driver}; medians of ${report.iters} CUDA-event timings; ${report.date.slice(0, 10)}`,
    },
    config: { font: "sans-serif", view: { stroke: null } },
    vconcat: [
      {
        width: 900,
        height: 260,
        data: { values: times },
        mark: { type: "bar" },
        encoding: {
          x,
          xOffset: { field: "series", sort: SERIES.map(([, l]) => l) },
          y: { field: "ms", type: "quantitative", title: "ms (lower is better)" },
          color: { field: "series", sort: SERIES.map(([, l]) => l), title: null, scale: { scheme: "tableau10" }, legend: { orient: "top", labelLimit: 400 } },
          tooltip: [{ field: "workload" }, { field: "series" }, { field: "ms", format: ".3f" }],
        },
      },
      {
        width: 900,
        height: 200,
        layer: [
          {
            data: { values: ratios },
            mark: { type: "bar" },
            encoding: {
              x,
              xOffset: { field: "metric" },
              y: { field: "value", type: "quantitative", title: "ratio" },
              color: { field: "metric", title: null, scale: { scheme: "set2" }, legend: { orient: "top", labelLimit: 400 } },
            },
          },
          { data: { values: [{ y: 1 }] }, mark: { type: "rule", strokeDash: [4, 3], color: "#444" }, encoding: { y: { field: "y", type: "quantitative" } } },
        ],
      },
    ],
    resolve: { scale: { color: "independent" } },
  } as TopLevelSpec;
}

/** A Vega-Lite chart as SVG, headless: the renderer of the bench report and of `podgen tune --plot`. */
export async function vegaLiteToSvg(chart: TopLevelSpec): Promise<string> {
  // vega loads on first use: the bundled CLI (scripts/gpu-bundle.ts) leaves it out.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const { spec } = compile(chart);
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function renderSvg(report: BenchReport): Promise<string> {
  return vegaLiteToSvg(plotSpec(report));
}

export async function plotFile(jsonPath: string, svgPath = jsonPath.replace(/\.json$/, "") + ".svg"): Promise<string> {
  const report = readBenchReport(jsonPath);
  writeFileSync(svgPath, await renderSvg(report));
  return svgPath;
}

// Run as a script only. Bundled (scripts/gpu-bundle.ts), import.meta.url is the bundle's, which is
// then also process.argv[1]: the file name tells this module from the CLI it is bundled into.
const self = fileURLToPath(import.meta.url);
if (process.argv[1] && self === process.argv[1] && /[\\/]plot\.[cm]?[jt]s$/.test(self)) {
  const [json, svg] = process.argv.slice(2);
  if (!json) {
    console.error("usage: npx tsx bench/plot.ts REPORT.json [OUT.svg]");
    process.exit(2);
  }
  console.log(`wrote ${await plotFile(json, svg)}`);
}
