// Public codegen API: generate a spec's files, build it with nvcc, read its manifest.
export { generateKernel, generateCudaSources, writeKernelFiles, staleKernelFiles, type GeneratedFile } from "./generate.ts";
export { buildKernel, findCachedBuild, nvccFlags, nvccVersion, defaultCacheDir, BuildError, type BuildResult, type BuildOptions, type Manifest, type Diagnostic } from "./build.ts";
export { parsePtxasReport, resourceWarnings, type KernelResources } from "./manifest.ts";
export { renderKernelSource, renderHeader } from "./render.ts";
export * from "./family.ts";
