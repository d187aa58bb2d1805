// `podgen export`: a pure function from a KernelSpec to the files of a self-contained folder that
// builds without podgen — the CUDA sources, the C header, a CMake package (shared + static library,
// find_package config), a PyTorch custom-op binding with a Python wrapper, examples and a README.
// Everything is rendered from templates/export/*.hbs; same spec → same bytes.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Handlebars from "handlebars";
import { canonicalJson, specFields, TARGET_LIMITS, type KernelSpec } from "../dsl/index.ts";
import type { KvDType } from "../dsl/schema.ts";
import { generateCudaSources, type GeneratedFile } from "./generate.ts";
import { KERNEL_HEADERS_DIR, TEMPLATES_DIR } from "./paths.ts";
import { templateContext } from "./render.ts";

export const EXPORT_TEMPLATES_DIR = join(TEMPLATES_DIR, "export");
/** The file listing what an export wrote; `export --force` uses it to remove files it no longer makes. */
export const EXPORT_MANIFEST = "podgen-export.json";

// A private Handlebars instance: partials under templates/export/partials/ are shared by the
// templates (e.g. `{{> banner c="#"}}` writes the generated-file banner as `#` comments).
const hbs = Handlebars.create();
for (const f of readdirSync(join(EXPORT_TEMPLATES_DIR, "partials")).sort()) {
  hbs.registerPartial(f.replace(/\.hbs$/, ""), readFileSync(join(EXPORT_TEMPLATES_DIR, "partials", f), "utf8"));
}
hbs.registerHelper("upper", (s: string) => s.toUpperCase());

function render(file: string, context: object): string {
  const source = readFileSync(join(EXPORT_TEMPLATES_DIR, file), "utf8");
  return hbs.compile(source, { noEscape: true, strict: true })(context);
}

/**
 * CMAKE_CUDA_ARCHITECTURES for a target, as `podgen build` compiles it: sm_90a → "90a-real" (SASS
 * only), sm_80 → "80" (SASS and PTX).
 */
export function cmakeCudaArchitecture(spec: KernelSpec): string {
  const { code, ptx } = TARGET_LIMITS[spec.target].gencode; // e.g. "sm_90a"
  return `${code.replace(/^sm_/, "")}${ptx ? "" : "-real"}`;
}

/** A Python float literal of a number: 50 → "50.0", 0.5 → "0.5", 1e-7 → "1e-7". */
function pythonFloat(value: number): string {
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** Each element type's torch dtype, in Python and in C++. */
const TORCH_DTYPES: Record<KvDType, { python: string; cpp: string }> = {
  fp16: { python: "torch.float16", cpp: "at::kHalf" },
  bf16: { python: "torch.bfloat16", cpp: "at::kBFloat16" },
  e4m3: { python: "torch.float8_e4m3fn", cpp: "at::kFloat8_e4m3fn" },
};

/** The template context: the kernel's (codegen/render.ts) plus what only the export needs. */
export function exportContext(spec: KernelSpec) {
  const base = templateContext(spec);
  return {
    ...base,
    cmakeArch: cmakeCudaArchitecture(spec),
    gpu: TARGET_LIMITS[spec.target].gpu,
    // torch dtypes of q/o and of the K/V cache, and the relative L2 tolerance of the GPU checks: the
    // 16-bit dtype's, or issue #19's for an fp8 cache against the fp32 attention of its dequantized values.
    torchDtype: TORCH_DTYPES[spec.dtype].python,
    atDtype: TORCH_DTYPES[spec.dtype].cpp,
    torchKvDtype: TORCH_DTYPES[base.kvDtype].python,
    atKvDtype: TORCH_DTYPES[base.kvDtype].cpp,
    tolerance: base.kvFp8 ? "2e-2" : spec.dtype === "bf16" ? "1e-2" : "5e-3",
    // fp8 KV: the fp32 scales each run takes for K and for V (0: a 16-bit cache takes none).
    kvScales: !base.kvFp8 ? 0 : base.kvScalePerHead ? spec.heads.kv : 1,
    // What the kernel computes, in words, e.g. "causal, sliding window of 128 keys, attention sinks".
    attention: [
      "causal",
      ...(spec.window !== undefined ? [`sliding window of ${spec.window} keys`] : []),
      ...(spec.logitsSoftCap !== undefined ? [`logits soft-capped at ${spec.logitsSoftCap}`] : []),
      ...(spec.sinks ? ["attention sinks"] : []),
    ].join(", "),
    // The attention variants as Python literals (None: off).
    python: {
      window: spec.window === undefined ? "None" : String(spec.window),
      logitsSoftCap: spec.logitsSoftCap === undefined ? "None" : pythonFloat(spec.logitsSoftCap),
      sinks: spec.sinks ? "True" : "False",
    },
  };
}

/** Where each template goes in the export, relative to its root. */
function exportTemplates(spec: KernelSpec): [template: string, path: string][] {
  const n = spec.name;
  const prefix = templateContext(spec).prefix;
  return [
    ["README.md.hbs", "README.md"],
    ["CMakeLists.txt.hbs", "CMakeLists.txt"],
    ["Config.cmake.in.hbs", `cmake/${n}Config.cmake.in`],
    ["torch_op.cpp.hbs", "csrc/torch_op.cpp"],
    ["python_init.py.hbs", `python/${prefix}/__init__.py`],
    ["c_consumer.CMakeLists.txt.hbs", "examples/c_consumer/CMakeLists.txt"],
    ["c_consumer.main.c.hbs", "examples/c_consumer/main.c"],
    ["python_usage.py.hbs", "examples/python_usage.py"],
    ["decode_loop.py.hbs", "examples/decode_loop.py"],
    ["test_torch.py.hbs", "tests/test_torch.py"],
  ];
}

/** Every file of the export of one spec, sorted by path. */
export function generateExport(spec: KernelSpec): GeneratedFile[] {
  const context = exportContext(spec);
  const sources = generateCudaSources(spec);
  const header = sources.find((f) => f.path === "pod_attention.h")!;
  const kernel = sources.find((f) => f.path === "kernel.cu")!;
  const files: GeneratedFile[] = [
    // The header is installed as <podgen/NAME/pod_attention.h> so that several kernels share a prefix.
    { path: `include/podgen/${spec.name}/pod_attention.h`, contents: header.contents },
    { path: "src/kernel.cu", contents: kernel.contents },
    ...readdirSync(KERNEL_HEADERS_DIR)
      .sort()
      .map((f) => ({ path: `src/pod/${f}`, contents: readFileSync(join(KERNEL_HEADERS_DIR, f), "utf8") })),
    ...exportTemplates(spec).map(([template, path]) => ({ path, contents: render(template, context) })),
    {
      path: "spec.json",
      contents: JSON.stringify({ hash: spec.hash, spec: JSON.parse(canonicalJson(specFields(spec))) }, null, 2) + "\n",
    },
  ];
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = {
    format: 1,
    name: spec.name,
    specHash: spec.hash,
    abiVersion: context.abiVersion,
    target: spec.target,
    files: [...files.map((f) => f.path), EXPORT_MANIFEST].sort(),
  };
  return [...files, { path: EXPORT_MANIFEST, contents: JSON.stringify(manifest, null, 2) + "\n" }];
}
